"""EnginePool with real worker processes: results, crashes, hangs, threads, determinism, leaks.

Also the durable_rules adapter in this process (sessions, swallowed action errors)."""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from civicscore.domain.canonical import canonical_json, sha256_hex
from civicscore.domain.model import MeasurementFact, OverdueTask, PriorQuarter, TaskCounts, UnitFacts, UnitKind
from civicscore.domain.scoring import ScoreBreakdown, task_rates
from civicscore.engine import pool as pool_module
from civicscore.engine.facts import InvalidFacts, measurement_fact, overdue_fact, unit_fact, view_measurement
from civicscore.engine.pool import MAX_CHUNK, EnginePool, chunk_sizes
from civicscore.engine.port import EngineError, EvaluationCancelled
from civicscore.ruleset import load_ruleset
from civicscore.ruleset.fields import FACT_FIELDS, MEASUREMENT, OVERDUE, UNIT
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"
FLAGS_RULES = "flags.yaml"


def rule_files() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(RULES.glob("*.yaml"))}


def unit(code: str, *, due: int = 10, on_time: int = 10, late: int = 0, overdue: int = 0) -> UnitFacts:
    """A department with `due` assignments, on_time + late of them completed."""
    tasks = tuple(OverdueTask(f"{code}-T{i}", dt.date(2026, 2, 1), 58, i) for i in range(overdue))
    return UnitFacts(
        unit_code=code,
        unit_kind=UnitKind.DEPARTMENT,
        block="departments",
        period="2026-Q1",
        counts=TaskCounts(due=due, completed=on_time + late, on_time=on_time, late=late),
        overdue=tasks,
        measurements=(MeasurementFact("dx.online_applications", 70, 100),),
    )


def varied_units(prefix: str, count: int) -> list[UnitFacts]:
    return [unit(f"{prefix}{i}", due=6 + i % 7, on_time=i % 5, late=i % 3, overdue=i % 4) for i in range(count)]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def pool() -> Iterator[EnginePool]:
    with EnginePool(load_ruleset(rule_files()), workers=2, job_timeout_s=20) as engine:
        yield engine


@pytest.fixture(scope="module")
def slow_pool() -> Iterator[EnginePool]:
    """Workers that sleep 50 ms per unit, with a short timeout, for crash and hang tests."""
    with EnginePool(load_ruleset(rule_files()), workers=2, job_timeout_s=1.5, fault_delay_s=0.05) as engine:
        yield engine


# ---- evaluating -------------------------------------------------------------------------------


def test_results_come_back_in_the_order_of_the_facts(pool: EnginePool) -> None:
    units = varied_units("U", 50)
    results = pool.evaluate(units)
    assert [r.unit_code for r in results] == [u.unit_code for u in units]
    perfect = pool.evaluate([unit("P")])[0]
    # 70 × 1 + 30 × (0.7 / 0.8) = 96.25
    assert (perfect.score, perfect.grade, [f.flag for f in perfect.flags]) == (96.25, "excellent", ["praise"])
    assert pool.evaluate([]) == []


def test_pool_reports_its_ruleset_and_workers(pool: EnginePool) -> None:
    ruleset = load_ruleset(rule_files())
    assert (pool.ruleset_version, pool.ruleset_digest) == (ruleset.version, ruleset.digest)
    assert pool.ruleset.rule_ids == ruleset.rule_ids
    pids = pool.worker_pids()
    assert len(set(pids)) == 2 and os.getpid() not in pids and all(alive(pid) for pid in pids)


def test_same_facts_give_byte_identical_results(pool: EnginePool) -> None:
    units = varied_units("D", 30)
    first = [canonical_json(r) for r in pool.evaluate(units)]
    again = [canonical_json(r) for r in pool.evaluate(list(reversed(units)))]
    assert first == list(reversed(again))


def test_concurrent_calls_from_threads_each_get_their_own_results(pool: EnginePool) -> None:
    outcomes: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def call(n: int) -> None:
        try:
            outcomes[n] = [r.unit_code for r in pool.evaluate(varied_units(f"T{n}-", 25))]
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert outcomes == {n: [f"T{n}-{i}" for i in range(25)] for n in range(8)}


def test_contradictory_facts_are_rejected_before_any_work(pool: EnginePool) -> None:
    bad = UnitFacts("BAD", UnitKind.WARD, "communes", "2026-Q1", TaskCounts(due=3, completed=4, on_time=4))
    with pytest.raises(InvalidFacts, match=r"unit BAD 2026-Q1: completed \(4\) exceeds due \(3\)"):
        pool.evaluate([unit("OK"), bad])


# ---- crashes, hangs and failures ------------------------------------------------------------


