"""Gather what a quarterly report shows: evaluations of the quarter and the one before, rankings per block,
recommendations with their reasons and review status, the extensions approved in the quarter, units, and
the rulesets used. No rendering here."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from civicscore import queries
from civicscore.domain.model import ExtensionStatus, RecommendationStatus, Unit
from civicscore.domain.periods import HANOI, Quarter, QuarterToDate, Rollup
from civicscore.domain.scoring import display_score
from civicscore.errors import FailedPrecondition
from civicscore.report.obstacles import ObstacleRow, obstacle_rows
from civicscore.rollups import latest_evaluations, parse_evaluation_period
from civicscore.ruleset.loader import load_ruleset
from civicscore.store import EvaluationRecord, RecommendationRecord, Store
from civicscore.store.base import ExtensionRecord

# Grades in display order when the ruleset cannot be read (evaluations made before versions were kept).
KNOWN_GRADES = ("excellent", "good", "completed", "not_completed", "not_assessable")
# Blocks in display order; any other block follows, by name.
KNOWN_BLOCKS = ("departments", "communes")
_PAGE = 1000


@dataclass(frozen=True)
class GradeInfo:
    grade: str
    label_vi: str
    label_en: str


@dataclass(frozen=True)
class UnitRow:
    """One unit's evaluation for the quarter, with its rank in its block and last quarter's result."""

    code: str
    name_vi: str
    name_en: str
    block: str
    rank: int  # 0 when not assessable
    assessable: bool
    score: float | None
    score_display: str
    grade: str
    grade_vi: str
    grade_en: str
    timeliness: float
    flags: tuple[str, ...]
    due: int
    completed: int
    on_time: int
    late: int
    open_overdue: int
    revision: int
    ruleset_version: str
    previous_score: float | None
    previous_grade: str

    @property
    def score_change(self) -> float | None:
        """Displayed score minus last quarter's, when both exist."""
        if self.score is None or self.previous_score is None:
            return None
        return display_score(self.score) - display_score(self.previous_score)


@dataclass(frozen=True)
class BlockRanking:
    block: str
    ranked: tuple[UnitRow, ...]  # assessable units, by rank
    not_assessable: tuple[UnitRow, ...]  # by code


@dataclass(frozen=True)
class ReasonRow:
    rule_id: str
    source: str
    text_vi: str
    text_en: str


@dataclass(frozen=True)
class RecommendationRow:
    unit_code: str
    unit_name_vi: str
    unit_name_en: str
    flag: str
    kind: str  # commendation | criticism
    level: int
    label_vi: str
    label_en: str
    status: str
    evaluation_revision: int
    reasons: tuple[ReasonRow, ...]


@dataclass(frozen=True)
class IndividualRow:
    """A recommendation about an official (personal data), with their position at the quarter's end."""

    period: str  # the quarter it was raised for
    official_id: str
    name: str
    position: str  # head | deputy | officer | "" (none held at the quarter's end)
    unit_code: str  # the unit through which they are reached
    unit_name_vi: str
    unit_name_en: str
    flag: str
    kind: str
    label_vi: str
    label_en: str
    status: str
    reasons: tuple[ReasonRow, ...]


@dataclass(frozen=True)
class ExtensionRow:
    """An extension approved in the quarter, with the due date its assignment had at the quarter's end."""

    name: str  # assignments/{id}/extensions/{n}
    unit_code: str
    unit_name_vi: str
    unit_name_en: str
    assignment_id: str
    title: str
    original_due_on: dt.date
    approved_due_on: dt.date
    effective_due_on: dt.date  # as of the quarter's end: a later approval in the quarter may have replaced it
    approved_at: dt.datetime
    reason: str
    decision_reason: str


@dataclass(frozen=True)
class QuarterCell:
    """One unit's quarter in a half-year or year report: the quarterly result its period's result used."""

    period: str
    evaluated: bool
    assessable: bool = False
    score: float | None = None
    grade: str = ""
    grade_vi: str = ""
    grade_en: str = ""


@dataclass(frozen=True)
class QuarterColumn:
    """One quarter of a half-year or year, over the units of the report: how many of them it evaluated and
    graded, their average displayed score, and the rulesets it was evaluated with."""

    period: str
    evaluated: int
    assessable: int
    average_score: float | None
    rulesets: tuple[str, ...]


