"""Evaluation inputs computed in SQL, as defined in DEFAULT-RULES.md "Inputs".

The current state of an assignment is its latest outcome by `reported_at`,
ties broken by arrival order (`seq`): a ROW_NUMBER() window that SQLite
(3.25+) and PostgreSQL both run. An assignment with no outcome has no state:
it is due, not completed, and (once past due) overdue with no reminders.
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
from civicscore.domain.periods import InvalidPeriod, Quarter
from civicscore.store.rows import tuple_of
from civicscore.store.tables import assignments, evaluations, measurements, outcomes, targets, units

COMPLETED = OutcomeStatus.COMPLETED.value
CANCELLED = OutcomeStatus.CANCELLED.value


def current_states(assignment_filter: ColumnElement[bool]) -> Subquery:
    """The latest outcome of each assignment matching `assignment_filter`."""
    position = func.row_number().over(
        partition_by=outcomes.c.assignment_id,
        order_by=(outcomes.c.reported_at.desc(), outcomes.c.seq.desc()),
    )
    ranked = (
        select(
            outcomes.c.assignment_id,
            outcomes.c.status,
            outcomes.c.completed_on,
            outcomes.c.quality,
            outcomes.c.reminders,
            position.label("position"),
        )
        .join(assignments, assignments.c.assignment_id == outcomes.c.assignment_id)
        .where(assignment_filter)
        .subquery("ranked")
    )
    return select(ranked).where(ranked.c.position == 1).subquery("current")


def _not_cancelled(state: Subquery) -> ColumnElement[bool]:
    return or_(state.c.status.is_(None), state.c.status != CANCELLED)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def task_counts(connection: Connection, *, start: dt.date, end: dt.date) -> dict[str, TaskCounts]:
    """Units with at least one non-cancelled assignment due in [start, end]; others are absent."""
    in_quarter = assignments.c.due_on.between(start, end)
    state = current_states(in_quarter)
    completed = and_(state.c.status == COMPLETED, state.c.completed_on <= end)
    query = (
        select(
            assignments.c.unit_code,
            func.count().label("due"),
            _count(completed).label("completed"),
            _count(and_(completed, state.c.completed_on <= assignments.c.due_on)).label("on_time"),
            _count(and_(completed, state.c.completed_on > assignments.c.due_on)).label("late"),
            _count(and_(completed, state.c.quality == Quality.RETURNED_FOR_REWORK.value)).label("reworked"),
        )
        .select_from(assignments.outerjoin(state, state.c.assignment_id == assignments.c.assignment_id))
        .where(in_quarter, _not_cancelled(state))
        .group_by(assignments.c.unit_code)
    )
    return {
        row.unit_code: TaskCounts(
            due=int(row.due), completed=int(row.completed), on_time=int(row.on_time),
            late=int(row.late), reworked=int(row.reworked),
        )
        for row in connection.execute(query)
    }


def open_overdue(connection: Connection, *, end: dt.date) -> dict[str, list[OverdueTask]]:
    """Assignments of any quarter due before `end`, not cancelled, not completed by `end`."""
    before_end = assignments.c.due_on < end
    state = current_states(before_end)
    not_completed_by_end = or_(
        state.c.status.is_(None),
        state.c.status != COMPLETED,
        state.c.completed_on.is_(None),
        state.c.completed_on > end,
    )
    query = (
        select(
            assignments.c.unit_code,
            assignments.c.assignment_id,
            assignments.c.due_on,
            func.coalesce(state.c.reminders, 0).label("reminders"),
        )
        .select_from(assignments.outerjoin(state, state.c.assignment_id == assignments.c.assignment_id))
        .where(before_end, _not_cancelled(state), not_completed_by_end)
        .order_by(assignments.c.unit_code, assignments.c.due_on, assignments.c.assignment_id)
    )
    overdue: dict[str, list[OverdueTask]] = defaultdict(list)
    for row in connection.execute(query):
        overdue[row.unit_code].append(
            OverdueTask(
                assignment_id=row.assignment_id,
                due_on=row.due_on,
                days_overdue=(end - row.due_on).days,
                reminders=int(row.reminders),
            )
        )
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
    in_quarter = assignments.c.due_on.between(start, end)
    state = current_states(in_quarter)
    due = (
        select(func.count())
        .select_from(assignments.outerjoin(state, state.c.assignment_id == assignments.c.assignment_id))
        .where(in_quarter, _not_cancelled(state))
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
        quarters.add(Quarter(int(row.year), (int(row.month) - 1) // 3 + 1))
    for period in connection.scalars(select(evaluations.c.period).distinct()):
        try:
            quarters.add(Quarter.parse(period))
        except InvalidPeriod:  # annual roll-ups ("2026") are not quarters
            continue
    return [str(quarter) for quarter in sorted(quarters, reverse=True)]
