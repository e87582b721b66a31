"""The hostile values issue 11 lists, and a classifier that names a value's class in reports.

The values are constants, not strategies: the strategies mix them with realistic values, and the
classifier (`features`) lets a failure report say "reported_at: timestamp past 9999-12-31" instead of
dumping a request.
"""

from __future__ import annotations

import base64
import json
import math
import re
import unicodedata
from collections.abc import Iterator

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

# ---- text -------------------------------------------------------------------------------------
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
ZERO_WIDTH = "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"
NONCHARACTERS = "\ufdd0\ufdef\ufffe\uffff\U0001fffe\U0010ffff"
CONTROL = "\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x85"
# Digits that str.isdigit() accepts but int() does not (or reads as something else): parsers that
# test with isdigit() and convert with int() fail on them.
UNICODE_DIGITS = ("²³", "١٢", "１２", "𝟙𝟚", "٣")
TEN_KB = 10 * 1024
FEATURE_ITEMS = 20  # items of a repeated field classified (an oversized batch repeats one item)

HOSTILE_TEXT: tuple[str, ...] = (
    "", " ", "\t", "\n", "\r\n", "\x00", "a\x00b", "\x1b[31mred\x1b[0m", "\x7f", "\x85",
    "\u202e", "abc\u202edcba", "\u2066x\u2069", "\u202aa\u202c",
    "\u200b", "a\u200bb", "\ufeff", "\u200d",
    "\ufdd0", "\ufffe", "\uffff", "x\U0010ffff",
    "x" * TEN_KB, "é" * (TEN_KB // 2), "𝕏" * (TEN_KB // 4), "A" * 10_001,
    "e\u0301", "ǅ", "\u0130", "Ⅻ",
    "' OR 1=1 --", "\"; DROP TABLE units; --", "../../etc/passwd", "%00", "${jndi:ldap://x}", "{{7*7}}",
    "null", "None", "-1", "0", "NaN", "true",
    *UNICODE_DIGITS,
)

# ---- dates and quarters -----------------------------------------------------------------------
DATE_EDGES = ("1999-12-31", "2000-01-01", "2100-12-31", "2101-01-01", "9999-12-31", "0001-01-01")
MALFORMED_DATES = ("2026-02-30", "2026-13-01", "2026-9-1", "20260901", "2026-09-01T00:00:00", " 2026-09-01",
                   "2026-09-01 ", "2026/09/01", "01-09-2026", "２０２６-09-01", "2026-W36", "-001-01-01",
                   "+2026-09-01", "2026-09-01\x00", "2026-09-0\u0661", "0000-00-00")
QUARTER_EDGES = ("1999-Q4", "2000-Q1", "2100-Q4", "2101-Q1", "9999-Q4", "0000-Q1")
MALFORMED_QUARTERS = ("2026-Q0", "2026-Q5", "2026-q3", "2026Q3", "2026", "Q3-2026", "2026-Q3 ", "2026-Q٣",
                      "２０２６-Q3", "2026-Q3\u200b", "periods/", "periods/periods/2026-Q3", "-2026-Q3")
# Half-years and years, where a field also takes them (VALUE_KIND_EVALUATION_PERIOD).
ROLLUP_EDGES = ("1999", "2000", "2100", "2101", "1999-H2", "2000-H1", "2100-H2", "2101-H1", "9999", "0000")
MALFORMED_ROLLUPS = ("2026-H0", "2026-H3", "2026-h1", "2026H1", "H1-2026", "2026-H", "026", "20260", "２０２６",
                     "2026-H1 ", " 2026", "2026\u200b", "2026-H١", "2026-", "2026-Y", "periods/2026/")

# ---- timestamps (seconds, nanos) ----------------------------------------------------------------
TS_MIN = -62135596800  # 0001-01-01T00:00:00Z, the smallest valid protobuf Timestamp
TS_MAX = 253402300799  # 9999-12-31T23:59:59Z, the largest
TS_2000 = 946684800
TS_2101 = 4133980800
HOSTILE_SECONDS = (TS_MIN - 1, TS_MIN, -1, 0, TS_2000 - 1, TS_2101, TS_MAX, TS_MAX + 1, 10**15, -(10**15),
                   2**63 - 1, -(2**63))
HOSTILE_NANOS = (-1, -999_999_999, 10**9, 2**31 - 1, -(2**31))

# ---- numbers ------------------------------------------------------------------------------------
HOSTILE_DOUBLES = (math.nan, math.inf, -math.inf, -0.0, 1e308, -1e308, 5e-324, 1.7976931348623157e308, -1.0,
                   2.0**53 + 1, 1e-9, 1.0000000000000002)
INT32_EDGES = (0, -1, 1, 2**31 - 1, -(2**31), 1000, 1001, 10_000, 10_001)
INT64_EDGES = (*INT32_EDGES, 2**63 - 1, -(2**63), 2**53 + 1, 2**32)
UINT32_EDGES = (0, 1, 2**32 - 1, 2**31)
UINT64_EDGES = (0, 1, 2**64 - 1, 2**63, 2**63 - 1)
UNKNOWN_ENUM_NUMBERS = (99, -1, 2**31 - 1, -(2**31), 1000)
# Cursors are strings of digits; these are past every 64-bit integer, negative, or digits int() refuses.
HOSTILE_CURSORS = ("-1", "0", str(2**63 - 1), str(2**63), str(2**64), "9" * 40, "99999999", " 1", "1 ", "+1",
                   "0x10", "1e3", *UNICODE_DIGITS)

_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_QUARTER = re.compile(r"^(?:periods/)?(\d{4})-Q(\d)$")
_NONCHARACTER = re.compile("[\ufdd0-\ufdef\ufffe\uffff\U0001fffe\U0001ffff\U0010fffe\U0010ffff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BIDI = re.compile(f"[{BIDI}]")
_ZERO_WIDTH = re.compile(f"[{ZERO_WIDTH}]")
_NON_ASCII_DIGIT = re.compile(r"[^\x00-\x7f](?<=\d)")


def text_features(value: str) -> list[str]:
    """The hostile classes of a text value ([] for ordinary text)."""
    found: list[str] = []
    if not value:
        return ["empty"]
    if value.isspace():
        found.append("blank")
    if len(value) >= 1000:
        found.append(f"long ({len(value):,} chars)")
    if "\x00" in value:
        found.append("NUL")
    elif _CONTROL.search(value):
        found.append("control character")
    if _BIDI.search(value):
        found.append("bidi override")
    if _ZERO_WIDTH.search(value):
        found.append("zero-width")
    if _NONCHARACTER.search(value):
        found.append("noncharacter")
    if not value.isascii() and _NON_ASCII_DIGIT.search(value):
        found.append("non-ASCII digits")
    if not unicodedata.is_normalized("NFC", value):
        found.append("not NFC")
    if date := _DATE.match(value):
        found.extend(_year_class(int(date.group(1)), "date"))
        try:
            import datetime as dt

            dt.date(int(date.group(1)), int(date.group(2)), int(date.group(3)))
        except ValueError:
            found.append("impossible date")
    if quarter := _QUARTER.match(value):
        found.extend(_year_class(int(quarter.group(1)), "quarter"))
        if quarter.group(2) not in "1234":
            found.append("quarter number out of 1-4")
    return found


def _year_class(year: int, what: str) -> list[str]:
    if year < 2000:
        return [f"{what} before 2000"]
    if year > 2100:
        return [f"{what} after 2100" if year < 9999 else f"{what} in 9999"]
    return []


def number_features(value: float) -> list[str]:
    if math.isnan(value):
        return ["NaN"]
    if math.isinf(value):
        return ["+Infinity" if value > 0 else "-Infinity"]
    if value == 0 and math.copysign(1, value) < 0:
        return ["-0.0"]
    if abs(value) >= 1e300:
        return ["huge (1e300+)"]
    if value < 0:
        return ["negative"]
    if 0 < value < 1e-300:
        return ["subnormal"]
    return []


def integer_features(value: int, field: FieldDescriptor) -> list[str]:
    if value >= 2**63:
        return [">= 2^63"]
    if value >= 2**31 - 1:
        return [">= 2^31-1"]
    if value <= -(2**31):
        return ["<= -2^31"]
    if value < 0:
        return ["negative"]
    return []


def timestamp_features(seconds: int, nanos: int) -> list[str]:
    found: list[str] = []
    if seconds < TS_MIN:
        found.append("timestamp before 0001-01-01 (invalid Timestamp)")
    elif seconds > TS_MAX:
        found.append("timestamp after 9999-12-31 (invalid Timestamp)")
    elif seconds == TS_MAX:
        found.append("timestamp 9999-12-31T23:59:59Z")
    elif seconds >= TS_2101:
        found.append("timestamp after 2100")
    elif seconds < TS_2000:
        found.append("timestamp before 2000")
    if nanos < 0:
        found.append("negative nanos")
    elif nanos >= 10**9:
        found.append("nanos >= 1e9")
    return found


def features(message: Message, prefix: str = "") -> Iterator[str]:
    """`path: class` for every hostile value in a message, e.g. `outcomes[0].reported_at: negative nanos`."""
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.is_repeated and not field.message_type:
            for index, item in enumerate(value[:FEATURE_ITEMS]):
                yield from _scalar_features(field, item, f"{path}[{index}]")
        elif field.is_repeated:
            if field.message_type.GetOptions().map_entry:
                continue
            for index, item in enumerate(value[:FEATURE_ITEMS]):
                yield from features(item, f"{path}[{index}].")
            if len(value) > 100:
                yield f"{path}: {len(value):,} items"
        elif field.message_type is not None:
            if field.message_type.full_name == "google.protobuf.Timestamp":
                for name in timestamp_features(value.seconds, value.nanos):
                    yield f"{path}: {name}"
            else:
                yield from features(value, f"{path}.")
        else:
            yield from _scalar_features(field, value, path)


def token_features(token: str) -> list[str]:
    """What is odd in a page token: tokens are opaque to clients, so the fuzzer tampers with the
    base64 JSON the server issues; name the value it put there."""
    if not token:
        return []
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError):
        return ["not a token the server issued"]
    if not isinstance(data, dict):
        return [f"token payload is a JSON {type(data).__name__}"]
    found = []
    for key, value in sorted(data.items()):
        if isinstance(value, bool) or value is None or isinstance(value, (list, dict, float)):
            found.append(f"token {key!r} is {json.dumps(value)[:20]}")
        elif isinstance(value, int):
            found.append(f"token {key!r} is an integer" + (" >= 2^63" if value >= 2**63 else
                                                          " < 0" if value < 0 else ""))
        elif isinstance(value, str) and (len(value) > 200 or not value.isascii()):
            found.append(f"token {key!r} is odd text ({len(value):,} chars)")
    return found


def _scalar_features(field: FieldDescriptor, value: object, path: str) -> Iterator[str]:
    names: list[str] = []
    if isinstance(value, str) and field.name == "page_token":
        names = token_features(value)
    elif isinstance(value, str):
        names = text_features(value)
    elif isinstance(value, float):
        names = number_features(value)
    elif field.enum_type is not None and isinstance(value, int):
        if value not in field.enum_type.values_by_number:
            names = [f"unknown enum number {value}"]
    elif isinstance(value, int) and not isinstance(value, bool):
        names = integer_features(value, field)
    for name in names:
        yield f"{path}: {name}"
