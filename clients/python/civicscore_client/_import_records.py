"""Records of an import file: for each row, its first line and its raw values by column name.

CSV and JSON Lines differ only here; everything after sees `(line, {column: value})` or a Reject.
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

ROW = "row"  # the "column" named when a problem concerns a whole row


class ImportFileError(Exception):
    """The file as a whole cannot be read (not UTF-8, no header, unknown or missing columns)."""


@dataclass(frozen=True)
class Reject:
    """A problem with one row: `line N: column: reason`."""

    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}: {self.reason}"


@dataclass(frozen=True)
class Columns:
    """The columns of one kind of file: which must be present, which may be left out."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return self.required + self.optional


Record = tuple[int, Mapping[str, object] | Reject]


def csv_records(text: str, columns: Columns, source: str) -> Iterator[Record]:
    """Rows of a CSV file as mappings; a row with too many or too few values is a reject."""
    first_line = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
    except csv.Error as err:
        raise ImportFileError(f"{source}: cannot read the CSV header ({err})") from None
    if header is None:
        raise ImportFileError(f"{source}: the file is empty; the first line must name the columns")
    names = [nfc(cell).strip().lower() for cell in header]
    _check_header(names, columns, source)
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader, None)
        except csv.Error as err:
            raise ImportFileError(f"{source}: line {start}: cannot read the CSV ({err})") from None
        if cells is None:
            return
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(names):
            shape = f"the row has {len(cells)} values but the header names {len(names)} columns"
            if len(cells) > len(names):
                yield line, Reject(line, ROW, shape)
            else:
                yield line, Reject(line, names[len(cells)], f"missing value: {shape}")
            continue
        yield line, dict(zip(names, cells, strict=True))


def _check_header(names: list[str], columns: Columns, source: str) -> None:
    """Refuse a header that misses a required column or names an unknown one (likely a typo)."""
    unknown = [name for name in names if name not in columns.all]
    missing = [name for name in columns.required if name not in names]
    repeated = sorted({name for name in names if names.count(name) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(unknown)}")
    if repeated:
        problems.append(f"repeated column(s) {', '.join(repeated)}")
    if problems:
        raise ImportFileError(
            f"{source}: {'; '.join(problems)}. Expected columns: {', '.join(columns.all)}"
            f" (optional: {', '.join(columns.optional) or 'none'})"
        )


def jsonl_records(text: str, columns: Columns) -> Iterator[Record]:
    """Objects of a JSON Lines file; a line that is not a JSON object, or has unknown keys, is a reject."""
    # split("\n"), not splitlines(): JSON strings may hold U+2028, which splitlines() breaks on.
    for number, raw in enumerate(text.split("\n"), start=1):
        line_text = raw.strip()
        if not line_text:
            continue
        try:
            value = json.loads(line_text)
        except json.JSONDecodeError as err:
            yield number, Reject(number, ROW, f"not valid JSON ({err.msg} at character {err.colno})")
            continue
        if not isinstance(value, dict):
            yield number, Reject(number, ROW, f"expected a JSON object, found {type(value).__name__}")
            continue
        keys = {nfc(str(key)).strip().lower(): item for key, item in value.items()}
        unknown = sorted(key for key in keys if key not in columns.all)
        if unknown:
            yield (
                number,
                Reject(number, ROW, f"unknown field(s) {', '.join(unknown)}; expected {', '.join(columns.all)}"),
            )
            continue
        yield number, keys


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)
