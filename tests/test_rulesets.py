"""Ruleset versions through the real server: activation, rollback, reload from disk, quarters in force.

Every server here runs on its own copy of the rules folder, so editing it (as policy
staff do) never touches the repository's `rules/`.
"""

from __future__ import annotations

import datetime as dt
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from civicscore.domain.periods import Quarter
from civicscore.validation import hanoi_today
from civicscore_api.v1 import evaluations_pb2, measurements_pb2, units_pb2
from civicscore_client import Client, FailedPrecondition, InvalidArgument, NotFound
from civicscore_client._rulesets import read_rules_folder
from tests.scenario import PERIOD, REPORTED, load_quarter
from tests.serverproc import RULES, ServerProcess, hanoi_units, timestamp

pytestmark = pytest.mark.slow

CURRENT = str(Quarter.containing(hanoi_today(dt.datetime.now(dt.UTC))))  # later than PERIOD (2026-Q3)


def copy_rules(target: Path) -> Path:
    target.mkdir()
    for path in RULES.glob("*.yaml"):
        shutil.copy(path, target / path.name)
    return target


def edited(files: dict[str, str], name: str, old: str, new: str) -> dict[str, str]:
    assert old in files[name], f"{old!r} not in {name}"
    return {**files, name: files[name].replace(old, new, 1)}


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    return copy_rules(tmp_path / "rules")


@pytest.fixture
def quarter(tmp_path: Path, rules_dir: Path) -> Iterator[ServerProcess]:
    """A server on its own rules folder, with Hanoi's units and the 2026-Q3 scenario loaded."""
    proc = ServerProcess(tmp_path, rules=rules_dir, watch_rules=True).start()
    try:
        proc.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=30)
        load_quarter(proc)
        yield proc
    finally:
        proc.stop()


def client(server: ServerProcess) -> Client:
    return server.client(timeout=60)


def evaluation(c: Client, code: str, period: str = PERIOD) -> evaluations_pb2.Evaluation:
    return c.get_evaluation(period, code)


def test_start_up_activates_the_rules_folder_once(quarter: ServerProcess, rules_dir: Path) -> None:
    with client(quarter) as c:
        status = c.get_ruleset_status()
        history = list(c.list_ruleset_activations())
    assert status.active.version == "2026.1" and status.active.in_force_from == "2025-Q3"
    assert status.rules_folder == str(rules_dir.resolve())  # watched
    assert [(e.from_period, e.digest) for e in status.in_force] == [("2025-Q3", status.active.digest)]
    assert status.loaded_digests == [status.active.digest] and status.HasField("load_time")
    assert [(a.sequence, a.source, a.digest) for a in history] == [(1, "startup", status.active.digest)]
    assert history[0].actor == f"rules-folder:{rules_dir}"
    # a restart with the same folder activates nothing new
    quarter.stop()
    quarter.start()
    with client(quarter) as c:
        assert len(list(c.list_ruleset_activations())) == 1


