"""Resource names from the short forms people type: `SNV` → `units/SNV`, `2026-Q3` → `periods/2026-Q3`."""

from __future__ import annotations

import re

_QUARTER = re.compile(r"^\d{4}-[Qq][1-4]$")


def unit_name(unit: str) -> str:
    """`units/{code}` for a bare code (codes are upper case, so `snv` is `units/SNV`) or a full name."""
    unit = unit.strip()
    if unit.startswith("units/"):
        return unit
    return f"units/{unit.upper()}"


def unit_code(unit: str) -> str:
    """The bare code of a unit given as a code or as `units/{code}`."""
    return unit_name(unit).removeprefix("units/")


def period_id(period: str) -> str:
    """The bare quarter `2026-Q3` of a period given as `2026-Q3`, `2026-q3` or `periods/2026-Q3`."""
    bare = period.strip().removeprefix("periods/")
    return bare.upper() if _QUARTER.match(bare) else bare


def period_name(period: str) -> str:
    """`periods/{period}` for a bare quarter or a full name."""
    return f"periods/{period_id(period)}"


def assignment_name(assignment: str) -> str:
    """`assignments/{id}` for a bare assignment id (ids are case-sensitive) or a full name."""
    assignment = assignment.strip()
    return assignment if assignment.startswith("assignments/") else f"assignments/{assignment}"


def evaluation_name(period: str, unit: str) -> str:
    """`periods/{period}/evaluations/{code}`, the name of one unit's evaluation for one quarter."""
    return f"{period_name(period)}/evaluations/{unit_code(unit)}"


def join_filter(*terms: str) -> str:
    """Join non-empty filter terms with ` AND `, the only conjunction the API's filters accept."""
    return " AND ".join(term.strip() for term in terms if term and term.strip())
