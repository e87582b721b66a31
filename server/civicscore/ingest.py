"""Ingest use cases: validate a whole batch, then store it atomically through the Store.

Every item of a batch is checked before anything is written; one bad item
means nothing is stored and the error lists every bad field of every item.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from civicscore.domain.canonical import digest_of
from civicscore.domain.model import (
    Area,
    Assignment,
    Measurement,
    Outcome,
    OutcomeStatus,
    OutcomeWriteResult,
    Priority,
    Quality,
    Target,
    Unit,
    UnitKind,
    UpsertCounts,
)
from civicscore.domain.periods import InvalidPeriod, Quarter
from civicscore.errors import AlreadyExists, InvalidInput, Violation
from civicscore.store import IdempotencyRecord, Store
from civicscore.validation import (
    INDICATOR_PATTERN,
    MAX_BATCH,
    UNIT_CODE_PATTERN,
    Checker,
    check_batch_size,
    check_idempotency_key,
    hanoi_today,
)

Clock = Callable[[], dt.datetime]
FUTURE_TOLERANCE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class UnitInput:
    code: str
    name_vi: str
    name_en: str
    kind: str  # a UnitKind value, "" when unspecified, "?N" for an unknown enum number
    block: str
    parent: str
    active: bool
    under_review_periods: tuple[str, ...]


@dataclass(frozen=True)
class AssignmentInput:
    assignment_id: str
    unit: str
    title: str
    area: str
    source_document: str
    assigned_on: str
    due_on: str
    priority: str


@dataclass(frozen=True)
class OutcomeInput:
    outcome_id: str
    assignment: str
    status: str
    completed_on: str
    quality: str
    reminders: int
    reported_at: dt.datetime | None
    reporting_system: str
    note: str


@dataclass(frozen=True)
class MeasurementInput:
    unit: str
    period: str
    indicator: str
    numerator: float
    denominator: float
    reported_at: dt.datetime | None
    reporting_system: str


@dataclass(frozen=True)
class TargetInput:
    indicator: str
    period: str
    unit: str
    unit_kind: str
    value: float


@dataclass(frozen=True)
class OutcomeSubmission:
    """What a caller learns from a submission: stored counts, or (validate-only) the violations."""

    accepted: int
    duplicates: int
    violations: tuple[Violation, ...] = ()


def _enum(checker: Checker, name: str, value: str, enum: type[UnitKind] | type[Area] | type[OutcomeStatus]
          | type[Quality] | type[Priority], *, required: bool = True) -> str | None:
    allowed = ", ".join(m.value for m in enum)
    if not value:
        if required:
            checker.add(name, "REQUIRED", f"{name} is required (one of: {allowed})")
        return None
    if value not in {m.value for m in enum}:
        checker.add(name, "INVALID_ENUM", f"{name} value {value.lstrip('?')} is not known (one of: {allowed})")
        return None
    return value


def _reject_or_continue(violations: list[Violation]) -> None:
    if violations:
        raise InvalidInput(violations)


def _replay(store: Store, key: str, method: str, request: object) -> tuple[IdempotencyRecord | None, str | None]:
    """Look up an idempotency key; returns the claim to write and any stored result."""
    if not key:
        return None, None
    digest = digest_of(request)
    return IdempotencyRecord(key=key, method=method, request_digest=digest), store.idempotent_result(
        key, method, digest
    )


def _counts(result_json: str) -> UpsertCounts:
    data = json.loads(result_json)
    return UpsertCounts(created=data["created"], updated=data["updated"], unchanged=data["unchanged"])


# ---- units -------------------------------------------------------------------


def upsert_units(store: Store, items: Sequence[UnitInput], *, idempotency_key: str) -> UpsertCounts:
    """Create or replace units by code (atomic)."""
    _reject_or_continue(check_batch_size(len(items), "units") + check_idempotency_key(idempotency_key))
    claim, replayed = _replay(store, idempotency_key, "UpsertUnits", items)
    if replayed is not None:
        return _counts(replayed)
    violations: list[Violation] = []
    units: list[Unit] = []
    codes_in_batch = {item.code for item in items}
    parents = {p.removeprefix("units/") for p in (i.parent for i in items) if p}
    known_parents = store.get_units(sorted(parents - codes_in_batch)) if parents else {}
    seen: set[str] = set()
    for index, item in enumerate(items):
        c = Checker(f"units[{index}]", index)
        code = c.identifier("code", item.code, pattern=UNIT_CODE_PATTERN,
                            hint="1-40 characters of A-Z, 0-9 and '-', starting with a letter or digit")
        if code in seen:
            c.add("code", "DUPLICATE_IN_BATCH", f"unit {code} appears more than once in this batch")
        seen.add(code)
        name_vi = c.text("display_name_vi", item.name_vi, max_len=300)
        name_en = c.text("display_name_en", item.name_en, max_len=300)
        kind = _enum(c, "kind", item.kind, UnitKind)
        block = c.text("block", item.block, max_len=60)
        parent_code: str | None = None
        if item.parent:
            parent_code = c.reference("parent", item.parent, "units")
            if parent_code is not None and parent_code not in codes_in_batch and parent_code not in known_parents:
                c.add("parent", "UNKNOWN_UNIT",
                      f"parent {item.parent} does not exist; create it first or in this batch")
            if parent_code == code:
                c.add("parent", "SELF_PARENT", "a unit cannot be its own parent")
        periods: list[str] = []
        for p_index, period in enumerate(item.under_review_periods):
            try:
                periods.append(str(Quarter.parse(period)))
            except InvalidPeriod as exc:
                c.add(f"under_review_periods[{p_index}]", "INVALID_PERIOD", str(exc))
        violations.extend(c.violations)
        if not c.violations and kind is not None:
            units.append(Unit(code=code, name_vi=name_vi, name_en=name_en, kind=UnitKind(kind), block=block,
                              parent_code=parent_code, active=item.active,
                              under_review_periods=tuple(sorted(set(periods)))))
    _reject_or_continue(violations)
    return store.upsert_units(units, idempotency=claim)


# ---- assignments -----------------------------------------------------------------


def upsert_assignments(store: Store, items: Sequence[AssignmentInput], *, idempotency_key: str) -> UpsertCounts:
    """Create or replace assignments by id (atomic); their outcomes are kept."""
    _reject_or_continue(check_batch_size(len(items), "assignments") + check_idempotency_key(idempotency_key))
    claim, replayed = _replay(store, idempotency_key, "UpsertAssignments", items)
    if replayed is not None:
        return _counts(replayed)
    unit_codes = sorted({i.unit.removeprefix("units/") for i in items if i.unit})
    units = store.get_units(unit_codes)
    violations: list[Violation] = []
    result: list[Assignment] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        c = Checker(f"assignments[{index}]", index)
        assignment_id = c.identifier("assignment_id", item.assignment_id,
                                     hint="1-128 characters of letters, digits and ._:-")
        if assignment_id in seen:
            c.add("assignment_id", "DUPLICATE_IN_BATCH", f"assignment {assignment_id} appears more than once")
        seen.add(assignment_id)
        unit_code = c.reference("unit", item.unit, "units")
        if unit_code is not None and unit_code not in units:
            c.add("unit", "UNKNOWN_UNIT", f"unit {item.unit} does not exist; create it with UpsertUnits first")
        title = c.text("title", item.title, max_len=1000)
        area = _enum(c, "area", item.area, Area)
        source = c.text("source_document", item.source_document, max_len=200, required=False)
        assigned_on = c.date("assigned_on", item.assigned_on)
        due_on = c.date("due_on", item.due_on)
        if assigned_on and due_on and due_on < assigned_on:
            c.add("due_on", "BEFORE_ASSIGNED", f"due_on {due_on} is before assigned_on {assigned_on}")
        priority = _enum(c, "priority", item.priority, Priority, required=False) or Priority.NORMAL.value
        violations.extend(c.violations)
        if not c.violations and unit_code and area and assigned_on and due_on:
            result.append(Assignment(assignment_id=assignment_id, unit_code=unit_code, title=title,
                                     area=Area(area), assigned_on=assigned_on, due_on=due_on,
                                     source_document=source, priority=Priority(priority)))
    _reject_or_continue(violations)
    return store.upsert_assignments(result, idempotency=claim)


# ---- outcomes ------------------------------------------------------------------


def _check_outcome(c: Checker, item: OutcomeInput, assignments: dict[str, Assignment], now: dt.datetime
                   ) -> Outcome | None:
    today = hanoi_today(now)
    outcome_id = c.identifier("outcome_id", item.outcome_id, hint="1-128 characters of letters, digits and ._:-")
    assignment_id = c.reference("assignment", item.assignment, "assignments")
    assignment = assignments.get(assignment_id) if assignment_id else None
    if assignment_id is not None and assignment is None:
        c.add("assignment", "UNKNOWN_ASSIGNMENT",
              f"assignment {item.assignment} does not exist; send it with UpsertAssignments first")
    status = _enum(c, "status", item.status, OutcomeStatus)
    completed_on = c.date("completed_on", item.completed_on, required=False)
    if status == OutcomeStatus.COMPLETED and not item.completed_on:
        c.add("completed_on", "REQUIRED", "completed_on is required when status is completed (YYYY-MM-DD)")
    if status and status != OutcomeStatus.COMPLETED and item.completed_on:
        c.add("completed_on", "NOT_ALLOWED", f"completed_on must be empty when status is {status}")
    if completed_on is not None:
        if completed_on > today:
            c.add("completed_on", "IN_FUTURE", f"completed_on {completed_on} is in the future (today is {today})")
        if assignment is not None and completed_on < assignment.assigned_on:
            c.add("completed_on", "BEFORE_ASSIGNMENT",
                  f"completed_on {completed_on} is before the assignment was made ({assignment.assigned_on})")
    quality = _enum(c, "quality", item.quality, Quality, required=False)
    if quality and status and status != OutcomeStatus.COMPLETED:
        c.add("quality", "NOT_ALLOWED", "quality may only be set when status is completed")
    if item.reminders < 0:
        c.add("reminders", "NEGATIVE", f"reminders is {item.reminders}; it counts reminders received, 0 or more")
    elif item.reminders > 1000:
        c.add("reminders", "IMPLAUSIBLE", f"reminders {item.reminders} is implausible (more than 1,000)")
    reported_at = item.reported_at
    if reported_at is None:
        c.add("reported_at", "REQUIRED", "reported_at is required (when the reporting system recorded this state)")
    else:
        if reported_at > now + FUTURE_TOLERANCE:
            c.add("reported_at", "IN_FUTURE", f"reported_at {reported_at.isoformat()} is in the future")
        if assignment is not None and hanoi_today(reported_at) < assignment.assigned_on:
            c.add("reported_at", "BEFORE_ASSIGNMENT",
                  f"reported_at {reported_at.isoformat()} is before the assignment was made "
                  f"({assignment.assigned_on})")
        if completed_on is not None and hanoi_today(reported_at) < completed_on:
            c.add("completed_on", "AFTER_REPORT",
                  f"completed_on {completed_on} is after the report itself ({hanoi_today(reported_at)})")
    system = c.text("reporting_system", item.reporting_system, max_len=100)
    note = c.text("note", item.note, max_len=4000, required=False)
    if c.violations or assignment_id is None or status is None or reported_at is None:
        return None
    return Outcome(outcome_id=outcome_id, assignment_id=assignment_id, status=OutcomeStatus(status),
                   reported_at=reported_at.astimezone(dt.UTC), reporting_system=system,
                   completed_on=completed_on, quality=Quality(quality) if quality else None,
                   reminders=item.reminders, note=note)


def validate_outcomes(store: Store, items: Sequence[OutcomeInput], *, now: dt.datetime, field: str = "outcomes"
                      ) -> tuple[list[Outcome], list[Violation]]:
    """Check every outcome; returns the domain outcomes (when all are valid) and every violation."""
    ids = sorted({i.assignment.removeprefix("assignments/") for i in items if i.assignment})
    assignments = store.get_assignments(ids)
    outcomes: list[Outcome] = []
    violations: list[Violation] = []
    for index, item in enumerate(items):
        c = Checker(f"{field}[{index}]", index)
        outcome = _check_outcome(c, item, assignments, now)
        violations.extend(c.violations)
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes, violations


def submit_outcomes(store: Store, items: Sequence[OutcomeInput], *, now: dt.datetime, idempotency_key: str,
                    validate_only: bool = False, limit: int = MAX_BATCH) -> OutcomeSubmission:
    """Validate and store a batch of outcomes atomically; duplicates by outcome_id are counted, not stored."""
    _reject_or_continue(check_batch_size(len(items), "outcomes", limit=limit) + check_idempotency_key(idempotency_key))
    claim, replayed = (None, None) if validate_only else _replay(store, idempotency_key, "SubmitOutcomes", items)
    if replayed is not None:
        data = json.loads(replayed)
        return OutcomeSubmission(accepted=data["accepted"], duplicates=data["duplicates"])
    outcomes, violations = validate_outcomes(store, items, now=now)
    if validate_only:
        return OutcomeSubmission(accepted=0, duplicates=0, violations=tuple(violations))
    _reject_or_continue(violations)
    result: OutcomeWriteResult = store.record_outcomes(outcomes, idempotency=claim)
    if result.conflicts:
        shown = ", ".join(f"{oid} (item {i})" for i, oid in result.conflicts[:20])
        more = f" and {len(result.conflicts) - 20} more" if len(result.conflicts) > 20 else ""
        raise AlreadyExists(
            f"outcome_id already stored with different content: {shown}{more}. Outcomes are immutable: "
            "send a correction as a new outcome with a new outcome_id. Nothing was stored.",
            ids=[oid for _, oid in result.conflicts],
        )
    return OutcomeSubmission(accepted=result.accepted, duplicates=result.duplicates)


# ---- measurements and targets ------------------------------------------------------


def _quarter(c: Checker, name: str, value: str) -> str | None:
    if not value:
        c.add(name, "REQUIRED", f"{name} is required, as YYYY-Qn (e.g. 2026-Q3)")
        return None
    try:
        return str(Quarter.parse(value.removeprefix("periods/")))
    except InvalidPeriod as exc:
        c.add(name, "INVALID_PERIOD", str(exc))
        return None


def _indicator(c: Checker, value: str, indicators: frozenset[str]) -> str | None:
    if not value:
        c.add("indicator", "REQUIRED", "indicator is required, e.g. dx.online_applications")
        return None
    if not INDICATOR_PATTERN.match(value) or value not in indicators:
        known = ", ".join(sorted(indicators))
        c.add("indicator", "UNKNOWN_INDICATOR", f"indicator {value!r} is not in the active ruleset (known: {known})")
        return None
    return value


def submit_measurements(store: Store, items: Sequence[MeasurementInput], *, now: dt.datetime,
                        indicators: frozenset[str], idempotency_key: str) -> UpsertCounts:
    """Validate and store indicator measurements (atomic); the latest reported_at wins."""
    _reject_or_continue(check_batch_size(len(items), "measurements") + check_idempotency_key(idempotency_key))
    claim, replayed = _replay(store, idempotency_key, "SubmitMeasurements", items)
    if replayed is not None:
        return _counts(replayed)
    units = store.get_units(sorted({i.unit.removeprefix("units/") for i in items if i.unit}))
    current = Quarter.containing(hanoi_today(now))
    violations: list[Violation] = []
    result: list[Measurement] = []
    seen: dict[tuple[str, str, str, dt.datetime | None], int] = {}
    for index, item in enumerate(items):
        c = Checker(f"measurements[{index}]", index)
        unit_code = c.reference("unit", item.unit, "units")
        if unit_code is not None and unit_code not in units:
            c.add("unit", "UNKNOWN_UNIT", f"unit {item.unit} does not exist")
        period = _quarter(c, "period", item.period)
        if period is not None and Quarter.parse(period) > current:
            c.add("period", "IN_FUTURE", f"period {period} has not started yet (current quarter is {current})")
        indicator = _indicator(c, item.indicator, indicators)
        if not math.isfinite(item.numerator) or item.numerator < 0:
            c.add("numerator", "OUT_OF_RANGE", f"numerator {item.numerator} must be a finite number >= 0")
        if not math.isfinite(item.denominator) or item.denominator < 0:
            c.add("denominator", "OUT_OF_RANGE", f"denominator {item.denominator} must be a finite number >= 0")
        elif math.isfinite(item.numerator) and item.numerator > item.denominator:
            c.add("numerator", "ABOVE_DENOMINATOR",
                  f"numerator {item.numerator} is larger than denominator {item.denominator}")
        if item.reported_at is None:
            c.add("reported_at", "REQUIRED", "reported_at is required")
        elif item.reported_at > now + FUTURE_TOLERANCE:
            c.add("reported_at", "IN_FUTURE", f"reported_at {item.reported_at.isoformat()} is in the future")
        system = c.text("reporting_system", item.reporting_system, max_len=100)
        key = (unit_code or "", period or "", indicator or "", item.reported_at)
        if key in seen:
            c.add("reported_at", "DUPLICATE_IN_BATCH",
                  f"same unit, period, indicator and reported_at as item {seen[key]}; keep one")
        seen[key] = index
        violations.extend(c.violations)
        if not c.violations and unit_code and period and indicator and item.reported_at:
            result.append(Measurement(unit_code=unit_code, period=period, indicator=indicator,
                                      numerator=float(item.numerator), denominator=float(item.denominator),
                                      reported_at=item.reported_at.astimezone(dt.UTC), reporting_system=system))
    _reject_or_continue(violations)
    return store.record_measurements(result, idempotency=claim)


def upsert_targets(store: Store, items: Sequence[TargetInput], *, indicators: frozenset[str],
                   idempotency_key: str) -> UpsertCounts:
    """Create or replace targets by (indicator, period, unit or kind) (atomic)."""
    _reject_or_continue(check_batch_size(len(items), "targets") + check_idempotency_key(idempotency_key))
    claim, replayed = _replay(store, idempotency_key, "UpsertTargets", items)
    if replayed is not None:
        return _counts(replayed)
    units = store.get_units(sorted({i.unit.removeprefix("units/") for i in items if i.unit}))
    violations: list[Violation] = []
    result: list[Target] = []
    seen: set[tuple[str, str, str, str]] = set()
    for index, item in enumerate(items):
        c = Checker(f"targets[{index}]", index)
        indicator = _indicator(c, item.indicator, indicators)
        period = _quarter(c, "period", item.period)
        unit_code: str | None = None
        kind: str | None = None
        if bool(item.unit) == bool(item.unit_kind):
            c.add("unit", "ONE_SCOPE", "set exactly one of unit and unit_kind")
        elif item.unit:
            unit_code = c.reference("unit", item.unit, "units")
            if unit_code is not None and unit_code not in units:
                c.add("unit", "UNKNOWN_UNIT", f"unit {item.unit} does not exist")
        else:
            kind = _enum(c, "unit_kind", item.unit_kind, UnitKind)
        if not math.isfinite(item.value) or not 0 < item.value <= 1:
            c.add("value", "OUT_OF_RANGE", f"value {item.value} must be a fraction above 0 and at most 1 (0.6 = 60%)")
        key = (indicator or "", period or "", unit_code or "", kind or "")
        if key in seen:
            c.add("indicator", "DUPLICATE_IN_BATCH", "the same target appears more than once in this batch")
        seen.add(key)
        violations.extend(c.violations)
        if not c.violations and indicator and period:
            result.append(Target(indicator=indicator, period=period, value=float(item.value), unit_code=unit_code,
                                 unit_kind=UnitKind(kind) if kind else None))
    _reject_or_continue(violations)
    return store.upsert_targets(result, idempotency=claim)
