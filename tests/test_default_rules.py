"""The default ruleset's behaviour, specified as golden cases in rules/tests/default_cases.yaml.

Every case runs through a real EnginePool (durable_rules in worker processes);
the score arithmetic and text formatting are also checked as pure functions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from civicscore.domain.canonical import canonical_json, digest_of
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
from civicscore.domain.scoring import ScoringParameters, combine, display_score, dx_result, task_rates
from civicscore.domain.text import fill_template, format_number, format_percent, round_half_away
from civicscore.engine.pool import EnginePool
from civicscore.ruleset import Ruleset, load_ruleset

RULES = Path(__file__).resolve().parents[1] / "rules"
CASES_FILE = RULES / "tests" / "default_cases.yaml"


def rule_files() -> dict[str, str]:
    return {path.name: path.read_text(encoding="utf-8") for path in sorted(RULES.glob("*.yaml"))}


def load_cases() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    data = yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))
    return data["defaults"], data["cases"]


DEFAULTS, CASES = load_cases()


def facts_of(case: dict[str, Any]) -> UnitFacts:
    """Build UnitFacts from a case (see the header of default_cases.yaml)."""
    unit = {**DEFAULTS["unit"], **case.get("unit", {})}
    period = str(case.get("period", DEFAULTS["period"]))
    counts = dict(case["counts"])
    counts.setdefault("late", counts["completed"] - counts["on_time"])
    end = Quarter.parse(period).end
    overdue = tuple(
        OverdueTask(o["id"], end - dt.timedelta(days=o["days_overdue"]), o["days_overdue"], o["reminders"])
        for o in case.get("overdue", [])
    )
    measurements = tuple(
        MeasurementFact(m["indicator"], float(m["numerator"]), float(m["denominator"]), m.get("target"))
        for m in case.get("measurements", [])
    )
    previous = case.get("previous")
    prior = None
    if previous is not None:
        prior = PriorQuarter(str(Quarter.parse(period).previous()), previous["grade"], tuple(previous.get("flags", [])))
    return UnitFacts(
        unit_code=unit["code"],
        unit_kind=UnitKind(unit["kind"]),
        block=unit["block"],
        period=period,
        counts=TaskCounts(**counts),
        overdue=overdue,
        measurements=measurements,
        under_review=bool(case.get("under_review", False)),
        previous=prior,
    )


@pytest.fixture(scope="module")
def ruleset() -> Ruleset:
    return load_ruleset(rule_files())


@pytest.fixture(scope="module")
def results() -> Iterator[dict[str, UnitEvaluation]]:
    """Every case evaluated once, in one call, by real worker processes."""
    with EnginePool(rule_files(), workers=2) as pool:
        evaluations = pool.evaluate([facts_of(case) for case in CASES])
        yield {case["name"]: evaluation for case, evaluation in zip(CASES, evaluations, strict=True)}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_golden_case(case: dict[str, Any], results: dict[str, UnitEvaluation]) -> None:
    result = results[case["name"]]
    expect = case["expect"]
    fired = [rule.rule_id for rule in result.fired_rules]
    assert result.score == expect["score"], fired
    assert result.grade == expect["grade"], fired
    assert [flag.flag for flag in result.flags] == expect["flags"], fired
    if "penalty" in expect:
        assert result.penalty == expect["penalty"]
    assert set(expect.get("fired", [])) <= set(fired)
    assert not set(expect.get("not_fired", [])) & set(fired)
    for code, wanted in expect.get("indicators", {}).items():
        score = next(i for i in result.indicators if i.indicator == code)
        assert score.counted is wanted["counted"], code
        if "attainment" in wanted:
            assert score.attainment == pytest.approx(wanted["attainment"]), code
    for rule_id, texts in expect.get("reasons", {}).items():
        reasons = [(r.reason_vi, r.reason_en) for r in result.fired_rules if r.rule_id == rule_id]
        assert (texts["vi"], texts["en"]) in reasons, reasons


def test_every_rule_fires_in_some_case(results: dict[str, UnitEvaluation], ruleset: Ruleset) -> None:
    fired = {rule.rule_id for result in results.values() for rule in result.fired_rules}
    assert fired == ruleset.rule_ids


def test_every_flag_and_grade_appears_in_some_case(results: dict[str, UnitEvaluation], ruleset: Ruleset) -> None:
    assert {f.flag for r in results.values() for f in r.flags} == {f.flag for f in ruleset.flags}
    assert {r.grade for r in results.values()} == {g.grade for g in ruleset.grades}


def test_flags_group_every_rule_that_raised_them(results: dict[str, UnitEvaluation]) -> None:
    result = results["not-assessable-overdue-rules-still-apply"]
    reminder = next(f for f in result.flags if f.flag == "reminder")
    assert [r.rule_id for r in reminder.reasons] == ["reminder-long-overdue"]
    assert reminder.kind == "criticism" and reminder.level == 1 and reminder.label_vi == "Nhắc nhở"
    twice = results["criticised-two-quarters-explanation-required"]
    criticism = next(f for f in twice.flags if f.flag == "criticism")
    assert [r.rule_id for r in criticism.reasons] == ["criticism-low-timeliness"]


def test_fired_rules_carry_source_fact_and_values(results: dict[str, UnitEvaluation]) -> None:
    result = results["timeliness-72.5-criticism"]
    rule = next(r for r in result.fired_rules if r.rule_id == "criticism-low-timeliness")
    assert rule.source.startswith("flags.yaml:")
    assert rule.fact == "unit"
    assert rule.flag == "criticism"
    assert rule.values == {"assessable": 1.0, "timeliness": 0.725}
    overdue = results["nothing-due-no-score"].fired_rules
    assert [r.fact for r in overdue if r.rule_id == "reminder-long-overdue"] == ["assignment T1"]


def test_evaluation_records_ruleset_and_inputs(results: dict[str, UnitEvaluation], ruleset: Ruleset) -> None:
    result = results["perfect-department-no-dx"]
    assert (result.ruleset_version, result.ruleset_digest) == (ruleset.version, ruleset.digest)
    assert result.inputs_digest == digest_of(facts_of(CASES[0]))
    assert result.grade_vi == "Hoàn thành xuất sắc nhiệm vụ" and result.grade_en == "Excellent"
    assert "timestamp" not in canonical_json(result)


# ---- the arithmetic and formatting, as pure functions ---------------------------------------


def params(**changes: float) -> ScoringParameters:
    base = dict(completion_weight=0.3, timeliness_weight=0.4, quality_weight=0.3, late_credit=0.75,
                rework_penalty=0.25, task_points=70.0, dx_points=30.0, penalty_cap=10.0)
    return ScoringParameters(**{**base, **changes})


def test_ruleset_scoring_numbers_are_those_of_default_rules(ruleset: Ruleset) -> None:
    assert ruleset.scoring == params()
    assert ruleset.min_due == 5


def test_task_rates_by_hand() -> None:
    rates = task_rates(TaskCounts(due=20, completed=16, on_time=10, late=6, reworked=2), params())
    assert rates is not None
    assert (rates.completion, rates.timeliness, rates.quality) == (0.8, 0.725, 0.96875)
    assert rates.task_result == pytest.approx(0.820625)
    assert task_rates(TaskCounts(), params()) is None


def test_dx_result_is_a_weighted_mean_and_none_without_indicators() -> None:
    assert dx_result([(6, 0.875), (4, 1.0), (3, 0.5)]) == pytest.approx(10.75 / 13)
    assert dx_result([]) is None


def test_score_split_penalty_and_floor() -> None:
    rates = task_rates(TaskCounts(due=10, completed=10, on_time=10), params())
    assert rates is not None
    assert combine(rates, None, 0.0, params()).score == 100.0
    assert combine(rates, 0.5, 4.0, params()).score == 70 + 15 - 4
    harsh = params(penalty_cap=500.0)
    assert combine(rates, None, 400.0, harsh).score == 0.0


def test_display_rounding_is_half_away_from_zero() -> None:
    assert display_score(2.675) == 2.68
    assert display_score(82.0625) == 82.06
    assert display_score(89.995) == 90.0
    assert round_half_away(-2.675) == -2.68


def test_vietnamese_and_english_number_formats() -> None:
    assert format_percent(0.725, "vi") == "72,5%"
    assert format_percent(0.725, "en") == "72.5%"
    assert format_percent(0.8, "vi") == "80%"
    assert format_number(1234567.891, "vi") == "1.234.567,89"
    assert format_number(1234567.891, "en") == "1,234,567.89"
    text = "Tỷ lệ đúng hạn {timeliness:%} thấp hơn ngưỡng {threshold:%}, điểm {score} {{x}}"
    assert fill_template(text, {"timeliness": 0.725, "threshold": 0.8}, "vi") == (
        "Tỷ lệ đúng hạn 72,5% thấp hơn ngưỡng 80%, điểm — {x}"
    )
