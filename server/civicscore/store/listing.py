"""Lookups and keyset-paginated listings of units, assignments, outcomes, measurements and targets."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from civicscore.domain.model import Assignment, Measurement, Outcome, Target, Unit, UnitKind
from civicscore.store import rows
from civicscore.store.base import Page
from civicscore.store.cursors import Key, page_of, paginate
from civicscore.store.driver import Driver, one_of
from civicscore.store.tables import assignments, measurements, outcomes, targets, units


def get_units(connection: Connection, codes: Sequence[str]) -> dict[str, Unit]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    query = select(units).where(one_of(connection, units.c.code, wanted))
    return {row.code: rows.unit_from(row) for row in connection.execute(query)}


def list_units(
    connection: Connection, *, kind: UnitKind | None, block: str | None, active: bool | None,
    parent_code: str | None, after: str | None, limit: int,
) -> Page[Unit]:
    query = select(units)
    if kind is not None:
        query = query.where(units.c.kind == UnitKind(kind).value)
    if block is not None:
        query = query.where(units.c.block == block)
    if active is not None:
        query = query.where(units.c.active == active)
    if parent_code is not None:
        query = query.where(units.c.parent_code == parent_code)
    query = paginate(query, [units.c.code], listing="units", after=after, limit=limit)
    found = list(connection.execute(query))
    keys: list[Key] = [(row.code,) for row in found]
    return page_of([rows.unit_from(row) for row in found], keys, listing="units", limit=limit)


def get_assignments(connection: Connection, assignment_ids: Sequence[str]) -> dict[str, Assignment]:
    wanted = sorted(set(assignment_ids))
    if not wanted:
        return {}
    query = select(assignments).where(one_of(connection, assignments.c.assignment_id, wanted))
    return {row.assignment_id: rows.assignment_from(row) for row in connection.execute(query)}


def assignment_dates(connection: Connection, assignment_ids: Sequence[str]) -> dict[str, dt.date]:
    """Only (assignment_id, assigned_on), read at the driver level: outcome validation's one lookup."""
    wanted = sorted(set(assignment_ids))
    if not wanted:
        return {}
    driver = Driver(connection)
    found = driver.run(
        "SELECT assignment_id, assigned_on FROM assignments WHERE " + driver.any_of("assignment_id"),
        (driver.keys(wanted),),
    ).all()  # one fetch of every row (iterating the result fetches them one at a time)
    dates: dict[object, dt.date] = {}  # each distinct stored date parsed once: a batch shares a few
    out: dict[str, dt.date] = {}
    for assignment_id, assigned_on in found:
        date = dates.get(assigned_on)
        if date is None:
            date = dates[assigned_on] = driver.date_from(assigned_on)
        out[assignment_id] = date
    return out


def assignment_units(connection: Connection, assignment_ids: Sequence[str]) -> dict[str, str]:
    """Only (assignment_id, unit_code), read at the driver level: a reporter's scope check of an outcome batch."""
    wanted = sorted(set(assignment_ids))
    if not wanted:
        return {}
    driver = Driver(connection)
    found = driver.run("SELECT assignment_id, unit_code FROM assignments WHERE " + driver.any_of("assignment_id"),
                       (driver.keys(wanted),)).all()
    return {assignment_id: unit_code for assignment_id, unit_code in found}


def list_assignments(
    connection: Connection, *, unit_code: str | None, area: str | None, due_from: dt.date | None,
    due_to: dt.date | None, after: str | None, limit: int,
) -> Page[Assignment]:
    """`due_from` and `due_to` are inclusive."""
    query = select(assignments)
    if unit_code is not None:
        query = query.where(assignments.c.unit_code == unit_code)
    if area is not None:
        query = query.where(assignments.c.area == area)
    if due_from is not None:
        query = query.where(assignments.c.due_on >= due_from)
    if due_to is not None:
        query = query.where(assignments.c.due_on <= due_to)
    query = paginate(query, [assignments.c.assignment_id], listing="assignments", after=after, limit=limit)
    found = list(connection.execute(query))
    keys: list[Key] = [(row.assignment_id,) for row in found]
    return page_of([rows.assignment_from(row) for row in found], keys, listing="assignments", limit=limit)


def list_outcomes(
    connection: Connection, *, assignment_id: str | None, unit_code: str | None,
    after: str | None, limit: int,
) -> Page[Outcome]:
    """Outcomes in arrival order, so a client can follow the feed with its cursor."""
    query = select(outcomes)
    if assignment_id is not None:
        query = query.where(outcomes.c.assignment_id == assignment_id)
    if unit_code is not None:
        query = query.join(assignments, assignments.c.assignment_id == outcomes.c.assignment_id).where(
            assignments.c.unit_code == unit_code
        )
    query = paginate(query, [outcomes.c.seq], listing="outcomes", after=after, limit=limit)
    found = list(connection.execute(query))
    keys: list[Key] = [(int(row.seq),) for row in found]
    return page_of([rows.outcome_from(row) for row in found], keys, listing="outcomes", limit=limit)


def count_outcomes(connection: Connection) -> int:
    return int(connection.scalar(select(func.count()).select_from(outcomes)) or 0)


def list_measurements(
    connection: Connection, *, unit_code: str | None, period: str | None, indicator: str | None,
    after: str | None, limit: int,
) -> Page[Measurement]:
    query = select(measurements)
    if unit_code is not None:
        query = query.where(measurements.c.unit_code == unit_code)
    if period is not None:
        query = query.where(measurements.c.period == period)
    if indicator is not None:
        query = query.where(measurements.c.indicator == indicator)
    columns = [measurements.c.period, measurements.c.unit_code, measurements.c.indicator]
    query = paginate(query, columns, listing="measurements", after=after, limit=limit)
    found = list(connection.execute(query))
    keys: list[Key] = [(row.period, row.unit_code, row.indicator) for row in found]
    return page_of([rows.measurement_from(row) for row in found], keys, listing="measurements", limit=limit)


def list_targets(
    connection: Connection, *, period: str | None, indicator: str | None, unit_code: str | None,
    after: str | None, limit: int,
) -> Page[Target]:
    """`unit_code` selects the targets set for that unit itself (not those of its kind)."""
    query = select(targets)
    if period is not None:
        query = query.where(targets.c.period == period)
    if indicator is not None:
        query = query.where(targets.c.indicator == indicator)
    if unit_code is not None:
        query = query.where(targets.c.scope_type == "unit", targets.c.scope_code == unit_code)
    columns = [targets.c.period, targets.c.indicator, targets.c.scope_type, targets.c.scope_code]
    query = paginate(query, columns, listing="targets", after=after, limit=limit)
    found = list(connection.execute(query))
    keys: list[Key] = [(row.period, row.indicator, row.scope_type, row.scope_code) for row in found]
    return page_of([rows.target_from(row) for row in found], keys, listing="targets", limit=limit)
