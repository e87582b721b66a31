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


@dataclass(frozen=True)
class FactField:
    """One field a condition may test; `about` explains it for error messages and docs."""

    name: str
    type: FieldType
    about: str
    vocabulary: Vocabulary | None = None

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

_UNIT_ATTRIBUTES = (
    FactField("unit_code", _T, "the unit's code, e.g. SNV"),
    FactField("unit_kind", _T, "department, ward, commune or district", Vocabulary.UNIT_KIND),
    FactField("block", _T, "the ranking block, e.g. departments"),
    FactField("under_review", _B, "an inspection or disciplinary review is open for the quarter"),
)

UNIT = "unit"
OVERDUE = "overdue"
MEASUREMENT = "measurement"

FACT_FIELDS: dict[str, dict[str, FactField]] = {
    UNIT: _fields(
        *_UNIT_ATTRIBUTES,
        FactField("due", _I, "assignments due in the quarter"),
        FactField("completed", _I, "due assignments completed by the quarter's end"),
        FactField("on_time", _I, "completed on or before their due date"),
        FactField("late", _I, "completed after their due date"),
        FactField("not_on_time", _I, "due assignments not completed on time (due - on_time)"),
        FactField("reworked", _I, "completed but returned for rework"),
        FactField("open_overdue", _I, "assignments of any quarter overdue and still open at the end"),
        FactField("completion", _N, "completed / due (absent when nothing was due)"),
        FactField("timeliness", _N, "(on_time + late credit x late) / due (absent when nothing was due)"),
        FactField("on_time_rate", _N, "on_time / due (absent when nothing was due)"),
        FactField("quality", _N, "1 - rework penalty x reworked / completed (absent when nothing was due)"),
        FactField("task_result", _N, "weighted task result between 0 and 1 (absent when nothing was due)"),
        FactField("dx_result", _N, "weighted DX attainment between 0 and 1 (absent without counted indicators)"),
        FactField("dx_indicators", _I, "number of DX indicators counted"),
        FactField("penalty", _N, "points taken off for open overdue assignments"),
        FactField("score", _N, "the unrounded score 0-100 (absent when nothing was due)"),
        FactField("assessable", _B, "enough assignments were due to grade the unit"),
        FactField("grade", _T, "this quarter's grade (known to flag rules)", Vocabulary.GRADE),
        FactField("previous_grade", _T, "last quarter's grade (absent when unknown)", Vocabulary.GRADE),
        FactField("previous_flags", _L, "flags raised last quarter", Vocabulary.FLAG),
        FactField("flags", _L, "flags raised this quarter by rules that do not look at `flags`", Vocabulary.FLAG),
    ),
    OVERDUE: _fields(
        *_UNIT_ATTRIBUTES,
        FactField("assignment_id", _T, "the overdue assignment's id"),
        FactField("days_overdue", _I, "days from its due date to the quarter's end"),
        FactField("reminders", _I, "reminders received so far (số lần đôn đốc)"),
    ),
    MEASUREMENT: _fields(
        *_UNIT_ATTRIBUTES,
        FactField("indicator", _T, "the indicator code, e.g. dx.online_applications", Vocabulary.INDICATOR),
        FactField("numerator", _N, "reported numerator"),
        FactField("denominator", _N, "reported denominator (0 means no activity)"),
        FactField("value", _N, "numerator / denominator (absent when the denominator is 0)"),
        FactField("target", _N, "the target in force (absent when there is none)"),
        FactField("attainment", _N, "min(1, value / target) (absent without value or target)"),
    ),
}

FACT_TYPES: tuple[str, ...] = tuple(FACT_FIELDS)

# The unit field that holds this quarter's flags: rules reading it run in the escalation stage.
FLAGS_FIELD = "flags"

# Extra placeholders a reason may use besides fact fields and parameters.
LOCALISED_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    MEASUREMENT: ("indicator_name",),
    UNIT: ("grade_label", "previous_grade_label"),
}
