"""Officials' facts for a quarter from what the store knows of them (pure: no I/O, no clock).

DEFAULT-RULES.md, "Individuals": who is evaluated, the unit through which each person is reached, the
units they head at the quarter's end (with what the units' own evaluations raised) and whether they are
under review. The counts of what each official leads are computed by the store (assignments whose lead is
the official, effective due dates) and passed in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from civicscore.domain.model import TaskCounts, Unit, UnitEvaluation
from civicscore.domain.officials import Appointment, HeadedUnit, Official, OfficialFacts, Position
from civicscore.domain.periods import Quarter, QuarterToDate

# Which appointment held on the quarter's end gives a person's unit when they hold several.
_RANK = {Position.HEAD: 0, Position.DEPUTY: 1, Position.OFFICER: 2}


def build_official_facts(
    quarter: Quarter | QuarterToDate,
    officials: Sequence[Official],
    *,
    units: Mapping[str, Unit],
    unit_results: Mapping[str, UnitEvaluation],
    led: Mapping[str, TaskCounts],
    led_overdue: Mapping[str, Sequence[int]],
    criticism_kinds: frozenset[str] = frozenset({"criticism"}),
) -> list[OfficialFacts]:
    """The facts of every active official who held a position on some day of the quarter, by official_id.

    `unit_results` are the units' evaluations of the quarter (a unit headed without one is left out of
    `headed`); `led` and `led_overdue` (days overdue at the quarter's end of each open overdue assignment)
    are keyed by official_id, missing meaning none; `criticism_kinds` are the flag kinds whose reasons a
    headed unit passes on to its head.
    """
    period = str(quarter)
    found: list[OfficialFacts] = []
    for official in sorted(officials, key=lambda o: o.official_id):
        during = [a for a in official.appointments if a.overlaps(quarter.start, quarter.end)]
        if not official.active or not during:
            continue
        held = sorted((a for a in during if a.held_on(quarter.end)), key=lambda a: (_RANK[a.position], a.unit_code))
        if held:
            reached, position = held[0], held[0].position.value
        else:
            reached, position = max(during, key=_ended_on), ""
        headed = tuple(
            _headed_unit(code, units.get(code), unit_results[code], criticism_kinds)
            for code in sorted({a.unit_code for a in held if a.position is Position.HEAD})
            if code in unit_results
        )
        under_review = period in official.under_review_periods or any(
            period in units[a.unit_code].under_review_periods for a in during if a.unit_code in units
        )
        found.append(OfficialFacts(
            official_id=official.official_id,
            unit_code=reached.unit_code,
            period=period,
            position=position,
            under_review=under_review,
            led=led.get(official.official_id, TaskCounts()),
            led_overdue_days=tuple(sorted(led_overdue.get(official.official_id, ()), reverse=True)),
            headed=headed,
        ))
    return found


def _ended_on(appointment: Appointment) -> tuple[dt.date, dt.date, str]:
    """Orders the appointments that ended during the quarter by when they ended (ties: the later start, then
    the unit code, so that the choice never depends on the order they were listed in)."""
    assert appointment.end_on is not None  # held during the quarter but not on its end: it ended before
    return (appointment.end_on, appointment.start_on, appointment.unit_code)


def _headed_unit(code: str, unit: Unit | None, result: UnitEvaluation, criticism_kinds: frozenset[str]
                 ) -> HeadedUnit:
    """A headed unit with the flags its evaluation raised and the reasons of those of a criticism kind."""
    reasons = tuple(reason for flag in result.flags if flag.kind in criticism_kinds for reason in flag.reasons)
    return HeadedUnit(
        unit_code=code,
        unit_name_vi=unit.name_vi if unit is not None else code,
        unit_name_en=unit.name_en if unit is not None else code,
        flags=tuple(flag.flag for flag in result.flags),
        reasons=reasons,
        unit_kind=unit.kind if unit is not None else None,
        block=unit.block if unit is not None else None,
    )
