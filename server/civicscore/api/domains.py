"""The field domains of the contract, checked for every request in one place.

Every string and number field of every message a request can carry declares its
domain in the protos (`[(civicscore.v1.domain) = {...}]`, see domains.proto);
enum, bool and Timestamp fields have the domain of their type. This module
reads those options from the generated descriptors once, compiles one check
per field, and `check_message` walks a request with them: every value outside
its domain is a `Violation` naming its path (`outcomes[3].reported_at`). The
use cases then only ever see values they can store and read back: dates and
periods in 2000-2100, finite numbers, timestamps Python can hold, text
without invisible or reordering characters, names of the right shape.

The empty value of a field (empty text, 0, an unset Timestamp, an enum's 0) is
always in its domain: whether a field is required is the use case's business.
"""

from __future__ import annotations

import datetime as dt
import keyword
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from civicscore.errors import Violation, shown
from civicscore.validation import (
    DIGEST_PATTERN,
    FIRST_DAY,
    FIRST_INSTANT,
    FORBIDDEN_TEXT,
    IDENTITY_ID_PATTERN,
    INDICATOR_PATTERN,
    LAST_DAY,
    LAST_INSTANT,
    UNIT_CODE_PATTERN,
    forbidden_character,
    parse_date,
)
from civicscore_api.v1 import domains_pb2

# A check takes a field's value and returns (reason, what is wrong) or None when the value is in its domain.
Problem = tuple[str, str]
Check = Callable[[Any], Problem | None]

_KIND = domains_pb2.ValueKind
_ID_CHARS = re.compile(r"[A-Za-z0-9._:-]+\Z")
_FLAG = re.compile(r"[a-z][a-z0-9_]{0,59}\Z")
_CREDENTIAL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_NUMBER = re.compile(r"[1-9][0-9]{0,18}\Z")
_TYPE_MAX = {FieldDescriptor.TYPE_INT32: 2**31 - 1, FieldDescriptor.TYPE_INT64: 2**63 - 1,
             FieldDescriptor.TYPE_UINT32: 2**32 - 1, FieldDescriptor.TYPE_UINT64: 2**64 - 1,
             FieldDescriptor.TYPE_SINT32: 2**31 - 1, FieldDescriptor.TYPE_SINT64: 2**63 - 1}
_TIMESTAMP = "google.protobuf.Timestamp"
_FIRST_SECOND = int(FIRST_INSTANT.timestamp())
_END_SECOND = int(LAST_INSTANT.timestamp())  # exclusive
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


# ---- one check per kind -----------------------------------------------------------------


def _text(max_length: int) -> Check:
    def check(value: str) -> Problem | None:
        if len(value) > max_length:
            return "TOO_LONG", f"has {len(value):,} characters; at most {max_length:,} are allowed"
        problem = forbidden_character(value)
        if problem is not None:
            return "FORBIDDEN_CHARACTER", f"contains {problem}; remove it"
        return None
    return check


def _secret(max_length: int) -> Check:
    """Like text, but what is wrong is said without the value or any character of it."""
    def check(value: str) -> Problem | None:
        if len(value) > max_length:
            return "TOO_LONG", f"is too long; at most {max_length:,} characters are allowed"
        if forbidden_character(value) is not None:
            return "FORBIDDEN_CHARACTER", ("contains a control, invisible or reordering character, which a "
                                           "secret may not contain; choose another")
        return None
    return check


def _file_content(max_length: int) -> Check:
    def check(value: str) -> Problem | None:
        if len(value) > max_length:
            return "TOO_LARGE", f"has {len(value):,} characters; a rule file may have at most {max_length:,}"
        return None
    return check


def _pattern(pattern: re.Pattern[str], what: str, max_length: int = 0) -> Check:
    def check(value: str) -> Problem | None:
        if (max_length and len(value) > max_length) or pattern.match(value) is None:
            return "INVALID_FORMAT", f"{shown(value)} is not {what}"
        return None
    return check


def _identifier(max_length: int) -> Check:
    what = f"an id: 1-{max_length:,} characters of letters, digits and ._:-"
    def check(value: str) -> Problem | None:
        if len(value) > max_length or _ID_CHARS.match(value) is None:
            return "INVALID_FORMAT", f"{shown(value)} is not {what}"
        return None
    return check


