"""The facts rules can look at: fact types and their fields (the condition whitelist).

The engine builds facts with exactly these fields (a test checks it); a rule
condition may name no other. A field that is absent from a fact (e.g. `score`
when nothing was due) makes every comparison on it false.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FieldType(StrEnum):
    """A field's type, named as error messages show it."""

    NUMBER = "number"
    INTEGER = "whole number"
    BOOLEAN = "yes/no"
    TEXT = "text"
    TEXT_LIST = "list of text"


class Vocabulary(StrEnum):
    """Where the allowed values of a text field come from."""

    UNIT_KIND = "unit kind"
    GRADE = "grade"
    FLAG = "flag"
    INDICATOR = "indicator"
    SPAN = "span"
    POSITION = "position"


@dataclass(frozen=True)
class FactField:
    """One field a condition may test; `about` explains it for error messages and docs.

    `minimum` / `maximum` bound the values the engine can give a numeric field (None: no
    bound, or one that depends on the ruleset, like the highest score); the checks use them
    to find thresholds that can never be crossed.
    """

    name: str
    type: FieldType
    about: str
    vocabulary: Vocabulary | None = None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def numeric(self) -> bool:
        """Whether ordering comparisons (<, >=, ...) apply."""
        return self.type in (FieldType.NUMBER, FieldType.INTEGER)


def _fields(*fields: FactField) -> dict[str, FactField]:
    return {f.name: f for f in fields}


_N, _I, _B, _T, _L = (
    FieldType.NUMBER,
    FieldType.INTEGER,
    FieldType.BOOLEAN,
    FieldType.TEXT,
    FieldType.TEXT_LIST,
)


def _count(name: str, about: str) -> FactField:
    """A whole number from 0 up."""
    return FactField(name, _I, about, minimum=0)


def _rate(name: str, about: str) -> FactField:
    """A ratio between 0 and 1 (80% is 0.8)."""
    return FactField(name, _N, about, minimum=0, maximum=1)


def _amount(name: str, about: str) -> FactField:
    """A number from 0 up."""
    return FactField(name, _N, about, minimum=0)


_UNIT_ATTRIBUTES = (
    FactField("unit_code", _T, "the unit's code, e.g. SNV"),
    FactField("unit_kind", _T, "department, ward, commune or district", Vocabulary.UNIT_KIND),
    FactField("block", _T, "the ranking block, e.g. departments"),
    FactField("under_review", _B, "an inspection or disciplinary review is open for the quarter"),
)

UNIT = "unit"
OVERDUE = "overdue"
MEASUREMENT = "measurement"
ROLLUP = "rollup"
OBSTACLE = "obstacle"
OFFICIAL = "official"
HEAD = "head"

# The values of a rollup fact's `span`.
SPANS = ("half_year", "year")
# The values of an official fact's `position` ("": no position held at the quarter's end).
POSITIONS = ("head", "deputy", "officer", "")

