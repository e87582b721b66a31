"""Field checks shared by every write: each returns violations, never raises.

The primitives of the field domains (`api/domains.py` applies them to every
request field as the contract declares): the years a date may name, the
characters text may hold, the identifier formats, and `shown`, which is how a
value is echoed in an error message (never whole: a 10 KB id must not
overflow the trailer the error travels in; `errors.shown`).

A `Checker` collects violations for one item (`outcomes[3]`) so that a batch
reports every bad field of every bad item at once.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from dataclasses import dataclass, field

from civicscore.domain.periods import FIRST_YEAR, LAST_YEAR
from civicscore.errors import InvalidInput, Violation, shown

HANOI = dt.timezone(dt.timedelta(hours=7), "ICT")
MAX_BATCH = 10_000
MAX_STREAM = 1_000_000
# How far ahead of the server's clock a reported time may be (clock skew between systems).
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,128}\Z")
UNIT_CODE_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,39}\Z")
INDICATOR_PATTERN = re.compile(r"^(?=.{1,100}\Z)[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\Z")
IDENTITY_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,62}\Z")
DIGEST_PATTERN = re.compile(r"^[0-9a-f]{64}\Z")
FIRST_DAY, LAST_DAY = dt.date(FIRST_YEAR, 1, 1), dt.date(LAST_YEAR, 12, 31)
FIRST_INSTANT = dt.datetime(FIRST_YEAR, 1, 1, tzinfo=HANOI)
LAST_INSTANT = dt.datetime(LAST_YEAR + 1, 1, 1, tzinfo=HANOI)  # exclusive
# Code points text may not hold: controls but tab and line breaks (C0, DEL, C1), zero-width characters and
# marks (U+200B-U+200F, U+2060, U+FEFF), bidirectional embeddings, overrides and isolates (U+202A-U+202E,
# U+2066-U+2069), and Unicode noncharacters (U+FDD0-U+FDEF and the last two of every plane). Each can make
# a name look like another or reorder what a person reads.
FORBIDDEN_TEXT = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff\ufdd0-\ufdef"
    + "".join(f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17))
    + "]"
)
_CONTROL = FORBIDDEN_TEXT  # the name the checks below grew up with


def forbidden_character(value: str) -> str | None:
    """What is wrong with `value`'s first forbidden code point (`U+202E RIGHT-TO-LEFT OVERRIDE at character
    5`), or None when it has none."""
    found = FORBIDDEN_TEXT.search(value)
    if found is None:
        return None
    char = found.group()
    name = unicodedata.name(char, "")
    if not name:
        name = "a noncharacter" if (ord(char) & 0xFFFE) == 0xFFFE or 0xFDD0 <= ord(char) <= 0xFDEF else "a control"
    return f"U+{ord(char):04X} {name} at character {found.start() + 1}"


def nfc(text: str) -> str:
    """Unicode NFC form: how every text is stored and compared."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def required_text(value: str, field: str, what: str = "say why (lý do)", *, required: bool = True,
                  limit: int = 4000) -> str:
    """A free-text field (a reason, a description) trimmed and in NFC; INVALID_ARGUMENT (REQUIRED, TOO_LONG)
    when it is empty but required (`what` says what to write) or longer than `limit` characters."""
    text = nfc(value.strip())
    if not text and required:
        raise InvalidInput([Violation(field, f"{field} is required: {what}", "REQUIRED")])
    if len(text) > limit:
        raise InvalidInput([Violation(field, f"{field} is at most {limit:,} characters", "TOO_LONG")])
    return text


def text_ok(value: str, max_len: int, *, required: bool) -> bool:
    """The fast form of `Checker.text`: True exactly when it would add no violation."""
    if not value or value.isspace():
        return not required
    return len(value) <= max_len and _CONTROL.search(value) is None


@functools.lru_cache(maxsize=8192)
def parse_date(value: str) -> dt.date | None:
    """`YYYY-MM-DD` in the years 2000-2100, else None; cached because batches repeat dates."""
    if len(value) != 10 or value[4] != "-" or value[7] != "-":
        return None
    try:
        parsed = dt.date.fromisoformat(value)
    except ValueError:
        return None
    return parsed if FIRST_YEAR <= parsed.year <= LAST_YEAR else None


@dataclass
class Checker:
    """Collects the violations of one item; `prefix` is its API path, e.g. `outcomes[3]`."""

    prefix: str
    index: int = -1
    violations: list[Violation] = field(default_factory=list)

    def add(self, name: str, reason: str, description: str) -> None:
        path = f"{self.prefix}.{name}" if self.prefix else name
        self.violations.append(Violation(field=path, description=description, reason=reason, index=self.index))

    def text(self, name: str, value: str, *, max_len: int, required: bool = True) -> str:
        """NFC-normalise `value` and check it is present (if required), short enough and printable."""
        value = nfc(value)
        if not value.strip():
            if required:
                self.add(name, "REQUIRED", f"{name} is required and must not be blank")
            return value
        if len(value) > max_len:
            self.add(name, "TOO_LONG", f"{name} has {len(value)} characters; at most {max_len} are allowed")
        problem = forbidden_character(value)
        if problem is not None:
            self.add(name, "FORBIDDEN_CHARACTER", f"{name} contains {problem}; remove it")
        return value

    def identifier(self, name: str, value: str, *, pattern: re.Pattern[str] = ID_PATTERN, hint: str) -> str:
        if not value:
            self.add(name, "REQUIRED", f"{name} is required ({hint})")
        elif not pattern.match(value):
            self.add(name, "INVALID_FORMAT", f"{name} {shown(value)} is not valid: {hint}")
        return value

    def date(self, name: str, value: str, *, required: bool = True) -> dt.date | None:
        """Parse `YYYY-MM-DD`."""
        if not value:
            if required:
                self.add(name, "REQUIRED", f"{name} is required, as YYYY-MM-DD")
            return None
        parsed = parse_date(value)
        if parsed is None:
            self.add(name, "INVALID_DATE", f"{name} {shown(value)} is not a date from {FIRST_DAY} to {LAST_DAY}; "
                     "write YYYY-MM-DD, e.g. 2026-09-30")
        return parsed

    def reference(self, name: str, value: str, collection: str) -> str | None:
        """Parse a resource name `collection/{id}` and return the id."""
        prefix = f"{collection}/"
        if not value:
            self.add(name, "REQUIRED", f"{name} is required, as {collection}/{{id}}")
            return None
        if not value.startswith(prefix) or not value[len(prefix):]:
            self.add(name, "INVALID_NAME", f"{name} {shown(value)} must be a resource name {collection}/{{id}}")
            return None
        return value[len(prefix):]


def hanoi_today(now: dt.datetime) -> dt.date:
    """The calendar date in Hanoi at instant `now`."""
    return now.astimezone(HANOI).date()


def check_batch_size(count: int, field_name: str, *, limit: int = MAX_BATCH) -> list[Violation]:
    if count == 0:
        return [Violation(field_name, f"{field_name} is empty; send at least one item", "REQUIRED")]
    if count > limit:
        return [
            Violation(
                field_name,
                f"{field_name} has {count} items; at most {limit:,} per call "
                "(split the batch, or use the streaming call for larger submissions)",
                "TOO_MANY_ITEMS",
            )
        ]
    return []


def check_idempotency_key(key: str) -> list[Violation]:
    if key and (len(key) > 128 or _CONTROL.search(key)):
        return [Violation("idempotency_key", "idempotency_key must be 1-128 printable characters", "INVALID_FORMAT")]
    return []


def enum_value(checker: Checker, name: str, value: str, allowed: frozenset[str], *, required: bool) -> str | None:
    """Check an enum given as its domain value ("" unspecified, "?N" an unknown number); None when absent or bad."""
    if not value:
        if required:
            checker.add(name, "REQUIRED", f"{name} is required (one of: {', '.join(sorted(allowed))})")
        return None
    if value not in allowed:
        checker.add(name, "INVALID_ENUM",
                    f"{name} value {value.lstrip('?')} is not known (one of: {', '.join(sorted(allowed))})")
        return None
    return value
