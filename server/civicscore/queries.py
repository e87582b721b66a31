"""Read use cases: evaluations, rankings, recommendations, periods."""

from __future__ import annotations

from dataclasses import dataclass

from civicscore.domain.model import RecommendationStatus
from civicscore.domain.ranking import Rankable, rank
from civicscore.errors import InvalidInput, NotFound, Violation
from civicscore.evaluate import parse_period
from civicscore.store import EvaluationRecord, Store


@dataclass(frozen=True)
class PeriodSummary:
    period: str
    start: str
    end: str
    assignments_due: int
    units_evaluated: int


def get_evaluation(store: Store, *, unit_code: str, period: str, revision: int) -> EvaluationRecord:
    quarter = parse_period(period, "name")
    if revision < 0:
        raise InvalidInput([Violation("revision", "revision must be 0 (latest) or a positive number", "OUT_OF_RANGE")])
    record = store.get_evaluation(unit_code=unit_code, period=str(quarter), revision=revision)
    if record is None:
        what = f"periods/{quarter}/evaluations/{unit_code}" + (f" revision {revision}" if revision else "")
        raise NotFound(what, f"{what} does not exist: evaluate the period first or check the unit code")
    return record


def rankings(store: Store, *, period: str, block: str) -> list[tuple[int, EvaluationRecord]]:
    """Rank a block's latest evaluations for a quarter."""
    quarter = parse_period(period, "parent")
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
    quarter = parse_period(period, "name")
    due, evaluated = store.period_figures(start=quarter.start, end=quarter.end, period=str(quarter))
    return PeriodSummary(str(quarter), quarter.start.isoformat(), quarter.end.isoformat(), due, evaluated)


def list_periods(store: Store) -> list[PeriodSummary]:
    return [period_summary(store, p) for p in store.periods_with_data()]


def recommendation_status(value: str) -> RecommendationStatus:
    try:
        return RecommendationStatus(value)
    except ValueError:
        allowed = ", ".join(s.value for s in RecommendationStatus)
        raise InvalidInput([Violation("filter", f"status {value!r} is not known (one of: {allowed})",
                                      "INVALID_FILTER")]) from None
