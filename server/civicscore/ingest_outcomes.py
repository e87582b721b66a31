"""Outcome ingest: the hot path of every city system, so it has two ways through.

`validate_outcomes` first runs a lean pass that only answers "is every item
valid?" and builds the domain outcomes. It is written to be at least as strict
as the detailed pass: when it says no (or anything looks odd), the detailed
pass (`_check_outcome`, one `Checker` per item) runs over the whole batch and
reports every violation with its field and reason. A property test feeds both
passes the same random batches and requires them to agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from civicscore.domain.canonical import digest_of
from civicscore.domain.model import Outcome, OutcomeStatus, Quality
from civicscore.errors import AlreadyExists, InvalidInput, Violation
from civicscore.store import IdempotencyRecord, Store
from civicscore.validation import (
    FUTURE_TOLERANCE,
    ID_PATTERN,
    MAX_BATCH,
    Checker,
    check_batch_size,
    check_idempotency_key,
    enum_value,
    hanoi_today,
    nfc,
    parse_date,
    text_ok,
)

MAX_REMINDERS = 1000
STATUSES = frozenset(s.value for s in OutcomeStatus)
QUALITIES = frozenset(q.value for q in Quality)
_STATUS = {s.value: s for s in OutcomeStatus}
_QUALITY = {q.value: q for q in Quality}
_TO_HANOI = dt.timedelta(hours=7)
COMPLETED = OutcomeStatus.COMPLETED.value
_PREFIX = "assignments/"


class OutcomeInput(NamedTuple):
    """An outcome as a caller sent it; enums are their domain value, "" when unspecified, "?N" when unknown."""

    outcome_id: str
    assignment: str
    status: str
    completed_on: str
    quality: str
    reminders: int
    reported_at: dt.datetime | None
    reporting_system: str
    note: str


class OutcomeSubmission(NamedTuple):
    """What a caller learns from a submission: stored counts, or (validate-only) the violations."""

    accepted: int
    duplicates: int
    violations: tuple[Violation, ...] = ()


def _fast_outcomes(items: Sequence[OutcomeInput], assigned: Mapping[str, dt.date], now: dt.datetime
                   ) -> list[Outcome] | None:
    """Every item as a domain Outcome if all are valid, else None (then the detailed pass explains)."""
    today = hanoi_today(now)
    latest = now + FUTURE_TOLERANCE
    out: list[Outcome] = []
    append = out.append
    for oid, ref, status, completed_text, quality, reminders, reported_at, system, note in items:
        if ID_PATTERN.match(oid) is None or not ref.startswith(_PREFIX) or status not in STATUSES:
            return None
        assignment_id = ref[len(_PREFIX):]
        assigned_on = assigned.get(assignment_id)
        if assigned_on is None or reported_at is None or reported_at > latest:
            return None
        if not 0 <= reminders <= MAX_REMINDERS:
            return None
        if reported_at.tzinfo is not dt.UTC:
            reported_at = reported_at.astimezone(dt.UTC)
        reported_on = (reported_at + _TO_HANOI).date()
        if reported_on < assigned_on:
            return None
        completed_on = None
        if status == COMPLETED:
            completed_on = parse_date(completed_text)
            if completed_on is None or completed_on > today or completed_on < assigned_on or reported_on < completed_on:
                return None
            if quality and quality not in QUALITIES:
                return None
        elif completed_text or quality:
            return None
        system = nfc(system)
        note = nfc(note)
        if not text_ok(system, 100, required=True) or not text_ok(note, 4000, required=False):
            return None
        append(Outcome(oid, assignment_id, _STATUS[status], reported_at, system, completed_on,
                       _QUALITY[quality] if quality else None, reminders, note))
    return out


def _check_outcome(c: Checker, item: OutcomeInput, assigned: Mapping[str, dt.date], now: dt.datetime) -> None:
    """Add every violation of one outcome to `c`."""
    today = hanoi_today(now)
    c.identifier("outcome_id", item.outcome_id, hint="1-128 characters of letters, digits and ._:-")
    assignment_id = c.reference("assignment", item.assignment, "assignments")
    assigned_on = assigned.get(assignment_id) if assignment_id else None
    if assignment_id is not None and assigned_on is None:
        c.add("assignment", "UNKNOWN_ASSIGNMENT",
              f"assignment {item.assignment} does not exist; send it with UpsertAssignments first")
    status = enum_value(c, "status", item.status, STATUSES, required=True)
    completed_on = c.date("completed_on", item.completed_on, required=False)
    if status == COMPLETED and not item.completed_on:
        c.add("completed_on", "REQUIRED", "completed_on is required when status is completed (YYYY-MM-DD)")
    if status and status != COMPLETED and item.completed_on:
        c.add("completed_on", "NOT_ALLOWED", f"completed_on must be empty when status is {status}")
    if completed_on is not None:
        if completed_on > today:
            c.add("completed_on", "IN_FUTURE", f"completed_on {completed_on} is in the future (today is {today})")
        if assigned_on is not None and completed_on < assigned_on:
            c.add("completed_on", "BEFORE_ASSIGNMENT",
                  f"completed_on {completed_on} is before the assignment was made ({assigned_on})")
    quality = enum_value(c, "quality", item.quality, QUALITIES, required=False)
    if quality and status and status != COMPLETED:
        c.add("quality", "NOT_ALLOWED", "quality may only be set when status is completed")
    if not 0 <= item.reminders <= MAX_REMINDERS:
        c.add("reminders", "OUT_OF_RANGE", f"reminders is {item.reminders:,}; it must be from 0 to {MAX_REMINDERS:,}")
    reported_at = item.reported_at
    if reported_at is None:
        c.add("reported_at", "REQUIRED", "reported_at is required (when the reporting system recorded this state)")
    else:
        reported_on = hanoi_today(reported_at)
        if reported_at > now + FUTURE_TOLERANCE:
            c.add("reported_at", "IN_FUTURE", f"reported_at {reported_at.isoformat()} is in the future")
        if assigned_on is not None and reported_on < assigned_on:
            c.add("reported_at", "BEFORE_ASSIGNMENT",
                  f"reported_at {reported_at.isoformat()} is before the assignment was made ({assigned_on})")
        if completed_on is not None and reported_on < completed_on:
            c.add("completed_on", "AFTER_REPORT",
                  f"completed_on {completed_on} is after the report itself ({reported_on})")
    c.text("reporting_system", item.reporting_system, max_len=100)
    c.text("note", item.note, max_len=4000, required=False)


def validate_outcomes(store: Store, items: Sequence[OutcomeInput], *, now: dt.datetime, field: str = "outcomes"
                      ) -> tuple[list[Outcome], list[Violation]]:
    """Check every outcome; returns the domain outcomes (when all are valid) or every violation."""
    return checked_outcomes(items, store.assignment_dates(assignment_ids(items)), now=now, field=field)


def assignment_ids(items: Sequence[OutcomeInput]) -> list[str]:
    """The assignments the items name (well-formed names only), each once, in order."""
    return sorted({i.assignment[len(_PREFIX):] for i in items if i.assignment.startswith(_PREFIX)})


def checked_outcomes(items: Sequence[OutcomeInput], assigned: Mapping[str, dt.date], *, now: dt.datetime,
                     field: str = "outcomes") -> tuple[list[Outcome], list[Violation]]:
    """`validate_outcomes` given the `assigned_on` of the assignments the items name (unknown ones absent)."""
    outcomes = _fast_outcomes(items, assigned, now)
    if outcomes is not None:
        return outcomes, []
    violations: list[Violation] = []
    for index, item in enumerate(items):
        c = Checker(f"{field}[{index}]", index)
        _check_outcome(c, item, assigned, now)
        violations.extend(c.violations)
    if not violations:  # the lean pass is stricter than the detailed one: that is a bug, not the caller's fault
        raise AssertionError("outcome validation passes disagree on a batch; please report it")
    return [], violations


class PreparedOutcomes(NamedTuple):
    """A batch the api layer decoded in one pass from the wire (`api.convert.prepared_outcomes`): every field
    within its domain and every check that needs no stored data passed (identifiers, enums, dates and times,
    texts in NFC, the status's rules). What remains is checked against the assignments, in the write
    transaction; `inputs` decodes the items the long way for the detailed pass when that check fails."""

    outcomes: Sequence[Outcome]
    inputs: Callable[[], Sequence[OutcomeInput]]


def _against_assignments(outcomes: Sequence[Outcome], assigned: Mapping[str, dt.date]) -> bool:
    """Whether every prepared outcome names a stored assignment and is not dated before it was made (the
    checks of `_fast_outcomes` that need stored data)."""
    reported_days: dict[dt.datetime, dt.date] = {}
    for outcome in outcomes:
        assigned_on = assigned.get(outcome.assignment_id)
        if assigned_on is None:
            return False
        reported_at = outcome.reported_at
        reported_on = reported_days.get(reported_at)
        if reported_on is None:
            reported_on = reported_days[reported_at] = (reported_at + _TO_HANOI).date()
        if reported_on < assigned_on:
            return False
        completed_on = outcome.completed_on
        if completed_on is not None and completed_on < assigned_on:
            return False
    return True


def submit_prepared_outcomes(store: Store, prepared: PreparedOutcomes, *, now: dt.datetime, idempotency_key: str,
                             request_digest: str, actor: str) -> OutcomeSubmission:
    """`submit_outcomes` of a batch the api layer prepared (see PreparedOutcomes): the same guarantees, the same
    errors; only the checks against the assignments remain, in the write transaction."""
    outcomes = prepared.outcomes
    problems = check_batch_size(len(outcomes), "outcomes") + check_idempotency_key(idempotency_key)
    if problems:
        raise InvalidInput(problems)

    def check(assigned: Mapping[str, dt.date]) -> Sequence[Outcome]:
        if _against_assignments(outcomes, assigned):
            return outcomes
        checked, violations = checked_outcomes(prepared.inputs(), assigned, now=now)
        if violations:
            raise InvalidInput(violations)
        return checked

    ids = sorted({outcome.assignment_id for outcome in outcomes})
    return _record(store, ids, check, idempotency_key=idempotency_key, request_digest=request_digest, actor=actor)


def submit_outcomes(store: Store, items: Sequence[OutcomeInput], *, now: dt.datetime, idempotency_key: str,
                    validate_only: bool = False, limit: int = MAX_BATCH,
                    request_digest: str | None = None, actor: str) -> OutcomeSubmission:
    """Validate and store a batch of outcomes atomically; duplicates by outcome_id are counted, not stored.

    `request_digest` identifies the request for idempotency (the api layer hashes
    the request bytes, which is cheaper than hashing the decoded items). The key's
    claim, the lookup of the assignments, the checks and the write are one
    transaction (`Store.record_checked_outcomes`).
    """
    problems = check_batch_size(len(items), "outcomes", limit=limit) + check_idempotency_key(idempotency_key)
    if problems:
        raise InvalidInput(problems)
    if validate_only:
        _, violations = validate_outcomes(store, items, now=now)
        return OutcomeSubmission(accepted=0, duplicates=0, violations=tuple(violations))

    def check(assigned: Mapping[str, dt.date]) -> list[Outcome]:
        outcomes, violations = checked_outcomes(items, assigned, now=now)
        if violations:
            raise InvalidInput(violations)
        return outcomes

    return _record(store, assignment_ids(items), check, idempotency_key=idempotency_key,
                   request_digest=(request_digest or digest_of(list(items))) if idempotency_key else "", actor=actor)


def _record(store: Store, ids: Sequence[str], check: Callable[[Mapping[str, dt.date]], Sequence[Outcome]], *,
            idempotency_key: str, request_digest: str, actor: str) -> OutcomeSubmission:
    """Claim the key, check the batch against the assignments `ids` and store it: one transaction."""
    claim = (IdempotencyRecord(key=idempotency_key, method="SubmitOutcomes", request_digest=request_digest)
             if idempotency_key else None)
    result = store.record_checked_outcomes(ids, check, idempotency=claim, recorded_by=actor)
    if result.conflicts:
        shown = ", ".join(f"{oid} (item {i})" for i, oid in result.conflicts[:20])
        more = f" and {len(result.conflicts) - 20} more" if len(result.conflicts) > 20 else ""
        raise AlreadyExists(
            f"outcome_id already stored with different content: {shown}{more}. Outcomes are immutable: "
            "send a correction as a new outcome with a new outcome_id. Nothing was stored.",
            ids=[oid for _, oid in result.conflicts],
        )
    return OutcomeSubmission(accepted=result.accepted, duplicates=result.duplicates)
