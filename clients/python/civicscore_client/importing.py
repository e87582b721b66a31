"""Reading outcomes, assignments and measurements from CSV or JSON Lines files into request messages.

Every row keeps the line it starts on, so that a problem found here or by the server can be shown
as `line N: column: reason`. Rows that cannot be turned into a message (a bad date, an unknown
status, a missing value) are rejected here, before anything is sent; the server checks the rest.

Files are UTF-8, with or without a byte-order mark. CSV files have a header row naming the columns
(any order; comma, semicolon or tab separated); JSON Lines files hold one object per line whose
keys are the same column names. Text is NFC-normalised.

outcomes      outcome_id, assignment_id, status, completed_on, quality, reminders, reported_at,
              reporting_system, note
              status: completed | in_progress | cancelled; quality: accepted | returned_for_rework
              or empty; completed_on required when completed; reminders: whole number, default 0
assignments   assignment_id, unit, title, area, source_document, assigned_on, due_on, priority
              area: par | dx; priority: low | normal | high | urgent or empty (normal)
measurements  unit, period, indicator, numerator, denominator, reported_at, reporting_system
              period: a quarter such as 2026-Q3; numerator and denominator: numbers

Dates are `YYYY-MM-DD` (or `DD/MM/YYYY`). `reported_at` is ISO 8601, e.g. `2026-07-15T09:30:00+07:00`;
without an offset it is Hanoi time (+07:00). Dates, times and quarters fall in the years 2000-2100
(Hanoi time), numbers are finite: the server's domains. Units are codes such as `SNV` (or `units/SNV`).
Optional columns (completed_on, quality, reminders, note, source_document, priority) may be left out.

Files are read as streams (`open_import_file`), one record at a time: a record longer than
MAX_RECORD_BYTES or JSON nested deeper than MAX_JSON_NESTING is a reject at its line, read
without being kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Generic, Literal, TypeVar

from google.protobuf.message import Message

from civicscore_api.v1 import assignments_pb2, measurements_pb2, outcomes_pb2
from civicscore_client._import_cells import HANOI, Cells
from civicscore_client._import_records import (
    MAX_JSON_NESTING,
    MAX_RECORD_BYTES,
    ROW,
    Columns,
    ImportFileError,
    Reject,
    csv_records,
    jsonl_records,
    text_stream,
)
from civicscore_client._names import assignment_name, unit_name

Kind = Literal["outcomes", "assignments", "measurements"]
Format = Literal["csv", "jsonl"]
M = TypeVar("M", bound=Message)

__all__ = [
    "COLUMNS",
    "HANOI",
    "MAX_JSON_NESTING",
    "MAX_RECORD_BYTES",
    "ROW",
    "Columns",
    "Format",
    "ImportFileError",
    "Kind",
    "ParsedFile",
    "Reject",
    "Row",
    "column_of",
    "decode",
    "detect_format",
    "open_import_file",
    "parse_assignments",
    "parse_measurements",
    "parse_outcomes",
    "read_text",
]


@dataclass(frozen=True)
class Row(Generic[M]):
    """One message read from a file, with the line its record starts on."""

    line: int
    message: M


@dataclass
class ParsedFile(Generic[M]):
    """The rows that became messages and the rejects, both in file order."""

    kind: Kind
    rows: list[Row[M]] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


COLUMNS: dict[Kind, Columns] = {
    "outcomes": Columns(
        required=("outcome_id", "assignment_id", "status", "reported_at", "reporting_system"),
        optional=("completed_on", "quality", "reminders", "note"),
    ),
    "assignments": Columns(
        required=("assignment_id", "unit", "title", "area", "assigned_on", "due_on"),
        optional=("source_document", "priority"),
    ),
    "measurements": Columns(
        required=(
            "unit",
            "period",
            "indicator",
            "numerator",
            "denominator",
            "reported_at",
            "reporting_system",
        ),
    ),
}

# Message fields whose file column has another name (for mapping server violations back to columns).
_COLUMN_OF_FIELD: dict[Kind, dict[str, str]] = {"outcomes": {"assignment": "assignment_id"}}

_STATUSES = {
    "completed": outcomes_pb2.OUTCOME_STATUS_COMPLETED,
    "in_progress": outcomes_pb2.OUTCOME_STATUS_IN_PROGRESS,
    "cancelled": outcomes_pb2.OUTCOME_STATUS_CANCELLED,
}
_QUALITIES = {
    "accepted": outcomes_pb2.QUALITY_ACCEPTED,
    "returned_for_rework": outcomes_pb2.QUALITY_RETURNED_FOR_REWORK,
}
_AREAS = {"par": assignments_pb2.AREA_PAR, "dx": assignments_pb2.AREA_DX}
_PRIORITIES = {
    "low": assignments_pb2.PRIORITY_LOW,
    "normal": assignments_pb2.PRIORITY_NORMAL,
    "high": assignments_pb2.PRIORITY_HIGH,
    "urgent": assignments_pb2.PRIORITY_URGENT,
}


def column_of(kind: Kind, field_path: str) -> str:
    """The file column for a server field path such as `outcomes[3].assignment` (→ `assignment_id`)."""
    _, _, rest = field_path.partition("].")
    name = (rest or field_path).split(".")[0].split("[")[0]
    return _COLUMN_OF_FIELD.get(kind, {}).get(name, name)


def detect_format(path: Path) -> Format:
    """The format a file's extension names; raise ImportFileError when it names none."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    raise ImportFileError(f"{path.name}: cannot tell the format from the extension; pass --format csv or jsonl")


