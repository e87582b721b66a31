"""SQL for obstacles (`assignment_obstacles`): report, assign, resolve, read and list them.

A move on an obstacle locks its row first (`FOR UPDATE` on PostgreSQL; SQLite's single write lock does
the same), so two committee members cannot both resolve it, or assign it after it was resolved. The
obstacles open at a quarter's end, as the evaluation inputs count them, are read by `open_obstacles`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.engine import Connection

from civicscore.domain.obstacles import (
    NewObstacle,
    ObstacleRecord,
    ObstacleResolved,
    ObstacleStatus,
    ObstacleTarget,
    OpenObstacle,
    days_open,
)
from civicscore.store.base import NewAuditEvent, Page
from civicscore.store.cursors import Key, page_of, paginate
from civicscore.store.identities import append_audit
from civicscore.store.tables import assignment_obstacles, assignment_states, assignments, units

OPEN, ASSIGNED, RESOLVED = (s.value for s in ObstacleStatus)
_LISTING = "obstacles"
obs = assignment_obstacles.c


def obstacle_name(assignment_id: str, obstacle_id: int) -> str:
    return f"assignments/{assignment_id}/obstacles/{obstacle_id}"


def _query() -> Any:
    return (select(assignment_obstacles, assignments.c.unit_code, assignments.c.title)
            .join_from(assignment_obstacles, assignments, assignments.c.assignment_id == obs.assignment_id))


def _record(row: Any) -> ObstacleRecord:
    return ObstacleRecord(
        obstacle_id=int(row.id), assignment_id=row.assignment_id, unit_code=row.unit_code,
        assignment_title=row.title, description=row.description, request=row.request,
        requested_of=row.requested_of, reported_by=row.reported_by, reported_at=row.reported_at,
        status=ObstacleStatus(row.status), resolver_unit=row.resolver_unit or "",
        resolver_official=row.resolver_official or "", assigned_by=row.assigned_by or "",
        assigned_at=row.assigned_at, resolution=row.resolution or "", resolved_by=row.resolved_by or "",
        resolved_at=row.resolved_at)


def get_obstacle(connection: Connection, obstacle_id: int) -> ObstacleRecord | None:
    row = connection.execute(_query().where(obs.id == obstacle_id)).first()
    return None if row is None else _record(row)


def report_obstacle(connection: Connection, new: NewObstacle,
                    check: Callable[[ObstacleTarget | None], None]) -> ObstacleRecord:
    found = connection.execute(
        select(assignments.c.assignment_id, assignments.c.unit_code)
        .where(assignments.c.assignment_id == new.assignment_id).with_for_update()).one_or_none()
    status = None if found is None else connection.scalar(
        select(assignment_states.c.status).where(assignment_states.c.assignment_id == new.assignment_id))
    check(None if found is None else ObstacleTarget(found.assignment_id, found.unit_code, status or None))
    assert found is not None, "the check refuses an obstacle on an assignment that does not exist"
    obstacle_id = int(connection.execute(assignment_obstacles.insert().values(
        assignment_id=new.assignment_id, description=new.description, request=new.request,
        requested_of=new.requested_of, reported_by=new.reported_by, reported_at=new.reported_at, status=OPEN,
    ).returning(obs.id)).scalar_one())
    append_audit(connection, [NewAuditEvent(
        at=new.reported_at, actor=new.reported_by, action="report_obstacle",
        target=obstacle_name(new.assignment_id, obstacle_id), outcome="done",
        detail={"assignment": f"assignments/{new.assignment_id}", "unit": found.unit_code,
                "description": new.description, "request": new.request, "requested_of": new.requested_of})])
    recorded = get_obstacle(connection, obstacle_id)
    assert recorded is not None
    return recorded


def _lock(connection: Connection, obstacle_id: int) -> Any:
    row = connection.execute(select(obs.assignment_id, obs.status, obs.resolver_unit, obs.resolver_official,
                                    obs.resolved_at).where(obs.id == obstacle_id).with_for_update()).one_or_none()
    if row is None:
        raise LookupError(obstacle_id)
    if row.status == RESOLVED:
        raise ObstacleResolved(row.resolved_at)
    return row


def unit_exists(connection: Connection, code: str) -> bool:
    return connection.scalar(select(units.c.code).where(units.c.code == code)) is not None


def assign_obstacle(connection: Connection, obstacle_id: int, *, resolver_unit: str, resolver_official: str,
                    assigned_by: str, at: dt.datetime, check: Callable[[bool], None]) -> ObstacleRecord:
    row = _lock(connection, obstacle_id)
    check(not resolver_unit or unit_exists(connection, resolver_unit))
    connection.execute(assignment_obstacles.update().where(obs.id == obstacle_id).values(
        status=ASSIGNED, resolver_unit=resolver_unit or None, resolver_official=resolver_official or None,
        assigned_by=assigned_by, assigned_at=at))
    append_audit(connection, [NewAuditEvent(
        at=at, actor=assigned_by, action="assign_obstacle", target=obstacle_name(row.assignment_id, obstacle_id),
        outcome="done", detail={
            "previous_status": row.status,
            "previous_resolver": (f"units/{row.resolver_unit}" if row.resolver_unit else row.resolver_official or ""),
            "resolver": f"units/{resolver_unit}" if resolver_unit else resolver_official})])
    assigned = get_obstacle(connection, obstacle_id)
    assert assigned is not None
    return assigned


def resolve_obstacle(connection: Connection, obstacle_id: int, *, resolution: str, resolved_by: str,
                     at: dt.datetime) -> ObstacleRecord:
    row = _lock(connection, obstacle_id)
    connection.execute(assignment_obstacles.update().where(obs.id == obstacle_id).values(
        status=RESOLVED, resolution=resolution, resolved_by=resolved_by, resolved_at=at))
    append_audit(connection, [NewAuditEvent(
        at=at, actor=resolved_by, action="resolve_obstacle", target=obstacle_name(row.assignment_id, obstacle_id),
        outcome="done", detail={"previous_status": row.status, "resolution": resolution})])
    resolved = get_obstacle(connection, obstacle_id)
    assert resolved is not None
    return resolved


def list_obstacles(
    connection: Connection, *, assignment_id: str | None, unit_code: str | None,
    statuses: Iterable[ObstacleStatus] | None, reported_from: dt.datetime | None,
    reported_before: dt.datetime | None, resolved: tuple[dt.datetime, dt.datetime] | None,
    after: str | None, limit: int,
) -> Page[ObstacleRecord]:
    conditions: list[ColumnElement[bool]] = []
    if assignment_id is not None:
        conditions.append(obs.assignment_id == assignment_id)
    if unit_code is not None:
        conditions.append(assignments.c.unit_code == unit_code)
    if statuses is not None:
        conditions.append(obs.status.in_([s.value for s in statuses]))
    if reported_from is not None:
        conditions.append(obs.reported_at >= reported_from)
    if reported_before is not None:
        conditions.append(obs.reported_at < reported_before)
    if resolved is not None:
        conditions.append(obs.resolved_at >= resolved[0])
        conditions.append(obs.resolved_at < resolved[1])
    query = _query()
    if conditions:
        query = query.where(*conditions)
    query = paginate(query, [obs.id], listing=_LISTING, after=after, limit=limit)
    found = list(connection.execute(query))
    keys: list[Key] = [(int(row.id),) for row in found]
    return page_of([_record(row) for row in found], keys, listing=_LISTING, limit=limit)


def open_obstacles(connection: Connection, *, end: dt.date, closes_at: dt.datetime,
                   unit_codes: Iterable[str] | None = None) -> dict[str, tuple[OpenObstacle, ...]]:
    """Per unit, the obstacles reported before `closes_at` and not resolved before it, with their days
    open at `end` (oldest first, then by id); units without any are absent."""
    query = (select(obs.id, obs.assignment_id, obs.reported_at, assignments.c.unit_code)
             .join_from(assignment_obstacles, assignments, assignments.c.assignment_id == obs.assignment_id)
             .where(obs.reported_at < closes_at, or_(obs.resolved_at.is_(None), obs.resolved_at >= closes_at))
             .order_by(assignments.c.unit_code, obs.reported_at, obs.id))
    if unit_codes is not None:
        query = query.where(assignments.c.unit_code.in_(list(unit_codes)))
    result: dict[str, list[OpenObstacle]] = {}
    for row in connection.execute(query):
        result.setdefault(row.unit_code, []).append(
            OpenObstacle(int(row.id), row.assignment_id, days_open(row.reported_at, end)))
    return {code: tuple(items) for code, items in result.items()}
