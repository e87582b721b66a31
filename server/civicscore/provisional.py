"""Reports on demand (báo cáo đột xuất): a quarter to date, evaluated for the report and never stored.

As of a day D of a quarter, every active unit (and official) is evaluated as the quarter's evaluation would
be if the quarter ended on D: assignments due from the quarter's start to D (effective due dates as of the
end of D, Hanoi time), those open and overdue at D, the obstacles open at D, the measurements reported so
far, with the ruleset in force for the quarter. Nothing is written: the quarter's stored evaluations,
recommendations and reviews are untouched, and the report built from these results is marked provisional
(`QuarterlyData.provisional_as_of`).

`ProvisionalStore` shows the report's code (`report.data.gather`) the quarter's results as if they were
stored, and passes everything else through to the real store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from civicscore.domain.model import RecommendationStatus
from civicscore.domain.periods import InvalidPeriod, Quarter, QuarterToDate
from civicscore.engine.port import EngineError
from civicscore.errors import EvaluationFailed, FailedPrecondition, InvalidInput, Violation, shown
from civicscore.evaluate import (
    active_units,
    evaluate_officials,
    gather_facts,
    stops_when_cancelled,
    to_new_evaluation,
)
from civicscore.rulesets import NoRulesetInForce, RulesetRefused, Rulesets
from civicscore.store import EvaluationRecord, RecommendationRecord, Store
from civicscore.store.base import OfficialEvaluationRecord, Page
from civicscore.store.cursors import decode_cursor, encode_cursor
from civicscore.validation import hanoi_today, parse_date


def report_quarter(period: str) -> Quarter:
    """The quarter of a report on demand (`periods/2026-Q3` or `2026-Q3`); a half-year or year has none."""
    if not period:
        raise InvalidInput([Violation("period", "period is required, e.g. periods/2026-Q3", "REQUIRED")])
    try:
        return Quarter.parse(period.removeprefix("periods/"))
    except InvalidPeriod:
        raise InvalidInput([Violation("as_of", f"a report on demand is of a quarter; {shown(period)} is not one "
                                      "(ask for the report of the quarter containing the day, e.g. "
                                      "periods/2026-Q3)", "NOT_A_QUARTER")]) from None


def parse_as_of(value: str, quarter: Quarter, now: dt.datetime, field: str = "as_of") -> dt.date:
    """The day of a report on demand: a date within `quarter`, not after today (Hanoi)."""
    day = parse_date(value)
    if day is None:
        raise InvalidInput([Violation(field, f"{field} {shown(value)} is not a date; write YYYY-MM-DD, e.g. "
                                      "2026-08-15", "INVALID_DATE")])
    if not quarter.start <= day <= quarter.end:
        raise InvalidInput([Violation(field, f"{field} {day} is not in {quarter} ({quarter.start} to "
                                      f"{quarter.end}); a report on demand is of the quarter containing its day",
                                      "NOT_IN_PERIOD")])
    today = hanoi_today(now)
    if day > today:
        raise InvalidInput([Violation(field, f"{field} {day} is after today ({today}, Hanoi); a report on demand "
                                      "shows what is known up to a day that has begun", "IN_THE_FUTURE")])
    return day


@dataclass(frozen=True)
class Results:
    """A quarter's results to date: as stored records, in unit code (and official id) order."""

    evaluations: tuple[EvaluationRecord, ...]
    recommendations: tuple[RecommendationRecord, ...]
    official_evaluations: tuple[OfficialEvaluationRecord, ...]
    official_recommendations: tuple[RecommendationRecord, ...]
    due: int


def evaluate_to_date(store: Store, rulesets: Rulesets, quarter: Quarter, as_of: dt.date, *, now: dt.datetime
                     ) -> Results:
    """Evaluate every active unit and official for `quarter` as if it ended on `as_of`; nothing is stored."""
    cut = QuarterToDate(quarter, as_of)
    try:
        rulesets.reconcile()
        with rulesets.lease(quarter) as (_, engine):
            unit_list = list(active_units(store))
            units = {u.code: u for u in unit_list}
            facts = gather_facts(store, cut, unit_list)
            with stops_when_cancelled(f"the report on demand of {quarter} as of {as_of}"):
                results = engine.evaluate_encoded(facts)
            people = evaluate_officials(store, engine, cut, units=units, facts=facts, results=results, now=now)
    except NoRulesetInForce as missing:
        raise FailedPrecondition(str(missing)) from None
    except (RulesetRefused, EngineError) as failed:
        raise EvaluationFailed(f"the rules engine could not evaluate {quarter} as of {as_of}: {failed}") from failed
    evaluations: list[EvaluationRecord] = []
    recommendations: list[RecommendationRecord] = []
    for result in results:
        unit = units[result.unit_code]
        new = to_new_evaluation(result, unit, now)
        evaluations.append(EvaluationRecord(
            unit_code=new.unit_code, period=new.period, revision=0, result_json=new.result_json,
            result_digest=new.result_digest, ruleset_version=new.ruleset_version, ruleset_digest=new.ruleset_digest,
            inputs_digest=new.inputs_digest, created_at=now, block=unit.block, unit_name_vi=unit.name_vi,
            assessable=new.assessable, score=new.score, grade=new.grade, timeliness=new.timeliness, flags=new.flags))
        recommendations.extend(new.recommendations)
    officials = store.get_officials([p.official_id for p in people])
    official_evaluations = tuple(OfficialEvaluationRecord(
        official_id=p.official_id, period=p.period, revision=0, unit_code=p.unit_code, result_json=p.result_json,
        result_digest=p.result_digest, ruleset_version=p.ruleset_version, ruleset_digest=p.ruleset_digest,
        inputs_digest=p.inputs_digest, flags=p.flags, created_at=now,
        official_name=officials[p.official_id].name if p.official_id in officials else "")
        for p in people)
    names = {e.official_id: e.official_name for e in official_evaluations}
    official_recommendations = tuple(
        RecommendationRecord(**{**r.__dict__, "official_name": names.get(r.official_id, ""),
                                "unit_name_vi": units[r.unit_code].name_vi if r.unit_code in units else ""})
        for p in people for r in p.recommendations)
    due, _ = store.period_figures(start=quarter.start, end=as_of, period=str(quarter))
    return Results(tuple(sorted(evaluations, key=lambda e: e.unit_code)),
                   tuple(sorted(recommendations, key=lambda r: (r.unit_code, r.kind, r.level, r.flag))),
                   tuple(sorted(official_evaluations, key=lambda e: e.official_id)),
                   tuple(sorted(official_recommendations, key=lambda r: (r.unit_code, r.official_id, r.flag))), due)