@dataclass(frozen=True)
class QuarterlyData:
    period: str
    previous_period: str
    start: dt.date
    end: dt.date
    assignments_due: int
    units: tuple[UnitRow, ...]  # every evaluated unit, by block order then rank (unassessable last)
    blocks: tuple[BlockRanking, ...]
    recommendations: tuple[RecommendationRow, ...]  # commendations first, then criticisms; by unit code
    grades: tuple[GradeInfo, ...]
    grade_counts: dict[str, int]
    previous_grade_counts: dict[str, int]
    previous_evaluated: int
    rulesets: tuple[tuple[str, str], ...]  # (version, digest) of the evaluations, sorted
    data_as_of: dt.datetime  # the newest stored evaluation revision of the quarter
    extensions: tuple[ExtensionRow, ...] = ()  # approved in the quarter (Hanoi time), in order of decision
    # Obstacles (khó khăn, vướng mắc): open at the period's end, oldest first; resolved within the period.
    open_obstacles: tuple[ObstacleRow, ...] = ()
    resolved_obstacles: tuple[ObstacleRow, ...] = ()
    # A half-year or year: its kind (`half_year`, `year`; `quarter` for a quarter), its quarters, and what each
    # unit's result was made of, by unit code (see `rollup_quarters`).
    period_kind: str = "quarter"
    quarters: tuple[QuarterColumn, ...] = ()
    quarter_cells: dict[str, tuple[QuarterCell, ...]] = field(default_factory=dict)
    # Recommendations about officials of the period's quarters (personal data): shown only to readers with
    # `personal.read` (`individuals_shown`), commendations first, then by quarter, unit and name.
    individuals: tuple[IndividualRow, ...] = ()
    individuals_shown: bool = False
    # A report on demand (báo cáo đột xuất): the quarter to this day, evaluated for the report, not stored.
    provisional_as_of: dt.date | None = None

    def individuals_of(self, kind: str) -> tuple[IndividualRow, ...]:
        return tuple(r for r in self.individuals if r.kind == kind)

    def extensions_of(self, unit_code: str) -> int:
        """How many extensions of the unit's assignments were approved in the quarter."""
        return sum(1 for e in self.extensions if e.unit_code == unit_code)

    @property
    def assessable(self) -> tuple[UnitRow, ...]:
        return tuple(u for u in self.units if u.assessable)

    @property
    def average_score(self) -> float | None:
        scores = [display_score(u.score) for u in self.assessable if u.score is not None]
        return sum(scores) / len(scores) if scores else None

    def recommendations_of(self, kind: str) -> tuple[RecommendationRow, ...]:
        return tuple(r for r in self.recommendations if r.kind == kind)


def _recommendations(store: Store, period: str) -> Iterator[RecommendationRecord]:
    cursor: str | None = None
    while True:
        page = store.list_recommendations(period=period, after=cursor, limit=_PAGE)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _approved_extensions(store: Store, quarter: Quarter | QuarterToDate | Rollup) -> Iterator[ExtensionRecord]:
    """Extensions approved within the quarter (Hanoi time), each with its assignment's due date at the end."""
    span = (dt.datetime.combine(quarter.start, dt.time(), HANOI), quarter.closes_at)
    cursor: str | None = None
    while True:
        page = store.list_extensions(status=ExtensionStatus.APPROVED, decided=span, as_of=quarter.closes_at,
                                     after=cursor, limit=_PAGE)
        yield from page.items
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


def _grades(store: Store, records: list[EvaluationRecord]) -> tuple[GradeInfo, ...]:
    """Grades in the order of the ruleset used (the newest digest), then any other grade seen."""
    defined: list[GradeInfo] = []
    digests = sorted({r.ruleset_digest for r in records})
    for digest in digests[-1:]:
        stored = store.get_ruleset(digest)
        if stored is None:
            continue
        try:
            ruleset = load_ruleset(stored.files)
        except Exception:  # a stored ruleset that no longer loads: fall back to the evaluations' labels
            continue
        defined = [GradeInfo(g.grade, g.label_vi, g.label_en) for g in ruleset.grades]
    seen = {g.grade for g in defined}
    labels: dict[str, GradeInfo] = {}
    for record in records:
        if record.grade not in seen and record.grade not in labels:
            data = json.loads(record.result_json)
            labels[record.grade] = GradeInfo(record.grade, data["grade_vi"], data["grade_en"])

    def order(grade: str) -> tuple[int, str]:
        return (KNOWN_GRADES.index(grade) if grade in KNOWN_GRADES else len(KNOWN_GRADES), grade)

    return (*defined, *(labels[g] for g in sorted(labels, key=order)))


def _block_order(block: str) -> tuple[int, str]:
    return (KNOWN_BLOCKS.index(block) if block in KNOWN_BLOCKS else len(KNOWN_BLOCKS), block)


