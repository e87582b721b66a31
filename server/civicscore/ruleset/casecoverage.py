"""How well golden cases cover a ruleset: each rule fired in some case and stayed silent in
another, and each numeric comparison of a condition (`timeliness < threshold`) was true in some
case and false in another, on facts of the rule's type that have the field; cases exactly at the
threshold are counted too.

The facts each rule saw are rebuilt from the case's facts and the engine's evaluation with the
engine's own fact builders, so the comparisons are evaluated on exactly what the rules matched.
A case's officials count as part of the case. A rule of the officials' facts (`official`, `head`) stays
silent only in a case that has such facts: the unit-only cases do not test it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from civicscore.domain.model import RollupFacts, UnitEvaluation, UnitFacts
from civicscore.domain.officials import OfficialEvaluation, OfficialFacts
from civicscore.domain.scoring import combine, dx_result, task_rates
from civicscore.engine.facts import (
    Fact,
    head_fact,
    measurement_fact,
    obstacle_fact,
    official_fact,
    overdue_fact,
    rollup_fact,
    unit_fact,
    view_measurement,
)
from civicscore.ruleset.fields import FACT_FIELDS, HEAD, MEASUREMENT, OBSTACLE, OFFICIAL, OVERDUE, ROLLUP, UNIT
from civicscore.ruleset.model import Rule, Ruleset, RuleTest, Stage, literal_text
from civicscore.ruleset.reachability import always_true, field_range, ruleset_limits

# Fact types whose rules only a case with such facts tests (see the module docstring).
_PEOPLE_FACTS = (OFFICIAL, HEAD)

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class RuleCoverage:
    """The cases in which a rule fired, and those in which it did not."""

    rule_id: str
    source: str
    fired_in: tuple[str, ...]
    silent_in: tuple[str, ...]

    @property
    def covered(self) -> bool:
        """Fired in some case and stayed silent in another."""
        return bool(self.fired_in) and bool(self.silent_in)


@dataclass(frozen=True)
class ThresholdCoverage:
    """One numeric comparison of a rule's condition and the cases on each side of it."""

    rule_id: str
    source: str
    test: RuleTest
    true_in: tuple[str, ...]
    false_in: tuple[str, ...]
    at_threshold_in: tuple[str, ...]

    @property
    def both_sides(self) -> bool:
        """True in some case and false in another."""
        return bool(self.true_in) and bool(self.false_in)

    def describe(self) -> str:
        """`reminder-low-timeliness: timeliness < threshold (0.9)`."""
        value = f" ({literal_text(self.test.value)})" if self.test.param else ""
        return f"{self.rule_id}: {self.test}{value}"


@dataclass(frozen=True)
class CoverageReport:
    """Coverage of every rule and every numeric comparison by a set of cases."""

    cases: int
    rules: tuple[RuleCoverage, ...]
    thresholds: tuple[ThresholdCoverage, ...]

    @property
    def never_fired(self) -> list[RuleCoverage]:
        """Rules no case made fire."""
        return [rule for rule in self.rules if not rule.fired_in]

    @property
    def always_fired(self) -> list[RuleCoverage]:
        """Rules that fired in every case (their silent side is untested)."""
        return [rule for rule in self.rules if rule.fired_in and not rule.silent_in]

    @property
    def one_sided(self) -> list[ThresholdCoverage]:
        """Comparisons the cases exercised on one side only (or not at all)."""
        return [threshold for threshold in self.thresholds if not threshold.both_sides]

    @property
    def never_at_threshold(self) -> list[ThresholdCoverage]:
        """Comparisons no case met with a value exactly at the threshold."""
        return [threshold for threshold in self.thresholds if not threshold.at_threshold_in]

    @property
    def complete(self) -> bool:
        """Every rule fired and stayed silent, every comparison was true and false in some case."""
        return all(rule.covered for rule in self.rules) and not self.one_sided

    def summary(self) -> list[str]:
        """Readable lines: the totals, then what is missing."""
        covered = sum(rule.covered for rule in self.rules)
        sides = sum(threshold.both_sides for threshold in self.thresholds)
        lines = [
            f"coverage over {self.cases} case{'s' if self.cases != 1 else ''}: {covered}/{len(self.rules)} rules "
            f"fired and stayed silent, {sides}/{len(self.thresholds)} thresholds tested on both sides"
        ]
        lines += [f"  rule never fired: {rule.rule_id} ({rule.source})" for rule in self.never_fired]
        lines += [f"  rule fired in every case: {rule.rule_id} ({rule.source})" for rule in self.always_fired]
        for threshold in self.one_sided:
            if not threshold.true_in and not threshold.false_in:
                side = "never reached (no case has the field)"
            else:
                side = "never true" if not threshold.true_in else "never false"
            lines.append(f"  threshold {side}: {threshold.describe()} ({threshold.source})")
        lines += [  # advice for thresholds otherwise covered (the others are listed above)
            f"  no case exactly at the threshold: {threshold.describe()} ({threshold.source})"
            for threshold in self.never_at_threshold
            if threshold.both_sides
        ]
        return lines


