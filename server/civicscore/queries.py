"""Read use cases: evaluations and their explanations, rankings, recommendations, periods."""

from __future__ import annotations

from dataclasses import dataclass

from civicscore.domain.model import RecommendationStatus
from civicscore.domain.periods import Quarter, Rollup
from civicscore.domain.ranking import Rankable, rank
from civicscore.engine.port import EngineError, evaluation_from_json
from civicscore.errors import (
    CivicscoreError,
    EvaluationFailed,
    FailedPrecondition,
    InvalidInput,
    NotFound,
    UnitInactive,
    Violation,
    shown,
)
from civicscore.evaluate import gather_facts, parse_period
from civicscore.explain import Explanation
from civicscore.explain import explain as explain_evaluation
from civicscore.rollups import explain_rollup, parse_evaluation_period, rollups_with_evaluations
from civicscore.rulesets import NoRulesetInForce, RulesetRefused, Rulesets
from civicscore.store import EvaluationRecord, Store


@dataclass(frozen=True)
class PeriodSummary:
    period: str
    start: str
    end: str
    assignments_due: int
    units_evaluated: int
    kind: str = "quarter"  # quarter, half_year or year
    quarters: tuple[str, ...] = ()  # a half-year's or year's quarters
    quarters_evaluated: int = 0  # of those, the quarters with evaluations


def get_evaluation(store: Store, *, unit_code: str, period: str, revision: int, body_format: int | None = None
                   ) -> EvaluationRecord:
    """See `Store.get_evaluation` for `body_format`."""
    quarter = parse_evaluation_period(period, "name")
    if revision < 0:
        raise InvalidInput([Violation("revision", "revision must be 0 (latest) or a positive number", "OUT_OF_RANGE")])
    record = store.get_evaluation(unit_code=unit_code, period=str(quarter), revision=revision,
                                  body_format=body_format)
    if record is None:
        raise _no_evaluation(store, unit_code=unit_code, period=str(quarter), revision=revision)
    return record


def _no_evaluation(store: Store, *, unit_code: str, period: str, revision: int) -> CivicscoreError:
    """Why an evaluation does not exist, and what would make it exist (read only when it is missing)."""
    name = f"periods/{period}/evaluations/{unit_code}"
    what = name + (f" revision {revision}" if revision else "")
    latest = store.get_evaluation(unit_code=unit_code, period=period, revision=0) if revision else None
    if latest is not None:
        return NotFound(what, f"{what} does not exist: the latest revision is {latest.revision}")
    unit = store.get_units([unit_code]).get(unit_code)
    if unit is None:
        return NotFound(what, f"{what} does not exist: there is no unit {shown(unit_code)}; check the unit code "
                              "(ListUnits lists them)")
    if not unit.active:
        # EvaluatePeriod skips inactive units, so evaluating the period again would not help.
        return UnitInactive(f"unit {unit_code} is inactive, so it is not evaluated: {name} does not exist. "
                            f"Mark units/{unit_code} active (UpsertUnits with active=true) and evaluate "
                            f"{period} again to evaluate it")
    return NotFound(what, f"{what} does not exist: units/{unit_code} has no evaluation for {period} yet; "
                          "evaluate the period first (EvaluatePeriod)")


def rankings(store: Store, *, period: str, block: str) -> list[tuple[int, EvaluationRecord]]:
    """Rank a block's latest evaluations for a quarter, a half-year or a year (the same order: score, then
    timeliness, which for a half-year or year is the mean of its assessable quarters', then code)."""
    quarter = parse_evaluation_period(period, "parent")
    if not block:
        raise InvalidInput([Violation("block", "block is required, e.g. departments or communes", "REQUIRED")])
    records: list[EvaluationRecord] = []
    cursor: str | None = None
    while True:
        page = store.list_evaluations(period=str(quarter), block=block, after=cursor, limit=1000)
        records.extend(page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    by_code = {r.unit_code: r for r in records}
    rows = [Rankable(r.unit_code, r.assessable, r.score, r.timeliness) for r in records]
    return [(position, by_code[row.unit_code]) for position, row in rank(rows)]


def period_summary(store: Store, period: str) -> PeriodSummary:
    """A quarter, half-year or year with its figures (assignments due with their effective dates as of its
    end; units evaluated for it)."""
    found = parse_evaluation_period(period, "name")
    due, evaluated = store.period_figures(start=found.start, end=found.end, period=str(found))
    if isinstance(found, Quarter):
        return PeriodSummary(str(found), found.start.isoformat(), found.end.isoformat(), due, evaluated)
    quarters = tuple(str(q) for q in found.quarters)
    with_evaluations = sum(1 for q in quarters if store.list_evaluations(period=q, limit=1).items)
    return PeriodSummary(str(found), found.start.isoformat(), found.end.isoformat(), due, evaluated,
                         kind=found.kind, quarters=quarters, quarters_evaluated=with_evaluations)


def list_periods(store: Store) -> list[PeriodSummary]:
    """Quarters with data, and the half-years and years of which a quarter has evaluations; newest first (by
    end date, a quarter before the half-year and the year that end with it)."""
    quarters = [period_summary(store, p) for p in store.periods_with_data()]
    evaluated = [q.period for q in quarters if q.units_evaluated]
    longer = [period_summary(store, str(r)) for r in rollups_with_evaluations(evaluated)]
    size = {"quarter": 0, "half_year": 1, "year": 2}
    return sorted([*quarters, *longer], key=lambda p: (_negated(p.end), size[p.kind], p.period))


def _negated(day: str) -> tuple[int, ...]:
    return tuple(-int(part) for part in day.split("-"))


def recommendation_status(value: str) -> RecommendationStatus:
    try:
        return RecommendationStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in RecommendationStatus)
        raise InvalidInput([Violation("filter", f"status {shown(value)} is not known (one of: {allowed})",
                                      "INVALID_FILTER")]) from None


def explain(store: Store, rulesets: Rulesets, record: EvaluationRecord) -> Explanation:
    """Explain a stored evaluation with the ruleset it was made with, on the unit's current facts (for a
    half-year or year: its quarters, `rollups.explain_rollup`)."""
    if isinstance(parse_evaluation_period(record.period, "name"), Rollup):
        return explain_rollup(store, rulesets, record)
    quarter = parse_period(record.period, "name")
    evaluation = evaluation_from_json(record.result_json)
    unit = store.get_units([record.unit_code]).get(record.unit_code)
    if unit is None:
        raise NotFound(f"units/{record.unit_code}")
    facts = gather_facts(store, quarter, [unit])[0]
    # Evaluations made before ruleset versions were kept: the ruleset in force for the quarter.
    stored = store.get_ruleset(record.ruleset_digest) is not None
    try:
        lease = rulesets.lease_digest(record.ruleset_digest) if stored else rulesets.lease(quarter)
        with lease as (ruleset, engine):
            return explain_evaluation(ruleset, engine, facts, evaluation)
    except NoRulesetInForce as missing:
        raise FailedPrecondition(str(missing)) from None
    except (RulesetRefused, EngineError) as error:
        raise EvaluationFailed(f"the rules engine could not explain {record.unit_code}: {error}") from error