def _row(record: EvaluationRecord, rank: int, unit: Unit | None, previous: EvaluationRecord | None) -> UnitRow:
    data = json.loads(record.result_json)
    counts = data["counts"]
    score = data["score"]
    return UnitRow(
        code=record.unit_code, name_vi=unit.name_vi if unit else record.unit_name_vi,
        name_en=unit.name_en if unit else "", block=record.block, rank=rank if record.assessable else 0,
        assessable=record.assessable, score=score,
        score_display="" if score is None else f"{display_score(score):.2f}",
        grade=data["grade"], grade_vi=data["grade_vi"], grade_en=data["grade_en"], timeliness=record.timeliness,
        flags=tuple(f["flag"] for f in data["flags"]), due=counts["due"], completed=counts["completed"],
        on_time=counts["on_time"], late=counts["late"], open_overdue=data["open_overdue"],
        revision=record.revision, ruleset_version=record.ruleset_version,
        previous_score=previous.score if previous is not None and previous.assessable else None,
        previous_grade=previous.grade if previous is not None else "")


def individual_rows(store: Store, quarters: Sequence[str], names: dict[str, tuple[str, str]],
                    readable: frozenset[str] | None) -> tuple[IndividualRow, ...]:
    """The recommendations about officials (not superseded) of `quarters`, of the units in `readable` (None:
    every unit), with each official's position at the quarter's end from their evaluation."""
    rows: list[IndividualRow] = []
    for quarter in quarters:
        records = []
        cursor: str | None = None
        while True:
            page = store.list_official_recommendations(
                period=quarter, unit_codes=sorted(readable) if readable is not None else None, after=cursor,
                limit=_PAGE)
            records.extend(page.items)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        if not records:
            continue
        positions = {}
        cursor = None
        while True:
            evaluations = store.list_official_evaluations(period=quarter, flagged=True, after=cursor, limit=_PAGE)
            positions.update({e.official_id: json.loads(e.result_json)["position"] for e in evaluations.items})
            if evaluations.next_cursor is None:
                break
            cursor = evaluations.next_cursor
        missing = sorted({r.unit_code for r in records} - set(names))
        names.update({code: (u.name_vi, u.name_en) for code, u in store.get_units(missing).items()})
        for rec in records:
            vi, en = names.get(rec.unit_code, (rec.unit_name_vi or rec.unit_code, ""))
            rows.append(IndividualRow(
                period=quarter, official_id=rec.official_id, name=rec.official_name,
                position=positions.get(rec.official_id, ""), unit_code=rec.unit_code, unit_name_vi=vi,
                unit_name_en=en, flag=rec.flag, kind=rec.kind, label_vi=rec.label_vi, label_en=rec.label_en,
                status=str(rec.status.value),
                reasons=tuple(ReasonRow(x["rule_id"], x["source"], x["reason_vi"], x["reason_en"])
                              for x in json.loads(rec.reasons_json))))
    rows.sort(key=lambda r: (r.kind != "commendation", r.period, r.unit_code, r.name, r.official_id, r.flag))
    return tuple(rows)


