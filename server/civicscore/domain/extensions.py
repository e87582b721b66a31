"""Effective due dates, and one unit's task inputs for a quarter from its assignments' histories.

DEFAULT-RULES.md, "Extensions": an approved extension sets an assignment's effective due date; the
latest approval by decision time wins, even when its date is earlier. For a quarter every input that
says "due date" uses the effective date as of the quarter's end (Hanoi time): an approval decided
after that does not change the quarter, which was already judged.

`quarter_inputs` is the definition of the "Inputs" section written as plain Python over a handful of
assignments. The store computes the same in SQL over every unit at once (`store.aggregates`, checked
against this by the tests); golden cases that list assignments instead of counts are evaluated with it.
Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from civicscore.domain.model import ExtendedTask, OutcomeStatus, OverdueTask, TaskCounts
from civicscore.domain.periods import Quarter


@dataclass(frozen=True)
class Approval:
    """An approved extension of one assignment: the date it sets and when it was decided."""

    extension_id: int
    due_on: dt.date
    decided_at: dt.datetime


def latest_approval(approvals: Iterable[Approval], *, before: dt.datetime) -> Approval | None:
    """The approval in force at instant `before` (exclusive): the latest decided before it (ties: the
    later request), None when none was."""
    in_force = [a for a in approvals if a.decided_at < before]
    return max(in_force, key=lambda a: (a.decided_at, a.extension_id)) if in_force else None


def effective_due_on(original: dt.date, approvals: Iterable[Approval], *, before: dt.datetime) -> dt.date:
    """The due date in force at instant `before` (exclusive): the latest approval's date, else `original`."""
    latest = latest_approval(approvals, before=before)
    return original if latest is None else latest.due_on


@dataclass(frozen=True)
class TaskHistory:
    """What the inputs need of one assignment: its own due date, its current state (its latest outcome:
    `status` None without any) and its approved extensions."""

    assignment_id: str
    due_on: dt.date
    status: OutcomeStatus | None = None
    completed_on: dt.date | None = None
    reworked: bool = False
    reminders: int = 0
    approvals: tuple[Approval, ...] = ()


@dataclass(frozen=True)
class QuarterInputs:
    """One unit's task inputs for a quarter, as `UnitFacts` carries them."""

    counts: TaskCounts
    overdue: tuple[OverdueTask, ...]
    extended: tuple[ExtendedTask, ...]


def quarter_inputs(tasks: Sequence[TaskHistory], quarter: Quarter) -> QuarterInputs:
    """DEFAULT-RULES.md "Inputs" for one unit's assignments, with effective due dates as of the quarter's end.

    Cancelled assignments count nowhere. `overdue` and `extended` are ordered by assignment id.
    """
    start, end, closes = quarter.start, quarter.end, quarter.closes_at
    due = completed = on_time = reworked = 0
    overdue: list[OverdueTask] = []
    extended: list[ExtendedTask] = []
    for task in tasks:
        if task.status is OutcomeStatus.CANCELLED:
            continue
        latest = latest_approval(task.approvals, before=closes)
        due_on = task.due_on if latest is None else latest.due_on
        done = task.status is OutcomeStatus.COMPLETED and task.completed_on is not None and task.completed_on <= end
        in_quarter = start <= due_on <= end
        if in_quarter:
            due += 1
            if done:
                assert task.completed_on is not None
                completed += 1
                on_time += task.completed_on <= due_on
                reworked += task.reworked
        is_overdue = due_on < end and not done
        if is_overdue:
            overdue.append(OverdueTask(task.assignment_id, due_on, (end - due_on).days, task.reminders))
        if latest is not None and due_on != task.due_on and (in_quarter or is_overdue or start <= task.due_on <= end):
            extended.append(ExtendedTask(task.assignment_id, task.due_on, due_on, latest.extension_id))
    counts = TaskCounts(due=due, completed=completed, on_time=on_time, late=completed - on_time, reworked=reworked)
    return QuarterInputs(counts, tuple(sorted(overdue, key=lambda t: t.assignment_id)),
                         tuple(sorted(extended, key=lambda t: t.assignment_id)))