def test_a_policy_change_made_only_in_yaml_changes_evaluations_after_activation(
        quarter: ServerProcess, rules_dir: Path) -> None:
    files = read_rules_folder(rules_dir)
    with client(quarter) as c:
        c.evaluate_period(PERIOD)
        stp = evaluation(c, "STP")
        assert "criticism-low-timeliness" in {r.rule_id for r in stp.fired_rules}  # timeliness 0.75 < 0.8

        # 1. a new threshold: criticism below 70% on time instead of 80%
        files = edited(files, "flags.yaml", "flag: criticism\n    params: {threshold: 0.8}",
                       "flag: criticism\n    params: {threshold: 0.7}")
        first = c.activate_ruleset(files, reason="Quyết định 12/QĐ-BCĐ: ngưỡng phê bình 70%")
        assert first.activation.sequence == 2 and list(first.evaluated_periods_affected) == [PERIOD]
        assert c.evaluate_period(PERIOD).new_revisions >= 1
        stp = evaluation(c, "STP")
        fired = {r.rule_id for r in stp.fired_rules}
        assert "criticism-low-timeliness" not in fired and "reminder-low-timeliness" in fired
        assert stp.ruleset_digest == first.ruleset.digest

        # 2. a new indicator with a weight: refused by ingest before, scored after
        measurement = measurements_pb2.Measurement(
            unit="units/SNV", period=PERIOD, indicator="dx.open_data", numerator=20, denominator=100,
            reported_at=timestamp(REPORTED), reporting_system="dvc")
        with pytest.raises(InvalidArgument, match=r"dx\.open_data"):
            c.submit_measurements([measurement])
        files = edited(files, "scoring.yaml", "rules:\n", (
            "  - code: dx.open_data\n"
            "    name:\n"
            "      vi: Tỷ lệ dữ liệu mở được công bố\n"
            "      en: Open data published\n"
            "    weight: 5\n"
            "    target: 0.5\n\nrules:\n"))
        c.activate_ruleset(files, reason="chỉ số mới")
        c.submit_measurements([measurement])
        c.evaluate_period(PERIOD)
        snv = evaluation(c, "SNV")
        open_data = next(i for i in snv.indicators if i.indicator == "dx.open_data")
        assert open_data.counted and open_data.display_name_vi == "Tỷ lệ dữ liệu mở được công bố"
        # 70 x 1.0 + 30 x (6 x 1.0 + 5 x 0.4) / 11 = 91.818...
        assert snv.score_display == "91.82"

        # 3. a new flag with its rule
        files = edited(files, "flags.yaml", "  - flag: reminder\n", (
            "  - flag: digital_pioneer\n"
            "    kind: commendation\n"
            "    level: 1\n"
            "    label: {vi: Đơn vị tiên phong chuyển đổi số, en: Digital pioneer}\n"
            "  - flag: reminder\n"))
        files = {**files, "flags.yaml": files["flags.yaml"] + (
            "\n  - id: digital-pioneer\n"
            "    fact: unit\n"
            "    flag: digital_pioneer\n"
            "    params: {min_dx: 0.7}\n"
            "    when: not under_review and assessable and dx_result >= min_dx\n"
            "    reason:\n"
            "      vi: \"Kết quả chuyển đổi số {dx_result:%} từ {min_dx:%} trở lên\"\n"
            "      en: \"Digital transformation result {dx_result:%} is {min_dx:%} or more\"\n")}
        third = c.activate_ruleset(files, reason="cờ mới")
        c.evaluate_period(PERIOD)
        snv = evaluation(c, "SNV")
        assert "digital_pioneer" in snv.flags
        fired = next(r for r in snv.fired_rules if r.rule_id == "digital-pioneer")
        assert fired.source.startswith("flags.yaml:") and "72,73%" in fired.reason_vi
        recommendations = c.list_recommendations(PERIOD, unit="SNV")
        assert any(r.flag == "digital_pioneer" for r in recommendations)
        assert c.get_ruleset_status().active.digest == third.ruleset.digest
        assert [a.sequence for a in c.list_ruleset_activations()] == [4, 3, 2, 1]


