"""Engine facts: `UnitFacts` (a quarter), `RollupFacts` (a half-year or year) and `OfficialFacts` (a person in
a quarter) checked, then turned into the flat dicts rules match.

The field names are those of `civicscore.ruleset.fields` (a test checks it).
Absent values (no score, no target) are left out of a fact, never sent as null.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from civicscore.domain.model import (
    MeasurementFact,
    OverdueTask,
    QuarterResult,
    RollupFacts,
    RollupSummary,
    TaskCounts,
    UnitFacts,
)
from civicscore.domain.obstacles import OpenObstacle
from civicscore.domain.officials import HeadedUnit, OfficialFacts, Position
from civicscore.domain.periods import InvalidPeriod, Quarter, Rollup
from civicscore.domain.scoring import ScoreBreakdown, TaskRates, attainment
from civicscore.ruleset import Ruleset

Fact = dict[str, Any]


class InvalidFacts(ValueError):
    """Unit facts that contradict themselves (e.g. more completed than due); nothing was evaluated."""


def check_facts(facts: Sequence[UnitFacts | RollupFacts | OfficialFacts]) -> None:
    """Raise InvalidFacts listing every inconsistent unit or official, before any work is sent to workers."""
    problems: list[str] = []
    for unit in facts:
        if isinstance(unit, OfficialFacts):
            where = f"official {unit.official_id} {unit.period}"
            problems.extend(f"{where}: {problem}" for problem in _official_problems(unit))
            continue
        where = f"unit {unit.unit_code} {unit.period}"
        if isinstance(unit, RollupFacts):
            problems.extend(f"{where}: {problem}" for problem in _rollup_problems(unit))
            continue
        try:
            Quarter.parse(unit.period)
        except InvalidPeriod as error:
            problems.append(f"{where}: {error}")
        problems.extend(f"{where}: {problem}" for problem in _count_problems(unit.counts))
        ids = [task.assignment_id for task in unit.overdue]
        if len(set(ids)) != len(ids):
            problems.append(f"{where}: an overdue assignment is listed twice")
        if any(task.days_overdue < 0 or task.reminders < 0 for task in unit.overdue):
            problems.append(f"{where}: days_overdue and reminders must not be negative")
        if len({o.obstacle_id for o in unit.obstacles}) != len(unit.obstacles):
            problems.append(f"{where}: an obstacle is listed twice")
        if any(o.days_open < 0 for o in unit.obstacles):
            problems.append(f"{where}: days_open must not be negative")
        codes = [m.indicator for m in unit.measurements]
        if len(set(codes)) != len(codes):
            problems.append(f"{where}: an indicator is measured twice")
        for m in unit.measurements:
            numbers = [m.numerator, m.denominator] + ([m.target] if m.target is not None else [])
            if not all(math.isfinite(x) and x >= 0 for x in numbers):
                problems.append(f"{where}: {m.indicator} needs finite, non-negative numbers")
    if problems:
        raise InvalidFacts("; ".join(problems))


def _count_problems(c: TaskCounts, prefix: str = "") -> list[str]:
    """How task counts contradict themselves (`prefix` names them, e.g. `led_` for an official's)."""
    problems = []
    if min(c.due, c.completed, c.on_time, c.late, c.reworked) < 0:
        problems.append("task counts must not be negative")
    if c.completed > c.due:
        problems.append(f"{prefix}completed ({c.completed}) exceeds {prefix}due ({c.due})")
    if c.on_time + c.late != c.completed:
        problems.append(f"{prefix}on_time ({c.on_time}) + {prefix}late ({c.late}) must equal {prefix}completed "
                        f"({c.completed})")
    if c.reworked > c.completed:
        problems.append(f"{prefix}reworked ({c.reworked}) exceeds {prefix}completed ({c.completed})")
    return problems


def _official_problems(official: OfficialFacts) -> list[str]:
    problems = []
    try:
        Quarter.parse(official.period)
    except InvalidPeriod as error:
        problems.append(str(error))
    if official.position not in (*(p.value for p in Position), ""):
        problems.append(f"position {official.position!r} must be head, deputy, officer or \"\" (none held)")
    problems.extend(_count_problems(official.led, "led "))
    days = list(official.led_overdue_days)
    if any(day < 0 for day in days):
        problems.append("days overdue must not be negative")
    if days != sorted(days, reverse=True):
        problems.append("the days overdue of led assignments must be listed longest first")
    codes = [unit.unit_code for unit in official.headed]
    if len(set(codes)) != len(codes):
        problems.append("a headed unit is listed twice")
    return problems


def _rollup_problems(unit: RollupFacts) -> list[str]:
    try:
        period = Rollup.parse(unit.period)
    except InvalidPeriod as error:
        return [str(error)]
    problems = []
    quarters = tuple(str(q) for q in period.quarters)
    if unit.quarters != quarters or unit.span != period.kind:
        problems.append(f"a {period.kind} has the quarters {', '.join(quarters)}")
    seen = [result.period for result in unit.results]
    if len(set(seen)) != len(seen) or any(q not in quarters for q in seen) or seen != sorted(seen):
        problems.append("its quarterly results must be of its own quarters, each once, in order")
    for result in unit.results:
        if result.score is not None and not (math.isfinite(result.score) and result.score >= 0):
            problems.append(f"{result.period}: the score must be a finite number of at least 0")
        if not (math.isfinite(result.timeliness) and 0 <= result.timeliness <= 1):
            problems.append(f"{result.period}: the timeliness must be between 0 and 1")
    return problems


def summarise_rollup(unit: RollupFacts, min_assessable_quarters: int, top_grade: str) -> RollupSummary:
    """How the period's figures follow from its quarters: which quarters count (the assessable ones with a
    score), how many were graded `top_grade` or raised a criticism-kind flag, and the mean timeliness."""
    counted = [r for r in unit.results if r.assessable and r.score is not None]
    evaluated = {r.period for r in unit.results}
    return RollupSummary(
        span=unit.span,
        quarters=unit.quarters,
        results=unit.results,
        missing=tuple(q for q in unit.quarters if q not in evaluated),
        assessable_quarters=len(counted),
        min_assessable_quarters=min_assessable_quarters,
        excellent_quarters=sum(1 for r in unit.results if r.grade == top_grade),
        criticism_quarters=sum(1 for r in unit.results if r.criticism_flags),
        timeliness=sum(r.timeliness for r in counted) / len(counted) if counted else None,
        under_review=unit.under_review,
    )


def rollup_score(results: Sequence[QuarterResult]) -> float | None:
    """The mean of the unrounded scores of the assessable quarters; None when none is."""
    scores = [r.score for r in results if r.assessable and r.score is not None]
    return sum(scores) / len(scores) if scores else None


def rollup_counts(results: Sequence[QuarterResult]) -> TaskCounts:
    """The quarters' task counts added up (an assignment extended into a later quarter may count twice)."""
    return TaskCounts(*(sum(getattr(r.counts, name) for r in results)
                        for name in ("due", "completed", "on_time", "late", "reworked")))


def rollup_fact(unit: RollupFacts, summary: RollupSummary, score: float | None) -> Fact:
    """The rollup fact of the flags stage, without its grade (see `ruleset.fields`, ROLLUP)."""
    fact: Fact = {
        "unit_code": unit.unit_code,
        "unit_kind": unit.unit_kind.value,
        "block": unit.block,
        "under_review": unit.under_review,
        "span": unit.span,
        "quarters": len(unit.quarters),
        "evaluated_quarters": len(unit.results),
        "assessable_quarters": summary.assessable_quarters,
        "excellent_quarters": summary.excellent_quarters,
        "criticism_quarters": summary.criticism_quarters,
        "assessable": summary.assessable_quarters >= summary.min_assessable_quarters,
        "quarter_flags": sorted({flag for r in unit.results for flag in r.flags}),
    }
    if score is not None:
        fact["score"] = score
    if summary.timeliness is not None:
        fact["timeliness"] = summary.timeliness
    return fact


def _unit_attributes(unit: UnitFacts) -> Fact:
    return {
        "unit_code": unit.unit_code,
        "unit_kind": unit.unit_kind.value,
        "block": unit.block,
        "under_review": unit.under_review,
    }


@dataclass(frozen=True)
class MeasurementView:
    """A measurement with its value, target in force and attainment resolved."""

    source: MeasurementFact
    value: float | None
    target: float | None
    attainment: float | None


def view_measurement(unit: UnitFacts, m: MeasurementFact, ruleset: Ruleset) -> MeasurementView:
    """Resolve value, target (API target, else the rule files' default for the unit's kind) and attainment."""
    indicator = ruleset.indicator(m.indicator)
    target = (
        m.target if m.target is not None else (indicator.default_targets.get(unit.unit_kind) if indicator else None)
    )
    value = m.numerator / m.denominator if m.denominator > 0 else None
    reached = attainment(value, target) if value is not None and target is not None and target > 0 else None
    return MeasurementView(m, value, target, reached)


def measurement_fact(unit: UnitFacts, view: MeasurementView) -> Fact:
    """The fact for one measurement (measurement rules)."""
    fact: Fact = {
        **_unit_attributes(unit),
        "indicator": view.source.indicator,
        "numerator": view.source.numerator,
        "denominator": view.source.denominator,
    }
    for name in ("value", "target", "attainment"):
        if getattr(view, name) is not None:
            fact[name] = getattr(view, name)
    return fact


def overdue_fact(unit: UnitFacts, task: OverdueTask) -> Fact:
    """The fact for one open overdue assignment (overdue rules)."""
    return {
        **_unit_attributes(unit),
        "assignment_id": task.assignment_id,
        "days_overdue": task.days_overdue,
        "reminders": task.reminders,
    }


def obstacle_fact(unit: UnitFacts, obstacle: OpenObstacle) -> Fact:
    """The fact for one obstacle open at the quarter's end (obstacle rules)."""
    return {
        **_unit_attributes(unit),
        "obstacle_id": obstacle.obstacle_id,
        "assignment_id": obstacle.assignment_id,
        "days_open": obstacle.days_open,
    }


def unit_fact(
    unit: UnitFacts,
    rates: TaskRates | None,
    breakdown: ScoreBreakdown | None,
    *,
    penalty: float,
    dx: float | None,
    dx_indicators: int,
    assessable: bool,
) -> Fact:
    """The unit summary fact of the grade stage (later stages add `grade`, then `flags`)."""
    c = unit.counts
    fact: Fact = {
        **_unit_attributes(unit),
        "due": c.due,
        "completed": c.completed,
        "on_time": c.on_time,
        "late": c.late,
        "not_on_time": c.due - c.on_time,
        "reworked": c.reworked,
        "open_overdue": len(unit.overdue),
        "dx_indicators": dx_indicators,
        "penalty": penalty,
        "assessable": assessable,
        "previous_flags": sorted(unit.previous.flags) if unit.previous else [],
    }
    if rates is not None:
        fact.update(
            completion=rates.completion,
            timeliness=rates.timeliness,
            on_time_rate=rates.on_time_rate,
            quality=rates.quality,
            task_result=rates.task_result,
        )
    if dx is not None:
        fact["dx_result"] = dx
    if breakdown is not None:
        fact["score"] = breakdown.score
    if unit.previous is not None:
        fact["previous_grade"] = unit.previous.grade
    return fact


def official_fact(official: OfficialFacts) -> Fact:
    """The fact for one official in a quarter (official rules): what they lead, in any unit."""
    c, days = official.led, official.led_overdue_days
    return {
        "official_id": official.official_id,
        "unit_code": official.unit_code,
        "position": official.position,
        "under_review": official.under_review,
        "led_due": c.due,
        "led_completed": c.completed,
        "led_on_time": c.on_time,
        "led_late": c.late,
        "led_not_on_time": c.due - c.on_time,
        "led_reworked": c.reworked,
        "led_open_overdue": len(days),
        "longest_overdue": days[0] if days else 0,
        "second_longest_overdue": days[1] if len(days) > 1 else 0,
    }


def head_fact(official: OfficialFacts, unit: HeadedUnit) -> Fact:
    """The fact for one unit the official heads at the quarter's end (head rules), with its own flags."""
    fact: Fact = {
        "official_id": official.official_id,
        "unit_code": unit.unit_code,
        "unit_flags": sorted(unit.flags),
    }
    if unit.unit_kind is not None:
        fact["unit_kind"] = unit.unit_kind.value
    if unit.block is not None:
        fact["block"] = unit.block
    return fact
