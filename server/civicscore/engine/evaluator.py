"""One unit's evaluation, stage by stage, over a rule runner (durable_rules in workers).

    score       measurement and overdue facts: which indicators count, penalties
    (arithmetic in domain.scoring)
    grade       the unit fact with its score: one grade rule fires
    flags       the unit fact with its grade, overdue and measurement facts
    escalation  the unit fact with this quarter's flags

The result is a plain function of the facts and the ruleset: fired rules are
sorted, no clock is read, so the same facts give byte-identical JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from civicscore.domain.canonical import digest_of
from civicscore.domain.model import FiredRule, FlagResult, IndicatorScore, UnitEvaluation, UnitFacts
from civicscore.domain.scoring import combine, display_score, dx_result, overdue_penalty, task_rates
from civicscore.domain.text import Language, fill_template
from civicscore.engine.facts import (
    Fact,
    MeasurementView,
    measurement_fact,
    overdue_fact,
    unit_fact,
    view_measurement,
)
from civicscore.ruleset import Effect, Rule, Ruleset, Stage
from civicscore.ruleset.fields import MEASUREMENT, OVERDUE, UNIT
from civicscore.ruleset.model import fact_tag


class RuleRunner(Protocol):
    """Matches facts against the compiled rules within one session per unit."""

    def begin(self) -> None:
        """Open a fresh session."""

    def assert_fact(self, fact: Fact) -> list[str]:
        """Assert one fact; return the ids of the rules it fired, each once."""
        ...

    def end(self) -> None:
        """Delete the session."""


class EvaluationFailed(RuntimeError):
    """The rules gave an impossible answer for a unit (e.g. no grade); a ruleset bug."""


@dataclass(frozen=True)
class _Firing:
    rule: Rule
    fact: Fact
    description: str


class UnitEvaluator:
    """Evaluates units with one ruleset and one runner; not thread-safe (one per worker)."""

    def __init__(self, ruleset: Ruleset, runner: RuleRunner) -> None:
        self._ruleset = ruleset
        self._runner = runner
        self._rules = {rule.rule_id: rule for rule in ruleset.rules}
        self._order = {rule.rule_id: index for index, rule in enumerate(ruleset.rules)}
        self._tags = {rule.tag for rule in ruleset.rules}

    def evaluate(self, unit: UnitFacts) -> UnitEvaluation:
        """Run every stage for one unit in its own session, deleted afterwards."""
        self._runner.begin()
        try:
            return self._evaluate(unit)
        finally:
            self._runner.end()

    def _run(self, fact: Fact, fact_type: str, stage: Stage, description: str, firings: list[_Firing]) -> list[Rule]:
        tag = fact_tag(fact_type, stage)
        if tag not in self._tags:
            return []
        rules = [self._rules[rule_id] for rule_id in self._runner.assert_fact({**fact, "tag": tag})]
        firings.extend(_Firing(rule, fact, description) for rule in rules)
        return rules

    def _evaluate(self, unit: UnitFacts) -> UnitEvaluation:
        rs = self._ruleset
        firings: list[_Firing] = []
        views = [view_measurement(unit, m, rs) for m in unit.measurements if m.indicator in rs.indicator_codes]
        counted: set[str] = set()
        for view in views:
            code = view.source.indicator
            matched = self._run(measurement_fact(unit, view), MEASUREMENT, Stage.SCORE, f"indicator {code}", firings)
            if view.attainment is not None and any(r.effect is Effect.COUNT_INDICATOR for r in matched):
                counted.add(code)
        points: list[float] = []
        for task in unit.overdue:
            matched = self._run(
                overdue_fact(unit, task), OVERDUE, Stage.SCORE, f"assignment {task.assignment_id}", firings
            )
            points.extend(r.penalty for r in matched if r.effect is Effect.PENALTY and r.penalty is not None)

        rates = task_rates(unit.counts, rs.scoring)
        weights = {i.code: i.weight for i in rs.indicators}
        counted_views = [v for v in views if v.source.indicator in counted]
        dx = dx_result((weights[v.source.indicator], v.attainment or 0.0) for v in counted_views)
        penalty = overdue_penalty(points, rs.scoring)
        breakdown = combine(rates, dx, penalty, rs.scoring) if rates is not None else None
        assessable = unit.counts.due >= rs.min_due
        base = unit_fact(
            unit, rates, breakdown, penalty=penalty, dx=dx, dx_indicators=len(counted), assessable=assessable
        )

        graded = [r for r in self._run(base, UNIT, Stage.GRADE, "unit", firings) if r.grade is not None]
        if len(graded) != 1:
            names = ", ".join(r.rule_id for r in graded) or "none"
            raise EvaluationFailed(f"unit {unit.unit_code} {unit.period}: expected one grade rule, got {names}")
        grade = rs.grade(graded[0].grade or "")
        assert grade is not None
        with_grade = {**base, "grade": grade.grade}
        self._run(with_grade, UNIT, Stage.FLAGS, "unit", firings)
        for task in unit.overdue:
            self._run(overdue_fact(unit, task), OVERDUE, Stage.FLAGS, f"assignment {task.assignment_id}", firings)
        for view in views:
            self._run(
                measurement_fact(unit, view),
                MEASUREMENT,
                Stage.FLAGS,
                f"indicator {view.source.indicator}",
                firings,
            )
        raised = sorted({f.rule.flag for f in firings if f.rule.flag})
        self._run({**with_grade, "flags": raised}, UNIT, Stage.ESCALATION, "unit", firings)

        firings.sort(key=lambda f: (self._order[f.rule.rule_id], f.description))
        fired = tuple(self._fired_rule(f) for f in firings)
        flags = tuple(
            FlagResult(d.flag, d.kind, d.level, d.label_vi, d.label_en, reasons)
            for d in rs.flags
            if (reasons := tuple(r for r in fired if r.flag == d.flag))
        )
        dx_total = sum(weights[v.source.indicator] for v in counted_views)
        indicators = tuple(
            self._indicator_score(view, counted, dx_total, breakdown.dx_points if breakdown else 0.0)
            for view in sorted(views, key=lambda v: list(weights).index(v.source.indicator))
        )
        return UnitEvaluation(
            unit_code=unit.unit_code,
            period=unit.period,
            assessable=assessable,
            score=display_score(breakdown.score) if breakdown else None,
            grade=grade.grade,
            grade_vi=grade.label_vi,
            grade_en=grade.label_en,
            counts=unit.counts,
            open_overdue=len(unit.overdue),
            indicators=indicators,
            penalty=penalty,
            fired_rules=fired,
            flags=flags,
            ruleset_version=rs.version,
            ruleset_digest=rs.digest,
            inputs_digest=digest_of(unit),
        )

    def _indicator_score(
        self, view: MeasurementView, counted: set[str], dx_total: float, dx_points: float
    ) -> IndicatorScore:
        indicator = self._ruleset.indicator(view.source.indicator)
        assert indicator is not None
        is_counted = indicator.code in counted
        reached = view.attainment or 0.0
        points = dx_points * indicator.weight * reached / dx_total if is_counted and dx_total > 0 else 0.0
        return IndicatorScore(
            indicator=indicator.code,
            name_vi=indicator.name_vi,
            name_en=indicator.name_en,
            value=view.value or 0.0,
            target=view.target,
            attainment=reached,
            weight=indicator.weight,
            points=points,
            counted=is_counted,
        )

    def _fired_rule(self, firing: _Firing) -> FiredRule:
        rule, fact = firing.rule, firing.fact
        values = {name: float(fact[name]) for name in rule.fields if isinstance(fact.get(name), int | float)}
        return FiredRule(
            rule_id=rule.rule_id,
            source=rule.source,
            fact=firing.description,
            values=values,
            reason_vi=fill_template(rule.reason_vi, self._placeholders(rule, fact, "vi"), "vi"),
            reason_en=fill_template(rule.reason_en, self._placeholders(rule, fact, "en"), "en"),
            flag=rule.flag or "",
        )

    def _placeholders(self, rule: Rule, fact: Fact, lang: Language) -> Mapping[str, object]:
        values: dict[str, object] = {**fact, **rule.params}
        if rule.penalty is not None:
            values["penalty"] = rule.penalty
        indicator = self._ruleset.indicator(str(fact.get("indicator", "")))
        if indicator is not None:
            values["indicator_name"] = indicator.name_vi if lang == "vi" else indicator.name_en
        for field, label in (("grade", "grade_label"), ("previous_grade", "previous_grade_label")):
            grade = self._ruleset.grade(str(fact.get(field, "")))
            if grade is not None:
                values[label] = grade.label_vi if lang == "vi" else grade.label_en
            elif field in fact:
                values[label] = fact[field]
        return values