def test_a_past_quarter_keeps_its_ruleset_and_its_stored_results(quarter: ServerProcess, rules_dir: Path) -> None:
    files = read_rules_folder(rules_dir)
    with client(quarter) as c:
        c.evaluate_period(PERIOD)
        before = [e.SerializeToString(deterministic=True) for e in c.list_evaluations(PERIOD)]
        old_digest = evaluation(c, "STP").ruleset_digest
        new = edited(edited(files, "ruleset.yaml", "in_force_from: 2025-Q3", f"in_force_from: {CURRENT}"),
                     "flags.yaml", "params: {threshold: 0.8}", "params: {threshold: 0.7}")
        new = edited(new, "ruleset.yaml", 'version: "2026.1"', 'version: "2026.2"')
        activated = c.activate_ruleset(new, reason="từ quý 4")
        assert list(activated.evaluated_periods_affected) == []
        status = c.get_ruleset_status()
        assert [(e.from_period, e.version) for e in status.in_force] == [("2025-Q3", "2026.1"), (CURRENT, "2026.2")]

        again = c.evaluate_period(PERIOD)
        assert (again.new_revisions, again.ruleset_digest) == (0, old_digest)
        assert [e.SerializeToString(deterministic=True) for e in c.list_evaluations(PERIOD)] == before
        current = c.evaluate_period(CURRENT)
        assert current.ruleset_digest == activated.ruleset.digest and current.ruleset_version == "2026.2"

    # new processes: the old ruleset comes back from the database, not from the folder
    quarter.stop()
    quarter.start()
    with client(quarter) as c:
        assert c.evaluate_period(PERIOD).new_revisions == 0
        assert [e.SerializeToString(deterministic=True) for e in c.list_evaluations(PERIOD)] == before
        assert c.get_ruleset_status().active.version == "2026.2"


def test_a_broken_ruleset_is_refused_with_positions_and_the_old_one_keeps_serving(
        quarter: ServerProcess, rules_dir: Path) -> None:
    files = read_rules_folder(rules_dir)
    broken = edited(files, "flags.yaml", "when: assessable and timeliness < threshold",
                    "when: assessable and timelines < threshold")
    with client(quarter) as c:
        active = c.get_ruleset_status().active.digest
        for validate_only in (True, False):
            with pytest.raises(InvalidArgument) as refused:
                c.activate_ruleset(broken, reason="typo", validate_only=validate_only)
            assert "the ruleset in force keeps serving" in refused.value.message
            [violation] = refused.value.violations
            assert violation.field == "files.files[0].content"  # flags.yaml, first in path order
            assert violation.description.startswith("flags.yaml:")
            assert "did you mean `timeliness`" in violation.description
        status = c.get_ruleset_status()
        assert status.active.digest == active
        assert (status.last_refused.source, status.last_refused.actor) == ("rpc", "bootstrap-admin")
        [issue] = status.last_refused.issues
        assert (issue.file, issue.line > 0, issue.column > 0) == ("flags.yaml", True, True)
        assert len(list(c.list_ruleset_activations())) == 1
        assert c.evaluate_period(PERIOD).ruleset_digest == active


def test_requests_are_checked_before_anything_happens(quarter: ServerProcess, rules_dir: Path) -> None:
    files = read_rules_folder(rules_dir)
    with client(quarter) as c:
        with pytest.raises(InvalidArgument, match="not a rule file name"):
            c.activate_ruleset({**files, "tests/cases.yaml": "x: 1"})
        with pytest.raises(InvalidArgument, match="no rule files"):
            c.activate_ruleset({})
        with pytest.raises(InvalidArgument, match=r"'rulesets/abc' is not a resource name rulesets/\{digest\}"):
            c.activate_ruleset(ruleset="rulesets/abc")
        with pytest.raises(NotFound, match="never activated"):
            c.activate_ruleset(ruleset="0" * 64)
        with pytest.raises(NotFound):
            c.get_ruleset("f" * 64)
        with pytest.raises(InvalidArgument, match="rolled_back"):
            list(c.list_ruleset_activations(filter="rolled_back=maybe"))
        assert len(list(c.list_ruleset_activations())) == 1


