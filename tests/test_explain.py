"""Explanations: contributions, and margins checked by applying them to the facts and evaluating again.

The engine-level tests run a real EnginePool over the default rules. Every margin reported
is re-applied here with this file's own reading of its lever (not explain.py's code) and
evaluated: the subject must flip at `amount` and not one step before. Hand-computed cases pin
the amounts, and a brute-force pass checks that no smaller amount of the same lever flips.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from civicscore.api.explain_out import explanation_out
from civicscore.domain.model import (
    MeasurementFact,
    OverdueTask,
    PriorQuarter,
    TaskCounts,
    UnitEvaluation,
    UnitFacts,
    UnitKind,
)
from civicscore.domain.periods import Quarter
from civicscore.engine.pool import EnginePool
from civicscore.explain import Explanation, Margin, explain
from civicscore.ruleset import Ruleset, load_ruleset
from civicscore_api.v1 import evaluations_pb2, outcomes_pb2
from civicscore_client.cli import app
from tests.scenario import PERIOD, completed, load_quarter
from tests.serverproc import RULES, ServerProcess, token_for


def rule_files() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(RULES.glob("*.yaml"))}


def facts_of(case: dict[str, Any]) -> UnitFacts:
    """Unit facts from a case written like rules/tests cases: counts (late defaults to completed - on_time),
    overdue {id, days_overdue, reminders}, measurements {indicator, numerator, denominator}, previous
    {grade, flags}, under_review, unit {code}. A department in 2026-Q1."""
    period = "2026-Q1"
    end = Quarter.parse(period).end
    counts = dict(case["counts"])
    counts.setdefault("late", counts["completed"] - counts["on_time"])
    previous = case.get("previous")
    return UnitFacts(
        unit_code=case.get("unit", {}).get("code", "SNV"),
        unit_kind=UnitKind.DEPARTMENT,
        block="departments",
        period=period,
        counts=TaskCounts(**counts),
        overdue=tuple(OverdueTask(o["id"], end - dt.timedelta(days=o["days_overdue"]), o["days_overdue"],
                                  o["reminders"]) for o in case.get("overdue", [])),
        measurements=tuple(MeasurementFact(m["indicator"], float(m["numerator"]), float(m["denominator"]))
                           for m in case.get("measurements", [])),
        under_review=bool(case.get("under_review", False)),
        previous=PriorQuarter("2025-Q4", previous["grade"], tuple(previous.get("flags", []))) if previous else None,
    )


GOOD_NEAR_EXCELLENT: dict[str, Any] = {"counts": {"due": 20, "completed": 17, "on_time": 14}}  # 88: good, reminder
CRITICISED: dict[str, Any] = {
    "counts": {"due": 20, "completed": 16, "on_time": 10},
    "overdue": [{"id": "A-1", "days_overdue": 40, "reminders": 4}, {"id": "A-2", "days_overdue": 10, "reminders": 1}],
    "measurements": [
        {"indicator": "dx.online_applications", "numerator": 110, "denominator": 200},
        {"indicator": "dx.satisfaction", "numerator": 0.7, "denominator": 1},
    ],
}
NOT_ASSESSABLE: dict[str, Any] = {"counts": {"due": 3, "completed": 3, "on_time": 3}}
NOT_ASSESSABLE_OVERDUE: dict[str, Any] = {
    "counts": {"due": 2, "completed": 1, "on_time": 1},
    "overdue": [{"id": "N-1", "days_overdue": 45, "reminders": 2}],
}
# Timeliness 0.98: X-1 raises the reminder (40 days), X-2 the criticism (4 reminders).
OVERDUE_FLAGS: dict[str, Any] = {
    "counts": {"due": 100, "completed": 98, "on_time": 98},
    "overdue": [{"id": "X-1", "days_overdue": 40, "reminders": 0}, {"id": "X-2", "days_overdue": 10, "reminders": 4}],
}
# 70 x 1.0 + 30 x (6 x 0.625 + 3 x 0.6/0.9) / 9 = 89.17: good, raised by the DX indicators only.
DX_NEAR_EXCELLENT: dict[str, Any] = {
    "counts": {"due": 10, "completed": 10, "on_time": 10},
    "measurements": [
        {"indicator": "dx.online_applications", "numerator": 100, "denominator": 200},
        {"indicator": "dx.satisfaction", "numerator": 0.6, "denominator": 1},
    ],
}
# 200 due tasks and 30 open overdue assignments: more than one search round per lever.
LARGE: dict[str, Any] = {
    "counts": {"due": 200, "completed": 170, "on_time": 150, "reworked": 4},
    "overdue": [{"id": f"B-{i:02d}", "days_overdue": i + 1, "reminders": i % 5} for i in range(30)],
    "measurements": [{"indicator": "dx.records_digitised", "numerator": 1450, "denominator": 2000}],
}
CASES: dict[str, Any] = {
    "good-near-excellent": GOOD_NEAR_EXCELLENT,
    "criticised": CRITICISED,
    "not-assessable": NOT_ASSESSABLE,
    "not-assessable-overdue": NOT_ASSESSABLE_OVERDUE,
    "overdue-flags": OVERDUE_FLAGS,
    "dx-near-excellent": DX_NEAR_EXCELLENT,
    "large": LARGE,
}
VI_GRADES = {"Hoàn thành xuất sắc nhiệm vụ", "Hoàn thành tốt nhiệm vụ", "Hoàn thành nhiệm vụ",
             "Không hoàn thành nhiệm vụ"}


class CountingEngine:
    """An EnginePool that records the size of each `evaluate` call."""

    def __init__(self, pool: EnginePool) -> None:
        self.pool = pool
        self.calls: list[int] = []

    @property
    def ruleset_version(self) -> str:
        return self.pool.ruleset_version

    @property
    def ruleset_digest(self) -> str:
        return self.pool.ruleset_digest

    def evaluate(self, facts: Sequence[UnitFacts]) -> list[UnitEvaluation]:
        self.calls.append(len(facts))
        return self.pool.evaluate(facts)

    def evaluate_encoded(self, facts: Sequence[UnitFacts]) -> Any:
        return self.pool.evaluate_encoded(facts)

    def close(self) -> None:
        """The pool is the fixture's to close."""


