"""Extensions (gia hạn): a unit asks for more time on an assignment, the committee approves or refuses.

Request: by a reporter for an assignment of a unit in its scope (the committee and administrators: any
unit), with a new due date later than the one in force and a reason, before the due date in force on
the day of the request (the Hanoi date of the server's clock). The due date in force is the date of the
assignment's latest approved extension (by decision time), else its own. A request on an assignment
with a pending one supersedes that one; an assignment already completed or cancelled is not extended.

Decision: pending -> approved or refused, with a reason; approved, refused and superseded are final.
An approval sets the assignment's effective due date, which the evaluations use as of each quarter's
end (`store.aggregates`), so it changes the quarters whose end is after it, never an earlier one.

Both writes take an idempotency key: a retry of the same request with the same key (say, after the
reply was lost) is answered with the first reply and records nothing more. Both are audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from civicscore.auth.caller import current_caller
from civicscore.domain.canonical import digest_of, record_from_json
from civicscore.domain.model import ExtensionStatus, OutcomeStatus
from civicscore.domain.periods import HANOI, InvalidPeriod, Quarter, day_ends_at
from civicscore.errors import FailedPrecondition, InvalidInput, NotFound, PermissionDenied, Violation, shown
from civicscore.idempotency import claim_key
from civicscore.store import Store
from civicscore.store.base import (
    ExtensionNotPending,
    ExtensionRecord,
    ExtensionRequested,
    ExtensionTarget,
    NewExtension,
    extension_requested_from_json,
)
from civicscore.validation import hanoi_today, parse_date, required_text

MAX_TEXT = 4000
DECISIONS = {"approve": ExtensionStatus.APPROVED, "refuse": ExtensionStatus.REFUSED}
_VERB = {ExtensionStatus.APPROVED: "approved", ExtensionStatus.REFUSED: "refused"}
_ALLOWED = "Allowed: PENDING -> APPROVED or REFUSED"
FILTER_FIELDS = ("unit", "status", "requested_in", "decided_in")


def extension_name(record: ExtensionRecord) -> str:
    return f"assignments/{record.assignment_id}/extensions/{record.extension_id}"


def parse_assignment_name(value: str, field: str) -> str:
    """The id in `assignments/{assignment_id}`; INVALID_ARGUMENT (REQUIRED when empty) otherwise."""
    prefix, _, assignment_id = value.partition("/")
    if not value:
        raise InvalidInput([Violation(field, f"{field} is required: write assignments/QD818-17", "REQUIRED")])
    if prefix != "assignments" or not assignment_id or "/" in assignment_id:
        raise InvalidInput([Violation(field, f"{shown(value)} is not an assignment name; write "
                                      "assignments/QD818-17", "INVALID_NAME")])
    return assignment_id


def parse_extension_name(value: str, field: str = "name") -> tuple[str, int]:
    """(assignment id, extension id) from `assignments/{assignment_id}/extensions/{extension_id}`."""
    parts = value.split("/")
    if (len(parts) != 4 or parts[0] != "assignments" or not parts[1] or parts[2] != "extensions"
            or not (parts[3].isascii() and parts[3].isdigit()) or len(parts[3]) > 18 or int(parts[3]) == 0):
        what = f"{field} is required" if not value else f"{shown(value)} is not an extension name"
        raise InvalidInput([Violation(field, f"{what}: write assignments/QD818-17/extensions/12",
                                      "REQUIRED" if not value else "INVALID_NAME")])
    return parts[1], int(parts[3])


def _new_due_on(value: str) -> dt.date:
    if not value:
        raise InvalidInput([Violation("due_on", "due_on is required: the new due date asked for, YYYY-MM-DD",
                                      "REQUIRED")])
    parsed = parse_date(value)
    if parsed is None:
        raise InvalidInput([Violation("due_on", f"{shown(value)} is not a date; write YYYY-MM-DD, e.g. 2026-09-30",
                                      "INVALID_DATE")])
    return parsed


def _out_of_scope(name: str) -> PermissionDenied:
    caller = current_caller()
    scope = ", ".join(f"units/{c}" for c in sorted(caller.scope_units)) if caller else ""
    return PermissionDenied(f"{name} is not an assignment of your units (or does not exist); nothing was "
                            f"recorded. Your scope is: {scope or 'none'}")


def _check_request(name: str, due_on: dt.date, now: dt.datetime) -> Callable[[ExtensionTarget | None], None]:
    """The check the store runs on the assignment, in the transaction that records the request."""

    def check(target: ExtensionTarget | None) -> None:
        caller = current_caller()
        if target is None:
            if caller is not None and not caller.may_act_for(""):
                raise _out_of_scope(name)  # a reporter learns nothing of other units' assignments
            raise NotFound(name, f"{name} does not exist; check the id (ListAssignments lists them)")
        if caller is not None and not caller.may_act_for(target.unit_code):
            raise _out_of_scope(name)
        if target.status is OutcomeStatus.CANCELLED:
            raise FailedPrecondition(f"{name} is cancelled: there is nothing to extend")
        if target.status is OutcomeStatus.COMPLETED:
            raise FailedPrecondition(f"{name} is already completed (on {target.completed_on}): there is "
                                     "nothing to extend")
        today = hanoi_today(now)
        in_force = target.due_on_in_force
        if today >= in_force:
            source = ("" if in_force == target.original_due_on
                      else f" (as extended; its own due date is {target.original_due_on})")
            raise FailedPrecondition(
                f"{name} is due on {in_force}{source} and today is {today} (Hanoi time): an extension must be "
                f"requested before the due date in force, so by {in_force - dt.timedelta(days=1)}. Report "
                "the outcome, or ask the committee office to change the assignment's due date")
        if due_on <= in_force:
            raise InvalidInput([Violation(
                "due_on", f"due_on {due_on} is not after the due date in force, {in_force}: an extension asks "
                f"for a later date (from {in_force + dt.timedelta(days=1)})", "NOT_AFTER_DUE_DATE")])

    return check


def request_extension(store: Store, assignment: str, *, due_on: str, reason: str, actor: str, now: dt.datetime,
                      idempotency_key: str = "") -> ExtensionRequested:
    """Record a pending request for a new due date; see the module docstring for who may and when."""
    assignment_id = parse_assignment_name(assignment, "assignment")
    new_due_on = _new_due_on(due_on)
    text = required_text(reason, "reason")
    claim, replayed = claim_key(store, idempotency_key, "RequestExtension",
                                digest_of([assignment_id, new_due_on, text, actor]))
    if replayed is not None:
        return extension_requested_from_json(replayed)
    name = f"assignments/{assignment_id}"
    new = NewExtension(assignment_id=assignment_id, requested_due_on=new_due_on, reason=text, requested_by=actor,
                       requested_at=now)
    return store.request_extension(new, check=_check_request(name, new_due_on, now), idempotency=claim)


def decide_extension(store: Store, name: str, *, decision: str, reason: str, actor: str, now: dt.datetime,
                     idempotency_key: str = "") -> ExtensionRecord:
    """Approve or refuse a pending request; FailedPrecondition names its status when it is not pending."""
    assignment_id, extension_id = parse_extension_name(name)
    if decision not in DECISIONS:
        raise InvalidInput([Violation("decision", "decision is required: approve or refuse", "REQUIRED")])
    status = DECISIONS[decision]
    text = required_text(reason, "reason")
    claim, replayed = claim_key(store, idempotency_key, "DecideExtension",
                                digest_of([assignment_id, extension_id, status.value, text, actor]))
    if replayed is not None:
        return record_from_json(ExtensionRecord, replayed)
    found = get_extension(store, name)
    try:
        return store.decide_extension(found.extension_id, approve=status is ExtensionStatus.APPROVED, reason=text,
                                      decided_by=actor, at=now, idempotency=claim)
    except ExtensionNotPending as refused:
        current = refused.current.upper()
        if refused.superseded_by is not None:
            successor = f"assignments/{assignment_id}/extensions/{refused.superseded_by}"
            raise FailedPrecondition(f"{name} is SUPERSEDED by {successor} (final); it cannot be "
                                     f"{_VERB[status]}: decide the newer request instead. {_ALLOWED}") from None
        raise FailedPrecondition(f"{name} is {current} (final); it cannot be {_VERB[status]}. {_ALLOWED}") from None


def get_extension(store: Store, name: str) -> ExtensionRecord:
    assignment_id, extension_id = parse_extension_name(name)
    found = store.get_extension(extension_id)
    if found is None or found.assignment_id != assignment_id:
        raise NotFound(name, f"{name} does not exist; ListExtensions lists the requests of an assignment")
    return found


@dataclass(frozen=True)
class ExtensionFilter:
    """What a ListExtensions filter asks for: the store's arguments."""

    unit_code: str | None = None
    status: ExtensionStatus | None = None
    requested: tuple[dt.datetime, dt.datetime] | None = None
    decided: tuple[dt.datetime, dt.datetime] | None = None


