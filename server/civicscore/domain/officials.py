"""Officials (cá nhân): the people the committee may commend or criticise, and what the rules see of them.

Only what the evaluation needs is kept (DEFAULT-RULES.md, "Individuals"): an id chosen by the city's
personnel system, the person's name, and the positions they held (unit, position, inclusive dates).
No national id, no birth date, no contact details.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from civicscore.domain.model import FiredRule, FlagResult, TaskCounts, UnitKind


class Position(StrEnum):
    """A position in a unit: its head (người đứng đầu), a deputy (cấp phó) or an officer (cán bộ, công chức)."""

    HEAD = "head"
    DEPUTY = "deputy"
    OFFICER = "officer"


POSITION_LABELS: dict[Position, tuple[str, str]] = {
    Position.HEAD: ("Người đứng đầu", "Head"),
    Position.DEPUTY: ("Cấp phó", "Deputy"),
    Position.OFFICER: ("Cán bộ, công chức", "Officer"),
}


@dataclass(frozen=True)
class Appointment:
    """A position held in a unit from `start_on` to `end_on` (both inclusive; None: still held)."""

    unit_code: str
    position: Position
    start_on: dt.date
    end_on: dt.date | None = None

    def held_on(self, day: dt.date) -> bool:
        """Whether the position was held on `day`."""
        return self.start_on <= day and (self.end_on is None or day <= self.end_on)

    def overlaps(self, start: dt.date, end: dt.date) -> bool:
        """Whether the position was held on some day of [start, end]."""
        return self.start_on <= end and (self.end_on is None or start <= self.end_on)


@dataclass(frozen=True)
class Official:
    """A person as the city's personnel system sends them. `active` false: deactivated (kept, because
    evaluated people are never deleted, but no longer evaluated or offered for new assignments)."""

    official_id: str
    name: str
    appointments: tuple[Appointment, ...] = ()
    active: bool = True
    under_review_periods: tuple[str, ...] = ()


@dataclass(frozen=True)
class HeadedUnit:
    """A unit an official heads at the quarter's end, with what its own evaluation of the quarter raised:
    `flags` (flag ids) and `reasons`, the fired rules behind its flags of kind criticism (carried into the
    head's recommendation, so that the committee reads why without opening the unit)."""

    unit_code: str
    unit_name_vi: str
    unit_name_en: str
    flags: tuple[str, ...]
    reasons: tuple[FiredRule, ...] = ()
    # The unit's kind and ranking block (fields of the `head` fact; left out of it while None).
    unit_kind: UnitKind | None = None
    block: str | None = None


@dataclass(frozen=True)
class OfficialFacts:
    """Everything the rules see about one official in one quarter.

    `unit_code` is the unit through which the person is reached (and replies): the unit of the position
    held at the quarter's end, else of the last position held during it. `led` counts the assignments
    the official leads (người chủ trì) that are due in the quarter (effective due dates, any unit);
    `led_overdue_days` are the days overdue at the quarter's end of the open overdue assignments they
    lead, longest first. `under_review`: the official, or a unit they held a position in during the
    quarter, is under review for it."""

    official_id: str
    unit_code: str
    period: str
    position: str  # the position held at the quarter's end in `unit_code`; "" when none is held then
    under_review: bool
    led: TaskCounts
    led_overdue_days: tuple[int, ...] = ()
    headed: tuple[HeadedUnit, ...] = ()


@dataclass(frozen=True)
class OfficialEvaluation:
    """The engine's verdict on one official and quarter: the rules that fired and the flags they raised
    (no score or grade: people are not ranked)."""

    official_id: str
    unit_code: str
    period: str
    position: str
    under_review: bool
    led: TaskCounts
    led_open_overdue: int
    headed_units: tuple[str, ...]
    fired_rules: tuple[FiredRule, ...]
    flags: tuple[FlagResult, ...]
    ruleset_version: str
    ruleset_digest: str
    inputs_digest: str