@pytest.fixture(scope="module")
def ruleset() -> Ruleset:
    return load_ruleset(rule_files())


@pytest.fixture(scope="module")
def pool() -> Iterator[EnginePool]:
    with EnginePool(load_ruleset(rule_files()), workers=2) as engine:
        yield engine


@pytest.fixture(scope="module")
def explained(ruleset: Ruleset, pool: EnginePool) -> dict[str, tuple[UnitFacts, Explanation]]:
    facts = {name: facts_of(case) for name, case in CASES.items()}
    evaluations = dict(zip(facts, pool.evaluate(list(facts.values())), strict=True))
    return {name: (facts[name], explain(ruleset, pool, facts[name], evaluations[name])) for name in facts}


# ---- applying a margin, independently of explain.py -----------------------------------


def _step(facts: UnitFacts, indicator: str) -> float:
    m = next(x for x in facts.measurements if x.indicator == indicator)
    counts = m.numerator.is_integer() and m.denominator.is_integer() and m.denominator <= 1000
    return 1.0 if counts else m.denominator / 1000


def apply(facts: UnitFacts, margin: Margin, k: int | float) -> UnitFacts:
    """The facts after `k` of the margin's lever (for an indicator, `k` is the new value)."""
    c = facts.counts
    start = Quarter.parse(facts.period).start
    lever = margin.lever
    if lever.startswith("indicator:"):
        code = lever.removeprefix("indicator:")
        measurements = tuple(
            dataclasses.replace(m, numerator=k * m.denominator) if m.indicator == code else m
            for m in facts.measurements
        )
        return dataclasses.replace(facts, measurements=measurements)
    assert isinstance(k, int)
    if lever == "tasks_on_time":  # late completions first, then open tasks (the most recently due first)
        from_late = min(k, c.late)
        from_open = k - from_late
        closable = sorted((t for t in facts.overdue if t.due_on >= start),
                          key=lambda t: (t.days_overdue, t.reminders, t.assignment_id))
        gone = {t.assignment_id for t in closable[:from_open]}
        counts = dataclasses.replace(c, completed=c.completed + from_open, on_time=c.on_time + k,
                                     late=c.late - from_late)
        return dataclasses.replace(facts, counts=counts,
                                   overdue=tuple(t for t in facts.overdue if t.assignment_id not in gone))
    if lever == "overdue_closed":  # the first k named assignments, completed late
        gone = set(margin.assignments[:k])
        this_quarter = sum(1 for t in facts.overdue if t.assignment_id in gone and t.due_on >= start)
        this_quarter = min(this_quarter, c.due - c.completed)  # never more completed than due
        counts = dataclasses.replace(c, completed=c.completed + this_quarter, late=c.late + this_quarter)
        return dataclasses.replace(facts, counts=counts,
                                   overdue=tuple(t for t in facts.overdue if t.assignment_id not in gone))
    if lever == "reminders_added":
        (target,) = margin.assignments
        overdue = tuple(dataclasses.replace(t, reminders=t.reminders + k) if t.assignment_id == target else t
                        for t in facts.overdue)
        return dataclasses.replace(facts, overdue=overdue)
    changes = {
        "tasks_late": {"on_time": c.on_time - k, "late": c.late + k},
        "tasks_reworked": {"reworked": c.reworked + k},
        "rework_avoided": {"reworked": c.reworked - k},
        "tasks_due_on_time": {"due": c.due + k, "completed": c.completed + k, "on_time": c.on_time + k},
    }[lever]
    return dataclasses.replace(facts, counts=dataclasses.replace(c, **changes))


