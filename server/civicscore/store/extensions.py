"""SQL for extension requests (`assignment_extensions`): record, decide, read and list them.

A request and a decision on the same assignment take turns: each locks the assignment's row first
(`FOR UPDATE` on PostgreSQL; SQLite's single write lock does the same), so the due date in force that a
request is checked against, and the one pending request per assignment, cannot change under it.
Effective due dates for the evaluation inputs are read in `aggregates`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, Date, and_, func, select
from sqlalchemy.engine import Connection

from civicscore.domain.model import ExtensionStatus, OutcomeStatus
from civicscore.store.base import (
    ExtensionNotPending,
    ExtensionRecord,
    ExtensionRequested,
    ExtensionTarget,
    NewAuditEvent,
    NewExtension,
    Page,
)
from civicscore.store.cursors import Key, page_of, paginate
from civicscore.store.identities import append_audit
from civicscore.store.tables import assignment_extensions, assignment_states, assignments

PENDING, APPROVED, REFUSED, SUPERSEDED = (s.value for s in ExtensionStatus)
_LISTING = "extensions"
ext = assignment_extensions.c


def extension_name(assignment_id: str, extension_id: int) -> str:
    return f"assignments/{assignment_id}/extensions/{extension_id}"


def latest_approved_due_on(assignment_id: ColumnElement[str], *, decided_before: dt.datetime | None = None,
                           decided_by_or_at: dt.datetime | None = None) -> Any:
    """The date of an assignment's latest approved extension (by decision time, then request), as a scalar
    subquery: among those decided before `decided_before`, or at or before `decided_by_or_at`, or all."""
    later = assignment_extensions.alias("approved")
    conditions = [later.c.assignment_id == assignment_id, later.c.status == APPROVED]
    if decided_before is not None:
        conditions.append(later.c.decided_at < decided_before)
    if decided_by_or_at is not None:
        conditions.append(later.c.decided_at <= decided_by_or_at)
    return (select(later.c.requested_due_on).where(*conditions)
            .order_by(later.c.decided_at.desc(), later.c.id.desc()).limit(1).scalar_subquery())


def _query(as_of: dt.datetime | None) -> Any:
    effective = func.coalesce(latest_approved_due_on(ext.assignment_id, decided_before=as_of), assignments.c.due_on,
                              type_=Date)
    return (
        select(assignment_extensions, assignments.c.unit_code, assignments.c.title,
               assignments.c.due_on.label("original_due_on"), effective.label("effective_due_on"))
        .join_from(assignment_extensions, assignments, assignments.c.assignment_id == ext.assignment_id)
    )


def _record(row: Any) -> ExtensionRecord:
    return ExtensionRecord(
        extension_id=int(row.id), assignment_id=row.assignment_id, unit_code=row.unit_code,
        assignment_title=row.title, original_due_on=row.original_due_on, due_on_at_request=row.due_on_at_request,
        requested_due_on=row.requested_due_on, reason=row.reason, requested_by=row.requested_by,
        requested_at=row.requested_at, status=ExtensionStatus(row.status), effective_due_on=row.effective_due_on,
        decision_reason=row.decision_reason or "", decided_by=row.decided_by or "", decided_at=row.decided_at,
        superseded_by=None if row.superseded_by is None else int(row.superseded_by))


def get_extension(connection: Connection, extension_id: int, *, as_of: dt.datetime | None = None
                  ) -> ExtensionRecord | None:
    row = connection.execute(_query(as_of).where(ext.id == extension_id)).first()
    return None if row is None else _record(row)


def _target(connection: Connection, assignment_id: str, at: dt.datetime) -> ExtensionTarget | None:
    """The assignment locked, with its state, the due date in force at `at` and its pending request."""
    found = connection.execute(
        select(assignments.c.assignment_id, assignments.c.unit_code, assignments.c.title, assignments.c.due_on)
        .where(assignments.c.assignment_id == assignment_id).with_for_update()
    ).one_or_none()
    if found is None:
        return None
    state = connection.execute(
        select(assignment_states.c.status, assignment_states.c.completed_on)
        .where(assignment_states.c.assignment_id == assignment_id)
    ).one_or_none()
    in_force = connection.scalar(select(latest_approved_due_on(
        assignments.c.assignment_id, decided_by_or_at=at)).where(assignments.c.assignment_id == assignment_id))
    pending = connection.scalar(select(ext.id).where(ext.assignment_id == assignment_id, ext.status == PENDING)
                                .order_by(ext.id.desc()).limit(1))
    status = state.status if state is not None else None
    return ExtensionTarget(
        assignment_id=found.assignment_id, unit_code=found.unit_code, title=found.title,
        original_due_on=found.due_on, due_on_in_force=in_force or found.due_on,
        status=OutcomeStatus(status) if status else None,
        completed_on=state.completed_on if state is not None else None,
        pending_id=None if pending is None else int(pending))


def request_extension(connection: Connection, new: NewExtension,
                      check: Callable[[ExtensionTarget | None], None]) -> ExtensionRequested:
    target = _target(connection, new.assignment_id, new.requested_at)
    check(target)
    assert target is not None, "the check refuses a request for an assignment that does not exist"
    extension_id = int(connection.execute(assignment_extensions.insert().values(
        assignment_id=new.assignment_id, requested_due_on=new.requested_due_on,
        due_on_at_request=target.due_on_in_force, reason=new.reason, requested_by=new.requested_by,
        requested_at=new.requested_at, status=PENDING,
    ).returning(ext.id)).scalar_one())
    if target.pending_id is not None:
        connection.execute(assignment_extensions.update().where(ext.id == target.pending_id)
                           .values(status=SUPERSEDED, superseded_by=extension_id))
    name = extension_name(new.assignment_id, extension_id)
    append_audit(connection, [NewAuditEvent(
        at=new.requested_at, actor=new.requested_by, action="request_extension", target=name, outcome="done",
        detail={"assignment": f"assignments/{new.assignment_id}", "unit": target.unit_code,
                "requested_due_on": new.requested_due_on.isoformat(),
                "due_on_at_request": target.due_on_in_force.isoformat(), "reason": new.reason,
                "superseded": (extension_name(new.assignment_id, target.pending_id)
                               if target.pending_id is not None else "")})])
    recorded = get_extension(connection, extension_id)
    assert recorded is not None
    superseded = get_extension(connection, target.pending_id) if target.pending_id is not None else None
    return ExtensionRequested(recorded, superseded)


def decide_extension(connection: Connection, extension_id: int, *, approve: bool, reason: str, decided_by: str,
                     at: dt.datetime) -> ExtensionRecord:
    assignment_id = connection.scalar(select(ext.assignment_id).where(ext.id == extension_id))
    if assignment_id is None:
        raise LookupError(extension_id)
    connection.execute(select(assignments.c.assignment_id).where(assignments.c.assignment_id == assignment_id)
                       .with_for_update())  # one decision or request on an assignment at a time
    row = connection.execute(select(ext.status, ext.superseded_by, ext.requested_due_on)
                             .where(ext.id == extension_id)).one()
    if row.status != PENDING:
        raise ExtensionNotPending(row.status, None if row.superseded_by is None else int(row.superseded_by))
    status = APPROVED if approve else REFUSED
    connection.execute(assignment_extensions.update().where(ext.id == extension_id)
                       .values(status=status, decision_reason=reason, decided_by=decided_by, decided_at=at))
    append_audit(connection, [NewAuditEvent(
        at=at, actor=decided_by, action="decide_extension", target=extension_name(assignment_id, extension_id),
        outcome="done", detail={"decision": status, "previous_status": PENDING, "reason": reason,
                                "requested_due_on": row.requested_due_on.isoformat()})])
    decided = get_extension(connection, extension_id)
    assert decided is not None
    return decided


def list_extensions(
    connection: Connection, *, assignment_id: str | None, unit_code: str | None, status: ExtensionStatus | None,
    requested: tuple[dt.datetime, dt.datetime] | None, decided: tuple[dt.datetime, dt.datetime] | None,
    as_of: dt.datetime | None, after: str | None, limit: int,
) -> Page[ExtensionRecord]:
    query = _query(as_of)
    conditions: list[ColumnElement[bool]] = []
    if assignment_id is not None:
        conditions.append(ext.assignment_id == assignment_id)
    if unit_code is not None:
        conditions.append(assignments.c.unit_code == unit_code)
    if status is not None:
        conditions.append(ext.status == status.value)
    if requested is not None:
        conditions.append(and_(ext.requested_at >= requested[0], ext.requested_at < requested[1]))
    if decided is not None:
        conditions.append(and_(ext.decided_at >= decided[0], ext.decided_at < decided[1]))
    if conditions:
        query = query.where(*conditions)
    query = paginate(query, [ext.id], listing=_LISTING, after=after, limit=limit)
    found = list(connection.execute(query))
    keys: list[Key] = [(int(row.id),) for row in found]
    return page_of([_record(row) for row in found], keys, listing=_LISTING, limit=limit)
