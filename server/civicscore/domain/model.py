"""Domain records shared by every layer.

Plain frozen dataclasses: the store maps rows to them, the api layer maps
protobuf messages to them, the engine takes facts built from them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from civicscore.domain.canonical import OMITTED_WHEN_EMPTY
from civicscore.domain.obstacles import OpenObstacle


class UnitKind(StrEnum):
    DEPARTMENT = "department"
    WARD = "ward"
    COMMUNE = "commune"
    DISTRICT = "district"


class Area(StrEnum):
    PAR = "par"
    DX = "dx"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class OutcomeStatus(StrEnum):
    COMPLETED = "completed"
    IN_PROGRESS = "in_progress"
    CANCELLED = "cancelled"


class Quality(StrEnum):
    ACCEPTED = "accepted"
    RETURNED_FOR_REWORK = "returned_for_rework"


class RecommendationStatus(StrEnum):
    PROPOSED = "proposed"
    APPROVED = "approved"
    REJECTED = "rejected"
    DEFERRED = "deferred"
    SUPERSEDED = "superseded"


class ExtensionStatus(StrEnum):
    """An extension request: pending until the committee approves or refuses it; a newer request for the
    same assignment made while it is pending supersedes it. Approved, refused and superseded are final."""

    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    SUPERSEDED = "superseded"


@dataclass(frozen=True)
class Unit:
    code: str
    name_vi: str
    name_en: str
    kind: UnitKind
    block: str
    parent_code: str | None = None
    active: bool = True
    under_review_periods: tuple[str, ...] = ()


@dataclass(frozen=True)
class Assignment:
    assignment_id: str
    unit_code: str
    title: str
    area: Area
    assigned_on: dt.date
    due_on: dt.date
    source_document: str = ""
    priority: Priority = Priority.NORMAL
    # The official who leads it (người chủ trì), by id; None when none is named.
    lead_official: str | None = field(default=None, metadata=OMITTED_WHEN_EMPTY)


class Outcome(NamedTuple):
    """One immutable report about an assignment; `outcome_id` is its idempotency key.

    A NamedTuple rather than a frozen dataclass: ingest builds thousands per
    request and a NamedTuple is four times cheaper to create.
    """

    outcome_id: str
    assignment_id: str
    status: OutcomeStatus
    reported_at: dt.datetime  # timezone-aware, UTC
    reporting_system: str
    completed_on: dt.date | None = None
    quality: Quality | None = None
    reminders: int = 0
    note: str = ""


@dataclass(frozen=True)
class Measurement:
    unit_code: str
    period: str
    indicator: str
    numerator: float
    denominator: float
    reported_at: dt.datetime
    reporting_system: str


@dataclass(frozen=True)
class Target:
    """A target for an indicator; exactly one of `unit_code` and `unit_kind` is set."""

    indicator: str
    period: str
    value: float
    unit_code: str | None = None
    unit_kind: UnitKind | None = None


@dataclass(frozen=True)
class UpsertCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class OutcomeWriteResult:
    """Result of an atomic outcome write.

    When `conflicts` is non-empty nothing was written: each entry is the batch
    index and outcome_id of an outcome whose id exists with other content.
    """

    accepted: int = 0
    duplicates: int = 0
    conflicts: tuple[tuple[int, str], ...] = ()


# ---- facts handed to the engine -------------------------------------------


@dataclass(frozen=True)
class TaskCounts:
    due: int = 0
    completed: int = 0
    on_time: int = 0
    late: int = 0
    reworked: int = 0


@dataclass(frozen=True)
class OverdueTask:
    """An assignment due before the quarter's end and not completed by then."""

    assignment_id: str
    due_on: dt.date
    days_overdue: int
    reminders: int


@dataclass(frozen=True)
class ExtendedTask:
    """An assignment among a quarter's inputs whose due date an approved extension moved, as of the
    quarter's end: `due_on` is the effective date the inputs used, `extension_id` the approval that set it."""

    assignment_id: str
    original_due_on: dt.date
    due_on: dt.date
    extension_id: int


@dataclass(frozen=True)
class MeasurementFact:
    """A unit's indicator value; `target` is the API-provided target (unit, then kind), if any."""

    indicator: str
    numerator: float
    denominator: float
    target: float | None = None