def test_rollback_restores_what_the_activation_replaced(quarter: ServerProcess, rules_dir: Path) -> None:
    files = read_rules_folder(rules_dir)
    with client(quarter) as c:
        first = c.get_ruleset_status().active.digest
        with pytest.raises(FailedPrecondition, match="only one in force"):
            c.rollback_ruleset(reason="nothing to undo")
        changed = edited(files, "flags.yaml", "params: {threshold: 0.8}", "params: {threshold: 0.7}")
        second = c.activate_ruleset(changed, reason="thử")
        with pytest.raises(FailedPrecondition, match="not of"):
            c.rollback_ruleset(expected_digest=first, reason="wrong guard")
        undone = c.rollback_ruleset(expected_digest=second.ruleset.digest, reason="Nhầm ngưỡng", idempotency_key="rb-1")
        assert undone.rolled_back.sequence == 2 and undone.rolled_back.rolled_back
        assert undone.rolled_back.rollback_reason == "Nhầm ngưỡng"
        assert undone.ruleset.digest == first
        # a retry with the same key replays the answer and undoes nothing more
        replay = c.rollback_ruleset(expected_digest=second.ruleset.digest, reason="Nhầm ngưỡng",
                                    idempotency_key="rb-1")
        assert replay.rolled_back.sequence == 2
        assert c.evaluate_period(PERIOD).ruleset_digest == first
        # the content stays stored: activate it again by name, and a repeat is a no-op
        again = c.activate_ruleset(ruleset=second.ruleset.digest, reason="lại")
        assert again.activation.sequence == 3 and not again.unchanged
        assert c.activate_ruleset(ruleset=second.ruleset.digest).unchanged
        stored = c.get_ruleset(second.ruleset.digest, include_files=True)
        assert {f.path: f.content for f in stored.files} == changed
        assert [(a.sequence, a.rolled_back) for a in c.list_ruleset_activations()] == [(3, False), (2, True),
                                                                                         (1, False)]
        assert [a.sequence for a in c.list_ruleset_activations(filter="rolled_back=true")] == [2]


def test_activation_retried_with_its_key_is_recorded_once(quarter: ServerProcess, rules_dir: Path) -> None:
    files = edited(read_rules_folder(rules_dir), "flags.yaml", "params: {threshold: 0.8}", "params: {threshold: 0.7}")
    with client(quarter) as c:
        first = c.activate_ruleset(files, reason="once", idempotency_key="act-1")
        second = c.activate_ruleset(files, reason="once", idempotency_key="act-1")
        assert first.activation == second.activation
        assert len(list(c.list_ruleset_activations())) == 2


def test_the_rules_folder_is_activated_when_it_changes_and_refused_when_broken(
        quarter: ServerProcess, rules_dir: Path) -> None:
    flags = rules_dir / "flags.yaml"
    with client(quarter) as c:
        original = c.get_ruleset_status().active.digest
        flags.write_text(flags.read_text(encoding="utf-8").replace("params: {threshold: 0.8}",
                                                                  "params: {threshold: 0.7}"), encoding="utf-8")
        wait_for(lambda: c.get_ruleset_status().active.digest != original, "the edited folder to be activated")
        changed = c.get_ruleset_status()
        latest = next(iter(c.list_ruleset_activations()))
        assert (latest.source, latest.actor) == ("rules-folder", f"rules-folder:{rules_dir}")
        assert "criticism-low-timeliness" not in fired_after(c, "STP")

        flags.write_text(flags.read_text(encoding="utf-8").replace("flag: criticism\n", "flag: critcism\n", 1),
                         encoding="utf-8")
        wait_for(lambda: c.get_ruleset_status().HasField("last_refused"), "the broken folder to be refused")
        status = c.get_ruleset_status()
        assert status.active.digest == changed.active.digest
        assert status.last_refused.source == "rules-folder"
        assert any(i.file == "flags.yaml" and "critcism" in i.message for i in status.last_refused.issues)
        assert c.evaluate_period(PERIOD).ruleset_digest == changed.active.digest

    # restarted with the folder still broken: the last good ruleset serves, the refusal is reported
    quarter.stop()
    quarter.start()
    with client(quarter) as c:
        status = c.get_ruleset_status()
        assert status.active.digest == changed.active.digest
        assert status.last_refused.source == "startup"
    assert "refused" in quarter.log()