def instants_of(value: str, term: str) -> tuple[dt.datetime, dt.datetime]:
    """[from, before) of a quarter (`2026-Q3`) or of Hanoi dates `2026-07-01..2026-08-15` (both included)."""
    first, dots, last = value.partition("..")
    if not dots:
        try:
            quarter = Quarter.parse(value.removeprefix("periods/"))
        except InvalidPeriod:
            raise InvalidInput([Violation("filter", f"{term} {shown(value)} is not a quarter (2026-Q3) or a range "
                                          "of dates (2026-07-01..2026-08-15)", "INVALID_FILTER")]) from None
        return dt.datetime.combine(quarter.start, dt.time(), HANOI), quarter.closes_at
    start, end = parse_date(first), parse_date(last)
    if start is None or end is None:
        raise InvalidInput([Violation("filter", f"{term} {shown(value)} is not a range of dates; write "
                                      "2026-07-01..2026-08-15 (YYYY-MM-DD, both ends included)", "INVALID_FILTER")])
    if end < start:
        raise InvalidInput([Violation("filter", f"{term} {shown(value)} ends before it starts; write the earlier "
                                      "date first", "INVALID_FILTER")])
    return dt.datetime.combine(start, dt.time(), HANOI), day_ends_at(end)


def extension_filter(terms: dict[str, str]) -> ExtensionFilter:
    """The store's arguments for parsed filter terms (`unit`, `status`, `requested_in`, `decided_in`)."""
    status = None
    if "status" in terms:
        try:
            status = ExtensionStatus(terms["status"])
        except ValueError:
            allowed = ", ".join(s.value for s in ExtensionStatus)
            raise InvalidInput([Violation("filter", f"status {shown(terms['status'])} is not known (one of: "
                                          f"{allowed})", "INVALID_FILTER")]) from None
    requested = instants_of(terms["requested_in"], "requested_in") if "requested_in" in terms else None
    decided = instants_of(terms["decided_in"], "decided_in") if "decided_in" in terms else None
    unit = terms["unit"].removeprefix("units/") if "unit" in terms else None
    return ExtensionFilter(unit_code=unit, status=status, requested=requested, decided=decided)
