"""Shared fixtures: the real server on a free port with a real SQLite file."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from civicscore_api.v1 import units_pb2
from tests.serverproc import ServerProcess, hanoi_units
from tests.services import drop_keys, redis_prefix, redis_url

POSTGRES_ENV = "CIVICSCORE_TEST_POSTGRES_URL"

# pytest-xdist's workers inherit COLUMNS=80 and LINES=24 from execnet, which the CLI (rich) obeys: drop
# them so a CLI's output is laid out the same under `make test` (xdist) as in a single pytest process.
for _inherited in ("COLUMNS", "LINES"):
    os.environ.pop(_inherited, None)

# A shell that starts a command in the background without job control (`make test &` in a script)
# starts it with SIGINT ignored, and every process it starts inherits that: a CLI under test would
# then ignore the Ctrl-C a test sends it. A handler (unlike "ignored") is reset to the default when
# a child starts, so with this one the servers and CLIs the tests start get Ctrl-C as a person's would.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


# How long each test file took in a reference run (scripts/test_durations.py writes it from a JUnit XML).
DURATIONS = Path(__file__).with_name("durations.json")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Longest files first, each file's tests in their own order.

    `make test` hands whole files to its pytest-xdist processes one at a time (--dist loadfile,
    --no-loadscope-reorder), in this order: longest first is what keeps one process from starting the
    suite's 2-minute file when the other has nothing left. A file not in the table counts as 0 s (it
    goes last, where short files belong; run scripts/test_durations.py after adding a long one)."""
    try:
        seconds: dict[str, float] = json.loads(DURATIONS.read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError):
        return
    first_seen: dict[str, int] = {}
    for item in items:
        first_seen.setdefault(item.nodeid.split("::", 1)[0], len(first_seen))

    def key(item: pytest.Item) -> tuple[float, int]:
        path = item.nodeid.split("::", 1)[0]
        return -seconds.get(path, 0.0), first_seen[path]

    items.sort(key=key)  # stable: a file's tests keep their order


def pytest_report_header(config: pytest.Config) -> str:
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return f"civicscore: PostgreSQL store tests ON against {url}"
    return (f"civicscore: PostgreSQL store tests are SKIPPED: set {POSTGRES_ENV}="
            "postgresql+psycopg://postgres@127.0.0.1:5432/test to run them")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not os.environ.get(POSTGRES_ENV):
        terminalreporter.write_sep("!", f"PostgreSQL store tests were SKIPPED ({POSTGRES_ENV} not set)", yellow=True)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A fresh server process with an empty SQLite database and the default rules."""
    proc = ServerProcess(tmp_path).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def seeded_server(server: ServerProcess) -> ServerProcess:
    """`server` with Hanoi's 141 units loaded."""
    server.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=30)
    return server


@pytest.fixture
def shared_redis() -> Iterator[tuple[str, str]]:
    """(URL, key prefix of this test) on the shared Redis; the test's keys are dropped afterwards."""
    url, prefix = redis_url(), redis_prefix()
    try:
        yield url, prefix
    finally:
        drop_keys(url, prefix)
