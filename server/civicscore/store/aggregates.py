"""Evaluation inputs computed in SQL, as defined in DEFAULT-RULES.md "Inputs".

The current state of an assignment is its latest outcome by `reported_at`,
ties broken by arrival order (`seq`). It is not ranked here: the writers keep
it in `assignment_states` (see `states`), one row per assignment beside a copy
of its unit and due date, so each aggregate below is one range scan of that
table by `due_on` with no join and no window. An assignment with no outcome
has NULL state columns: it is due, not completed, and (once past due)
overdue with no reminders.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from sqlalchemy import ColumnElement, Subquery, and_, case, distinct, extract, func, or_, select
from sqlalchemy.engine import Connection

from civicscore.domain.model import (
    MeasurementFact,
    OutcomeStatus,
    OverdueTask,
    PriorQuarter,
    Quality,
    TaskCounts,
)
from civicscore.domain.periods import FIRST_YEAR, LAST_YEAR, InvalidPeriod, Quarter
from civicscore.store.driver import Driver
from civicscore.store.rows import tuple_of
from civicscore.store.tables import assignment_states, assignments, evaluations, measurements, targets, units

COMPLETED = OutcomeStatus.COMPLETED.value
CANCELLED = OutcomeStatus.CANCELLED.value

state = assignment_states.c


def _not_cancelled() -> ColumnElement[bool]:
    return or_(state.status.is_(None), state.status != CANCELLED)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def task_counts(connection: Connection, *, start: dt.date, end: dt.date) -> dict[str, TaskCounts]:
    """Units with at least one non-cancelled assignment due in [start, end]; others are absent.

    `late` is completed minus on_time: a completed assignment has a
    completed_on (else `completed_on <= end` fails), so it is exactly one of the two.
    """
    completed = and_(state.status == COMPLETED, state.completed_on <= end)
    query = (
        select(
            state.unit_code,
            func.count().label("due"),
            _count(completed).label("completed"),
            _count(and_(completed, state.completed_on <= state.due_on)).label("on_time"),
            _count(and_(completed, state.quality == Quality.RETURNED_FOR_REWORK.value)).label("reworked"),
        )
        .where(state.due_on.between(start, end), _not_cancelled())
        .group_by(state.unit_code)
    )
    return {
        row.unit_code: TaskCounts(
            due=int(row.due), completed=int(row.completed), on_time=int(row.on_time),
            late=int(row.completed) - int(row.on_time), reworked=int(row.reworked),
        )
        for row in connection.execute(query)
    }


_OPEN_OVERDUE = (
    "SELECT unit_code, assignment_id, due_on, reminders FROM assignment_states "
    "WHERE due_on < ? AND (status IS NULL OR (status <> ? AND (status <> ? OR completed_on IS NULL "
    "OR completed_on > ?))) ORDER BY unit_code, due_on, assignment_id"
)


def open_overdue(connection: Connection, *, end: dt.date) -> dict[str, list[OverdueTask]]:
    """Assignments of any quarter due before `end`, not cancelled, not completed by `end`.

    Read at the driver level: this is the one aggregate returning a row per
    assignment (tens of thousands), and SQLAlchemy's per-row date processing
    cost more than the query; each distinct due date is parsed once.
    """
    driver = Driver(connection)
    stored_end = driver.date(end)
    found = driver.run(_OPEN_OVERDUE, (stored_end, CANCELLED, COMPLETED, stored_end)).all()
    due_dates: dict[object, dt.date] = {}
    overdue: dict[str, list[OverdueTask]] = defaultdict(list)
    for unit_code, assignment_id, stored_due_on, reminders in found:
        due_on = due_dates.get(stored_due_on)
        if due_on is None:
            due_on = due_dates[stored_due_on] = driver.date_from(stored_due_on)
        overdue[unit_code].append(OverdueTask(assignment_id, due_on, (end - due_on).days, reminders or 0))
    return dict(overdue)


def measurement_facts(connection: Connection, *, period: str) -> dict[str, list[MeasurementFact]]:
    """Each measurement of `period` with the unit's own target, else its kind's, else None."""
    unit_target = targets.alias("unit_target")
    kind_target = targets.alias("kind_target")
    query = (
        select(
            measurements.c.unit_code,
            measurements.c.indicator,
            measurements.c.numerator,
            measurements.c.denominator,
            func.coalesce(unit_target.c.value, kind_target.c.value).label("target"),
        )
        .select_from(
            measurements.join(units, units.c.code == measurements.c.unit_code)
            .outerjoin(unit_target, and_(
                unit_target.c.period == measurements.c.period,
                unit_target.c.indicator == measurements.c.indicator,
                unit_target.c.scope_type == "unit",
                unit_target.c.scope_code == measurements.c.unit_code,
            ))
            .outerjoin(kind_target, and_(
                kind_target.c.period == measurements.c.period,
                kind_target.c.indicator == measurements.c.indicator,
                kind_target.c.scope_type == "kind",
                kind_target.c.scope_code == units.c.kind,
            ))
        )
        .where(measurements.c.period == period)
        .order_by(measurements.c.unit_code, measurements.c.indicator)
    )
    facts: dict[str, list[MeasurementFact]] = defaultdict(list)
    for row in connection.execute(query):
        facts[row.unit_code].append(
            MeasurementFact(
                indicator=row.indicator, numerator=row.numerator, denominator=row.denominator,
                target=row.target,
            )
        )
    return dict(facts)


def latest_revisions(period: str) -> Subquery:
    """(unit_code, revision) of each unit's latest evaluation for `period`."""
    return (
        select(evaluations.c.unit_code, func.max(evaluations.c.revision).label("revision"))
        .where(evaluations.c.period == period)
        .group_by(evaluations.c.unit_code)
        .subquery("latest")
    )