def state(result: UnitEvaluation, subject: str) -> str:
    if subject == "grade":
        return result.grade
    return "raised" if any(f.flag == subject for f in result.flags) else "not_raised"


def before(facts: UnitFacts, margin: Margin) -> int | float:
    """One step less of the margin's lever."""
    if margin.lever.startswith("indicator:"):
        code = margin.lever.removeprefix("indicator:")
        m = next(x for x in facts.measurements if x.indicator == code)
        sign = 1 if margin.amount > m.numerator / m.denominator else -1
        return margin.amount - sign * _step(facts, code) / m.denominator
    return int(margin.amount) - 1


def check_margin(pool: EnginePool, facts: UnitFacts, margin: Margin) -> None:
    """The subject flips at the margin's amount and not one step before."""
    amount: int | float = margin.amount if margin.lever.startswith("indicator:") else int(margin.amount)
    at, below = pool.evaluate([apply(facts, margin, amount), apply(facts, margin, before(facts, margin))])
    assert state(at, margin.subject) == margin.would_become != margin.current, margin
    assert state(below, margin.subject) == margin.current, margin


def margin_of(explanation: Explanation, subject: str, direction: str, *, indicator: bool = False) -> Margin:
    found = [m for m in explanation.margins if m.subject == subject and m.direction == direction
             and m.lever.startswith("indicator:") is indicator]
    assert len(found) == 1, explanation.margins
    return found[0]


# ---- engine-level tests ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_every_margin_flips_its_subject_at_its_amount_and_not_before(
    name: str, explained: dict[str, tuple[UnitFacts, Explanation]], pool: EnginePool
) -> None:
    facts, explanation = explained[name]
    assert explanation.margins
    for margin in explanation.margins:
        check_margin(pool, facts, margin)
        assert margin.summary_vi and margin.summary_en
        assert unicodedata.is_normalized("NFC", margin.summary_vi)


