"""Evaluation inputs computed in SQL, as defined in DEFAULT-RULES.md "Inputs".

The current state of an assignment is its latest outcome by `reported_at`,
ties broken by arrival order (`seq`). It is not ranked here: the writers keep
it in `assignment_states` (see `states`), one row per assignment beside a copy
of its unit and due date, so each aggregate below is one range scan of that
table by `due_on` with no join and no window. An assignment with no outcome
has NULL state columns: it is due, not completed, and (once past due)
overdue with no reminders.

Due dates are effective ones (DEFAULT-RULES.md "Extensions"): for a quarter ending on `end`, an
assignment with an extension approved by the end of `end` (Hanoi time) is due on the latest such
approval's date. Approved extensions are few next to assignments, so each aggregate runs twice over
disjoint sets: the range scan as before over the assignments without such an approval (`NOT IN` the
approved set, one probe of a small in-memory index per row), and a join of the effective dates of the
others with their states; the per-unit results are added up. Both are set-based (one statement each,
whatever the number of units), and the first costs the scan it cost before.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import ColumnElement, Select, Subquery, and_, case, distinct, extract, func, or_, select
from sqlalchemy.engine import Connection

from civicscore.domain.model import (
    ExtendedTask,
    ExtensionStatus,
    MeasurementFact,
    OutcomeStatus,
    OverdueTask,
    PriorQuarter,
    Quality,
    TaskCounts,
)
from civicscore.domain.periods import FIRST_YEAR, LAST_YEAR, InvalidPeriod, Quarter, day_ends_at
from civicscore.store.driver import Driver, around
from civicscore.store.rows import tuple_of
from civicscore.store.tables import (
    assignment_extensions,
    assignment_states,
    assignments,
    evaluations,
    measurements,
    targets,
    units,
)

COMPLETED = OutcomeStatus.COMPLETED.value
CANCELLED = OutcomeStatus.CANCELLED.value

state = assignment_states.c


def _not_cancelled() -> ColumnElement[bool]:
    return or_(state.status.is_(None), state.status != CANCELLED)


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


_APPROVED = ExtensionStatus.APPROVED.value


def _approved_by(end: dt.date) -> ColumnElement[bool]:
    """Extensions approved by the end of `end`, Hanoi time (the quarter's inputs as of its end)."""
    return and_(assignment_extensions.c.status == _APPROVED, assignment_extensions.c.decided_at < day_ends_at(end))


def _extended_ids(end: dt.date) -> Select[tuple[str]]:
    """Assignments with an extension approved by the end of `end`: their due date is an effective one."""
    return select(assignment_extensions.c.assignment_id).where(_approved_by(end))


def effective_due_dates(end: dt.date) -> Subquery:
    """(assignment_id, due_on, extension_id): each extended assignment's latest approval by the end of `end`
    (by decision time, then request), the date in force as of then."""
    ranked = (
        select(
            assignment_extensions.c.assignment_id,
            assignment_extensions.c.requested_due_on.label("due_on"),
            assignment_extensions.c.id.label("extension_id"),
            func.row_number().over(
                partition_by=assignment_extensions.c.assignment_id,
                order_by=(assignment_extensions.c.decided_at.desc(), assignment_extensions.c.id.desc()),
            ).label("position"),
        )
        .where(_approved_by(end))
        .subquery("ranked")
    )
    return (select(ranked.c.assignment_id, ranked.c.due_on, ranked.c.extension_id)
            .where(ranked.c.position == 1).subquery("effective"))


def task_counts(connection: Connection, *, start: dt.date, end: dt.date,
                unit_codes: Sequence[str] | None = None) -> dict[str, TaskCounts]:
    """Units with at least one non-cancelled assignment due in [start, end]; others are absent. With
    `unit_codes`, those units (and on PostgreSQL perhaps others whose codes lie between theirs: `driver.around`).

    `late` is completed minus on_time: a completed assignment has a
    completed_on (else `completed_on <= end` fails), so it is exactly one of the two.
    """
    completed = and_(state.status == COMPLETED, state.completed_on <= end)

    def counts(due_on: ColumnElement[dt.date]) -> Select[tuple[str, int, int, int, int]]:
        return select(
            state.unit_code,
            func.count().label("due"),
            _count(completed).label("completed"),
            _count(and_(completed, state.completed_on <= due_on)).label("on_time"),
            _count(and_(completed, state.quality == Quality.RETURNED_FOR_REWORK.value)).label("reworked"),
        ).group_by(state.unit_code)

    effective = effective_due_dates(end)
    own = counts(state.due_on).where(state.due_on.between(start, end), _not_cancelled(),
                                     state.assignment_id.not_in(_extended_ids(end)))
    moved = (counts(effective.c.due_on).join_from(assignment_states, effective,
                                                  effective.c.assignment_id == state.assignment_id)
             .where(effective.c.due_on.between(start, end), _not_cancelled()))
    if unit_codes is not None:
        own, moved = (query.where(around(connection, state.unit_code, unit_codes)) for query in (own, moved))
    totals: dict[str, list[int]] = {}
    for query in (own, moved):
        for row in connection.execute(query):
            added = totals.setdefault(row.unit_code, [0, 0, 0, 0])
            for index, value in enumerate((row.due, row.completed, row.on_time, row.reworked)):
                added[index] += int(value)
    return {
        code: TaskCounts(due=due, completed=done, on_time=on_time, late=done - on_time, reworked=reworked)
        for code, (due, done, on_time, reworked) in totals.items()
    }


# Not cancelled, and not completed by the end (parameters: cancelled, completed, the end).
_OPEN = "(status IS NULL OR (status <> ? AND (status <> ? OR completed_on IS NULL OR completed_on > ?)))"
# Assignments without an extension approved by the end of the quarter, by their own due date. In both statements
# `{units}` is the test of a group's units (`Driver.around`), or nothing.
_OPEN_OVERDUE = (
    f"SELECT unit_code, assignment_id, due_on, reminders FROM assignment_states WHERE due_on < ? AND {_OPEN} "
    "AND assignment_id NOT IN (SELECT assignment_id FROM assignment_extensions WHERE status = ? AND decided_at < ?) "
    "{units}ORDER BY unit_code, due_on, assignment_id"
)
# The others, by their effective due date (the latest approval by then).
_OPEN_OVERDUE_EXTENDED = (
    "SELECT s.unit_code, s.assignment_id, e.due_on, s.reminders FROM ("
    "SELECT assignment_id, requested_due_on AS due_on, ROW_NUMBER() OVER (PARTITION BY assignment_id "
    "ORDER BY decided_at DESC, id DESC) AS position FROM assignment_extensions WHERE status = ? AND decided_at < ?"
    f") AS e JOIN assignment_states AS s ON s.assignment_id = e.assignment_id WHERE e.position = 1 AND e.due_on < ? "
    f"AND {_OPEN.replace('status', 's.status').replace('completed_on', 's.completed_on')}"
    " {units}"
)


def open_overdue(connection: Connection, *, end: dt.date,
                 unit_codes: Sequence[str] | None = None) -> dict[str, list[OverdueTask]]:
    """Assignments of any quarter due before `end`, not cancelled, not completed by `end`; each unit's in
    (due date, id) order. With `unit_codes`, those units (and perhaps others, as in `task_counts`).

    Read at the driver level: this is the one aggregate returning a row per
    assignment (tens of thousands), and SQLAlchemy's per-row date processing
    cost more than the query; each distinct due date is parsed once.
    """
    driver = Driver(connection)
    stored_end = driver.date(end)
    closes = driver.timestamp(day_ends_at(end))
    everyone = unit_codes is None
    chosen = () if everyone else driver.around_keys(unit_codes or ())
    own = _OPEN_OVERDUE.format(units="" if everyone else f"AND {driver.around('unit_code')} ")
    others = _OPEN_OVERDUE_EXTENDED.format(units="" if everyone else f"AND {driver.around('s.unit_code')}")
    found = driver.run(own, (stored_end, CANCELLED, COMPLETED, stored_end, _APPROVED, closes, *chosen)).all()
    extended = driver.run(others, (_APPROVED, closes, stored_end, CANCELLED, COMPLETED, stored_end, *chosen)).all()
    due_dates: dict[object, dt.date] = {}
    overdue: dict[str, list[OverdueTask]] = defaultdict(list)
    for unit_code, assignment_id, stored_due_on, reminders in (*found, *extended):
        due_on = due_dates.get(stored_due_on)
        if due_on is None:
            due_on = due_dates[stored_due_on] = driver.date_from(stored_due_on)
        overdue[unit_code].append(OverdueTask(assignment_id, due_on, (end - due_on).days, reminders or 0))
    for unit_code in {row[0] for row in extended}:  # merged into the unit's list in (due date, id) order
        overdue[unit_code].sort(key=lambda task: (task.due_on, task.assignment_id))
    return dict(overdue)


def extended_tasks(connection: Connection, *, start: dt.date, end: dt.date) -> dict[str, list[ExtendedTask]]:
    """Assignments among the inputs of [start, end] (due in it, open and overdue at `end`, or due in it by
    their own date) whose effective due date as of the end of `end` differs from their own, per unit,
    by id; cancelled ones count nowhere."""
    effective = effective_due_dates(end)
    # spelled out with its NULLs: an assignment without any outcome is not done (a NOT over NULL is NULL)
    not_done = or_(state.status.is_(None), state.status != COMPLETED, state.completed_on.is_(None),
                   state.completed_on > end)
    query = (
        select(state.unit_code, state.assignment_id, state.due_on.label("original_due_on"), effective.c.due_on,
               effective.c.extension_id)
        .join_from(assignment_states, effective, effective.c.assignment_id == state.assignment_id)
        .where(effective.c.due_on != state.due_on, _not_cancelled(), or_(
            effective.c.due_on.between(start, end), state.due_on.between(start, end),
            and_(effective.c.due_on < end, not_done)))
        .order_by(state.unit_code, state.assignment_id)
    )
    found: dict[str, list[ExtendedTask]] = defaultdict(list)
    for row in connection.execute(query):
        found[row.unit_code].append(
            ExtendedTask(row.assignment_id, row.original_due_on, row.due_on, int(row.extension_id)))
    return dict(found)


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
    """Due counts use effective due dates and exclude cancelled assignments, as in task_counts."""
    effective = effective_due_dates(end)
    own = (
        select(func.count())
        .select_from(assignment_states)
        .where(state.due_on.between(start, end), _not_cancelled(), state.assignment_id.not_in(_extended_ids(end)))
        .scalar_subquery()
    )
    moved = (
        select(func.count())
        .select_from(assignment_states.join(effective, effective.c.assignment_id == state.assignment_id))
        .where(effective.c.due_on.between(start, end), _not_cancelled())
        .scalar_subquery()
    )
    due = own + moved
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