def gather(store: Store, period: str, *, personal: bool = False, readable: frozenset[str] | None = None,
           as_of: dt.date | None = None) -> QuarterlyData:
    """Everything the report shows for `period` (`2026-Q3` or `periods/2026-Q3`; a half-year `2026-H1` or a
    year `2026` against the period of the same kind before it, with each unit's quarters). With `personal`
    (the reader may read personal data), the recommendations about officials of the units in `readable`
    (None: all) too. With `as_of`, a quarter to that day (a report on demand: `store` is then a
    `provisional.ProvisionalStore` holding the quarter's results to date).

    Raises FailedPrecondition when the quarter has no evaluation yet."""
    quarter = parse_evaluation_period(period, "period")
    bounds: Quarter | QuarterToDate | Rollup = quarter
    if as_of is not None and isinstance(quarter, Quarter):
        bounds = QuarterToDate(quarter, as_of)
    current = latest_evaluations(store, str(quarter))
    if not current:
        raise FailedPrecondition(f"periods/{quarter} has no evaluations yet: run `civicscore evaluate {quarter}` "
                                 "(EvaluationService.EvaluatePeriod) first, then ask for the report again")
    previous_quarter = quarter.previous()
    previous = {r.unit_code: r for r in latest_evaluations(store, str(previous_quarter))}
    units = store.get_units(sorted({r.unit_code for r in current}))

    blocks: list[BlockRanking] = []
    for block in sorted({r.block for r in current}, key=_block_order):
        ranked = queries.rankings(store, period=str(quarter), block=block)
        rows = [_row(record, position, units.get(record.unit_code), previous.get(record.unit_code))
                for position, record in ranked]
        blocks.append(BlockRanking(
            block=block, ranked=tuple(r for r in rows if r.assessable),
            not_assessable=tuple(sorted((r for r in rows if not r.assessable), key=lambda r: r.code))))

    names = {code: (u.name_vi, u.name_en) for code, u in units.items()}
    recommendations: list[RecommendationRow] = []
    for rec in _recommendations(store, str(quarter)):
        if rec.status == RecommendationStatus.SUPERSEDED:
            continue
        reasons = tuple(ReasonRow(x["rule_id"], x["source"], x["reason_vi"], x["reason_en"])
                        for x in json.loads(rec.reasons_json))
        name_vi, name_en = names.get(rec.unit_code, (rec.unit_name_vi, ""))
        recommendations.append(RecommendationRow(
            unit_code=rec.unit_code, unit_name_vi=name_vi, unit_name_en=name_en, flag=rec.flag, kind=rec.kind,
            level=rec.level, label_vi=rec.label_vi, label_en=rec.label_en, status=str(rec.status.value),
            evaluation_revision=rec.evaluation_revision, reasons=reasons))
    recommendations.sort(key=lambda r: (r.kind != "commendation", r.unit_code, r.level, r.flag))

    approved = list(_approved_extensions(store, bounds))
    names.update({code: (u.name_vi, u.name_en) for code, u in store.get_units(
        sorted({e.unit_code for e in approved} - set(names))).items()})
    extensions = tuple(sorted((ExtensionRow(
        name=f"assignments/{e.assignment_id}/extensions/{e.extension_id}", unit_code=e.unit_code,
        unit_name_vi=names.get(e.unit_code, (e.unit_code, ""))[0], unit_name_en=names.get(e.unit_code, ("", ""))[1],
        assignment_id=e.assignment_id, title=e.assignment_title, original_due_on=e.original_due_on,
        approved_due_on=e.requested_due_on, effective_due_on=e.effective_due_on,
        approved_at=e.decided_at or e.requested_at, reason=e.reason, decision_reason=e.decision_reason)
        for e in approved), key=lambda row: (row.approved_at, row.name)))
    quarters_in = [str(q) for q in quarter.quarters] if isinstance(quarter, Rollup) else [str(quarter)]
    individuals = individual_rows(store, quarters_in, names, readable) if personal else ()
    open_obstacles, resolved_obstacles = obstacle_rows(store, bounds, names)
    grades = _grades(store, current)
    due, _ = store.period_figures(start=bounds.start, end=bounds.end, period=str(quarter))
    return QuarterlyData(
        period=str(quarter), previous_period=str(previous_quarter), start=bounds.start, end=bounds.end,
        assignments_due=due,
        units=tuple(row for b in blocks for row in (*b.ranked, *b.not_assessable)),
        blocks=tuple(blocks), recommendations=tuple(recommendations), grades=grades,
        grade_counts=dict(Counter(r.grade for r in current)),
        previous_grade_counts=dict(Counter(r.grade for r in previous.values())),
        previous_evaluated=len(previous),
        rulesets=tuple(sorted({(r.ruleset_version, r.ruleset_digest) for r in current})),
        data_as_of=max(r.created_at for r in current), extensions=extensions,
        open_obstacles=open_obstacles, resolved_obstacles=resolved_obstacles, individuals=individuals,
        individuals_shown=personal, provisional_as_of=as_of,
        **(rollup_quarters(quarter, current) if isinstance(quarter, Rollup) else {}))


def rollup_quarters(rollup: Rollup, current: list[EvaluationRecord]) -> dict[str, Any]:
    """What a half-year or year report adds: each unit's quarters (from its stored result) and a summary of
    each quarter over the report's units."""
    cells: dict[str, tuple[QuarterCell, ...]] = {}
    for record in current:
        used = {r["period"]: r for r in (json.loads(record.result_json).get("rollup") or {}).get("results", [])}
        cells[record.unit_code] = tuple(
            QuarterCell(str(q), True, used[str(q)]["assessable"], used[str(q)]["score"], used[str(q)]["grade"],
                        used[str(q)]["grade_vi"], used[str(q)]["grade_en"])
            if str(q) in used else QuarterCell(str(q), False)
            for q in rollup.quarters)
    columns = []
    for index, quarter in enumerate(rollup.quarters):
        of_quarter = [unit[index] for unit in cells.values() if unit[index].evaluated]
        scores = [display_score(c.score) for c in of_quarter if c.assessable and c.score is not None]
        versions = sorted({r["ruleset_version"] for record in current
                           for r in (json.loads(record.result_json).get("rollup") or {}).get("results", [])
                           if r["period"] == str(quarter)})
        columns.append(QuarterColumn(str(quarter), len(of_quarter), sum(1 for c in of_quarter if c.assessable),
                                     sum(scores) / len(scores) if scores else None, tuple(versions)))
    return {"period_kind": rollup.kind, "quarters": tuple(columns), "quarter_cells": cells}
