"""Reading officials from a CSV file: one row per appointment, the rows of one official gathered into one
Official message that remembers the lines it came from.

Columns (header row, any order; comma, semicolon or tab separated): official_id, display_name, unit,
position, start_on, end_on. position: head, deputy or officer (or the Vietnamese labels Người đứng đầu,
Cấp phó, Cán bộ, công chức); dates `YYYY-MM-DD` (or `DD/MM/YYYY`); end_on empty (or left out) while the
position is held. Every row of an official gives the same display_name. Text is NFC-normalised.

An upsert replaces an official whole, so an official is sent with all their rows or not at all: a file
with a rejected line is not sent. Problems the server finds (an unknown unit, overlapping appointments)
are mapped back to the lines of the rows they concern (`rejects_of`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from civicscore_api.v1 import officials_pb2
from civicscore_client._import_cells import Cells
from civicscore_client._import_records import ROW, Columns, Reject, csv_records, shown, text_stream
from civicscore_client._names import unit_name

COLUMNS = Columns(required=("official_id", "display_name", "unit", "position", "start_on"), optional=("end_on",))

# The words a position cell may hold, casefolded with spaces collapsed: the API's and the Vietnamese labels.
_POSITIONS: dict[str, officials_pb2.OfficialPosition.ValueType] = {
    "head": officials_pb2.OFFICIAL_POSITION_HEAD,
    "deputy": officials_pb2.OFFICIAL_POSITION_DEPUTY,
    "officer": officials_pb2.OFFICIAL_POSITION_OFFICER,
    "người đứng đầu": officials_pb2.OFFICIAL_POSITION_HEAD,
    "cấp phó": officials_pb2.OFFICIAL_POSITION_DEPUTY,
    "cán bộ, công chức": officials_pb2.OFFICIAL_POSITION_OFFICER,
}
_POSITION_HINT = "head | deputy | officer (or Người đứng đầu | Cấp phó | Cán bộ, công chức)"
_FIELD = re.compile(r"^officials\[(\d+)\]\.?(.*)$")
_APPOINTMENT = re.compile(r"^appointments\[(\d+)\]\.?(.*)$")


class FieldProblem(Protocol):
    """A violation as the SDK raises it (`Violation`) or a validate_only reply lists it (`FieldViolation`)."""

    @property
    def index(self) -> int: ...

    @property
    def field(self) -> str: ...

    @property
    def description(self) -> str: ...


@dataclass
class FileOfficial:
    """One official of the file and the lines of their rows, one per appointment, in file order."""

    official: officials_pb2.Official
    lines: list[int] = field(default_factory=list)


@dataclass
class ParsedOfficials:
    """The officials the file's rows make, in the order they first appear, and the rejected lines."""

    officials: list[FileOfficial] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    rows_read: int = 0


def parse_officials(content: str | BinaryIO, *, source: str = "input") -> ParsedOfficials:
    """Parse an officials CSV file (the module docstring lists the columns); ImportFileError when the file
    as a whole cannot be read (not UTF-8, a missing or unknown column)."""
    stream = text_stream(content) if isinstance(content, str) else content
    parsed = ParsedOfficials()
    by_id: dict[str, FileOfficial] = {}
    for line, values in csv_records(stream, COLUMNS, source):
        parsed.rows_read += 1
        if isinstance(values, Reject):
            parsed.rejects.append(values)
            continue
        cells = Cells(line, values)
        official_id = cells.text("official_id", required=True).removeprefix("officials/")
        display_name = cells.text("display_name", required=True)
        unit = cells.text("unit", required=True)
        appointment = officials_pb2.Appointment(
            unit=unit_name(unit) if unit else "", position=_position(cells),
            start_on=cells.date("start_on", required=True), end_on=cells.date("end_on", required=False))
        known = by_id.get(official_id) if official_id else None
        if known is not None and display_name and known.official.display_name != display_name:
            cells.reject("display_name", f"{shown(display_name)} differs from {shown(known.official.display_name)} "
                                         f"on line {known.lines[0]}, a row of the same official; give one name")
        if cells.rejects:
            parsed.rejects.extend(cells.rejects)
            continue
        if known is None:
            known = by_id[official_id] = FileOfficial(
                officials_pb2.Official(official_id=official_id, display_name=display_name))
            parsed.officials.append(known)
        known.official.appointments.append(appointment)
        known.lines.append(line)
    return parsed


def _position(cells: Cells) -> officials_pb2.OfficialPosition.ValueType:
    text = cells.text("position", required=True)
    if not text:
        return officials_pb2.OFFICIAL_POSITION_UNSPECIFIED
    word = " ".join(unicodedata.normalize("NFC", text).casefold().replace("_", " ").split())
    if word not in _POSITIONS:
        cells.reject("position", f"unknown value {shown(text)}; expected {_POSITION_HINT}")
        return officials_pb2.OFFICIAL_POSITION_UNSPECIFIED
    return _POSITIONS[word]


def rejects_of(parsed: ParsedOfficials, violations: Sequence[FieldProblem]) -> list[Reject]:
    """The server's violations of a batch of `parsed.officials` (sent in that order) as rejects at the lines
    they concern: an appointment's at its row, an official's at their first row (naming every row when it
    concerns all their appointments). A violation of no official is kept at line 0."""
    rejects: list[Reject] = []
    for violation in violations:
        match = _FIELD.match(violation.field)
        index = violation.index if violation.index >= 0 else int(match.group(1)) if match else -1
        if not 0 <= index < len(parsed.officials):
            rejects.append(Reject(0, violation.field or ROW, violation.description))
            continue
        lines = parsed.officials[index].lines
        rest = match.group(2) if match else ""
        appointment = _APPOINTMENT.match(rest)
        if appointment and int(appointment.group(1)) < len(lines):
            rejects.append(Reject(lines[int(appointment.group(1))], appointment.group(2) or ROW,
                                  violation.description))
        elif rest.startswith("appointments") and len(lines) > 1:
            rows = ", ".join(str(line) for line in lines)
            rejects.append(Reject(lines[0], ROW, f"{violation.description} (the official's rows: lines {rows})"))
        else:
            rejects.append(Reject(lines[0], rest.split("[")[0] or ROW, violation.description))
    return sorted(rejects, key=lambda reject: reject.line)
