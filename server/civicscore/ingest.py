"""Ingest use cases: validate a whole batch, then store it atomically through the Store.

Every item of a batch is checked before anything is written; one bad item
means nothing is stored and the error lists every bad field of every item.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from civicscore.domain.canonical import OMITTED_WHEN_EMPTY, digest_of
from civicscore.domain.model import (
    Area,
    Assignment,
    Measurement,
    Priority,
    Target,
    Unit,
    UnitKind,
    UpsertCounts,
)
from civicscore.domain.periods import InvalidPeriod, Quarter
from civicscore.errors import InvalidInput, Violation, shown
from civicscore.idempotency import claim_key
from civicscore.ingest_outcomes import (
    OutcomeInput,
    OutcomeSubmission,
    PreparedOutcomes,
    submit_outcomes,
    submit_prepared_outcomes,
    validate_outcomes,
)
from civicscore.store import IdempotencyRecord, Store
from civicscore.validation import (
    FUTURE_TOLERANCE,
    INDICATOR_PATTERN,
    UNIT_CODE_PATTERN,
    Checker,
    check_batch_size,
    check_idempotency_key,
    enum_value,
    hanoi_today,
)

__all__ = [
    "AssignmentInput", "BatchResult", "MeasurementInput", "OutcomeInput", "OutcomeSubmission", "PreparedOutcomes",
    "TargetInput", "UnitInput", "submit_measurements", "submit_outcomes", "submit_prepared_outcomes",
    "upsert_assignments", "upsert_targets", "upsert_units", "validate_outcomes",
]


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
    activity: str = ""  # "active" or "inactive" when said explicitly, "" when not


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
    # `officials/{id}`, "" when none is named; left out of the request digest while empty, so that the keys
    # of requests stored before officials existed still match a retry.
    lead_official: str = field(default="", metadata=OMITTED_WHEN_EMPTY)


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


def _enum(checker: Checker, name: str, value: str, enum: type[UnitKind] | type[Area] | type[Priority],
          *, required: bool = True) -> str | None:
    return enum_value(checker, name, value, frozenset(m.value for m in enum), required=required)


class BatchResult(NamedTuple):
    """A batch write's reply: what was stored, or (validate_only) every violation found, nothing stored."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    violations: tuple[Violation, ...] = ()


class _Refused(Exception):
    """Violations found; with validate_only they are the reply, otherwise InvalidInput."""

    def __init__(self, violations: list[Violation]) -> None:
        super().__init__(violations)
        self.violations = violations


def _reject_or_continue(violations: list[Violation]) -> None:
    if violations:
        raise _Refused(violations)


def _validated(write: Callable[[], UpsertCounts], *, validate_only: bool) -> BatchResult:
    """Run a batch write: its violations are raised as InvalidInput, or returned when `validate_only`."""
    try:
        counts = write()
    except _Refused as refused:
        if validate_only:
            return BatchResult(violations=tuple(refused.violations))
        raise InvalidInput(refused.violations) from None
    return BatchResult(counts.created, counts.updated, counts.unchanged)


def _replay(store: Store, key: str, method: str, request: object, *, validate_only: bool = False
            ) -> tuple[IdempotencyRecord | None, str | None]:
    """Claim the key for the decoded request (digest computed only when a key is given; never to validate)."""
    return claim_key(store, key, method, digest_of(request)) if key and not validate_only else (None, None)


def _counts(result_json: str) -> UpsertCounts:
    data = json.loads(result_json)
    return UpsertCounts(created=data["created"], updated=data["updated"], unchanged=data["unchanged"])


# ---- units -------------------------------------------------------------------


def upsert_units(store: Store, items: Sequence[UnitInput], *, idempotency_key: str, actor: str,
                 validate_only: bool = False) -> BatchResult:
    """Create or replace units by code (atomic); with `validate_only`, only report what is wrong."""
    return _validated(lambda: _upsert_units(store, items, idempotency_key=idempotency_key, actor=actor,
                                            validate_only=validate_only), validate_only=validate_only)


def _activity(c: Checker, item: UnitInput, stored: Unit | None) -> bool:
    """Whether the unit is to be active: said by `activity`, or by `active` when that can mean only one thing."""
    if item.activity:
        return item.activity == "active"
    if item.active:
        return True
    if stored is not None and not stored.active:
        return False  # sent again as it is stored
    what = (f"units/{item.code} is active; to take it out of force" if stored is not None
            else f"say whether units/{item.code} is in force; to create it inactive")
    c.add("activity", "ACTIVITY_REQUIRED",
          f"{what}, set activity to UNIT_ACTIVITY_INACTIVE (active=false alone cannot be told apart from "
          "'not set'), or set activity to UNIT_ACTIVITY_ACTIVE")
    return False