@pytest.mark.slow
def test_no_smaller_amount_of_the_same_lever_flips(
    explained: dict[str, tuple[UnitFacts, Explanation]], pool: EnginePool
) -> None:
    for name in ("large", "good-near-excellent", "criticised"):
        facts, explanation = explained[name]
        for margin in explanation.margins:
            if margin.lever.startswith("indicator:"):
                continue
            smaller = [apply(facts, margin, k) for k in range(1, int(margin.amount))]
            for k, result in enumerate(pool.evaluate(smaller), start=1):
                assert state(result, margin.subject) == margin.current, (name, k, margin)


@pytest.mark.slow
def test_good_unit_near_the_excellent_boundary(explained: dict[str, tuple[UnitFacts, Explanation]]) -> None:
    # 0.3 x 17/20 + 0.4 x (14 + 0.75 x 3)/20 + 0.3 = 0.88. A late task made on time adds 0.5, an open
    # one completed on time 3.5: 3 late (89.5) and 1 open (93) reach 90; timeliness reaches 0.9 too.
    # Two on-time tasks made late bring timeliness under 0.8 (0.8 - 0.0125 x 2 < 0.8).
    _, explanation = explained["good-near-excellent"]
    assert explanation.evaluation.grade == "good"
    up = margin_of(explanation, "grade", "improve_grade")
    assert (up.lever, up.amount, up.current, up.would_become) == ("tasks_on_time", 4, "good", "excellent")
    assert up.summary_vi == "Thêm 4 nhiệm vụ hoàn thành đúng hạn sẽ nâng xếp loại lên “Hoàn thành xuất sắc nhiệm vụ”"
    assert up.summary_en == "4 more tasks completed on time would lift the grade to “Excellent”"
    reminder = margin_of(explanation, "reminder", "lose_flag")
    assert (reminder.lever, reminder.amount, reminder.current) == ("tasks_on_time", 4, "raised")
    criticism = margin_of(explanation, "criticism", "gain_flag")
    assert (criticism.lever, criticism.amount) == ("tasks_late", 2)
    assert criticism.summary_vi.endswith("sẽ bị gắn cờ “Phê bình”")
    praise = margin_of(explanation, "praise", "gain_flag")
    assert (praise.lever, praise.amount) == ("tasks_on_time", 6)
    assert (explanation.next_grade, explanation.next_grade_min_score) == ("excellent", 90)
    # 14 late tasks cost 7 points, 17 reworks 7.5: neither alone reaches "completed" (below 70).
    assert not [m for m in explanation.margins if m.direction == "lower_grade"]


@pytest.mark.slow
def test_criticism_removed_by_closing_the_overdue_assignments(
    explained: dict[str, tuple[UnitFacts, Explanation]],
) -> None:
    # Criticism from A-1 (4 reminders) and timeliness (10 + 0.75 x 6)/20 = 0.725; closing
    # late gives (10 + 0.75 x 8)/20 = 0.8. On-time completions need 8 (6 late, then both open ones).
    _, explanation = explained["criticised"]
    assert {f.flag for f in explanation.evaluation.flags} == {"reminder", "criticism"}
    criticism = margin_of(explanation, "criticism", "lose_flag")
    assert (criticism.lever, criticism.amount, criticism.assignments) == ("overdue_closed", 2, ("A-1", "A-2"))
    assert criticism.summary_vi == "Hoàn thành 2 nhiệm vụ đang quá hạn (A-1, A-2) sẽ được gỡ cờ “Phê bình”"
    down = margin_of(explanation, "grade", "lower_grade", indicator=True)
    assert down.lever == "indicator:dx.online_applications" and down.amount < 0.55
    assert "Hoàn thành nhiệm vụ" in down.summary_vi and "giảm từ 55%" in down.summary_vi


