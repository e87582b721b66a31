"""Property-based fuzzing of every RPC through the real server (issue 11, item 3; see tests/fuzz/).

Every RPC in the generated descriptors gets generated requests (realistic values mixed with the
hostile ones the issue lists) and malformed wire bytes. Every reply must be OK or a documented client
error with a precise message that fits; a refused call must leave every table's row count as it was;
plain reads must keep working after accepted writes; the server must keep serving.

Failures do not stop a run: each is recorded, grouped with the failures like it and minimised, and
the whole survey is printed at the end of the session (and written to `fuzz-report.txt` in the run's
temporary directory), so one run lists everything to fix. The test of an RPC fails if that RPC had
any failure; `test_budget` checks the call count.

`make test` is deterministic (a fixed seed per RPC). `make fuzz` is a longer, randomised run:
CIVICSCORE_FUZZ_CALLS sets the number of calls, CIVICSCORE_FUZZ_SEED repeats a run.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, find, given, seed, settings
from hypothesis import strategies as st

from tests.fuzz import budget, wire
from tests.fuzz.catalog import RPCS, Rpc
from tests.fuzz.harness import FuzzHarness
from tests.fuzz.pools import Pools
from tests.fuzz.strategies import Call, Strategies
from tests.fuzz.survey import Survey

ORDER = budget.ordered(RPCS)
SEED = os.environ.get("CIVICSCORE_FUZZ_SEED") or (
    str(random.randrange(2**32)) if os.environ.get("CIVICSCORE_FUZZ_RANDOM") else "")

pytestmark = pytest.mark.slow


class _Summary:
    """Prints the survey at the end of the session, whatever the tests' outcome."""

    def __init__(self, survey: Survey, report_path: Path) -> None:
        self.survey = survey
        self.report_path = report_path
        self.started = time.monotonic()
        self.cpu_at_start = sum(os.times()[:2])

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        elapsed = time.monotonic() - self.started
        survey = self.survey
        mode = f"randomised, seed {SEED}" if SEED else "fixed seeds"
        own_cpu = sum(os.times()[:2]) - self.cpu_at_start
        load = os.getloadavg()[0]
        text = (f"{survey.total:,} generated calls to {len(survey.calls)} RPCs in {elapsed:.0f} s ({mode}); "
                f"CPU: fuzzer {own_cpu:.0f} s, server {survey.server_cpu_s:.0f} s; load average {load:.1f}\n\n"
                f"{survey.counts_table()}\n\n{survey.report()}\n")
        self.report_path.write_text(text, encoding="utf-8")
        terminalreporter.write_sep("=", "fuzz survey (tests/test_fuzz.py)")
        terminalreporter.write_line(text.rstrip())
        terminalreporter.write_line(f"report written to {self.report_path}")


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[FuzzHarness]:
    workdir = tmp_path_factory.mktemp("fuzz")
    survey = Survey()
    report = Path(os.environ.get("CIVICSCORE_FUZZ_REPORT") or workdir / "fuzz-report.txt")
    request.config.pluginmanager.register(_Summary(survey, report), "civicscore-fuzz-summary")
    fuzz = FuzzHarness(workdir, survey)
    try:
        yield fuzz
    finally:
        fuzz.close()


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None, derandomize=False,
                    phases=(Phase.generate,), suppress_health_check=list(HealthCheck), print_blob=False)


def _seeded(test: object, rpc: Rpc, part: str) -> object:
    """A fixed seed per RPC and part of its run (the same every `make test`; `make fuzz` adds its own
    seed): distinct sequences for each, and none left to luck."""
    return seed(zlib.crc32(f"{rpc.short}/{part}".encode()) + int(SEED or 0))(test)


def test_every_rpc_of_the_contract_is_fuzzed() -> None:
    """Every RPC the descriptors declare is in the run, with calls budgeted and a strategy that builds
    its requests (a new RPC gets the generic strategies; nothing here lists RPCs by hand)."""
    assert sorted(r.path for r in ORDER) == sorted(r.path for r in RPCS) and len(set(ORDER)) == len(RPCS)
    assert {r.service.rsplit(".", 1)[-1] for r in RPCS} >= {"UnitService", "OutcomeService", "ReviewService"}
    strategies = Strategies(Pools(dt.date.today()))
    for rpc in RPCS:
        typed, raw = budget.examples(rpc, RPCS)
        assert typed >= 1 and raw >= 1, rpc.short
        call = find(strategies.call(rpc), lambda c: bool(c.messages),
                    settings=settings(database=None, phases=(Phase.generate,), max_examples=50))
        assert all(isinstance(m, rpc.request) for m in call.messages), rpc.short


@pytest.mark.parametrize("rpc", ORDER, ids=lambda rpc: rpc.short)
def test_fuzz(harness: FuzzHarness, rpc: Rpc) -> None:
    """Generated requests, then malformed wire bytes, to one RPC; fails listing every distinct failure."""
    typed, raw = budget.examples(rpc, RPCS)
    per_example = budget.batch(rpc)
    examples = -(-typed // per_example)

    def generated(count: int) -> object:
        @_settings(count)
        @given(st.lists(harness.strategies.call(rpc), min_size=per_example, max_size=per_example))
        def run(calls: list[Call]) -> None:
            for call in calls:
                harness.execute(rpc, call)
        return run

    @_settings(raw)
    @given(wire.malformed(rpc.request_descriptor, harness.strategies.message(rpc.request_descriptor, depth=0)))
    def malformed(case: tuple[str, bytes]) -> None:
        harness.execute_raw(rpc, *case)

    # In two halves: the pools are frozen while hypothesis runs, and the second half draws on the
    # requests the server accepted in the first (the next page of a List, a variant of a write).
    for part, count in (("first", examples // 2), ("second", examples - examples // 2)):
        if count == 0:
            continue
        harness.freeze_pools()
        _seeded(generated(count), rpc, part)()  # type: ignore[operator]
    harness.freeze_pools()
    _seeded(malformed, rpc, "wire")()  # type: ignore[operator]
    harness.minimise_pending()
    harness.canaries()
    harness.check_serving(rpc)
    harness.restore()
    assert harness.survey.calls[rpc.short] > 0, f"{rpc.short} was never called"
    failures = harness.survey.groups_for(rpc.short)
    assert not failures, harness.survey.report([rpc.short])


def test_budget(harness: FuzzHarness, request: pytest.FixtureRequest) -> None:
    """At least MIN_CALLS generated calls in all (scaled for `make fuzz`), and every RPC called."""
    ran = {item.callspec.params["rpc"].short for item in request.session.items
           if item.originalname == "test_fuzz" and hasattr(item, "callspec")}
    if ran != {r.short for r in RPCS}:
        pytest.skip("only part of the fuzz suite was selected")
    survey = harness.survey
    missing = [r.short for r in RPCS if survey.calls[r.short] == 0]
    assert not missing, f"never called: {missing}"
    wanted = round(budget.MIN_CALLS * budget.scale())
    assert survey.total >= wanted, f"{survey.total:,} generated calls, fewer than {wanted:,}"