def _page(items: Sequence[Any], key: Any, *, listing: str, after: str | None, limit: int) -> Page[Any]:
    """A page of `items` (sorted by `key`), after a cursor of this listing."""
    start = 0
    if after is not None:
        last = decode_cursor(listing, after, 1)
        start = next((i for i, item in enumerate(items) if (key(item),) > tuple(last)), len(items))
    chosen = list(items[start:start + limit + 1])
    if len(chosen) <= limit:
        return Page(items=chosen, next_cursor=None)
    return Page(items=chosen[:limit], next_cursor=encode_cursor(listing, (key(chosen[limit - 1]),)))


class ProvisionalStore:
    """The real store, but for `period` the results of `evaluate_to_date` (read-only, for the report)."""

    def __init__(self, store: Store, period: str, results: Results) -> None:
        self._store = store
        self._period = period
        self._results = results

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def list_evaluations(self, *, period: str, block: str | None = None, grade: str | None = None,
                         unit_code: str | None = None, after: str | None = None, limit: int = 100
                         ) -> Page[EvaluationRecord]:
        if period != self._period:
            return self._store.list_evaluations(period=period, block=block, grade=grade, unit_code=unit_code,
                                                after=after, limit=limit)
        found = [e for e in self._results.evaluations if (block is None or e.block == block)
                 and (grade is None or e.grade == grade) and (unit_code is None or e.unit_code == unit_code)]
        return _page(found, lambda e: e.unit_code, listing="provisional_evaluations", after=after, limit=limit)

    def list_recommendations(self, *, period: str, kind: str | None = None, flag: str | None = None,
                             status: RecommendationStatus | None = None, unit_code: str | None = None,
                             after: str | None = None, limit: int = 100) -> Page[RecommendationRecord]:
        if period != self._period:
            return self._store.list_recommendations(period=period, kind=kind, flag=flag, status=status,
                                                    unit_code=unit_code, after=after, limit=limit)
        found = [r for r in self._results.recommendations if (kind is None or r.kind == kind)
                 and (flag is None or r.flag == flag) and (unit_code is None or r.unit_code == unit_code)
                 and (status is None or r.status == status)]
        return _page(found, lambda r: f"{r.unit_code}~{r.kind}~{r.level}~{r.flag}",
                     listing="provisional_recommendations", after=after, limit=limit)

    def list_official_evaluations(self, *, period: str, unit_codes: Sequence[str] | None = None,
                                  flagged: bool | None = None, after: str | None = None, limit: int = 100
                                  ) -> Page[OfficialEvaluationRecord]:
        if period != self._period:
            return self._store.list_official_evaluations(period=period, unit_codes=unit_codes, flagged=flagged,
                                                         after=after, limit=limit)
        found = [e for e in self._results.official_evaluations
                 if (unit_codes is None or e.unit_code in unit_codes) and (flagged is None or bool(e.flags) == flagged)]
        return _page(found, lambda e: e.official_id, listing="provisional_official_evaluations", after=after,
                     limit=limit)

    def list_official_recommendations(
        self, *, period: str, kind: str | None = None, flag: str | None = None,
        status: RecommendationStatus | None = None, unit_codes: Sequence[str] | None = None,
        official_id: str | None = None, after: str | None = None, limit: int = 100,
    ) -> Page[RecommendationRecord]:
        if period != self._period:
            return self._store.list_official_recommendations(
                period=period, kind=kind, flag=flag, status=status, unit_codes=unit_codes, official_id=official_id,
                after=after, limit=limit)
        found = [r for r in self._results.official_recommendations
                 if (unit_codes is None or r.unit_code in unit_codes) and (kind is None or r.kind == kind)
                 and (flag is None or r.flag == flag) and (official_id is None or r.official_id == official_id)]
        return _page(found, lambda r: f"{r.unit_code}~{r.official_id}~{r.flag}",
                     listing="provisional_official_recommendations", after=after, limit=limit)

    def period_figures(self, *, start: dt.date, end: dt.date, period: str) -> tuple[int, int]:
        if period != self._period:
            return self._store.period_figures(start=start, end=end, period=period)
        return self._results.due, len(self._results.evaluations)