@pytest.mark.slow
def test_not_assessable_units_need_more_tasks_due(explained: dict[str, tuple[UnitFacts, Explanation]]) -> None:
    _, explanation = explained["not-assessable"]
    grade = margin_of(explanation, "grade", "improve_grade")
    assert (grade.lever, grade.amount, grade.current, grade.would_become) == (
        "tasks_due_on_time", 2, "not_assessable", "excellent")
    assert "“Hoàn thành xuất sắc nhiệm vụ”" in grade.summary_vi
    assert (explanation.next_grade, explanation.next_grade_min_score) == ("", None)
    # overdue rules still apply to a unit that is not assessable
    _, overdue = explained["not-assessable-overdue"]
    reminder = margin_of(overdue, "reminder", "lose_flag")
    # N-1 is the open task due this quarter: completing it on time or late both remove the reminder;
    # on time is listed first
    assert (reminder.lever, reminder.amount, reminder.assignments) == ("tasks_on_time", 1, ("N-1",))
    assert reminder.summary_en == ("1 more task completed on time (including 1 open overdue: N-1) "
                                   "would remove the “Reminder” flag")
    criticism = margin_of(overdue, "criticism", "gain_flag")
    assert (criticism.lever, criticism.amount, criticism.assignments) == ("reminders_added", 2, ("N-1",))
    assert criticism.summary_vi == "Thêm 2 lần đôn đốc nhiệm vụ quá hạn N-1 sẽ bị gắn cờ “Phê bình”"


@pytest.mark.slow
def test_overdue_assignments_are_closed_in_the_order_that_removes_each_flag(
    explained: dict[str, tuple[UnitFacts, Explanation]],
) -> None:
    _, explanation = explained["overdue-flags"]
    assert margin_of(explanation, "reminder", "lose_flag").assignments == ("X-1",)
    assert margin_of(explanation, "criticism", "lose_flag").assignments == ("X-2",)


@pytest.mark.slow
def test_indicator_margins_give_the_value_to_reach(explained: dict[str, tuple[UnitFacts, Explanation]]) -> None:
    # 0.83 points more: online applications from 100 to 107 of 200 (53.5%); satisfaction is worth less.
    _, explanation = explained["dx-near-excellent"]
    up = margin_of(explanation, "grade", "improve_grade", indicator=True)
    assert up.lever == "indicator:dx.online_applications" and up.amount == pytest.approx(0.535)
    assert up.summary_vi == ("“Tỷ lệ hồ sơ nộp trực tuyến” tăng từ 50% lên 53,5% sẽ nâng xếp loại lên "
                             "“Hoàn thành xuất sắc nhiệm vụ”")
    assert up.summary_en == ("“Applications submitted online” rising from 50% to 53.5% would lift the grade "
                             "to “Excellent”")


@pytest.mark.slow
def test_contributions_add_up_to_the_score_before_penalties(
    explained: dict[str, tuple[UnitFacts, Explanation]],
) -> None:
    for name, (_, explanation) in explained.items():
        evaluation = explanation.evaluation
        contributions = explanation.contributions
        if evaluation.score is None:
            assert contributions == ()
            continue
        assert explanation.penalty == evaluation.penalty
        assert sum(c.points for c in contributions) == pytest.approx(evaluation.score + evaluation.penalty, abs=0.006)
        assert sum(c.share for c in contributions) == pytest.approx(1.0)
        assert sum(c.max_points for c in contributions) == pytest.approx(100.0), name
        assert all(c.points <= c.max_points + 1e-9 for c in contributions)
        assert [c.points for c in contributions] == sorted((c.points for c in contributions), reverse=True)
    _, criticised = explained["criticised"]
    online = next(c for c in criticised.contributions if c.indicator == "dx.online_applications")
    # 30 DX points shared by weights 6 and 3; 55% of an 80% target
    assert online.max_points == pytest.approx(20.0) and online.points == pytest.approx(20.0 * 0.55 / 0.8)
    assert online.name_vi == "Tỷ lệ hồ sơ nộp trực tuyến"


@pytest.mark.slow
def test_vietnamese_sentences_name_the_grades_with_diacritics(
    explained: dict[str, tuple[UnitFacts, Explanation]],
) -> None:
    grade_margins = [m for _, e in explained.values() for m in e.margins if m.subject == "grade"]
    assert grade_margins
    for margin in grade_margins:
        assert any(f"“{label}”" in margin.summary_vi for label in VI_GRADES), margin.summary_vi
        assert unicodedata.normalize("NFC", margin.summary_vi) == margin.summary_vi


