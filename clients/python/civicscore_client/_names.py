"""Resource names from the short forms people type: `SNV` → `units/SNV`, `2026-Q3` → `periods/2026-Q3`;
a half-year `2026-H1` and a year `2026` are periods too."""

from __future__ import annotations

import re

_QUARTER = re.compile(r"^\d{4}-[Qq][1-4]$")
_HALF_YEAR = re.compile(r"^\d{4}-[Hh][12]$")
_YEAR = re.compile(r"^\d{4}$")


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
    """The bare period of one given as `2026-Q3`, `2026-q3`, `periods/2026-Q3`, `2026-h1` or `periods/2026`."""
    bare = period.strip().removeprefix("periods/")
    return bare.upper() if _QUARTER.match(bare) or _HALF_YEAR.match(bare) else bare


def period_name(period: str) -> str:
    """`periods/{period}` for a bare period (quarter, half-year or year) or a full name."""
    return f"periods/{period_id(period)}"


def period_kind(period: str) -> str:
    """`quarter`, `half_year` or `year` for a period in any of the forms `period_id` takes; "" for none."""
    bare = period_id(period)
    if _QUARTER.match(bare):
        return "quarter"
    if _HALF_YEAR.match(bare):
        return "half_year"
    return "year" if _YEAR.match(bare) else ""


def quarters_of(period: str) -> list[str]:
    """The quarters a period is made of: `2026-H1` -> `2026-Q1`, `2026-Q2`; `2026` -> its four; a quarter
    -> itself; [] for anything else."""
    bare = period_id(period)
    kind = period_kind(bare)
    if kind == "quarter":
        return [bare]
    if not kind:
        return []
    year = bare[:4]
    numbers = (1, 2, 3, 4) if kind == "year" else ((1, 2) if bare.endswith("1") else (3, 4))
    return [f"{year}-Q{n}" for n in numbers]


def assignment_name(assignment: str) -> str:
    """`assignments/{id}` for a bare assignment id (ids are case-sensitive) or a full name."""
    assignment = assignment.strip()
    return assignment if assignment.startswith("assignments/") else f"assignments/{assignment}"


def evaluation_name(period: str, unit: str) -> str:
    """`periods/{period}/evaluations/{code}`, the name of one unit's evaluation for one period."""
    return f"{period_name(period)}/evaluations/{unit_code(unit)}"


def join_filter(*terms: str) -> str:
    """Join non-empty filter terms with ` AND `, the only conjunction the API's filters accept."""
    return " AND ".join(term.strip() for term in terms if term and term.strip())


def period_or_dates(value: str) -> str:
    """A quarter (`2026-q3` → `2026-Q3`) or a range of dates as given (`2026-07-01..2026-08-15`), for filters."""
    return value.strip() if ".." in value else period_id(value)