def fired_after(c: Client, code: str) -> set[str]:
    c.evaluate_period(PERIOD)
    return {r.rule_id for r in evaluation(c, code).fired_rules}


def test_a_broken_folder_on_a_new_database_refuses_to_start(tmp_path: Path, rules_dir: Path) -> None:
    flags = rules_dir / "flags.yaml"
    flags.write_text(flags.read_text(encoding="utf-8").replace("flag: criticism\n", "flag: critcism\n", 1),
                     encoding="utf-8")
    proc = ServerProcess(tmp_path, rules=rules_dir)
    with pytest.raises(RuntimeError, match="exited with 2") as failed:
        proc.start()
    assert "flags.yaml:" in str(failed.value) and "critcism" in str(failed.value)


def test_activations_under_load_fail_no_request(quarter: ServerProcess, rules_dir: Path) -> None:
    """20 activations, 5 of them broken, while evaluations and reads run: zero failed requests."""
    files = read_rules_folder(rules_dir)
    tokens = {}
    with client(quarter) as c:
        c.evaluate_period(PERIOD)
        for role in ("committee", "reader", "policy"):  # each client its own identity, as in production
            c.create_identity(f"{role}-bot", f"Load test {role}", roles=[role])
            tokens[role] = c.issue_token(f"{role}-bot").token
    failures: list[str] = []
    done = threading.Event()
    counts = {"evaluate": 0, "read": 0}

    def evaluate_loop() -> None:
        with quarter.client(tokens["committee"], timeout=60, max_attempts=1) as mine:
            while not done.is_set():
                try:
                    mine.evaluate_period(PERIOD)
                    counts["evaluate"] += 1
                except Exception as error:  # any failure counts
                    failures.append(f"EvaluatePeriod: {error!r}")

    def read_loop() -> None:
        with quarter.client(tokens["reader"], timeout=60, max_attempts=1) as mine:
            while not done.is_set():  # a steady load, within the reader's rate limit
                try:
                    mine.get_evaluation(PERIOD, "STP")
                    mine.get_active_ruleset()
                    counts["read"] += 1
                    time.sleep(0.05)
                except Exception as error:
                    failures.append(f"read: {error!r}")

    threads = [threading.Thread(target=evaluate_loop), threading.Thread(target=evaluate_loop),
               threading.Thread(target=read_loop)]
    for thread in threads:
        thread.start()
    refused = 0
    activated: list[str] = []
    try:
        with quarter.client(tokens["policy"], timeout=60) as c:
            for i in range(20):
                threshold = f"0.{60 + i}"
                candidate = edited(files, "flags.yaml", "params: {threshold: 0.8}",
                                   f"params: {{threshold: {threshold}}}")
                if i % 4 == 3:  # every fourth one is broken
                    candidate = edited(candidate, "flags.yaml", "when: days_overdue > max_days",
                                       "when: days_overdue >> max_days")
                    with pytest.raises(InvalidArgument) as error:
                        c.activate_ruleset(candidate, reason=f"broken {i}")
                    assert any(v.description.startswith("flags.yaml:") for v in error.value.violations)
                    assert c.get_ruleset_status().active.digest == activated[-1]
                    refused += 1
                else:
                    activated.append(c.activate_ruleset(candidate, reason=f"step {i}").ruleset.digest)
            time.sleep(0.5)
    finally:
        done.set()
        for thread in threads:
            thread.join(120)
    assert failures == []
    assert refused == 5 and len(activated) == 15
    assert counts["evaluate"] > 0 and counts["read"] > 0
    with client(quarter) as c:
        status = c.get_ruleset_status()
        assert status.active.digest == activated[-1]
        assert list(status.loaded_digests) == [activated[-1]]  # every replaced pool was closed
        assert c.evaluate_period(PERIOD).ruleset_digest == activated[-1]