def decode(data: bytes, *, source: str = "input") -> str:
    """UTF-8 text without its byte-order mark; raise ImportFileError naming the first bad byte otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ImportFileError(
            f"{source}: not UTF-8 (byte 0x{data[err.start]:02x} on line {line}); save the file as UTF-8"
        ) from None


def read_text(path: Path) -> str:
    """A whole file's text, decoded as UTF-8 with or without a byte-order mark.

    For small files only: it holds the whole file, however long its lines. Import files are
    read as streams with `open_import_file`, a record at a time.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ImportFileError(f"{path}: cannot read the file ({err.strerror or err})") from None
    return decode(data, source=path.name)


def open_import_file(path: Path) -> BinaryIO:
    """The file opened for the parse functions, which read it a record at a time (close it after)."""
    try:
        return path.open("rb")
    except OSError as err:
        raise ImportFileError(f"{path}: cannot read the file ({err.strerror or err})") from None


Content = str | BinaryIO  # the text of a file, or the file opened in binary mode (`open_import_file`)


def parse_outcomes(
    content: Content, *, format: Format = "csv", source: str = "input"
) -> ParsedFile[outcomes_pb2.Outcome]:
    """Parse an outcomes file (the module docstring lists the columns)."""
    return _parse("outcomes", _build_outcome, content, format, source)


def parse_assignments(
    content: Content, *, format: Format = "csv", source: str = "input"
) -> ParsedFile[assignments_pb2.Assignment]:
    """Parse an assignments file (the module docstring lists the columns)."""
    return _parse("assignments", _build_assignment, content, format, source)


def parse_measurements(
    content: Content, *, format: Format = "csv", source: str = "input"
) -> ParsedFile[measurements_pb2.Measurement]:
    """Parse a measurements file (the module docstring lists the columns)."""
    return _parse("measurements", _build_measurement, content, format, source)


def _parse(kind: Kind, build: Callable[[Cells], M], content: Content, format: Format, source: str) -> ParsedFile[M]:
    """Records of the file, each turned into a message or into rejects."""
    columns = COLUMNS[kind]
    stream = text_stream(content) if isinstance(content, str) else content
    records = csv_records(stream, columns, source) if format == "csv" else jsonl_records(stream, columns, source)
    parsed: ParsedFile[M] = ParsedFile(kind)
    for line, values in records:
        if isinstance(values, Reject):
            parsed.rejects.append(values)
            continue
        cells = Cells(line, values)
        try:
            message = build(cells)
        except (ValueError, TypeError, OverflowError) as err:
            # The cells check every value a message field can refuse; this keeps one they missed
            # a reject at its line instead of ending the whole import.
            cells.reject(ROW, f"cannot be turned into a request ({err})")
            parsed.rejects.extend(cells.rejects)
            continue
        if cells.rejects:
            parsed.rejects.extend(cells.rejects)
        else:
            parsed.rows.append(Row(line, message))
    return parsed


def _build_outcome(cells: Cells) -> outcomes_pb2.Outcome:
    assignment = cells.text("assignment_id", required=True)
    outcome = outcomes_pb2.Outcome(
        outcome_id=cells.text("outcome_id", required=True),
        assignment=assignment_name(assignment) if assignment else "",
        status=cells.choice("status", _STATUSES, outcomes_pb2.OUTCOME_STATUS_UNSPECIFIED, required=True),
        completed_on=cells.date("completed_on", required=False),
        quality=cells.choice("quality", _QUALITIES, outcomes_pb2.QUALITY_UNSPECIFIED, required=False),
        reminders=cells.whole_number("reminders"),
        reporting_system=cells.text("reporting_system", required=True),
        note=cells.text("note"),
    )
    reported_at = cells.timestamp("reported_at")
    if reported_at is not None:
        outcome.reported_at.CopyFrom(reported_at)
    return outcome


def _build_assignment(cells: Cells) -> assignments_pb2.Assignment:
    unit = cells.text("unit", required=True)
    return assignments_pb2.Assignment(
        assignment_id=cells.text("assignment_id", required=True).removeprefix("assignments/"),
        unit=unit_name(unit) if unit else "",
        title=cells.text("title", required=True),
        area=cells.choice("area", _AREAS, assignments_pb2.AREA_UNSPECIFIED, required=True),
        source_document=cells.text("source_document"),
        assigned_on=cells.date("assigned_on", required=True),
        due_on=cells.date("due_on", required=True),
        priority=cells.choice("priority", _PRIORITIES, assignments_pb2.PRIORITY_UNSPECIFIED, required=False),
    )


def _build_measurement(cells: Cells) -> measurements_pb2.Measurement:
    unit = cells.text("unit", required=True)
    measurement = measurements_pb2.Measurement(
        unit=unit_name(unit) if unit else "",
        period=cells.quarter("period"),
        indicator=cells.text("indicator", required=True),
        numerator=cells.number("numerator"),
        denominator=cells.number("denominator"),
        reporting_system=cells.text("reporting_system", required=True),
    )
    reported_at = cells.timestamp("reported_at")
    if reported_at is not None:
        measurement.reported_at.CopyFrom(reported_at)
    return measurement