def _date(value: str) -> Problem | None:
    if parse_date(value) is None:
        return "INVALID_DATE", (f"{shown(value)} is not a date from {FIRST_DAY} to {LAST_DAY}; "
                                "write YYYY-MM-DD, e.g. 2026-09-30")
    return None


def _period(value: str) -> Problem | None:
    if _PERIOD.fullmatch(value) is None:
        return "INVALID_PERIOD", (f"{shown(value)} is not a quarter from 2000-Q1 to 2100-Q4; "
                                  "write YYYY-Qn, e.g. 2026-Q3")
    return None


def _evaluation_period(value: str) -> Problem | None:
    if _EVALUATION_PERIOD.fullmatch(value) is None:
        return "INVALID_PERIOD", (f"{shown(value)} is not a period from 2000 to 2100; write a quarter YYYY-Qn "
                                  "(2026-Q3), a half-year YYYY-H1 or YYYY-H2 (2026-H1) or a year YYYY (2026)")
    return None


def _language(value: str) -> Problem | None:
    return None if value in ("vi", "en") else ("INVALID_LANGUAGE", f"{shown(value)} is not vi or en")


def _bounded(low: float, high: float, *, whole: bool) -> Check:
    def words(x: float) -> str:
        return f"{int(x):,}" if x == int(x) else f"{x:g}"
    span = f"from {words(low)} to {words(high)}"

    def check(value: float) -> Problem | None:
        if not whole and not math.isfinite(value):
            return "OUT_OF_RANGE", f"is {value}; it must be a finite number {span}"
        if not low <= value <= high:
            return "OUT_OF_RANGE", f"is {value:,}; it must be {span}"
        return None
    return check


# Variables of resource-name patterns: the regex each part of a name must match.
_VARIABLES: dict[str, str] = {
    "unit_code": r"[A-Z0-9][A-Z0-9-]{0,39}",
    "assignment_id": r"[A-Za-z0-9._:-]{1,128}",
    "official_id": r"[A-Za-z0-9._:-]{1,64}",
    "quarter": r"(?:20[0-9]{2}|2100)-Q[1-4]",
    "period": r"(?:20[0-9]{2}|2100)(?:-Q[1-4]|-H[12])?",  # a quarter, a half-year or a year
    "flag": r"[a-z][a-z0-9_]{0,59}",
    "identity_id": r"[a-z0-9][a-z0-9.-]{1,62}",
    "credential_id": r"[A-Za-z0-9_-]{1,64}",
    "digest": r"[0-9a-f]{64}",
    "number": r"[1-9][0-9]{0,17}",
}
_VARIABLE = re.compile(r"\{(\w+)\}")
_PERIOD = re.compile(rf"(?:periods/)?{_VARIABLES['quarter']}")
_EVALUATION_PERIOD = re.compile(rf"(?:periods/)?{_VARIABLES['period']}")


def _name_regex(patterns: str) -> re.Pattern[str]:
    """One regex for `units/{unit_code}` (or alternatives joined by ` | `), each variable by `_VARIABLES`."""
    alternatives = []
    for pattern in (p.strip() for p in patterns.split("|")):
        unknown = [n for n in _VARIABLE.findall(pattern) if n not in _VARIABLES]
        if unknown:
            raise ValueError(f"resource name pattern {pattern!r} has unknown variables {unknown}")
        alternatives.append("".join(f"(?:{_VARIABLES[part]})" if index % 2 else re.escape(part)
                                    for index, part in enumerate(_VARIABLE.split(pattern))))
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


def _resource_name(patterns: str) -> Check:
    regex = _name_regex(patterns)
    example = " or ".join(p.strip() for p in patterns.split("|"))

    def check(value: str) -> Problem | None:
        if regex.fullmatch(value) is None:
            return "INVALID_NAME", f"{shown(value)} is not a resource name {example}"
        return None
    return check


def _timestamp(value: Any) -> Problem | None:
    seconds, nanos = value.seconds, value.nanos
    if not 0 <= nanos <= 999_999_999:
        return "INVALID_TIMESTAMP", f"has nanos {nanos:,}; nanos must be from 0 to 999,999,999"
    if not _FIRST_SECOND <= seconds < _END_SECOND:
        when = (( _EPOCH + dt.timedelta(seconds=seconds)).isoformat()
                if -62135596800 <= seconds <= 253402300799 else f"seconds={seconds:,}")
        return "OUT_OF_RANGE", (f"is {when}; a time must be from {FIRST_INSTANT.isoformat()} to "
                                f"{(LAST_INSTANT - dt.timedelta(microseconds=1)).isoformat()} (Hanoi time)")
    return None