def test_a_worker_killed_during_evaluate_is_replaced_and_its_work_retried(
    pool: EnginePool, slow_pool: EnginePool
) -> None:
    units = varied_units("K", 24)
    expected = [canonical_json(r) for r in pool.evaluate(units)]
    victim = slow_pool.worker_pids()[0]
    box: dict[str, Any] = {}
    caller = threading.Thread(target=lambda: box.update(results=slow_pool.evaluate(units)))
    caller.start()
    time.sleep(0.2)  # mid-chunk: each chunk of 6 units takes 0.3 s
    os.kill(victim, signal.SIGKILL)
    caller.join(30)
    assert [canonical_json(r) for r in box["results"]] == expected
    assert not alive(victim)
    assert eventually(lambda: len(slow_pool.worker_pids()) == 2 and victim not in slow_pool.worker_pids())


def test_a_hung_worker_is_killed_after_the_timeout_and_replaced(pool: EnginePool, slow_pool: EnginePool) -> None:
    units = varied_units("H", 8)
    expected = [canonical_json(r) for r in pool.evaluate(units)]
    frozen = slow_pool.worker_pids()[0]
    os.kill(frozen, signal.SIGSTOP)
    started = time.monotonic()
    results = slow_pool.evaluate(units)
    assert time.monotonic() - started >= 1.5
    assert [canonical_json(r) for r in results] == expected
    assert not alive(frozen)
    assert eventually(lambda: len(slow_pool.worker_pids()) == 2 and frozen not in slow_pool.worker_pids())


def test_a_chunk_that_keeps_failing_raises_a_clear_error() -> None:
    with (
        EnginePool(load_ruleset(rule_files()), workers=1, job_timeout_s=0.3, fault_delay_s=1.0,
                   max_attempts=2) as engine,
        pytest.raises(EngineError) as raised,
    ):
        engine.evaluate([unit("SLOW-1")])
    message = str(raised.value)
    assert "evaluating units SLOW-1 (2026-Q1) failed 2 times" in message
    assert "did not answer within 0.3 s" in message


def test_workers_ignore_sigint(pool: EnginePool) -> None:
    pid = pool.worker_pids()[1]
    os.kill(pid, signal.SIGINT)
    time.sleep(0.2)
    assert alive(pid) and pid in pool.worker_pids()
    assert len(pool.evaluate(varied_units("I", 6))) == 6


def test_a_worker_that_dies_while_idle_is_replaced_at_once_and_reported() -> None:
    """Killed between calls (the OOM killer, an operator): replaced by the pool's watcher before any call
    needs it, with the signal named."""
    events: list[tuple[str, int, str]] = []
    with EnginePool(load_ruleset(rule_files()), workers=1,
                    on_worker=lambda what, pid, why: events.append((what, pid, why))) as engine:
        [victim] = engine.worker_pids()
        os.kill(victim, signal.SIGKILL)
        assert eventually(lambda: any(e[0] == "started" and e[1] != victim for e in events), timeout_s=30)
        replaced = engine.worker_pids()
        assert victim not in replaced
        assert ("died", victim, "killed by SIGKILL") in events
        assert ("started", replaced[0], "a replacement") in events
        assert len(engine.evaluate([unit("AFTER")])) == 1  # and the replacement works


def test_closing_stops_workers_and_refuses_work() -> None:
    engine = EnginePool(load_ruleset(rule_files()), workers=1)
    pids = engine.worker_pids()
    engine.close()
    assert not any(alive(pid) for pid in pids)
    with pytest.raises(EngineError, match="closed"):
        engine.evaluate([unit("LATE")])
    engine.close()


def test_many_evaluations_leak_no_sessions() -> None:
    # durable_rules refuses a 1,025th live session: 1,100 units through one worker prove each is deleted.
    with EnginePool(load_ruleset(rule_files()), workers=1) as engine:
        for batch in range(2):
            assert len(engine.evaluate(varied_units(f"L{batch}-", 550))) == 550


# ---- the durable_rules adapter, in this process ---------------------------------------------

GRADE_FACT = {"tag": "unit.grade", "assessable": True, "score": 95.0, "due": 10}


def test_adapter_opens_one_session_at_a_time_and_deletes_each() -> None:
    from civicscore.engine.durable_adapter import DurableRunner

    runner = DurableRunner(load_ruleset(rule_files()).compile())
    for _ in range(1500):  # past durable_rules' 1,024 live sessions
        runner.begin()
        assert runner.assert_fact(GRADE_FACT) == ["grade.excellent"]
        assert runner.assert_fact({"tag": "unit.grade", "assessable": "?"}) == []
        runner.end()
    assert (runner.sessions_used, runner.live_sessions) == (1500, 0)
    runner.begin()
    with pytest.raises(RuntimeError, match="already open"):
        runner.begin()
    runner.end()


def test_adapter_fires_a_rule_once_when_several_alternatives_match() -> None:
    from civicscore.engine.durable_adapter import DurableRunner

    files = rule_files()
    files[FLAGS_RULES] += (
        '\n  - id: either\n    fact: unit\n    flag: reminder\n    when: due > 1 or due > 2\n'
        '    reason: {vi: "Lý do", en: "Reason"}\n'
    )
    runner = DurableRunner(load_ruleset(files).compile())
    runner.begin()
    assert runner.assert_fact({"tag": "unit.flags", "due": 5}) == ["either"]
    runner.end()