FACT_FIELDS: dict[str, dict[str, FactField]] = {
    UNIT: _fields(
        *_UNIT_ATTRIBUTES,
        _count("due", "assignments due in the quarter"),
        _count("completed", "due assignments completed by the quarter's end"),
        _count("on_time", "completed on or before their due date"),
        _count("late", "completed after their due date"),
        _count("not_on_time", "due assignments not completed on time (due - on_time)"),
        _count("reworked", "completed but returned for rework"),
        _count("open_overdue", "assignments of any quarter overdue and still open at the end"),
        _rate("completion", "completed / due (absent when nothing was due)"),
        _rate("timeliness", "(on_time + late credit x late) / due (absent when nothing was due)"),
        _rate("on_time_rate", "on_time / due (absent when nothing was due)"),
        _rate("quality", "1 - rework penalty x reworked / completed (absent when nothing was due)"),
        _rate("task_result", "weighted task result between 0 and 1 (absent when nothing was due)"),
        _rate("dx_result", "weighted DX attainment between 0 and 1 (absent without counted indicators)"),
        _count("dx_indicators", "number of DX indicators counted"),
        _amount("penalty", "points taken off for open overdue assignments"),
        _amount("score", "the unrounded score 0-100 (absent when nothing was due)"),
        FactField("assessable", _B, "enough assignments were due to grade the unit"),
        FactField("grade", _T, "this quarter's grade (known to flag rules)", Vocabulary.GRADE),
        FactField("previous_grade", _T, "last quarter's grade (absent when unknown)", Vocabulary.GRADE),
        FactField("previous_flags", _L, "flags raised last quarter", Vocabulary.FLAG),
        FactField("flags", _L, "flags raised this quarter by rules that do not look at `flags`", Vocabulary.FLAG),
    ),
    OVERDUE: _fields(
        *_UNIT_ATTRIBUTES,
        FactField("assignment_id", _T, "the overdue assignment's id"),
        _count("days_overdue", "days from its due date to the quarter's end"),
        _count("reminders", "reminders received so far (số lần đôn đốc)"),
    ),
    MEASUREMENT: _fields(
        *_UNIT_ATTRIBUTES,
        FactField("indicator", _T, "the indicator code, e.g. dx.online_applications", Vocabulary.INDICATOR),
        _amount("numerator", "reported numerator"),
        _amount("denominator", "reported denominator (0 means no activity)"),
        _amount("value", "numerator / denominator (absent when the denominator is 0)"),
        _amount("target", "the target in force (absent when there is none)"),
        _rate("attainment", "min(1, value / target) (absent without value or target)"),
    ),
    # An obstacle (khó khăn, vướng mắc) the unit reported, still open at the quarter's end.
    OBSTACLE: _fields(
        *_UNIT_ATTRIBUTES,
        FactField("obstacle_id", _I, "the obstacle's number (assignments/{assignment_id}/obstacles/{obstacle_id})",
                  minimum=1),
        FactField("assignment_id", _T, "the id of the assignment it blocks"),
        _count("days_open", "days from the day it was reported to the quarter's end (Hanoi dates)"),
    ),
    # A unit over a half-year or a year (sơ kết, tổng kết), summed up from its stored quarterly evaluations.
    ROLLUP: _fields(
        FactField("unit_code", _T, "the unit's code, e.g. SNV"),
        FactField("unit_kind", _T, "department, ward, commune or district", Vocabulary.UNIT_KIND),
        FactField("block", _T, "the ranking block, e.g. departments"),
        FactField("under_review", _B, "an inspection or disciplinary review is open at the period's end "
                                      "(in its last quarter: Q4 for a year)"),
        FactField("span", _T, "half_year (2026-H1, 2026-H2) or year (2026)", Vocabulary.SPAN),
        FactField("quarters", _I, "quarters in the period: 2 for a half-year, 4 for a year", minimum=2, maximum=4),
        FactField("evaluated_quarters", _I, "quarters with a stored evaluation of the unit", minimum=0, maximum=4),
        FactField("assessable_quarters", _I, "quarters in which the unit was assessable", minimum=0, maximum=4),
        FactField("excellent_quarters", _I, "quarters graded with the highest grade (the first band of "
                                            "grades.yaml, `excellent` in the default rules)", minimum=0, maximum=4),
        FactField("criticism_quarters", _I, "quarters in which a flag of kind `criticism` was raised on the unit "
                                            "(reminder, criticism, explanation required)", minimum=0, maximum=4),
        _amount("score", "mean of the assessable quarters' unrounded scores (absent when none is)"),
        _rate("timeliness", "mean of the assessable quarters' timeliness (absent when none is)"),
        FactField("assessable", _B, "at least the share of quarters `long_periods` asks for were assessable"),
        FactField("grade", _T, "the period's grade (known to flag rules)", Vocabulary.GRADE),
        FactField("quarter_flags", _L, "flags raised in any quarter of the period", Vocabulary.FLAG),
        FactField("flags", _L, "flags raised for the period by rules that do not look at `flags`", Vocabulary.FLAG),
    ),
    # An official (cá nhân) in a quarter: what they lead (người chủ trì), in any unit. `second_longest_overdue
    # > 30` reads "at least 2 led assignments are more than 30 days overdue" (the longest is then too).
    OFFICIAL: _fields(
        FactField("official_id", _T, "the official's id in the city's personnel system"),
        FactField("unit_code", _T, "the unit through which the official is reached (of the position held at the "
                                   "quarter's end, else of the last one held during it)"),
        FactField("position", _T, "head, deputy or officer at the quarter's end; \"\" when no position is "
                                  "held then", Vocabulary.POSITION),
        FactField("under_review", _B, "the official, or a unit they held a position in during the quarter, is "
                                      "under review for it"),
        _count("led_due", "assignments the official leads due in the quarter (any unit)"),
        _count("led_completed", "led assignments due completed by the quarter's end"),
        _count("led_on_time", "led assignments completed on or before their due date"),
        _count("led_late", "led assignments completed after their due date"),
        _count("led_not_on_time", "led assignments due not completed on time (led_due - led_on_time)"),
        _count("led_reworked", "led assignments completed but returned for rework"),
        _count("led_open_overdue", "led assignments of any quarter overdue and still open at the end"),
        _count("longest_overdue", "days overdue of the longest overdue open led assignment (0 without one)"),
        _count("second_longest_overdue", "days overdue of the second-longest overdue open led assignment "
                                         "(0 with fewer than 2)"),
    ),
    # A unit an official heads at the quarter's end, with the flags the unit's own evaluation raised.
    HEAD: _fields(
        FactField("official_id", _T, "the id of the official who heads the unit"),
        FactField("unit_code", _T, "the headed unit's code, e.g. SNV"),
        FactField("unit_kind", _T, "department, ward, commune or district", Vocabulary.UNIT_KIND),
        FactField("block", _T, "the headed unit's ranking block, e.g. departments"),
        FactField("unit_flags", _L, "flags the unit's own evaluation raised this quarter", Vocabulary.FLAG),
    ),
}

FACT_TYPES: tuple[str, ...] = tuple(FACT_FIELDS)

# The unit field that holds this quarter's flags: rules reading it run in the escalation stage.
FLAGS_FIELD = "flags"

# Extra placeholders a reason may use besides fact fields and parameters.
LOCALISED_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    MEASUREMENT: ("indicator_name",),
    UNIT: ("grade_label", "previous_grade_label"),
    ROLLUP: ("grade_label", "period_label"),
    HEAD: ("unit_name",),
}