@dataclass(frozen=True)
class _Rule:
    """A field's domain: `test`, a Python expression over the value `v` (and the names in `env`, written
    `$name`), true when the value is in the domain; `explain` says what is wrong when it is not."""

    test: str
    env: dict[str, Any]
    explain: Check


def _enum(field: FieldDescriptor) -> _Rule:
    enum = field.enum_type
    assert enum is not None
    known = frozenset(v.number for v in enum.values)
    names = ", ".join(v.name for v in enum.values if v.number)

    def explain(value: int) -> Problem:
        return "INVALID_ENUM", f"value {value} is not one of {names}"
    return _Rule("v in $known", {"known": known}, explain)


_TIMESTAMP_RULE = _Rule("0 <= v.nanos <= 999999999 and $first <= v.seconds < $end",
                        {"first": _FIRST_SECOND, "end": _END_SECOND}, _timestamp)  # type: ignore[arg-type]


def _matching(regex: re.Pattern[str], explain: Check) -> _Rule:
    return _Rule("$match(v) is not None", {"match": regex.fullmatch}, explain)


def _declared(field: FieldDescriptor) -> _Rule | None:
    """The rule of a scalar field from its `(domain)` option; None for output-only fields."""
    options = field.GetOptions()
    if not options.HasExtension(domains_pb2.domain):
        raise ValueError(f"{field.full_name} declares no (civicscore.v1.domain); every request field must")
    domain = options.Extensions[domains_pb2.domain]
    kind, size = domain.kind, domain.max_length
    if kind == _KIND.VALUE_KIND_OUTPUT_ONLY:
        return None
    if kind in (_KIND.VALUE_KIND_NUMBER, _KIND.VALUE_KIND_INTEGER):
        maximum = (_TYPE_MAX[field.type] if domain.maximum == 0 and domain.minimum == 0 and field.type in _TYPE_MAX
                   else domain.maximum)
        # NaN fails both comparisons, so the test also refuses it.
        return _Rule("$low <= v <= $high", {"low": domain.minimum, "high": maximum},
                     _bounded(domain.minimum, maximum, whole=kind == _KIND.VALUE_KIND_INTEGER))
    if kind == _KIND.VALUE_KIND_TEXT:
        return _Rule("len(v) <= $size and $search(v) is None", {"size": size, "search": FORBIDDEN_TEXT.search},
                     _text(size))
    if kind == _KIND.VALUE_KIND_SECRET:
        return _Rule("len(v) <= $size and $search(v) is None", {"size": size, "search": FORBIDDEN_TEXT.search},
                     _secret(size))
    if kind == _KIND.VALUE_KIND_FILE_CONTENT:
        return _Rule("len(v) <= $size", {"size": size}, _file_content(size))
    if kind == _KIND.VALUE_KIND_ID:
        return _Rule("len(v) <= $size and $match(v) is not None", {"size": size, "match": _ID_CHARS.match},
                     _identifier(size))
    if kind == _KIND.VALUE_KIND_DATE:
        return _Rule("$parse(v) is not None", {"parse": parse_date}, _date)
    if kind == _KIND.VALUE_KIND_LANGUAGE_CODE:
        return _Rule("v in $allowed", {"allowed": ("vi", "en")}, _language)
    if kind == _KIND.VALUE_KIND_PERIOD:
        return _matching(_PERIOD, _period)
    if kind == _KIND.VALUE_KIND_EVALUATION_PERIOD:
        return _matching(_EVALUATION_PERIOD, _evaluation_period)
    if kind == _KIND.VALUE_KIND_RESOURCE_NAME:
        return _matching(_name_regex(domain.pattern), _resource_name(domain.pattern))
    patterns = {
        _KIND.VALUE_KIND_UNIT_CODE: (UNIT_CODE_PATTERN, "a unit code: 1-40 characters of A-Z, 0-9 and -, "
                                     "starting with a letter or digit"),
        _KIND.VALUE_KIND_IDENTITY_ID: (IDENTITY_ID_PATTERN, "an identity id: 2-63 characters of a-z, 0-9, - and ., "
                                       "e.g. snv-task-tracker"),
        _KIND.VALUE_KIND_INDICATOR_CODE: (INDICATOR_PATTERN, "an indicator code such as dx.online_applications"),
        _KIND.VALUE_KIND_DIGEST: (DIGEST_PATTERN, "a digest: 64 lowercase hexadecimal digits"),
    }
    if kind not in patterns:
        raise ValueError(f"{field.full_name}: domain kind {kind} is not known to this server")
    regex, what = patterns[kind]
    return _matching(regex, _pattern(regex, what))


