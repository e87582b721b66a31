"""Difficulties and obstacles (khó khăn, vướng mắc): what a unit reports blocks an assignment.

DEFAULT-RULES.md, "Difficulties and obstacles": a unit reports an obstacle on an assignment (what
blocks it, what it asks for, from whom); the committee office assigns who resolves it and closes it
with a resolution. States: open -> assigned -> resolved; the office may also resolve an open obstacle
directly (it answered it itself), and may reassign an assigned one. Resolved is final.

An obstacle still open at a quarter's end and reported more than the rule files' threshold of days
before the end raises `obstacle_unresolved`; `days_open` counts Hanoi days from the report's date to
the quarter's end. Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from civicscore.domain.periods import HANOI


class ObstacleStatus(StrEnum):
    """Where an obstacle stands: open until the office assigns a resolver, resolved (final) once closed."""

    OPEN = "open"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class NewObstacle:
    """An obstacle to record on an assignment: what blocks it, what the unit asks for, from whom."""

    assignment_id: str
    description: str
    request: str
    requested_of: str
    reported_by: str
    reported_at: dt.datetime


@dataclass(frozen=True)
class ObstacleTarget:
    """What a report is checked against, read in the transaction that records it: the assignment's unit
    and current status (None without any outcome)."""

    assignment_id: str
    unit_code: str
    status: str | None


@dataclass(frozen=True)
class ObstacleRecord:
    """One obstacle with its assignment, its resolver once assigned and its resolution once resolved.

    The resolver is a unit (`resolver_unit`, a code) or a named official (`resolver_official`: free text
    until officials are recorded, then an official's resource name); at most one of them is set."""

    obstacle_id: int
    assignment_id: str
    unit_code: str
    assignment_title: str
    description: str
    request: str
    requested_of: str
    reported_by: str
    reported_at: dt.datetime
    status: ObstacleStatus
    resolver_unit: str = ""
    resolver_official: str = ""
    assigned_by: str = ""
    assigned_at: dt.datetime | None = None
    resolution: str = ""
    resolved_by: str = ""
    resolved_at: dt.datetime | None = None


class ObstacleResolved(Exception):
    """A move on an obstacle that is already resolved (final)."""

    def __init__(self, resolved_at: dt.datetime | None) -> None:
        super().__init__("the obstacle is resolved; it cannot change")
        self.resolved_at = resolved_at


@dataclass(frozen=True)
class OpenObstacle:
    """An obstacle open at a quarter's end, as the rules see it (the `obstacle` fact)."""

    obstacle_id: int
    assignment_id: str
    days_open: int


def hanoi_date(at: dt.datetime) -> dt.date:
    """The Hanoi calendar date of an instant (naive instants are UTC, as the store keeps them)."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
    return aware.astimezone(HANOI).date()


def days_open(reported_at: dt.datetime, on: dt.date) -> int:
    """Hanoi days from the report's date to `on` (0 on the day it was reported)."""
    return (on - hanoi_date(reported_at)).days


def open_at(record: ObstacleRecord, closes_at: dt.datetime) -> bool:
    """Whether the obstacle was reported before `closes_at` and not resolved before it."""
    reported = _aware(record.reported_at) < closes_at
    return reported and (record.resolved_at is None or _aware(record.resolved_at) >= closes_at)


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