def review_periods(c: Checker, periods: Sequence[str]) -> tuple[str, ...]:
    """The quarters under review (`2026-Q3` or `periods/2026-Q3`), each once, in order; a bad one is a
    violation of `under_review_periods[i]`."""
    found: set[str] = set()
    for index, period in enumerate(periods):
        try:
            found.add(str(Quarter.parse(period.removeprefix("periods/"))))
        except InvalidPeriod as exc:
            c.add(f"under_review_periods[{index}]", "INVALID_PERIOD", str(exc))
    return tuple(sorted(found))


def _cycle(code: str, parents: Mapping[str, str | None]) -> list[str] | None:
    """The parent chain from `code` back to itself, if following parents from `code` returns to it."""
    chain = [code]
    seen = {code}
    parent = parents.get(code)
    while parent is not None:
        if parent == code:
            return [*chain, code]
        if parent in seen:
            return None  # a cycle further up, reported for the units on it
        chain.append(parent)
        seen.add(parent)
        parent = parents.get(parent)
    return None


def _parents_after(store: Store, batch: Mapping[str, str | None]) -> dict[str, str | None]:
    """Each unit's parent as the batch would leave them: the batch's, else the stored ones (fetched as needed)."""
    parents: dict[str, str | None] = dict(batch)
    todo = {p for p in batch.values() if p is not None and p not in parents}
    while todo:
        found = store.get_units(sorted(todo))
        for code in todo:
            parents[code] = found[code].parent_code if code in found else None
        todo = {p for p in (parents[c] for c in todo) if p is not None and p not in parents}
    return parents


def _upsert_units(store: Store, items: Sequence[UnitInput], *, idempotency_key: str, actor: str,
                  validate_only: bool) -> UpsertCounts:
    _reject_or_continue(check_batch_size(len(items), "units") + check_idempotency_key(idempotency_key))
    claim, replayed = _replay(store, idempotency_key, "UpsertUnits", items, validate_only=validate_only)
    if replayed is not None:
        return _counts(replayed)
    violations: list[Violation] = []
    units: list[Unit] = []
    codes_in_batch = {item.code for item in items}
    parents = {p.removeprefix("units/") for p in (i.parent for i in items) if p}
    stored = store.get_units(sorted(codes_in_batch | parents))
    seen: set[str] = set()
    batch_parents: dict[str, str | None] = {}
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
        active = _activity(c, item, stored.get(code))
        parent_code: str | None = None
        if item.parent:
            parent_code = c.reference("parent", item.parent, "units")
            if parent_code is not None and parent_code not in codes_in_batch and parent_code not in stored:
                c.add("parent", "UNKNOWN_UNIT",
                      f"parent {item.parent} does not exist; create it first or in this batch")
            if parent_code == code:
                c.add("parent", "SELF_PARENT", "a unit cannot be its own parent")
        batch_parents[code] = parent_code
        periods = review_periods(c, item.under_review_periods)
        violations.extend(c.violations)
        if not c.violations and kind is not None:
            units.append(Unit(code=code, name_vi=name_vi, name_en=name_en, kind=UnitKind(kind), block=block,
                              parent_code=parent_code, active=active,
                              under_review_periods=periods))
    after = _parents_after(store, batch_parents)
    for index, item in enumerate(items):
        cycle = _cycle(item.code, after) if batch_parents.get(item.code) not in (None, item.code) else None
        if cycle is not None:
            path = " → ".join(f"units/{code}" for code in cycle)
            violations.append(Violation(f"units[{index}].parent", f"units[{index}].parent would make a cycle of "
                                        f"parents ({path}); a unit cannot be its own ancestor", "PARENT_CYCLE",
                                        index))
    _reject_or_continue(violations)
    if validate_only:
        return UpsertCounts()
    return store.upsert_units(units, idempotency=claim, recorded_by=actor)


# ---- assignments -----------------------------------------------------------------


def upsert_assignments(store: Store, items: Sequence[AssignmentInput], *, idempotency_key: str,
                       actor: str, validate_only: bool = False) -> BatchResult:
    """Create or replace assignments by id (atomic); their outcomes are kept. `validate_only`: report only."""
    return _validated(lambda: _upsert_assignments(store, items, idempotency_key=idempotency_key, actor=actor,
                                                  validate_only=validate_only), validate_only=validate_only)


