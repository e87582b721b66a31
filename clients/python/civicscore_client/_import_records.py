"""Records of an import file: for each row, its first line and its raw values by column name.

CSV and JSON Lines differ only here; everything after sees `(line, {column: value})` or a Reject.

A file is read as a stream of lines, never whole, and no record is held past MAX_RECORD_BYTES:
a longer line is skipped without being kept (a reject at its line), so a hostile or broken file
(a 100 MB line, a missing line break) costs at most that much memory. JSON values nested deeper
than MAX_JSON_NESTING are refused before they are decoded, so no file can exhaust the decoder's
recursion. Lines end at `\\n`, `\\r\\n` or a lone `\\r` (old Mac spreadsheets), as text files read
with universal newlines do.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

ROW = "row"  # the "column" named when a problem concerns a whole row
# The longest record read, line breaks included. The longest valid row is far shorter: its longest
# value, an outcome's note, is 4,000 characters (at most 24 KB as JSON \u escapes).
MAX_RECORD_BYTES = 65_536
# The deepest JSON nesting read. A valid row is one flat object (depth 1).
MAX_JSON_NESTING = 16
_CHUNK_BYTES = 65_536
_LINE_END = re.compile(rb"\r\n?|\n")
_BOM = b"\xef\xbb\xbf"


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


class LineTooLong(Exception):
    """A line longer than the limit; it was skipped, not kept."""

    def __init__(self, line: int) -> None:
        super().__init__(f"line {line} is longer than {MAX_RECORD_BYTES:,} bytes")
        self.line = line


def too_long_reason(limit: int = MAX_RECORD_BYTES) -> str:
    return (f"a record longer than {limit:,} bytes; no valid row is that long (the longest value, a note, "
            "is 4,000 characters): the line was skipped unread. Check the file's line breaks and quotes")


class Lines:
    """The lines of a UTF-8 byte stream, each with its line break, at most `limit` bytes each.

    Reads fixed-size chunks, so memory stays within `limit` plus one chunk whatever the file
    holds. A longer line raises LineTooLong and is then skipped, a chunk at a time, without
    being kept; reading goes on with the next line. `number` is the line number of the last
    line returned or refused, `size` its length in bytes.
    """

    def __init__(self, stream: BinaryIO, *, source: str, limit: int = MAX_RECORD_BYTES,
                 chunk_bytes: int = _CHUNK_BYTES) -> None:
        self.number = 0
        self.size = 0
        self._chunk_bytes = chunk_bytes
        self._stream = stream
        self._source = source
        self._limit = limit
        self._ready: list[bytes] = []  # whole lines read and not yet returned, from `_next`
        self._next = 0
        self._carry = b""  # the start of the line after them, its end not read yet
        self._ended = False
        self._skipping = False

    def next_line(self) -> str | None:
        """The next line as text (with its line break), or None at the end of the stream."""
        if self._skipping:  # the rest of the line refused last is skipped only now, so that a
            self._skip_line()  # caller that stops there (a header) never reads an endless line
            self._skipping = False
        while True:
            if self._next < len(self._ready):
                self._next += 1
                return self._decoded(self._ready[self._next - 1])
            if self._ended:
                if not self._carry:
                    return None
                raw, self._carry = self._carry, b""
                return self._decoded(raw)
            if len(self._carry) > self._limit:
                self._skipping = True
                self.number += 1
                self.size = len(self._carry)
                raise LineTooLong(self.number)
            chunk = self._stream.read(self._chunk_bytes)
            if chunk:
                self._take(self._carry + chunk)
            else:
                self._ended = True

    def _take(self, data: bytes) -> None:
        """Split `data` into whole lines and the start of the next; bytes.splitlines ends lines at
        \n, \r\n and \r, as universal newlines do."""
        lines = data.splitlines(keepends=True)
        # A last line ending in \r may be the first half of \r\n: it waits for the next chunk.
        self._carry = b"" if not lines or lines[-1].endswith(b"\n") else lines.pop()
        self._ready, self._next = lines, 0

    def _decoded(self, raw: bytes) -> str:
        self.number += 1
        self.size = len(raw)
        if len(raw) > self._limit:
            raise LineTooLong(self.number)
        if self.number == 1:
            raw = raw.removeprefix(_BOM)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ImportFileError(
                f"{self._source}: not UTF-8 (byte 0x{raw[err.start]:02x} on line {self.number}); "
                "save the file as UTF-8"
            ) from None

    def _skip_line(self) -> None:
        """Read past the end of the over-long line that `_carry` starts, keeping none of it."""
        after_cr = self._carry.endswith(b"\r")  # then it ended there, unless a \n follows
        self._carry = b""
        while True:
            chunk = self._stream.read(self._chunk_bytes)
            if not chunk:
                self._ended = True
                return
            if after_cr:
                self._take(chunk.removeprefix(b"\n"))
                return
            found = _LINE_END.search(chunk)
            if found is None:
                continue
            if found.group() == b"\r" and found.end() == len(chunk):
                after_cr = True
                continue
            self._take(chunk[found.end():])
            return


def text_stream(text: str) -> BinaryIO:
    """Text already in memory as the byte stream the readers take."""
    return io.BytesIO(text.encode("utf-8", "surrogatepass"))


class _CsvFeed:
    """Lines for `csv.reader`, counting the bytes of the record being read.

    An iterator object rather than a generator, so that reading can go on with a new reader
    after a line was refused (a generator that raised is finished).
    """

    def __init__(self, lines: Lines) -> None:
        self.lines = lines
        self.record_start = 1
        self.record_bytes = 0
        self._held: tuple[str, int] | None = None

    def __iter__(self) -> _CsvFeed:
        return self

    def __next__(self) -> str:
        if self._held is not None:
            (line, size), self._held = self._held, None
        else:
            read = self.lines.next_line()
            if read is None:
                raise StopIteration
            line, size = read, self.lines.size
        self.record_bytes += size
        if self.record_bytes > MAX_RECORD_BYTES:
            raise LineTooLong(self.lines.number)
        return line

    def hold(self, line: str) -> None:
        """Give back `line`, the last one read: the next read returns it again."""
        self._held = (line, self.lines.size)

    def next_record(self) -> None:
        """The record read is complete: the next one starts on the next line."""
        self.record_start = self.lines.number + 1
        self.record_bytes = 0


def csv_records(stream: BinaryIO, columns: Columns, source: str) -> Iterator[Record]:
    """Rows of a CSV file as mappings; a row with too many or too few values, or too long, is a reject."""
    lines = Lines(stream, source=source)
    feed = _CsvFeed(lines)
    try:
        first_line = lines.next_line()
    except LineTooLong:
        raise ImportFileError(f"{source}: line 1 (the header) is longer than {MAX_RECORD_BYTES:,} bytes; "
                              "the first line must name the columns") from None
    if first_line is not None:
        feed.hold(first_line)
    delimiter = max((",", ";", "\t"), key=(first_line or "").count)
    reader = csv.reader(feed, delimiter=delimiter)
    try:
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            feed.next_record()
            header = next(reader, None)
    except csv.Error as err:
        raise ImportFileError(f"{source}: cannot read the CSV header ({err})") from None
    except LineTooLong as err:
        raise ImportFileError(f"{source}: line {err.line}: the header is longer than {MAX_RECORD_BYTES:,} bytes; "
                              "the first line must name the columns") from None
    if header is None:
        raise ImportFileError(f"{source}: the file is empty; the first line must name the columns")
    names = [nfc(cell).strip().lower() for cell in header]
    _check_header(names, columns, source)
    feed.next_record()
    while True:
        line = feed.record_start
        try:
            cells = next(reader, None)
        except csv.Error as err:
            raise ImportFileError(f"{source}: line {line}: cannot read the CSV ({err})") from None
        except LineTooLong as err:
            if err.line != line:  # the record began on an earlier line: a quote left open
                raise ImportFileError(
                    f"{source}: line {line}: the record starting here runs past {MAX_RECORD_BYTES:,} bytes "
                    f"(line {err.line}); check for a quote (\") that is never closed"
                ) from None
            yield line, Reject(line, ROW, too_long_reason())
            feed.next_record()
            reader = csv.reader(feed, delimiter=delimiter)  # the refused line left the old one mid-record
            continue
        feed.next_record()
        if cells is None:
            return
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
        problems.append(f"unknown column(s) {', '.join(shown(name, quoted=False) for name in unknown)}")
    if repeated:
        problems.append(f"repeated column(s) {', '.join(shown(name, quoted=False) for name in repeated)}")
    if problems:
        raise ImportFileError(
            f"{source}: {'; '.join(problems)}. Expected columns: {', '.join(columns.all)}"
            f" (optional: {', '.join(columns.optional) or 'none'})"
        )


def jsonl_records(stream: BinaryIO, columns: Columns, source: str) -> Iterator[Record]:
    """Objects of a JSON Lines file; a line that is not a JSON object, or has unknown keys, is a reject."""
    lines = Lines(stream, source=source)
    while True:
        try:
            raw = lines.next_line()
        except LineTooLong as err:
            yield err.line, Reject(err.line, ROW, too_long_reason())
            continue
        if raw is None:
            return
        number = lines.number
        line_text = raw.strip()
        if not line_text:
            continue
        depth = nesting_depth(line_text)
        if depth > MAX_JSON_NESTING:
            yield number, Reject(number, ROW, f"nesting deeper than {MAX_JSON_NESTING} levels; each line must "
                                              "be one flat JSON object of column: value")
            continue
        try:
            value = json.loads(line_text, parse_constant=_refuse_constant)
        except json.JSONDecodeError as err:
            yield number, Reject(number, ROW, f"not valid JSON ({err.msg} at character {err.colno})")
            continue
        except _NotJson as err:
            yield number, Reject(number, ROW, f"not valid JSON ({err})")
            continue
        except ValueError:  # Python reads no integer of more than 4,300 digits
            yield number, Reject(number, ROW, "not valid JSON (a number of more than 4,300 digits)")
            continue
        if not isinstance(value, dict):
            yield number, Reject(number, ROW, f"expected a JSON object, found {type(value).__name__}")
            continue
        keys = {nfc(str(key)).strip().lower(): item for key, item in value.items()}
        unknown = sorted(key for key in keys if key not in columns.all)
        if unknown:
            listed = ", ".join(shown(key, quoted=False) for key in unknown[:5]) + (f" and {len(unknown) - 5} more"
                                                                    if len(unknown) > 5 else "")
            yield number, Reject(number, ROW, f"unknown field(s) {listed}; expected {', '.join(columns.all)}")
            continue
        yield number, keys


class _NotJson(ValueError):
    """What Python's decoder accepts and JSON does not."""


def _refuse_constant(name: str) -> object:
    raise _NotJson(f"{name} is not a JSON value; write a finite number, or the value as text")


_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def nesting_depth(text: str) -> int:
    """How deep JSON arrays and objects nest in `text` (strings ignored), or 0 when they cannot nest
    deeper than MAX_JSON_NESTING: flat lines, nearly all of them, cost two counts."""
    if text.count("[") + text.count("{") <= MAX_JSON_NESTING:
        return 0  # cannot be deeper than the limit: no need to look closer
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_JSON_STRING.sub("", text)):
        depth = depth + 1 if bracket in "[{" else max(depth - 1, 0)
        deepest = max(deepest, depth)
    return deepest


def shown(value: str, limit: int = 60, *, quoted: bool = True) -> str:
    """`value` for a message (quoted, or as it is), cut to `limit` characters with its length
    stated when longer: a message never echoes a whole 64 KB value."""
    cut = value[:limit]
    text = repr(cut) if quoted else cut
    return text if len(value) <= limit else f"{text}... ({len(value):,} characters)"


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)