def facts_seen(ruleset: Ruleset, unit: UnitFacts | RollupFacts | OfficialFacts,
               evaluation: UnitEvaluation | OfficialEvaluation) -> dict[str, list[Fact]]:
    """The facts of each type the rules matched for one unit (the unit fact as the escalation stage
    sees it: with its grade and this quarter's flags; for a half-year or year, the rollup fact so), or for
    one official (the official fact and a head fact per headed unit)."""
    if isinstance(unit, OfficialFacts):
        return {OFFICIAL: [official_fact(unit)], HEAD: [head_fact(unit, headed) for headed in unit.headed]}
    assert isinstance(evaluation, UnitEvaluation)
    stages = {rule.rule_id: rule.stage for rule in ruleset.rules}
    flags = sorted(
        {fired.flag for fired in evaluation.fired_rules if fired.flag and stages.get(fired.rule_id) != Stage.ESCALATION}
    )
    if isinstance(unit, RollupFacts):
        if evaluation.rollup is None:
            return {}
        base = rollup_fact(unit, evaluation.rollup, evaluation.score)
        return {ROLLUP: [{**base, "grade": evaluation.grade, "flags": flags}]}
    views = [view_measurement(unit, m, ruleset) for m in unit.measurements if m.indicator in ruleset.indicator_codes]
    counted = {score.indicator for score in evaluation.indicators if score.counted}
    weights = {indicator.code: indicator.weight for indicator in ruleset.indicators}
    dx = dx_result(
        (weights[view.source.indicator], view.attainment or 0.0) for view in views if view.source.indicator in counted
    )
    rates = task_rates(unit.counts, ruleset.scoring)
    breakdown = combine(rates, dx, evaluation.penalty, ruleset.scoring) if rates is not None else None
    counted_here = sum(view.source.indicator in counted for view in views)
    base = unit_fact(
        unit,
        rates,
        breakdown,
        penalty=evaluation.penalty,
        dx=dx,
        dx_indicators=counted_here,
        assessable=evaluation.assessable,
    )
    return {
        UNIT: [{**base, "grade": evaluation.grade, "flags": flags}],
        OVERDUE: [overdue_fact(unit, task) for task in unit.overdue],
        MEASUREMENT: [measurement_fact(unit, view) for view in views],
        OBSTACLE: [obstacle_fact(unit, obstacle) for obstacle in unit.obstacles],
    }


def numeric_tests(rule: Rule, limits: Mapping[str, float]) -> list[RuleTest]:
    """The rule's comparisons of a numeric field with a number, each once, in condition order;
    not those true for every value the field can take (the generated `score >= 0`)."""
    fields = FACT_FIELDS[rule.fact]
    found: dict[tuple[str, str, float], RuleTest] = {}
    for branch in rule.branches:
        for test in branch:
            value, spec = test.value, fields[test.field]
            if test.op not in _COMPARE or isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if spec.numeric and not always_true(test, field_range(spec, limits)):
                found.setdefault((test.field, test.op, float(value)), test)
    return list(found.values())


def coverage_of(
    ruleset: Ruleset,
    evaluated: Sequence[tuple[str, UnitFacts | RollupFacts | OfficialFacts, UnitEvaluation | OfficialEvaluation]],
) -> CoverageReport:
    """Coverage of the ruleset by cases given as (case name, facts, the engine's evaluation); a case's
    officials come as more triples with the case's name."""
    by_case: dict[str, tuple[dict[str, list[Fact]], set[str]]] = {}
    for name, subject, evaluation in evaluated:
        facts, fired_ids = by_case.setdefault(name, ({}, set()))
        for kind, found in facts_seen(ruleset, subject, evaluation).items():
            facts.setdefault(kind, []).extend(found)
        fired_ids.update(rule.rule_id for rule in evaluation.fired_rules)
    seen = [(name, facts, fired_ids) for name, (facts, fired_ids) in by_case.items()]
    limits = ruleset_limits(ruleset.scoring, len(ruleset.indicators))
    rules: list[RuleCoverage] = []
    thresholds: list[ThresholdCoverage] = []
    for rule in ruleset.rules:
        fired = [name for name, _, fired_ids in seen if rule.rule_id in fired_ids]
        silent = [name for name, facts, _ in seen if name not in fired
                  and (rule.fact not in _PEOPLE_FACTS or facts.get(rule.fact))]
        rules.append(RuleCoverage(rule.rule_id, rule.source, tuple(fired), tuple(silent)))
        for test in numeric_tests(rule, limits):
            assert isinstance(test.value, int | float)  # numeric_tests keeps numbers only
            threshold = float(test.value)
            compare = _COMPARE[test.op]
            sides: dict[str, list[str]] = {"true": [], "false": [], "at": []}
            for name, facts, _ in seen:
                values = [float(fact[test.field]) for fact in facts.get(rule.fact, []) if test.field in fact]
                outcomes = {compare(value, threshold) for value in values}
                for outcome in outcomes:
                    sides["true" if outcome else "false"].append(name)
                if threshold in values:
                    sides["at"].append(name)
            thresholds.append(
                ThresholdCoverage(
                    rule.rule_id, rule.source, test, tuple(sides["true"]), tuple(sides["false"]), tuple(sides["at"])
                )
            )
    return CoverageReport(len(seen), tuple(rules), tuple(thresholds))