def _upsert_assignments(store: Store, items: Sequence[AssignmentInput], *, idempotency_key: str,
                        actor: str, validate_only: bool) -> UpsertCounts:
    _reject_or_continue(check_batch_size(len(items), "assignments") + check_idempotency_key(idempotency_key))
    claim, replayed = _replay(store, idempotency_key, "UpsertAssignments", items, validate_only=validate_only)
    if replayed is not None:
        return _counts(replayed)
    unit_codes = sorted({i.unit.removeprefix("units/") for i in items if i.unit})
    units = store.get_units(unit_codes)
    leads = set(store.get_officials(sorted({i.lead_official.removeprefix("officials/") for i in items
                                            if i.lead_official.startswith("officials/")})))
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
        lead: str | None = None
        if item.lead_official:
            lead = c.reference("lead_official", item.lead_official, "officials")
            if lead is not None and lead not in leads:
                c.add("lead_official", "UNKNOWN_OFFICIAL", f"official {shown(item.lead_official)} does not exist; "
                      "create them with UpsertOfficials first")
        violations.extend(c.violations)
        if not c.violations and unit_code and area and assigned_on and due_on:
            result.append(Assignment(assignment_id=assignment_id, unit_code=unit_code, title=title,
                                     area=Area(area), assigned_on=assigned_on, due_on=due_on,
                                     source_document=source, priority=Priority(priority), lead_official=lead))
    _reject_or_continue(violations)
    if validate_only:
        return UpsertCounts()
    return store.upsert_assignments(result, idempotency=claim, recorded_by=actor)


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


IndicatorsFor = Callable[[str | None], frozenset[str]]


def _indicator(c: Checker, value: str, indicators: IndicatorsFor, period: str | None) -> str | None:
    """A known indicator code: one the ruleset in force for `period` scores (the active one without a period)."""
    if not value:
        c.add("indicator", "REQUIRED", "indicator is required, e.g. dx.online_applications")
        return None
    known = indicators(period)
    if not INDICATOR_PATTERN.match(value) or value not in known:
        which = f"the ruleset in force for {period}" if period else "the active ruleset"
        c.add("indicator", "UNKNOWN_INDICATOR",
              f"indicator {shown(value)} is not in {which} (known: {', '.join(sorted(known))})")
        return None
    return value


def submit_measurements(store: Store, items: Sequence[MeasurementInput], *, now: dt.datetime,
                        indicators: IndicatorsFor, idempotency_key: str, actor: str,
                        validate_only: bool = False) -> BatchResult:
    """Validate and store indicator measurements (atomic); the latest reported_at wins. `validate_only`: report."""
    return _validated(lambda: _submit_measurements(store, items, now=now, indicators=indicators,
                                                   idempotency_key=idempotency_key, actor=actor,
                                                   validate_only=validate_only), validate_only=validate_only)


def _submit_measurements(store: Store, items: Sequence[MeasurementInput], *, now: dt.datetime,
                         indicators: IndicatorsFor, idempotency_key: str, actor: str,
                         validate_only: bool) -> UpsertCounts:
    _reject_or_continue(check_batch_size(len(items), "measurements") + check_idempotency_key(idempotency_key))
    claim, replayed = _replay(store, idempotency_key, "SubmitMeasurements", items, validate_only=validate_only)
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
        indicator = _indicator(c, item.indicator, indicators, period)
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
    if validate_only:
        return UpsertCounts()
    return store.record_measurements(result, idempotency=claim, recorded_by=actor)


def upsert_targets(store: Store, items: Sequence[TargetInput], *, indicators: IndicatorsFor,
                   idempotency_key: str, actor: str, validate_only: bool = False) -> BatchResult:
    """Create or replace targets by (indicator, period, unit or kind) (atomic). `validate_only`: report only."""
    return _validated(lambda: _upsert_targets(store, items, indicators=indicators, idempotency_key=idempotency_key,
                                              actor=actor, validate_only=validate_only), validate_only=validate_only)


def _upsert_targets(store: Store, items: Sequence[TargetInput], *, indicators: IndicatorsFor,
                    idempotency_key: str, actor: str, validate_only: bool) -> UpsertCounts:
    _reject_or_continue(check_batch_size(len(items), "targets") + check_idempotency_key(idempotency_key))
    claim, replayed = _replay(store, idempotency_key, "UpsertTargets", items, validate_only=validate_only)
    if replayed is not None:
        return _counts(replayed)
    units = store.get_units(sorted({i.unit.removeprefix("units/") for i in items if i.unit}))
    violations: list[Violation] = []
    result: list[Target] = []
    seen: set[tuple[str, str, str, str]] = set()
    for index, item in enumerate(items):
        c = Checker(f"targets[{index}]", index)
        period = _quarter(c, "period", item.period)
        indicator = _indicator(c, item.indicator, indicators, period)
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
    if validate_only:
        return UpsertCounts()
    return store.upsert_targets(result, idempotency=claim, recorded_by=actor)
