"""One unit's evaluation, stage by stage, over a rule runner (durable_rules in workers).

    score       measurement and overdue facts: which indicators count, penalties
    (arithmetic in domain.scoring)
    grade       the unit fact with its score: one grade rule fires
    flags       the unit fact with its grade, overdue and measurement facts
    escalation  the unit fact with this quarter's flags

A half-year or year (`RollupFacts`) is summed up from the unit's stored quarterly evaluations: no
score or measurement rule runs; its score and grade follow from the quarters and the grade bands
(`summarise_rollup`, `assessment.long_periods`), then the rollup fact goes through the flags and
escalation stages like the unit fact.

An official (`OfficialFacts`) is neither scored nor graded: the official fact and a head fact per unit they
head go through the flags stage only. A flag a head rule raises carries, after its own reason, the reasons
of the headed unit's own evaluation (`HeadedUnit.reasons`), so that the committee reads why.

The result is a plain function of the facts and the ruleset: fired rules are
sorted, no clock is read, so the same facts give byte-identical JSON.

Each stage asserts all of its facts in one call (`RuleRunner.assert_facts`); a
fact's fired rules do not depend on the other facts of the call (every rule
matches one fact), so batching changes nothing but the number of engine calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol, overload

from civicscore.domain.canonical import digest_of
from civicscore.domain.model import FiredRule, FlagResult, IndicatorScore, RollupFacts, UnitEvaluation, UnitFacts
from civicscore.domain.officials import OfficialEvaluation, OfficialFacts
from civicscore.domain.periods import Rollup, period_label
from civicscore.domain.scoring import TaskRates, combine, dx_result, overdue_penalty, task_rates
from civicscore.domain.text import Language, format_value, template_segments
from civicscore.engine.facts import (
    Fact,
    MeasurementView,
    head_fact,
    measurement_fact,
    obstacle_fact,
    official_fact,
    overdue_fact,
    rollup_counts,
    rollup_fact,
    rollup_score,
    summarise_rollup,
    unit_fact,
    view_measurement,
)
from civicscore.ruleset import Effect, GradeDefinition, Indicator, Rule, Ruleset, Stage
from civicscore.ruleset.fields import HEAD, MEASUREMENT, OBSTACLE, OFFICIAL, OVERDUE, ROLLUP, UNIT
from civicscore.ruleset.model import fact_tag


class RuleRunner(Protocol):
    """Matches facts against the compiled rules within one session per unit."""

    def begin(self) -> None:
        """Open a fresh session."""

    def assert_fact(self, fact: Fact) -> list[str]:
        """Assert one fact; return the ids of the rules it fired, each once."""
        ...

    def assert_facts(self, facts: Sequence[Fact]) -> list[list[str]]:
        """Assert facts in one call; for each, the ids of the rules it fired, each once."""
        ...

    def end(self) -> None:
        """Delete the session."""


class EvaluationFailed(RuntimeError):
    """The rules gave an impossible answer for a unit (e.g. no grade); a ruleset bug."""


# The task part of the score has three fixed components; their weights are data in the rule files.
def task_scores(rates: TaskRates | None, with_dx: bool, rs: Ruleset) -> tuple[IndicatorScore, ...]:
    """Completion, timeliness and quality with the points each adds; they sum to the task points."""
    if rates is None:
        return ()
    params = rs.scoring
    task_max = params.task_points if with_dx else params.max_score
    parts = (
        (rates.completion, params.completion_weight),
        (rates.timeliness, params.timeliness_weight),
        (rates.quality, params.quality_weight),
    )
    return tuple(
        IndicatorScore(indicator=code, name_vi=name_vi, name_en=name_en, value=value, target=None,
                       attainment=value, weight=weight, points=task_max * weight * value, counted=True)
        for (code, name_vi, name_en), (value, weight) in zip(rs.task_names, parts, strict=True)
    )


class _Firing(NamedTuple):
    rule: Rule
    fact: Fact
    description: str
    carried: tuple[FiredRule, ...] = ()  # reasons the raised flag carries after the rule's own (a head's unit's)


class UnitEvaluator:
    """Evaluates units with one ruleset and one runner; not thread-safe (one per worker)."""

    def __init__(self, ruleset: Ruleset, runner: RuleRunner) -> None:
        self._ruleset = ruleset
        self._runner = runner
        self._rules = {rule.rule_id: rule for rule in ruleset.rules}
        self._order = {rule.rule_id: index for index, rule in enumerate(ruleset.rules)}
        self._tags = {rule.tag for rule in ruleset.rules}
        self._indicator_codes = ruleset.indicator_codes
        # First match wins, as in Ruleset.indicator() and Ruleset.grade().
        self._indicators: dict[str, Indicator] = {}
        for indicator in ruleset.indicators:
            self._indicators.setdefault(indicator.code, indicator)
        self._grades: dict[str, GradeDefinition] = {}
        for grade in ruleset.grades:
            self._grades.setdefault(grade.grade, grade)
        self._reasons = {
            rule.rule_id: (self._reason(rule, rule.reason_vi, "vi"), self._reason(rule, rule.reason_en, "en"))
            for rule in ruleset.rules
        }
        # The not-assessable grade of half-years and years: the grade of the rule files' not-assessable band,
        # with the reason of `assessment.long_periods`.
        self._long_not_assessable: Rule | None = None
        self._long_reasons: tuple[Callable[[Fact], str], Callable[[Fact], str]] | None = None
        if ruleset.long_periods is not None:
            long_periods = ruleset.long_periods
            not_assessable = ruleset.not_assessable.grade
            self._long_not_assessable = Rule(
                rule_id=f"grade.{not_assessable}", fact=ROLLUP, stage=Stage.GRADE, source=long_periods.source, order=0,
                condition="assessable == false", branches=(), fields=("assessable_quarters", "quarters"),
                params={"min_assessable_share": long_periods.min_assessable_share}, effect=Effect.GRADE,
                grade=not_assessable, reason_vi=long_periods.reason_vi, reason_en=long_periods.reason_en)
            self._long_reasons = (
                self._reason(self._long_not_assessable, long_periods.reason_vi, "vi"),
                self._reason(self._long_not_assessable, long_periods.reason_en, "en"),
            )

    @overload
    def evaluate(self, unit: UnitFacts | RollupFacts) -> UnitEvaluation: ...

    @overload
    def evaluate(self, unit: OfficialFacts) -> OfficialEvaluation: ...

    def evaluate(self, unit: UnitFacts | RollupFacts | OfficialFacts) -> UnitEvaluation | OfficialEvaluation:
        """Run every stage for one unit (over a quarter, or a half-year or year), or the flags stage for one
        official, in its own session, deleted afterwards."""
        self._runner.begin()
        try:
            if isinstance(unit, OfficialFacts):
                return self._evaluate_official(unit)
            if isinstance(unit, RollupFacts):
                return self._evaluate_rollup(unit)
            return self._evaluate(unit)
        finally:
            self._runner.end()

    def _run(self, fact: Fact, fact_type: str, stage: Stage, description: str, firings: list[_Firing]) -> list[Rule]:
        return self._run_all([(fact, fact_type, description)], stage, firings)[0]

    def _run_all(
        self, items: Sequence[tuple[Fact, str, str]], stage: Stage, firings: list[_Firing]
    ) -> list[list[Rule]]:
        """Assert (fact, fact type, description) items in one call; the rules each fired, in item order."""
        matched: list[list[Rule]] = [[] for _ in items]
        sent: list[Fact] = []
        positions: list[int] = []
        for position, (fact, fact_type, _) in enumerate(items):
            tag = fact_tag(fact_type, stage)
            if tag in self._tags:
                sent.append({**fact, "tag": tag})
                positions.append(position)
        if sent:
            for position, rule_ids in zip(positions, self._runner.assert_facts(sent), strict=True):
                matched[position] = [self._rules[rule_id] for rule_id in rule_ids]
        for (fact, _, description), rules in zip(items, matched, strict=True):
            firings.extend(_Firing(rule, fact, description) for rule in rules)
        return matched

    def _evaluate(self, unit: UnitFacts) -> UnitEvaluation:
        rs = self._ruleset
        firings: list[_Firing] = []
        views = [view_measurement(unit, m, rs) for m in unit.measurements if m.indicator in self._indicator_codes]
        measured = [(measurement_fact(unit, v), MEASUREMENT, f"indicator {v.source.indicator}") for v in views]
        overdue = [(overdue_fact(unit, t), OVERDUE, f"assignment {t.assignment_id}") for t in unit.overdue]
        matched = self._run_all(measured + overdue, Stage.SCORE, firings)
        counted: set[str] = set()
        for view, rules in zip(views, matched, strict=False):
            if view.attainment is not None and any(r.effect is Effect.COUNT_INDICATOR for r in rules):
                counted.add(view.source.indicator)
        points: list[float] = []
        for rules in matched[len(views) :]:
            points.extend(r.penalty for r in rules if r.effect is Effect.PENALTY and r.penalty is not None)

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
        obstacles = [(obstacle_fact(unit, o), OBSTACLE, f"obstacle {o.obstacle_id}") for o in unit.obstacles]
        self._run_all([(with_grade, UNIT, "unit"), *overdue, *measured, *obstacles], Stage.FLAGS, firings)
        raised = sorted({f.rule.flag for f in firings if f.rule.flag})
        self._run({**with_grade, "flags": raised}, UNIT, Stage.ESCALATION, "unit", firings)

        fired, flags = self._outcome(firings)
        dx_total = sum(weights[v.source.indicator] for v in counted_views)
        dx_max = rs.scoring.dx_points if breakdown is not None and breakdown.dx_result is not None else 0.0
        indicators = task_scores(rates, dx is not None, rs) + tuple(
            self._indicator_score(view, counted, dx_total, dx_max)
            for view in sorted(views, key=lambda v: list(weights).index(v.source.indicator))
        )
        return UnitEvaluation(
            unit_code=unit.unit_code,
            period=unit.period,
            assessable=assessable,
            # Unrounded, as the grade and flag rules saw it: rankings order on it and the API
            # returns it; rounding is for display only (`display_score`).
            score=breakdown.score if breakdown else None,
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

    def _outcome(self, firings: list[_Firing]) -> tuple[tuple[FiredRule, ...], tuple[FlagResult, ...]]:
        """The fired rules in ruleset order and the flags they raised, in the order of flags.yaml; each
        rule's reason is followed in its flag by the reasons it carries."""
        firings.sort(key=lambda f: (self._order.get(f.rule.rule_id, -1), f.description))
        fired = tuple(self._fired_rule(f) for f in firings)
        by_flag: dict[str, list[FiredRule]] = {}
        for rule, firing in zip(fired, firings, strict=True):
            by_flag.setdefault(rule.flag, []).extend((rule, *firing.carried))
        flags = tuple(
            FlagResult(d.flag, d.kind, d.level, d.label_vi, d.label_en, tuple(by_flag[d.flag]))
            for d in self._ruleset.flags
            if d.flag in by_flag
        )
        return fired, flags

    def _evaluate_rollup(self, unit: RollupFacts) -> UnitEvaluation:
        """A half-year or year from the unit's stored quarters: score and grade by the ruleset's numbers
        (`assessment.long_periods`, the grade bands), then its flag rules (`fact: rollup`)."""
        rs = self._ruleset
        long_periods = rs.long_periods
        if long_periods is None or self._long_not_assessable is None:
            raise EvaluationFailed(
                f"unit {unit.unit_code} {unit.period}: ruleset {rs.version} does not say how to sum up half-years "
                "and years; add `long_periods` under `assessment` (grades.yaml)")
        needed = long_periods.min_assessable_quarters(len(unit.quarters))
        summary = summarise_rollup(unit, needed, rs.top_grade.grade)
        score = rollup_score(unit.results)
        base = rollup_fact(unit, summary, score)
        # Reasons may also name the period and the fewest assessable quarters; neither is asserted.
        shown = {**base, "_period": unit.period, "min_assessable_quarters": needed}
        firings: list[_Firing] = []
        if base["assessable"] and score is not None:
            band = next(g for g in rs.grades if g.min_score is not None and score >= g.min_score)
            firings.append(_Firing(self._rules[f"grade.{band.grade}"], shown, "unit"))
            grade = band
        else:
            firings.append(_Firing(self._long_not_assessable, shown, "unit"))
            grade = rs.not_assessable
        with_grade = {**base, "grade": grade.grade}
        self._run_all([(with_grade, ROLLUP, "unit")], Stage.FLAGS, firings)
        raised = sorted({f.rule.flag for f in firings if f.rule.flag})
        self._run({**with_grade, "flags": raised}, ROLLUP, Stage.ESCALATION, "unit", firings)
        firings = [f._replace(fact={**f.fact, "_period": unit.period}) for f in firings]
        fired, flags = self._outcome(firings)
        last = unit.results[-1] if unit.results else None
        return UnitEvaluation(
            unit_code=unit.unit_code,
            period=unit.period,
            assessable=bool(base["assessable"]),
            score=score,
            grade=grade.grade,
            grade_vi=grade.label_vi,
            grade_en=grade.label_en,
            counts=rollup_counts(unit.results),
            open_overdue=last.open_overdue if last is not None else 0,
            indicators=(),
            penalty=0.0,
            fired_rules=fired,
            flags=flags,
            ruleset_version=rs.version,
            ruleset_digest=rs.digest,
            inputs_digest=digest_of({"quarters": unit, "ruleset_digest": rs.digest}),
            rollup=summary,
        )

    def _evaluate_official(self, official: OfficialFacts) -> OfficialEvaluation:
        """An official's flags: the official fact and one head fact per headed unit, through the flags stage."""
        rs = self._ruleset
        person = official_fact(official)
        heads = [(head_fact(official, unit), HEAD, f"unit {unit.unit_code}") for unit in official.headed]
        matched = self._run_all([(person, OFFICIAL, "official"), *heads], Stage.FLAGS, [])
        firings = [_Firing(rule, person, "official") for rule in matched[0]]
        for unit, (fact, _, description), rules in zip(official.headed, heads, matched[1:], strict=True):
            # Reasons may show the headed unit's name ({unit_name}), which is not asserted.
            named = {**fact, "_unit_name_vi": unit.unit_name_vi, "_unit_name_en": unit.unit_name_en}
            firings.extend(_Firing(rule, named, description, unit.reasons) for rule in rules)
        fired, flags = self._outcome(firings)
        return OfficialEvaluation(
            official_id=official.official_id,
            unit_code=official.unit_code,
            period=official.period,
            position=official.position,
            under_review=official.under_review,
            led=official.led,
            led_open_overdue=len(official.led_overdue_days),
            headed_units=tuple(unit.unit_code for unit in official.headed),
            fired_rules=fired,
            flags=flags,
            ruleset_version=rs.version,
            ruleset_digest=rs.digest,
            inputs_digest=digest_of(official),
        )

    def _indicator_score(
        self, view: MeasurementView, counted: set[str], dx_total: float, dx_max: float
    ) -> IndicatorScore:
        """One DX indicator; its points are its weight's share of the DX points times its attainment."""
        indicator = self._ruleset.indicator(view.source.indicator)
        assert indicator is not None
        is_counted = indicator.code in counted
        reached = view.attainment or 0.0
        points = dx_max * indicator.weight * reached / dx_total if is_counted and dx_total > 0 else 0.0
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
        values = {name: float(fact[name]) for name in rule.fields if isinstance(fact.get(name), (int, float))}
        reasons = self._long_reasons if rule is self._long_not_assessable else None
        reason_vi, reason_en = reasons or self._reasons[rule.rule_id]
        return FiredRule(
            rule_id=rule.rule_id,
            source=rule.source,
            fact=firing.description,
            values=values,
            reason_vi=reason_vi(fact),
            reason_en=reason_en(fact),
            flag=rule.flag or "",
        )

    def _reason(self, rule: Rule, template: str, lang: Language) -> Callable[[Fact], str]:
        """A rule's reason template as a function of the fact, with what is fixed per rule
        (parameters, penalty) already filled in. Generated code: the template's texts and names
        are passed in as variables, never written into the source."""
        parts: list[str | tuple[str, str, bool]] = []
        for segment in template_segments(template):
            if isinstance(segment, str):
                text = segment
            elif segment.name in _FROM_FACT or not self._fixed(rule, segment.name):
                parts.append((segment.name, segment.spec, segment.name in _FROM_FACT))
                continue
            else:
                text = format_value(self._placeholder(rule, {}, segment.name, lang), segment.spec, lang)
            if parts and isinstance(parts[-1], str):
                parts[-1] += text
            else:
                parts.append(text)
        namespace: dict[str, object] = {"F": format_value, "P": self._placeholder, "R": rule, "LANG": lang}
        reads, terms = [], []
        for i, part in enumerate(parts):
            if isinstance(part, str):
                namespace[f"T{i}"] = part
                terms.append(f"T{i}")
                continue
            namespace[f"N{i}"], namespace[f"S{i}"], special = part
            reads.append(f"    v{i} = P(R, fact, N{i}, LANG)\n" if special else f"    v{i} = fact.get(N{i})\n")
            terms.append(f"(v{i} if type(v{i}) is str else F(v{i}, S{i}, LANG))")
        source = "def fill(fact):\n" + "".join(reads) + "    return " + (" + ".join(terms) or "''") + "\n"
        exec(source, namespace)  # the source holds only generated names
        fill: Callable[[Fact], str] = namespace["fill"]  # type: ignore[assignment]
        return fill

    @staticmethod
    def _fixed(rule: Rule, name: str) -> bool:
        """Whether a placeholder (other than those in _FROM_FACT) has the same value for every fact."""
        return (name == "penalty" and rule.penalty is not None) or name in rule.params

    def _placeholder(self, rule: Rule, fact: Fact, name: str, lang: Language) -> object:
        """A reason placeholder's value. Later sources win: the fact, the rule's parameters, its
        penalty, the indicator's name, then grade labels (or the raw grade when it has no label)."""
        if name in ("grade_label", "previous_grade_label"):
            field = "grade" if name == "grade_label" else "previous_grade"
            grade = self._grades.get(str(fact.get(field, "")))
            if grade is not None:
                return grade.label_vi if lang == "vi" else grade.label_en
            if field in fact:
                return fact[field]
        elif name == "indicator_name":
            indicator = self._indicators.get(str(fact.get("indicator", "")))
            if indicator is not None:
                return indicator.name_vi if lang == "vi" else indicator.name_en
        elif name == "period_label" and "_period" in fact:
            return period_label(Rollup.parse(str(fact["_period"])), lang)
        elif name == "unit_name" and f"_unit_name_{lang}" in fact:
            return fact[f"_unit_name_{lang}"]
        elif name == "penalty" and rule.penalty is not None:
            return rule.penalty
        if name in rule.params:
            return rule.params[name]
        return fact.get(name)


# Placeholders looked up from the fact first (labels and names), even when a parameter has the name.
_FROM_FACT = frozenset({"grade_label", "previous_grade_label", "indicator_name", "period_label", "unit_name"})