@dataclass(frozen=True)
class PriorQuarter:
    period: str
    grade: str
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnitFacts:
    """Everything the rules see about one unit in one quarter."""

    unit_code: str
    unit_kind: UnitKind
    block: str
    period: str
    counts: TaskCounts
    overdue: tuple[OverdueTask, ...] = ()
    measurements: tuple[MeasurementFact, ...] = ()
    under_review: bool = False
    previous: PriorQuarter | None = None
    # Assignments of the counts or the overdue list (or due in the quarter before an extension moved them
    # out) whose effective due date differs from their own; left out of the inputs digest while empty, so
    # that the digests of units without extensions stay those stored before extensions existed.
    extended: tuple[ExtendedTask, ...] = field(default=(), metadata=OMITTED_WHEN_EMPTY)
    # Obstacles the unit reported that are still open at the quarter's end, oldest first; left out of the
    # inputs digest while empty, so that the digests of units without obstacles stay those stored before.
    obstacles: tuple[OpenObstacle, ...] = field(default=(), metadata=OMITTED_WHEN_EMPTY)


@dataclass(frozen=True)
class QuarterResult:
    """A unit's stored evaluation of one quarter (its latest revision), as a half-year or year uses it:
    made under the ruleset in force for that quarter, never re-run. `criticism_flags` are the flags it
    raised whose kind is `criticism` in that ruleset (reminder, criticism, explanation required in the
    default rules); `timeliness` is the stored timeliness (0 when nothing was due)."""

    period: str
    revision: int
    assessable: bool
    score: float | None
    grade: str
    grade_vi: str
    grade_en: str
    timeliness: float
    flags: tuple[str, ...]
    criticism_flags: tuple[str, ...]
    counts: TaskCounts
    open_overdue: int
    ruleset_version: str
    ruleset_digest: str
    result_digest: str


@dataclass(frozen=True)
class RollupFacts:
    """Everything the rules see about one unit over a half-year or a year: its stored quarterly
    evaluations (`results`, in quarter order; a quarter of `quarters` missing from them was not
    evaluated for the unit) and whether it is under review at the period's end (its last quarter)."""

    unit_code: str
    unit_kind: UnitKind
    block: str
    period: str  # `2026-H1`, `2026-H2` or `2026`
    span: str  # `half_year` or `year`
    quarters: tuple[str, ...]  # every quarter of the period, in order
    results: tuple[QuarterResult, ...]
    under_review: bool = False


# ---- results coming back from the engine ----------------------------------


@dataclass(frozen=True)
class IndicatorScore:
    indicator: str
    name_vi: str
    name_en: str
    value: float
    target: float | None
    attainment: float
    weight: float
    points: float
    counted: bool


@dataclass(frozen=True)
class FiredRule:
    rule_id: str
    source: str  # "file.yaml:LINE"
    fact: str  # "unit" or "assignment <id>"
    values: dict[str, float] = field(default_factory=dict)
    reason_vi: str = ""
    reason_en: str = ""
    flag: str = ""


@dataclass(frozen=True)
class FlagResult:
    flag: str
    kind: str  # "commendation" | "criticism"
    level: int
    label_vi: str
    label_en: str
    reasons: tuple[FiredRule, ...]


@dataclass(frozen=True)
class RollupSummary:
    """How a half-year or year result was reached from its quarters (see DEFAULT-RULES, "Half-year and
    year"): the score is the mean of the assessable quarters' unrounded scores; the period is assessable
    when at least `min_assessable_quarters` of its `quarters` are; `timeliness` is the mean of the same
    quarters' timeliness (None without an assessable quarter); `missing` names the quarters with no
    stored evaluation of the unit."""

    span: str
    quarters: tuple[str, ...]
    results: tuple[QuarterResult, ...]
    missing: tuple[str, ...]
    assessable_quarters: int
    min_assessable_quarters: int
    excellent_quarters: int
    criticism_quarters: int
    timeliness: float | None
    under_review: bool


@dataclass(frozen=True)
class UnitEvaluation:
    """The engine's verdict on one unit and quarter (or half-year or year: then `rollup` says how it was
    summed up from the quarters, `counts` are the quarters' counts added up and `open_overdue` that of the
    last quarter evaluated). `score` is None when nothing was due."""

    unit_code: str
    period: str
    assessable: bool
    score: float | None
    grade: str
    grade_vi: str
    grade_en: str
    counts: TaskCounts
    open_overdue: int
    indicators: tuple[IndicatorScore, ...]
    penalty: float
    fired_rules: tuple[FiredRule, ...]
    flags: tuple[FlagResult, ...]
    ruleset_version: str
    ruleset_digest: str
    inputs_digest: str
    # Left out of the canonical JSON while None, so that quarterly results keep the digests stored before
    # half-years and years existed.
    rollup: RollupSummary | None = field(default=None, metadata=OMITTED_WHEN_EMPTY)
