"""Gather what a quarterly report shows: evaluations of the quarter and the one before, rankings per block,
recommendations with their reasons and review status, units, and the rulesets used. No rendering here."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from civicscore import queries
from civicscore.domain.model import RecommendationStatus, Unit
from civicscore.domain.periods import Quarter
from civicscore.domain.scoring import display_score
from civicscore.errors import FailedPrecondition
from civicscore.evaluate import parse_period
from civicscore.ruleset.loader import load_ruleset
from civicscore.store import EvaluationRecord, RecommendationRecord, Store

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

    @property
    def assessable(self) -> tuple[UnitRow, ...]:
        return tuple(u for u in self.units if u.assessable)

    @property
    def average_score(self) -> float | None:
        scores = [display_score(u.score) for u in self.assessable if u.score is not None]
        return sum(scores) / len(scores) if scores else None

    def recommendations_of(self, kind: str) -> tuple[RecommendationRow, ...]:
        return tuple(r for r in self.recommendations if r.kind == kind)


def _evaluations(store: Store, period: str) -> list[EvaluationRecord]:
    found: list[EvaluationRecord] = []
    cursor: str | None = None
    while True:
        page = store.list_evaluations(period=period, after=cursor, limit=_PAGE)
        found.extend(page.items)
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def _recommendations(store: Store, period: str) -> Iterator[RecommendationRecord]:
    cursor: str | None = None
    while True:
        page = store.list_recommendations(period=period, after=cursor, limit=_PAGE)
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


def gather(store: Store, period: str) -> QuarterlyData:
    """Everything the report shows for `period` (`2026-Q3` or `periods/2026-Q3`).

    Raises FailedPrecondition when the quarter has no evaluation yet."""
    quarter: Quarter = parse_period(period, "period")
    current = _evaluations(store, str(quarter))
    if not current:
        raise FailedPrecondition(f"periods/{quarter} has no evaluations yet: run `civicscore evaluate {quarter}` "
                                 "(EvaluationService.EvaluatePeriod) first, then ask for the report again")
    previous_quarter = quarter.previous()
    previous = {r.unit_code: r for r in _evaluations(store, str(previous_quarter))}
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

    grades = _grades(store, current)
    due, _ = store.period_figures(start=quarter.start, end=quarter.end, period=str(quarter))
    return QuarterlyData(
        period=str(quarter), previous_period=str(previous_quarter), start=quarter.start, end=quarter.end,
        assignments_due=due,
        units=tuple(row for b in blocks for row in (*b.ranked, *b.not_assessable)),
        blocks=tuple(blocks), recommendations=tuple(recommendations), grades=grades,
        grade_counts=dict(Counter(r.grade for r in current)),
        previous_grade_counts=dict(Counter(r.grade for r in previous.values())),
        previous_evaluated=len(previous),
        rulesets=tuple(sorted({(r.ruleset_version, r.ruleset_digest) for r in current})),
        data_as_of=max(r.created_at for r in current))