@pytest.mark.slow
def test_inputs_changed_when_the_facts_differ_from_the_evaluated_ones(ruleset: Ruleset, pool: EnginePool) -> None:
    evaluated = facts_of(GOOD_NEAR_EXCELLENT)
    evaluation = pool.evaluate([evaluated])[0]
    same = explain(ruleset, pool, evaluated, evaluation)
    assert not same.inputs_changed
    # since the evaluation, a late completion was found to be on time: 88.5, still good
    now = facts_of({"counts": {"due": 20, "completed": 17, "on_time": 15}})
    changed = explain(ruleset, pool, now, evaluation)
    assert changed.inputs_changed
    assert changed.evaluation == evaluation and changed.next_grade == "excellent"
    # the margins are those of the current facts: 2 late and 1 open task, not 3 late and 1 open
    up = margin_of(changed, "grade", "improve_grade")
    assert (up.lever, up.amount) == ("tasks_on_time", 3)
    for margin in changed.margins:
        check_margin(pool, now, margin)


@pytest.mark.slow
def test_a_unit_with_200_due_tasks_needs_few_engine_calls(ruleset: Ruleset, pool: EnginePool) -> None:
    """The margins are searched in a few batched engine calls, not one per candidate change (its time is
    measured by the benchmarks, not asserted here: machines are shared and noisy)."""
    facts = facts_of(LARGE)
    evaluation = pool.evaluate([facts])[0]
    engine = CountingEngine(pool)
    explanation = explain(ruleset, engine, facts, evaluation)
    assert explanation.margins
    assert 1 <= len(engine.calls) <= 3, engine.calls


@pytest.mark.slow
def test_facts_of_another_unit_are_refused(ruleset: Ruleset, pool: EnginePool) -> None:
    evaluation = pool.evaluate([facts_of(GOOD_NEAR_EXCELLENT)])[0]
    other = facts_of({**GOOD_NEAR_EXCELLENT, "unit": {"code": "STP"}})
    with pytest.raises(ValueError, match="STP"):
        explain(ruleset, pool, other, evaluation)


@pytest.mark.slow
def test_explanation_out_fills_the_response(explained: dict[str, tuple[UnitFacts, Explanation]]) -> None:
    _, explanation = explained["criticised"]
    stored = evaluations_pb2.Evaluation(name="periods/2026-Q1/evaluations/SNV", grade="good")
    reply = explanation_out(explanation, stored)
    assert reply.evaluation == stored
    assert [c.indicator for c in reply.contributions] == [c.indicator for c in explanation.contributions]
    assert reply.contributions[0].display_name_vi == explanation.contributions[0].name_vi
    assert [(m.subject, m.direction, m.lever, m.amount, m.summary_vi) for m in reply.margins] == [
        (m.subject, m.direction, m.lever, m.amount, m.summary_vi) for m in explanation.margins]
    assert reply.penalty == explanation.penalty == 4.0
    assert (reply.next_grade, reply.next_grade_min_score, reply.inputs_changed) == ("excellent", 90.0, False)
    _, not_assessable = explained["not-assessable"]
    empty = explanation_out(not_assessable, stored)
    assert (empty.next_grade, empty.next_grade_min_score) == ("", 0.0)


# ---- through the real server and the CLI ---------------------------------------------------------


def _explain_rpc(server: ServerProcess, code: str, revision: int = 0) -> evaluations_pb2.ExplainEvaluationResponse:
    request = evaluations_pb2.ExplainEvaluationRequest(name=f"periods/{PERIOD}/evaluations/{code}", revision=revision)
    reply: evaluations_pb2.ExplainEvaluationResponse = server.stubs().evaluations.ExplainEvaluation(
        request, timeout=30)
    return reply


def civicscore(address: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["--server", address, *args], env={"COLUMNS": "250", "NO_COLOR": "1",
                                                                    "CIVICSCORE_TOKEN": token_for(address)})