def prior_quarters(connection: Connection, *, period: str) -> dict[str, PriorQuarter]:
    latest = latest_revisions(period)
    query = (
        select(evaluations.c.unit_code, evaluations.c.grade, evaluations.c.flags_json)
        .join(latest, and_(
            evaluations.c.unit_code == latest.c.unit_code, evaluations.c.revision == latest.c.revision,
        ))
        .where(evaluations.c.period == period)
    )
    return {
        row.unit_code: PriorQuarter(period=period, grade=row.grade, flags=tuple_of(row.flags_json))
        for row in connection.execute(query)
    }


def period_figures(connection: Connection, *, start: dt.date, end: dt.date, period: str) -> tuple[int, int]:
    """Due counts exclude cancelled assignments, as in task_counts."""
    due = (
        select(func.count())
        .select_from(assignment_states)
        .where(state.due_on.between(start, end), _not_cancelled())
        .scalar_subquery()
    )
    evaluated = (
        select(func.count(distinct(evaluations.c.unit_code)))
        .where(evaluations.c.period == period)
        .scalar_subquery()
    )
    row = connection.execute(select(due.label("due"), evaluated.label("evaluated"))).one()
    return int(row.due), int(row.evaluated)


def periods_with_data(connection: Connection) -> list[str]:
    quarters: set[Quarter] = set()
    months = select(
        extract("year", assignments.c.due_on).label("year"),
        extract("month", assignments.c.due_on).label("month"),
    ).distinct()
    for row in connection.execute(months):
        year = int(row.year)
        if FIRST_YEAR <= year <= LAST_YEAR:  # a due date outside the domain names no quarter (admin check-data)
            quarters.add(Quarter(year, (int(row.month) - 1) // 3 + 1))
    for period in connection.scalars(select(evaluations.c.period).distinct()):
        try:
            quarters.add(Quarter.parse(period))
        except InvalidPeriod:  # annual roll-ups ("2026") are not quarters
            continue
    return [str(quarter) for quarter in sorted(quarters, reverse=True)]