# ---- compiled messages --------------------------------------------------------------------
#
# Each request type gets one generated function that reads every field once and tests it with a
# plain expression, because a batch of 10,000 outcomes passes through here on every submission; the
# `explain` of a rule runs only for a value that fails its test.

Walker = Callable[[Any, str, int, list[Violation]], None]
_COMPILED: dict[str, Walker] = {}


def _violation(where: str, problem: Problem, index: int) -> Violation:
    return Violation(where, f"{where} {problem[1]}", problem[0], index)


def _rule_of(field: FieldDescriptor) -> _Rule | None:
    if field.message_type is not None:  # only Timestamps: other messages are walked
        options = field.GetOptions()
        output_only = (options.HasExtension(domains_pb2.domain)
                       and options.Extensions[domains_pb2.domain].kind == _KIND.VALUE_KIND_OUTPUT_ONLY)
        return None if output_only else _TIMESTAMP_RULE
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum(field)
    if field.type == FieldDescriptor.TYPE_BOOL:
        return None
    return _declared(field)


def _compile(descriptor: Descriptor) -> Walker:
    """The generated check of a message type (once per type; nested types compiled first)."""
    found = _COMPILED.get(descriptor.full_name)
    if found is not None:
        return found
    _COMPILED[descriptor.full_name] = lambda *args: _COMPILED[descriptor.full_name](*args)  # while compiling
    env: dict[str, Any] = {"_violation": _violation}
    lines = ["def walk(m, path, index, out):", "    top = index < 0 and not path"]
    for number, field in enumerate(descriptor.fields):
        name = field.name
        read = f"getattr(m, {name!r})" if keyword.iskeyword(name) else f"m.{name}"
        item_index = "pos if top else index"
        message = field.message_type
        if message is not None and message.GetOptions().map_entry:
            continue  # no request carries a map
        if message is not None and message.full_name != _TIMESTAMP:
            env[f"f{number}_walk"] = _compile(message)
            if field.is_repeated:
                lines += [f"    for pos, v in enumerate({read}):",
                          f"        f{number}_walk(v, f'{{path}}{name}[{{pos}}].', {item_index}, out)"]
            else:
                lines += [f"    if m.HasField({name!r}):",
                          f"        f{number}_walk({read}, path + {name + '.'!r}, index, out)"]
            continue
        rule = _rule_of(field)
        if rule is None:
            continue
        test = rule.test.replace("$", f"f{number}_")
        env.update({f"f{number}_{key}": value for key, value in rule.env.items()})
        env[f"f{number}_explain"] = rule.explain
        if field.is_repeated:
            lines += [f"    for pos, v in enumerate({read}):",
                      f"        if v and not ({test}):",
                      f"            out.append(_violation(f'{{path}}{name}[{{pos}}]', f{number}_explain(v), "
                      f"{item_index}))"]
        elif message is not None:
            lines += [f"    if m.HasField({name!r}):",
                      f"        v = {read}",
                      f"        if not ({test}):",
                      f"            out.append(_violation(path + {name!r}, f{number}_explain(v), index))"]
        else:
            lines += [f"    v = {read}",
                      f"    if v and not ({test}):",
                      f"        out.append(_violation(path + {name!r}, f{number}_explain(v), index))"]
    exec(compile("\n".join(lines), f"<domains of {descriptor.full_name}>", "exec"), env)
    walker: Walker = env["walk"]
    _COMPILED[descriptor.full_name] = walker
    return walker


def compile_request(descriptor: Descriptor) -> None:
    """Compile the checks of a request type now (a field without a domain raises ValueError at start-up)."""
    _compile(descriptor)


def check_message(message: Any, *, path: str = "") -> list[Violation]:
    """Every value of `message` outside its field's domain; `path` prefixes the field paths.

    The index of a violation is the item's position in the request's top-level batch field
    (`outcomes[3]` -> 3), -1 for request-level fields.
    """
    found: list[Violation] = []
    _compile(message.DESCRIPTOR)(message, path, -1, found)
    return found