@pytest.fixture
def evaluated(seeded_server: ServerProcess) -> ServerProcess:
    load_quarter(seeded_server)
    seeded_server.stubs().evaluations.EvaluatePeriod(
        evaluations_pb2.EvaluatePeriodRequest(period=f"periods/{PERIOD}"), timeout=120)
    return seeded_server


@pytest.mark.slow
def test_explain_evaluation_through_the_server(evaluated: ServerProcess) -> None:
    # STP (tests/scenario.py): 10 due, 6 on time (1 reworked), 2 late, 2 open with 5 reminders: 79.06, good,
    # reminder and criticism. Completing both open ones late: (6 + 0.75 x 4)/10 = 0.9, no reminders left.
    reply = _explain_rpc(evaluated, "STP")
    stored = evaluated.stubs().evaluations.GetEvaluation(
        evaluations_pb2.GetEvaluationRequest(name=f"periods/{PERIOD}/evaluations/STP"), timeout=10).evaluation
    assert reply.evaluation == stored
    assert not reply.inputs_changed
    assert (reply.next_grade, reply.next_grade_min_score) == ("excellent", 90.0)
    assert reply.penalty == 4.0
    assert sum(c.points for c in reply.contributions) == pytest.approx(stored.score + 4.0, abs=0.006)
    margins = {(m.subject, m.direction): m for m in reply.margins if not m.lever.startswith("indicator:")}
    criticism = margins[("criticism", "lose_flag")]
    assert (criticism.lever, criticism.amount) == ("overdue_closed", 2)
    assert criticism.summary_vi.startswith("Hoàn thành 2 nhiệm vụ đang quá hạn (STP-8, STP-9)")
    assert all(m.summary_vi and m.summary_en for m in reply.margins)

    sct = _explain_rpc(evaluated, "SCT")
    grade = next(m for m in sct.margins if m.subject == "grade")
    assert (grade.lever, grade.amount, grade.current) == ("tasks_due_on_time", 3, "not_assessable")

    # new data since the evaluation: STP-8 completed (late); not evaluated again yet
    late = completed("STP-8", "2026-09-01")
    late.outcome_id += "-v2"
    evaluated.stubs().outcomes.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(outcomes=[late]), timeout=10)
    changed = _explain_rpc(evaluated, "STP")
    assert changed.inputs_changed and changed.evaluation == stored
    criticism = next(m for m in changed.margins if (m.subject, m.direction) == ("criticism", "lose_flag")
                     and m.lever == "overdue_closed")
    assert criticism.amount == 1 and "STP-9" in criticism.summary_vi


@pytest.mark.slow
def test_explain_command(evaluated: ServerProcess) -> None:
    address = evaluated.address
    result = civicscore(address, "explain", "STP", "--period", PERIOD)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Sở Tư pháp" in out and "Contributions to the score" in out
    assert "criticism-many-reminders" in out and "flags.yaml:" in out
    assert "Hoàn thành 2 nhiệm vụ đang quá hạn (STP-8, STP-9) sẽ được gỡ cờ “Phê bình”" in out
    assert "Completing 2 open overdue assignments (STP-8, STP-9) would remove the “Criticism” flag" in out

    english = civicscore(address, "explain", "STP", "--period", PERIOD, "--lang", "en")
    assert english.exit_code == 0, english.output
    assert "would remove the “Criticism” flag" in english.stdout and "sẽ được gỡ cờ" not in english.stdout

    as_json = civicscore(address, "--json", "explain", "STP", "--period", PERIOD)
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["evaluation"]["grade"] == "good" and data["next_grade"] == "excellent"
    assert {m["direction"] for m in data["margins"]} >= {"improve_grade", "lose_flag"}

    missing = civicscore(address, "explain", "NO-SUCH-UNIT", "--period", PERIOD)
    assert missing.exit_code == 1
    assert "error:" in missing.stderr and "does not exist" in missing.stderr