def test_adapter_raises_action_errors_that_durable_rules_swallows() -> None:
    from civicscore.engine.durable_adapter import ActionFailed, DurableRunner

    class FailingRunner(DurableRunner):
        def _recorder(self, name: str) -> Any:
            if name != "grade.excellent":
                return super()._recorder(name)

            def fail(_closure: Any) -> None:
                raise ZeroDivisionError("boom")

            return fail

    runner = FailingRunner(load_ruleset(rule_files()).compile())
    runner.begin()
    with pytest.raises(ActionFailed, match="boom"):
        runner.assert_fact(GRADE_FACT)
    with pytest.raises(ActionFailed):
        runner.end()  # the session is deleted all the same
    assert runner.live_sessions == 0 and not runner.broken


# ---- boundaries: who imports durable_rules, which fields facts carry --------------------------


def test_only_the_adapter_imports_durable() -> None:
    importers = sorted(
        path.relative_to(ROOT / "server").as_posix()
        for path in (ROOT / "server" / "civicscore").rglob("*.py")
        if re.search(r"^\s*(import|from)\s+durable", path.read_text(encoding="utf-8"), re.MULTILINE)
    )
    assert importers == ["civicscore/engine/durable_adapter.py"]


def test_the_server_process_does_not_load_durable() -> None:
    code = "import sys, civicscore.engine.pool; print(sorted(m for m in sys.modules if 'durable' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_the_rule_checking_fork_server_does_not_load_the_store() -> None:
    # The sandbox's fork server preloads civicscore.rulesets.checking in every server process: it needs the
    # ruleset and engine modules, not the store, SQLAlchemy and alembic (which made each start 0.75 s slower).
    code = ("import sys, civicscore.rulesets.checking; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'alembic', 'sqlmodel'}), "
            "sorted(m for m in sys.modules if m.startswith('civicscore.store')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[] []"


def test_the_rulesets_package_names_resolve_to_their_modules() -> None:
    import importlib

    import civicscore.rulesets as rulesets

    for name in rulesets.__all__:
        home = importlib.import_module(f"civicscore.rulesets.{rulesets._HOMES[name]}")
        assert getattr(rulesets, name) is getattr(home, name)
    assert set(rulesets.__all__) == set(rulesets._HOMES)
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        rulesets.Nothing  # noqa: B018


def test_facts_carry_exactly_the_fields_rules_may_name() -> None:
    ruleset = load_ruleset(rule_files())
    facts = UnitFacts(
        "SNV", UnitKind.DEPARTMENT, "departments", "2026-Q1", TaskCounts(10, 9, 7, 2, 1),
        overdue=(OverdueTask("A1", dt.date(2025, 12, 1), 40, 4),),
        measurements=(MeasurementFact("dx.online_applications", 70, 100),),
        previous=PriorQuarter("2025-Q4", "good", ("criticism",)),
    )
    rates = task_rates(facts.counts, ruleset.scoring)
    breakdown = ScoreBreakdown(0.9, 0.8, 60.0, 24.0, 2.0, 82.0)
    summary = unit_fact(facts, rates, breakdown, penalty=2.0, dx=0.8, dx_indicators=1, assessable=True)
    assert set(summary) | {"grade", "flags"} == set(FACT_FIELDS[UNIT])
    assert set(overdue_fact(facts, facts.overdue[0])) == set(FACT_FIELDS[OVERDUE])
    view = view_measurement(facts, facts.measurements[0], ruleset)
    assert set(measurement_fact(facts, view)) == set(FACT_FIELDS[MEASUREMENT])


# ---- batched asserts, encoded results, chunking: the fast paths keep every byte ---------------


def rich_unit() -> UnitFacts:
    """A unit with overdue tasks, counted and uncounted indicators and a previous quarter."""
    return UnitFacts(
        unit_code="SNV",
        unit_kind=UnitKind.DEPARTMENT,
        block="departments",
        period="2026-Q1",
        counts=TaskCounts(due=20, completed=16, on_time=10, late=6, reworked=2),
        overdue=(
            OverdueTask("SNV-001", dt.date(2026, 3, 31), 0, 0),
            OverdueTask("SNV-002", dt.date(2026, 2, 14), 45, 5),
            OverdueTask("SNV-003", dt.date(2026, 3, 19), 12, 1),
        ),
        measurements=(
            MeasurementFact("dx.fully_online", 30, 100, 0.25),
            MeasurementFact("dx.online_applications", 70, 100),
            MeasurementFact("dx.satisfaction", 0, 0),
        ),
        previous=PriorQuarter("2025-Q4", "good", ("criticism",)),
    )


# rich_unit() as the engine evaluated it before asserts were batched (and since): any change
# to these bytes changes stored digests, so it must be deliberate.
RICH_UNIT_JSON = (
    '{"assessable":true,"counts":{"completed":16,"due":20,"late":6,"on_time":10,"reworked":2},"fired_rule'
    's":[{"fact":"indicator dx.fully_online","flag":"","reason_en":"Applications processed fully online: '
    '30% against a target of 25% (100% of its points)","reason_vi":"Tỷ lệ hồ sơ xử lý trực tuyến toàn trì'
    'nh: đạt 30% so với mục tiêu 25% (được 100% số điểm)","rule_id":"dx-indicator-counted","source":"scor'
    'ing.yaml:84","values":{"denominator":100.0,"target":0.25}},{"fact":"indicator dx.online_applications'
    '","flag":"","reason_en":"Applications submitted online: 70% against a target of 80% (87.5% of its po'
    'ints)","reason_vi":"Tỷ lệ hồ sơ nộp trực tuyến: đạt 70% so với mục tiêu 80% (được 87,5% số điểm)","r'
    'ule_id":"dx-indicator-counted","source":"scoring.yaml:84","values":{"denominator":100.0,"target":0.8'
    '}},{"fact":"assignment SNV-002","flag":"","reason_en":"Assignment SNV-002 is 45 days overdue and sti'
    'll open: 2 points off","reason_vi":"Nhiệm vụ SNV-002 quá hạn 45 ngày chưa hoàn thành: trừ 2 điểm","r'
    'ule_id":"overdue-penalty","source":"scoring.yaml:94","values":{"days_overdue":45.0}},{"fact":"assign'
    'ment SNV-003","flag":"","reason_en":"Assignment SNV-003 is 12 days overdue and still open: 2 points '
    'off","reason_vi":"Nhiệm vụ SNV-003 quá hạn 12 ngày chưa hoàn thành: trừ 2 điểm","rule_id":"overdue-p'
    'enalty","source":"scoring.yaml:94","values":{"days_overdue":12.0}},{"fact":"unit","flag":"","reason_'
    'en":"Score 81.19 is from 70 to below 90","reason_vi":"Điểm 81,19 từ 70 đến dưới 90","rule_id":"grade'
    '.good","source":"grades.yaml:38","values":{"due":20.0,"score":81.19375}},{"fact":"unit","flag":"remi'
    'nder","reason_en":"On-time rate 72.5% is below the 90% threshold","reason_vi":"Tỷ lệ đúng hạn 72,5% '
    'thấp hơn ngưỡng 90%","rule_id":"reminder-low-timeliness","source":"flags.yaml:73","values":{"assessa'
    'ble":1.0,"timeliness":0.725}},{"fact":"assignment SNV-002","flag":"reminder","reason_en":"Assignment'
    ' SNV-002 is 45 days overdue, more than 30","reason_vi":"Nhiệm vụ SNV-002 quá hạn 45 ngày, quá 30 ngà'
    'y","rule_id":"reminder-long-overdue","source":"flags.yaml:82","values":{"days_overdue":45.0}},{"fact'
    '":"unit","flag":"criticism","reason_en":"On-time rate 72.5% is below the 80% threshold","reason_vi":'
    '"Tỷ lệ đúng hạn 72,5% thấp hơn ngưỡng 80%","rule_id":"criticism-low-timeliness","source":"flags.yaml'
    ':93","values":{"assessable":1.0,"timeliness":0.725}},{"fact":"assignment SNV-002","flag":"criticism"'
    ',"reason_en":"Overdue assignment SNV-002 has had 5 reminders, more than 3","reason_vi":"Nhiệm vụ SNV'
    '-002 quá hạn đã bị đôn đốc 5 lần, quá 3 lần","rule_id":"criticism-many-reminders","source":"flags.ya'
    'ml:104","values":{"reminders":5.0}},{"fact":"unit","flag":"explanation_required","reason_en":"Critic'
    'ised two quarters running","reason_vi":"Bị phê bình hai quý liên tiếp","rule_id":"explanation-critic'
    'ised-twice","source":"flags.yaml:137","values":{}}],"flags":[{"flag":"reminder","kind":"criticism","'
    'label_en":"Reminder","label_vi":"Nhắc nhở","level":1,"reasons":[{"fact":"unit","flag":"reminder","re'
    'ason_en":"On-time rate 72.5% is below the 90% threshold","reason_vi":"Tỷ lệ đúng hạn 72,5% thấp hơn '
    'ngưỡng 90%","rule_id":"reminder-low-timeliness","source":"flags.yaml:73","values":{"assessable":1.0,'
    '"timeliness":0.725}},{"fact":"assignment SNV-002","flag":"reminder","reason_en":"Assignment SNV-002 '
    'is 45 days overdue, more than 30","reason_vi":"Nhiệm vụ SNV-002 quá hạn 45 ngày, quá 30 ngày","rule_'
    'id":"reminder-long-overdue","source":"flags.yaml:82","values":{"days_overdue":45.0}}]},{"flag":"crit'
    'icism","kind":"criticism","label_en":"Criticism","label_vi":"Phê bình","level":2,"reasons":[{"fact":'
    '"unit","flag":"criticism","reason_en":"On-time rate 72.5% is below the 80% threshold","reason_vi":"T'
    'ỷ lệ đúng hạn 72,5% thấp hơn ngưỡng 80%","rule_id":"criticism-low-timeliness","source":"flags.yaml:9'
    '3","values":{"assessable":1.0,"timeliness":0.725}},{"fact":"assignment SNV-002","flag":"criticism","'
    'reason_en":"Overdue assignment SNV-002 has had 5 reminders, more than 3","reason_vi":"Nhiệm vụ SNV-0'
    '02 quá hạn đã bị đôn đốc 5 lần, quá 3 lần","rule_id":"criticism-many-reminders","source":"flags.yaml'
    ':104","values":{"reminders":5.0}}]},{"flag":"explanation_required","kind":"criticism","label_en":"Ex'
    'planation required","label_vi":"Yêu cầu giải trình","level":3,"reasons":[{"fact":"unit","flag":"expl'
    'anation_required","reason_en":"Criticised two quarters running","reason_vi":"Bị phê bình hai quý liê'
    'n tiếp","rule_id":"explanation-criticised-twice","source":"flags.yaml:137","values":{}}]}],"grade":"'
    'good","grade_en":"Good","grade_vi":"Hoàn thành tốt nhiệm vụ","indicators":[{"attainment":0.8,"counte'
    'd":true,"indicator":"task.completion","name_en":"Completion rate","name_vi":"Tỷ lệ hoàn thành nhiệm '
    'vụ","points":16.8,"target":null,"value":0.8,"weight":0.3},{"attainment":0.725,"counted":true,"indica'
    'tor":"task.timeliness","name_en":"Timeliness (late completions count in part)","name_vi":"Tỷ lệ đúng'
    ' hạn (trễ hạn tính một phần)","points":20.3,"target":null,"value":0.725,"weight":0.4},{"attainment":'
    '0.96875,"counted":true,"indicator":"task.quality","name_en":"Quality (less for work returned for rew'
    'ork)","name_vi":"Chất lượng (trừ khi bị trả lại làm lại)","points":20.34375,"target":null,"value":0.'
    '96875,"weight":0.3},{"attainment":0.8749999999999999,"counted":true,"indicator":"dx.online_applicati'
    'ons","name_en":"Applications submitted online","name_vi":"Tỷ lệ hồ sơ nộp trực tuyến","points":15.74'
    '9999999999996,"target":0.8,"value":0.7,"weight":6.0},{"attainment":1.0,"counted":true,"indicator":"d'
    'x.fully_online","name_en":"Applications processed fully online","name_vi":"Tỷ lệ hồ sơ xử lý trực tu'
    'yến toàn trình","points":12.0,"target":0.25,"value":0.3,"weight":4.0},{"attainment":0.0,"counted":fa'
    'lse,"indicator":"dx.satisfaction","name_en":"Users satisfied","name_vi":"Tỷ lệ người dân, doanh nghi'
    'ệp hài lòng","points":0.0,"target":0.9,"value":0.0,"weight":3.0}],"inputs_digest":"5a50bfc1c1a570b6a'
    '709cb06d8cd7204bc448d09e924285ce8570601326c02e1","open_overdue":3,"penalty":4.0,"period":"2026-Q1","'
    'ruleset_digest":"59dadd398e31406f93c5ea6cebe1d9507991a00b8628c7f779e4bf9e4bbf78e9","ruleset_version"'
    ':"2026.1","score":81.19375,"unit_code":"SNV"}'
)


def test_engine_output_is_pinned(pool: EnginePool) -> None:
    assert canonical_json(pool.evaluate([rich_unit()])[0]) == RICH_UNIT_JSON
    assert pool.evaluate_encoded([rich_unit()])[0].result_json == RICH_UNIT_JSON


def test_encoded_results_carry_the_canonical_json_of_the_evaluation(pool: EnginePool) -> None:
    units = [rich_unit(), *varied_units("E", 30)]
    evaluations = pool.evaluate(units)
    encoded = pool.evaluate_encoded(units)
    assert [e.unit_code for e in encoded] == [u.unit_code for u in units]
    for evaluation, result in zip(evaluations, encoded, strict=True):
        assert result.result_json == canonical_json(evaluation)
        assert result.result_digest == sha256_hex(result.result_json)
        assert result.evaluation() == evaluation
        assert [(f.flag, f.kind, f.level, f.label_vi, f.label_en, f.reasons_json) for f in result.flags] == [
            (f.flag, f.kind, f.level, f.label_vi, f.label_en, canonical_json(list(f.reasons))) for f in evaluation.flags
        ]
        e = evaluation
        assert (result.unit_code, result.period, result.assessable, result.score, result.grade, result.counts) == (
            e.unit_code, e.period, e.assessable, e.score, e.grade, e.counts
        )
        assert (result.indicators, result.ruleset_version, result.ruleset_digest, result.inputs_digest) == (
            evaluation.indicators, evaluation.ruleset_version, evaluation.ruleset_digest, evaluation.inputs_digest
        )
    assert pool.evaluate_encoded([]) == []


def test_encoded_results_stream_a_chunk_at_a_time_in_order(pool: EnginePool) -> None:
    """EvaluatePeriod saves each chunk as it comes: the chunks, read in turn, are exactly `evaluate_encoded`'s
    results; a reader that stops early leaves the pool as usable as before."""
    units = varied_units("S", 150)
    chunks = list(pool.evaluate_encoded_chunks(units))
    assert [len(chunk) for chunk in chunks] == chunk_sizes(len(units), 2)
    assert [r for chunk in chunks for r in chunk] == pool.evaluate_encoded(units)
    stream = pool.evaluate_encoded_chunks(units)
    first = next(stream)
    assert [r.unit_code for r in first] == [u.unit_code for u in units[:len(first)]]
    stream.close()  # the rest is dropped
    assert [r.unit_code for r in pool.evaluate_encoded(units[:5])] == [u.unit_code for u in units[:5]]
    with pytest.raises(InvalidFacts):  # the facts are checked when the call is made, before anything is read
        pool.evaluate_encoded_chunks([UnitFacts("BAD", UnitKind.WARD, "communes", "2026-Q1",
                                                TaskCounts(due=3, completed=4, on_time=4))])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_groups_of_facts_give_the_results_of_the_facts_given_at_once(pool: EnginePool) -> None:
    """EvaluatePeriod gathers a group of units at a time: the chunks are those of all the facts given at once
    (shaped by `total`), whatever the groups' sizes, and the workers start on the first group before the next
    is made (a pool of its own, whose workers no other test has busied or replaced, shows that by their CPU)."""
    units = varied_units("G", 300)
    with EnginePool(load_ruleset(rule_files()), workers=2, job_timeout_s=20) as own:
        workers = own.worker_pids()
        before = sum(_cpu_seconds(pid) for pid in workers)

        def groups() -> Iterator[list[UnitFacts]]:
            yield units[:140]
            deadline = time.monotonic() + 60
            while sum(_cpu_seconds(pid) for pid in workers) < before + 0.05:  # the workers are on the first group
                assert time.monotonic() < deadline, "the workers did not start before the next group was made"
                time.sleep(0.01)
            yield from (units[140:141], [], units[141:])

        chunks = list(own.evaluate_encoded_groups(groups(), total=len(units)))
        assert own.worker_pids() == workers
    assert [len(chunk) for chunk in chunks] == chunk_sizes(len(units), 2)
    assert [r for chunk in chunks for r in chunk] == pool.evaluate_encoded(units)
    for total in (0, 7, 1000):  # a wrong total changes the chunks only
        results = [r for chunk in pool.evaluate_encoded_groups([units[:50], units[50:90]], total=total)
                   for r in chunk]
        assert [r.unit_code for r in results] == [u.unit_code for u in units[:90]]
    assert list(pool.evaluate_encoded_groups([], total=0)) == []


def test_a_group_refused_or_not_made_drops_the_work_already_queued(
        pool: EnginePool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Facts refused in a later group, or an error while making one (the database went away, say), end the call
    with that error before anything is returned; the chunks of the earlier groups not yet in a worker are dropped
    (the feeding threads drop each as they reach it), and the pool serves the next call as before."""
    dropped: list[str] = []  # the units of the chunks the feeding threads dropped
    keep = pool_module._Job.drop_if_cancelled

    def drop_if_cancelled(job: Any) -> bool:
        if keep(job):
            dropped.extend(unit.unit_code for unit in job.facts)
            return True
        return False

    monkeypatch.setattr(pool_module._Job, "drop_if_cancelled", drop_if_cancelled)
    bad = UnitFacts("BAD", UnitKind.WARD, "communes", "2026-Q1", TaskCounts(due=3, completed=4, on_time=4))
    for prefix in ("D", "E"):
        units = varied_units(prefix, 200)

        def failing(units: list[UnitFacts] = units) -> Iterator[list[UnitFacts]]:
            yield units[:150]
            raise RuntimeError("the database went away")

        with pytest.raises(InvalidFacts, match="BAD") if prefix == "D" else pytest.raises(RuntimeError, match="away"):
            pool.evaluate_encoded_groups([units[:150], [bad]] if prefix == "D" else failing(), total=200)
        # 150 units make several chunks; the two workers take one each, the rest wait and are dropped
        assert [r.unit_code for r in pool.evaluate_encoded(units[150:155])] == [u.unit_code for u in units[150:155]]
        assert {code for code in dropped if code.startswith(prefix)}, f"no chunk was dropped ({prefix})"
        assert {code for code in dropped if code.startswith(prefix)} <= {u.unit_code for u in units[:150]}


def test_chunks_shrink_towards_the_end_of_a_call() -> None:
    assert chunk_sizes(0, 2) == []
    for units in (1, 8, 24, 1100, 5000):
        sizes = chunk_sizes(units, 2)
        assert sum(sizes) == units and max(sizes) <= MAX_CHUNK
        assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 1
    assert len(chunk_sizes(8, 2)) >= 4  # small calls still reach every worker


OVERDUE_FACT = {"tag": "overdue.score", "unit_code": "A", "unit_kind": "department", "block": "departments",
                "under_review": False, "assignment_id": "T", "days_overdue": 45, "reminders": 5}


def test_adapter_batches_fire_what_single_asserts_fire() -> None:
    from civicscore.engine.durable_adapter import MAX_BATCH, DurableRunner

    runner = DurableRunner(load_ruleset(rule_files()).compile())
    assert runner.batching  # this durable_rules build hashes fact ids as the adapter expects
    facts = [
        {**OVERDUE_FACT, "days_overdue": 0, "reminders": 0},  # matches nothing
        OVERDUE_FACT,
        {**OVERDUE_FACT, "tag": "overdue.flags"},
        {"tag": "nothing.here"},
        GRADE_FACT,
        {**OVERDUE_FACT, "tag": "overdue.flags", "days_overdue": 3, "reminders": 0},  # nothing, last
    ]
    runner.begin()
    batched = runner.assert_facts(facts)
    assert runner.assert_facts([]) == []
    runner.end()
    runner.begin()
    one_by_one = [runner.assert_fact(fact) for fact in facts]
    runner.end()
    runner.batching = False  # the fallback: each fact in its own call
    runner.begin()
    alone = runner.assert_facts(facts)
    runner.end()
    flagged = ["reminder-long-overdue", "criticism-many-reminders"]
    expected = [[], ["overdue-penalty"], flagged, [], ["grade.excellent"], []]
    assert batched == one_by_one == alone == expected
    runner.batching = True
    runner.begin()
    many = [{**OVERDUE_FACT, "assignment_id": f"T{i}"} for i in range(MAX_BATCH + 3)]
    assert runner.assert_facts(many) == [["overdue-penalty"]] * len(many)
    runner.end()
    assert (runner.sessions_used, runner.live_sessions) == (4, 0)


@pytest.mark.parametrize(("value", "text"), [
    (5e-06, "5.0e-06"), (1e16, "1.0e+16"), (1.5e-07, "1.5e-07"), (0.0001, "0.0001"), (95.0, "95.0"),
])
def test_adapter_writes_every_float_in_a_form_durable_rules_reads(value: float, text: str) -> None:
    from civicscore.engine.durable_adapter import DurableRunner
    from civicscore.ruleset.compiler import engine_number_text

    assert engine_number_text(value) == text
    runner = DurableRunner(load_ruleset(rule_files()).compile())
    runner.begin()
    # grade bands from 90, 70, 50 and 0; the fact first in its batch, where a refused one was dropped unreported
    expected = ["grade.excellent"] if value >= 90 else ["grade.not_completed"]
    assert runner.assert_facts([{**GRADE_FACT, "score": value}, GRADE_FACT]) == [expected, ["grade.excellent"]]
    runner.end()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_adapter_refuses_a_non_finite_number_before_durable_rules_sees_it(value: float) -> None:
    from civicscore.engine.durable_adapter import DurableRunner

    runner = DurableRunner(load_ruleset(rule_files()).compile())
    runner.begin()
    with pytest.raises(ValueError, match="cannot compare the non-finite number"):
        runner.assert_fact({**GRADE_FACT, "score": value})
    assert runner.assert_fact(GRADE_FACT) == ["grade.excellent"]  # the session goes on
    runner.end()
    assert runner.live_sessions == 0 and not runner.broken


def test_adapter_never_gives_a_fact_an_id_whose_hash_is_taken() -> None:
    from civicscore.engine.durable_adapter import DurableRunner, fnv1a_32

    assert fnv1a_32("40189") == fnv1a_32("797186")  # durable_rules takes these for the same id
    runner = DurableRunner(load_ruleset(rule_files()).compile())
    runner.begin()
    runner._next_fact = 40188  # the next fact gets id "40189"
    assert runner.assert_fact(GRADE_FACT) == ["grade.excellent"]
    runner._next_fact = 797185  # "797186" is skipped
    assert runner.assert_facts([GRADE_FACT, GRADE_FACT]) == [["grade.excellent"]] * 2
    assert runner._next_fact == 797188
    runner.end()
    runner.batching = False
    runner.begin()
    runner._next_fact = 40188
    runner.assert_fact(GRADE_FACT)
    runner._next_fact, runner._taken = 797185, set()  # forgotten: durable_rules rejects "797186" ...
    assert runner.assert_fact(GRADE_FACT) == ["grade.excellent"]  # ... and it is asserted again as "797187"
    assert runner._next_fact == 797187
    runner.end()


def test_indicator_points_add_up_to_the_score(pool: EnginePool) -> None:
    result = pool.evaluate([rich_unit()])[0]
    codes = [i.indicator for i in result.indicators]
    assert codes[:3] == ["task.completion", "task.timeliness", "task.quality"]
    assert result.score is not None
    # score = task points + DX points - penalty; the breakdown must account for every point
    assert sum(i.points for i in result.indicators) - result.penalty == pytest.approx(result.score, abs=0.005)
    timeliness = next(i for i in result.indicators if i.indicator == "task.timeliness")
    assert timeliness.value == pytest.approx((10 + 0.75 * 6) / 20)


# ---- cancellation: the caller has gone -------------------------------------------------------


class SendSpy:
    """Records the units of every chunk sent to a worker; runs `on_first` once the first is in a worker."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, on_first: Callable[[], None]) -> None:
        self.sent: list[list[str]] = []
        self._on_first = on_first
        original = pool_module._Worker.send

        def send(worker: Any, job: Any) -> None:
            original(worker, job)
            self.sent.append([u.unit_code for u in job.facts])
            if len(self.sent) == 1:
                self._on_first()

        monkeypatch.setattr(pool_module._Worker, "send", send)


class JobSpy:
    """Keeps every chunk the pool makes, to check that none is left pending."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.jobs: list[Any] = []
        spy = self

        class RecordedJob(pool_module._Job):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                spy.jobs.append(self)

        monkeypatch.setattr(pool_module, "_Job", RecordedJob)

    def all_done(self) -> bool:
        return bool(self.jobs) and all(job.future.done() for job in self.jobs)


@pytest.fixture
def one_slow_worker() -> Iterator[EnginePool]:
    """One worker, 10 ms per unit: a call's first chunk (64 units) is still in the worker when it is cancelled."""
    with EnginePool(load_ruleset(rule_files()), workers=1, job_timeout_s=30, fault_delay_s=0.01) as engine:
        yield engine


def test_a_cancelled_event_set_before_the_call_stops_it_before_any_work(pool: EnginePool) -> None:
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(EvaluationCancelled, match="cancelled before it started"):
        pool.evaluate(varied_units("C", 10), cancelled=cancelled)
    with pytest.raises(EvaluationCancelled):
        pool.evaluate_encoded([], cancelled=cancelled)
    assert isinstance(EvaluationCancelled("x"), EngineError)
    assert len(pool.evaluate(varied_units("C", 3), cancelled=threading.Event())) == 3


@pytest.mark.parametrize("encoded", [False, True])
def test_cancelling_drops_the_chunks_not_yet_sent_and_leaves_the_worker_serving(
    one_slow_worker: EnginePool, monkeypatch: pytest.MonkeyPatch, encoded: bool
) -> None:
    engine = one_slow_worker
    pids = engine.worker_pids()
    expected_other = [canonical_json(r) for r in engine.evaluate(varied_units("B", 10))]
    cancelled = threading.Event()
    box: dict[str, Any] = {}

    def other_call() -> None:  # another client, queued behind the cancelled call's chunks
        box["other"] = engine.evaluate(varied_units("B", 10))

    other = threading.Thread(target=other_call)

    def first_chunk_in_worker() -> None:
        other.start()
        cancelled.set()

    spy = SendSpy(monkeypatch, first_chunk_in_worker)
    jobs = JobSpy(monkeypatch)
    units = varied_units("X", 200)
    call = engine.evaluate_encoded if encoded else engine.evaluate
    with pytest.raises(EvaluationCancelled, match="was cancelled after 0 of"):
        call(units, cancelled=cancelled)
    other.join(60)
    # Only the chunk that was already in the worker ran; the other client's call was served in full.
    cancelled_sent = [codes for codes in spy.sent if codes[0].startswith("X")]
    assert cancelled_sent == [[u.unit_code for u in units[:MAX_CHUNK]]]
    assert [canonical_json(r) for r in box["other"]] == expected_other
    assert eventually(jobs.all_done)  # no chunk is left pending
    dropped = [job for job in jobs.jobs if job.facts[0].unit_code.startswith("X")][1:]
    assert dropped and all(isinstance(job.future.exception(), EvaluationCancelled) for job in dropped)
    assert engine.worker_pids() == pids
    assert [r.unit_code for r in engine.evaluate(units[:5])] == [u.unit_code for u in units[:5]]


def test_a_cancelled_chunk_whose_worker_dies_is_not_retried(
    one_slow_worker: EnginePool, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = one_slow_worker
    victim = engine.worker_pids()[0]
    cancelled = threading.Event()

    def kill_the_worker() -> None:
        cancelled.set()
        os.kill(victim, signal.SIGKILL)

    spy = SendSpy(monkeypatch, kill_the_worker)
    jobs = JobSpy(monkeypatch)
    with pytest.raises(EvaluationCancelled):
        engine.evaluate(varied_units("Y", 100), cancelled=cancelled)
    assert eventually(jobs.all_done)
    assert len(spy.sent) == 1  # not sent again to the replacement
    assert eventually(lambda: len(engine.worker_pids()) == 1 and victim not in engine.worker_pids())
    assert len(engine.evaluate(varied_units("Y", 4))) == 4
