"""An independent reading of the field domains the contract declares (`(civicscore.v1.domain)`,
domains.proto), to say which values of a request lie outside them.

The contract says the server checks every request field against its domain "in one place, before
anything else" and refuses a value outside it with INVALID_ARGUMENT. This module is the test's own
reading of the domain table, deliberately conservative: where the text leaves room (how a resource
name's variables are spelled, whether a year bound applies to a Timestamp), it only calls a value
outside when no reading could accept it, so a finding here is a real gap and never the fuzzer's guess.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from tests.fuzz import hostile
from tests.fuzz.kinds import domains_pb2

_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069\u200b-\u200f\u2060\ufeff"
                        "\ufdd0-\ufdef\ufffe\uffff\U0001fffe\U0001ffff\U0010fffe\U0010ffff]")
_ID = re.compile(r"[A-Za-z0-9._:-]+\Z")
_UNIT_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{0,39}\Z")
_IDENTITY_ID = re.compile(r"[a-z0-9][a-z0-9.-]{1,62}\Z")
_INDICATOR_CHARS = re.compile(r"[a-z0-9_.]+\Z")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})\Z", re.ASCII)
_QUARTER = re.compile(r"(\d{4})-Q([1-4])\Z", re.ASCII)
_EVALUATION_PERIOD = re.compile(r"(\d{4})(?:-Q[1-4]|-H[12])?\Z", re.ASCII)
_DIGEST = re.compile(r"[0-9a-f]{64}\Z")
_NAME_CHARS = re.compile(r"[\s\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069\u200b-\u200f\u2060\ufeff\ufdd0-\ufdef"
                         r"\ufffe\uffff]")
MAX_NAME = 1000  # no pattern's variables add up to this many characters
MAX_ITEMS = 50  # items of a repeated field checked (an oversized batch repeats one item)


def outside(message: Message, prefix: str = "") -> Iterator[str]:
    """`path: why` for every value of `message` outside the domain its field declares."""
    if domains_pb2 is None:
        return
    for fd, value in message.ListFields():
        path = f"{prefix}{fd.name}"
        if fd.message_type is not None:
            if fd.message_type.GetOptions().map_entry:
                continue
            items = list(value[:MAX_ITEMS]) if fd.is_repeated else [value]
            for index, item in enumerate(items):
                where = f"{path}[{index}]" if fd.is_repeated else path
                if fd.message_type.full_name == "google.protobuf.Timestamp":
                    if _output_only(fd):  # set by the server and ignored in requests: no domain to keep
                        continue
                    if (item.seconds < hostile.TS_MIN or item.seconds > hostile.TS_MAX or
                            not 0 <= item.nanos < 10**9):
                        yield f"{where}: not a valid Timestamp ({item.seconds}s, {item.nanos}ns)"
                else:
                    yield from outside(item, f"{where}.")
            continue
        items = list(value) if fd.is_repeated else [value]
        for index, item in enumerate(items):
            where = f"{path}[{index}]" if fd.is_repeated else path
            why = _why(fd, item)
            if why:
                yield f"{where}: {why}"


def _output_only(fd: FieldDescriptor) -> bool:
    domain = _domain(fd)
    return domain is not None and domains_pb2.ValueKind.Name(domain.kind) == "VALUE_KIND_OUTPUT_ONLY"  # type: ignore[attr-defined]


def _domain(fd: FieldDescriptor) -> object | None:
    options = fd.GetOptions()
    return options.Extensions[domains_pb2.domain] if options.HasExtension(domains_pb2.domain) else None


def _why(fd: FieldDescriptor, value: object) -> str:
    if fd.enum_type is not None:
        return "" if value in fd.enum_type.values_by_number else f"unknown enum number {value}"
    domain = _domain(fd)
    if domain is None or value in ("", 0, 0.0, False):  # the empty value is always in the domain
        return ""
    kind = domains_pb2.ValueKind.Name(domain.kind)  # type: ignore[attr-defined]
    check = _CHECKS.get(kind)
    return check(domain, value) if check else ""


def _text(domain: object, value: object) -> str:
    text = str(value)
    limit = getattr(domain, "max_length", 0)
    if limit and len(text) > limit:
        import unicodedata

        if len(unicodedata.normalize("NFC", text)) > limit:
            return f"{len(text):,} characters, more than {limit:,}"
    if _FORBIDDEN.search(text):
        return "a forbidden character (control, bidi, zero-width or noncharacter)"
    return ""


def _content(domain: object, value: object) -> str:
    limit = getattr(domain, "max_length", 0)
    return f"{len(str(value)):,} characters, more than {limit:,}" if limit and len(str(value)) > limit else ""


def _pattern(regex: re.Pattern[str], what: str, max_length: int = 0) -> object:
    def check(domain: object, value: object) -> str:
        text = str(value)
        limit = max_length or getattr(domain, "max_length", 0)
        if (limit and len(text) > limit) or not regex.match(text):
            return f"not {what}"
        return ""
    return check


def _date(domain: object, value: object) -> str:
    found = _DATE.match(str(value))
    if not found:
        return "not YYYY-MM-DD"
    try:
        day = dt.date(int(found.group(1)), int(found.group(2)), int(found.group(3)))
    except ValueError:
        return "not a calendar date"
    return "" if dt.date(2000, 1, 1) <= day <= dt.date(2100, 12, 31) else "outside 2000-01-01..2100-12-31"


def _period(domain: object, value: object) -> str:
    found = _QUARTER.match(str(value).removeprefix("periods/"))
    if not found:
        return "not a quarter YYYY-Qn"
    return "" if 2000 <= int(found.group(1)) <= 2100 else "a quarter outside 2000-Q1..2100-Q4"


def _evaluation_period(domain: object, value: object) -> str:
    found = _EVALUATION_PERIOD.match(str(value).removeprefix("periods/"))
    if not found:
        return "not a quarter YYYY-Qn, a half-year YYYY-Hn or a year YYYY"
    return "" if 2000 <= int(found.group(1)) <= 2100 else "a period outside 2000..2100"


def _bounded(domain: object, value: object) -> str:
    number = float(value)  # type: ignore[arg-type]
    if math.isnan(number) or math.isinf(number):
        return "not finite"
    low, high = getattr(domain, "minimum", 0.0), getattr(domain, "maximum", 0.0)
    if low == 0 and high == 0:  # "0 (with a minimum of 0) means the largest value of the field's type"
        return "below 0" if number < 0 else ""
    if number < low or number > high:
        return f"outside {low:g}..{high:g}"
    return ""


def _resource(domain: object, value: object) -> str:
    text = str(value)
    if len(text) > MAX_NAME:
        return f"a name of {len(text):,} characters"
    if _NAME_CHARS.search(text):
        return "a name with whitespace or a forbidden character"
    patterns = [p.strip() for p in getattr(domain, "pattern", "").split("|") if p.strip()]
    prefixes = [p.split("{", 1)[0] for p in patterns]
    if prefixes and not any(text.startswith(prefix) for prefix in prefixes if prefix):
        return f"not a name like {' or '.join(patterns)}"
    return ""


def _language(domain: object, value: object) -> str:
    return "" if value in ("vi", "en") else "not vi or en"


_CHECKS = {
    "VALUE_KIND_TEXT": _text,
    "VALUE_KIND_SECRET": _text,
    "VALUE_KIND_FILE_CONTENT": _content,
    "VALUE_KIND_ID": _pattern(_ID, "an identifier of letters, digits and ._:-"),
    "VALUE_KIND_UNIT_CODE": _pattern(_UNIT_CODE, "a unit code"),
    "VALUE_KIND_IDENTITY_ID": _pattern(_IDENTITY_ID, "an identity id"),
    "VALUE_KIND_INDICATOR_CODE": _pattern(_INDICATOR_CHARS, "an indicator code", 100),
    "VALUE_KIND_DATE": _date,
    "VALUE_KIND_PERIOD": _period,
    "VALUE_KIND_EVALUATION_PERIOD": _evaluation_period,
    "VALUE_KIND_NUMBER": _bounded,
    "VALUE_KIND_INTEGER": _bounded,
    "VALUE_KIND_RESOURCE_NAME": _resource,
    "VALUE_KIND_LANGUAGE_CODE": _language,
    "VALUE_KIND_DIGEST": _pattern(_DIGEST, "a digest"),
}
