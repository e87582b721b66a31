"""Values decoded from the bytes hypothesis draws: realistic ones from the pools, hostile edits of
them, page tokens, filters, resource names, unknown wire fields.

`Choices` is the decoder. Each hypothesis draw costs about 0.15 ms, and a message of ten fields drawn
field by field (a weighted choice and a pool index each) costs 5-9 ms; 20,000 calls in two minutes
leave about 1 ms per call for generation. So a message draws its choices as one byte string, and
these functions (driven by the descriptors like the strategies they serve) turn bytes into values.
Hypothesis still owns the bytes: the run is seeded, and its mutator works on them.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import TypeVar

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from tests.fuzz import contract, hostile
from tests.fuzz.pools import Pools

T = TypeVar("T")
TIMESTAMP = "google.protobuf.Timestamp"


class Choices:
    """Decisions decoded from bytes hypothesis drew: `pick(n)` is a number below n.

    Each hypothesis draw costs about 0.15 ms; a message of ten fields drawn field by field, each value
    through a weighted choice and a pool index, costs 5-9 ms, and 20,000 calls in two minutes leave
    about 1 ms per call for generation. So a message draws all its choices as one byte string and the
    decoders below (derived from the descriptors like the strategies they replace) turn the bytes into
    values. Hypothesis still owns the bytes: the run is derandomised or seeded, and its mutator works
    on them.
    """

    def __init__(self, blob: bytes) -> None:
        self._value = int.from_bytes(blob, "little")

    def pick(self, n: int) -> int:
        if n <= 1:
            return 0
        chosen = self._value % n
        self._value //= n
        return chosen

    def weighted(self, *weights: int) -> int:
        """The index of the option chosen with these weights."""
        roll = self.pick(sum(weights))
        for position, weight in enumerate(weights):
            if roll < weight:
                return position
            roll -= weight
        return len(weights) - 1

    def one(self, options: Sequence[T]) -> T:
        return options[self.pick(len(options))]

    def chance(self, percent: int) -> bool:
        return self.pick(100) < percent


BYTES_PER_FIELD = 12  # a weighted choice, a pool index and a mutation fit in 96 bits


def blobs(fields: int) -> st.SearchStrategy[bytes]:
    size = BYTES_PER_FIELD * (fields + 2)
    return st.binary(min_size=size, max_size=size)


FRESH: dict[str, Callable[[int], str]] = {
    "id": lambda n: f"FZ-{n}", "unit_code": lambda n: f"FZ-{n}", "identity_id": lambda n: f"fz-{n}",
}
REALISTIC_TEXT = (
    "Sở Nội vụ", "Phường Hoàn Kiếm", "Department of Home Affairs", "Rà soát thủ tục hành chính", "818/QĐ-UBND",
    "Đã hoàn thành đúng hạn", "hanoi-task-tracker", "Quyết định 12/QĐ-BCĐ", "đề nghị xem xét lại", "ok",
    "Ủy ban nhân dân xã Sóc Sơn — báo cáo quý", "Note with\ttab and\nnew line",
)
SPECIFIC_HOSTILE: dict[str, tuple[str, ...]] = {
    "date": (*hostile.DATE_EDGES, *hostile.MALFORMED_DATES),
    "period": (*hostile.QUARTER_EDGES, *hostile.MALFORMED_QUARTERS,
               *(f"periods/{q}" for q in (*hostile.QUARTER_EDGES, *hostile.MALFORMED_QUARTERS))),
    "evaluation_period": (*hostile.QUARTER_EDGES, *hostile.MALFORMED_QUARTERS, *hostile.ROLLUP_EDGES,
                          *hostile.MALFORMED_ROLLUPS,
                          *(f"periods/{p}" for p in (*hostile.ROLLUP_EDGES, *hostile.MALFORMED_ROLLUPS))),
    "cursor": hostile.HOSTILE_CURSORS,
    "digest": ("0" * 63, "0" * 65, "G" * 64, "A" * 64, "rulesets/" + "0" * 64),
    "resource": ("units/", "/", "units//SNV", "units/SNV/extra", "UNITS/SNV", "units/snv", "units/*",
                 "assignments/", "periods/2026-Q3/evaluations/", "periods/2026-Q3/recommendations/SNV",
                 "periods/2026-Q3/recommendations/SNV~", "periods/2026-Q3/recommendations/~praise",
                 "identities/", "identities/x/credentials/", "contests/0", "contests/-1", "contests/abc",
                 f"contests/{2**63}", f"contests/{2**64}", "contests/²", "rulesets/", "units/SNV\x00",
                 "units/S\u202eNV", "units/SNV\u200b", "units/" + "A" * 10_000, "periods/2101-Q1/evaluations/SNV"),
    "page_token": ("x", "=", "!!!", "e30", "W10", "bnVsbA", "eyJjIjogMX0", base64.urlsafe_b64encode(
        b'{"c": "' + b"9" * 5000 + b'", "s": "x"}').decode()),
    "filter": ("=", "kind=", "=ward", "kind=ward AND", "kind==ward", "kind=ward and active=true",
               "kind=ward AND kind=ward", 'block="communes', "unit=units/SNV OR 1=1", "a" * 10_000,
               " AND ".join(["kind=ward"] * 500), "due_in=2101-Q1", "due_in=9999-Q4", "period=1999-Q4"),
    "rule_path": ("../ruleset.yaml", "/etc/passwd", "a/../../b.yaml", "rules\\flags.yaml", ".yaml", "x.yml",
                  "flags.yaml\x00.txt", "CON.yaml", "a" * 300 + ".yaml"),
    "language": ("VI", "vi-VN", "fr", "v", "en\x00"),
    "idempotency_key": ("A" * 129,),
}
RULE_PATHS = ("ruleset.yaml", "scoring.yaml", "grades.yaml", "flags.yaml", "extra.yaml", "tests/cases.yaml")


EDGE_SECONDS = (hostile.TS_MIN - 1, hostile.TS_MAX, hostile.TS_MAX + 1, 10**15, -(10**15), hostile.TS_2101,
                 hostile.TS_2000 - 1, 2**63 - 1)


def value_slots(message: Message, prefix: str) -> list[tuple[Message, FieldDescriptor, str]]:
    """Every place a value can go in a message tree: its scalar and Timestamp fields, and those of
    the messages it holds."""
    found = []
    for fd in message.DESCRIPTOR.fields:
        if is_map(fd):
            continue
        if fd.message_type is not None and fd.message_type.full_name != TIMESTAMP:
            items = list(getattr(message, fd.name)) if fd.is_repeated else (
                [getattr(message, fd.name)] if message.HasField(fd.name) else [])
            for index, item in enumerate(items):
                found.extend(value_slots(item, f"{prefix}{fd.name}{f'[{index}]' if fd.is_repeated else ''}."))
        else:
            found.append((message, fd, f"{prefix}{fd.name}"))
    return found


def fill_pattern(pattern: str, value_of: Callable[[str], str]) -> str:
    return re.sub(r"\{([^}]*)\}", lambda m: value_of(m.group(1)), pattern)


def pattern_variable(pools: Pools, variable: str, i: int, *, missing: bool) -> str:
    """A value for one `{variable}` of a resource-name pattern."""
    if missing:  # well-formed, but nothing has this name
        return {"unit_code": "NOPE", "period": "2031-Q1", "digest": "f" * 64, "number": "999999",
                "identity_id": "no-such-identity", "flag": "nope"}.get(variable, "no-such-thing")
    pool = {"unit_code": "code", "period": "period", "assignment_id": "assignment_id", "digest": "digest",
            "identity_id": "identity_id", "flag": "flag", "outcome_id": "outcome_id",
            "credential_id": "credential_id"}.get(variable, variable)
    if variable == "number":
        return str(pools.pick_int("contest_id", i, default=1))
    return pools.pick(pool, i, default="x")


def mutate(value: str, choices: Choices) -> str:
    """A realistic value with one hostile edit: a hidden character inside, 10 KB more, a changed case,
    a broken separator, a lookalike digit."""
    op = choices.pick(11)
    at = choices.pick(len(value) + 1)
    if op <= 2:
        hidden = choices.one(hostile.BIDI + hostile.ZERO_WIDTH + hostile.NONCHARACTERS + hostile.CONTROL)
        return value[:at] + hidden + value[at:]
    if op == 3:
        return value + "x" * hostile.TEN_KB
    if op == 4:
        return value.swapcase()
    if op == 5:
        return value.replace("/", "//", 1) if "/" in value else value + "/"
    if op == 6:
        return value.split("/", 1)[-1]
    if op == 7:
        return f" {value} "
    if op == 8:
        return unicodedata.normalize("NFD", value) + "\u0301"
    if op == 9:
        return value.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    return value[: len(value) // 2]


TOKEN_VALUES = (None, -1, 2**63, 2**64, 1.5, "", "x" * 5000, [], {}, "\u202e", "9" * 40, True)


def tamper_token(token: str, choices: Choices) -> str:
    """A page token the server issued with its payload changed: if it is base64 JSON, one value is
    replaced by a hostile one (so the check behind the token format is reached); else it is cut."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError):
        return token[: len(token) // 2]
    if not isinstance(data, dict) or not data:
        return token[::-1]
    data[sorted(data)[choices.pick(len(data))]] = choices.one(TOKEN_VALUES)
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def make_filter(pools: Pools, choices: Choices, field: str) -> str:
    """A List filter: terms the contract documents for this call (sometimes another call's), joined by
    ` AND `, with values from the pools, the documented examples or hostile text."""
    roll = choices.pick(20)
    if roll < 4:
        return ""
    if roll < 5:
        return choices.one(SPECIFIC_HOSTILE["filter"])
    terms = (roll < 18 and contract.filter_terms(field)) or contract.filter_terms() or (("unit", ("units/SNV",)),)
    parts = []
    for _ in range(1 + choices.pick(3)):
        name, examples = choices.one(terms)
        pick = choices.pick(20)
        if pick < 14 and examples:
            value = choices.one(examples)
        elif pick < 17:
            value = pools.pick(FILTER_POOLS.get(name, name), choices.pick(10**6), default="x")
        else:
            value = choices.one(hostile.HOSTILE_TEXT)
        parts.append(f"{name}={value}")
    return " AND ".join(parts)


FILTER_POOLS = {"unit": "name:units", "assignment": "name:assignments", "period": "period", "due_in": "period",
                 "actor": "identity_id", "parent": "name:units"}


def unknown_field_bytes(choices: Choices) -> bytes:
    """Well-formed wire bytes for field numbers the contract does not use: a server must ignore them."""
    out = b""
    for _ in range(1 + choices.pick(3)):
        number = choices.one((99, 1000, 4095, 536_870_911))
        shape = choices.pick(3)
        if shape == 0:
            out += tag(number, 0) + varint(choices.pick(2**63))
        elif shape == 1:
            blob = bytes(choices.pick(256) for _ in range(choices.pick(16)))
            out += tag(number, 2) + varint(len(blob)) + blob
        else:
            out += tag(number, 1) + bytes(choices.pick(256) for _ in range(8))
    return out


def with_unknown_fields(message: Message, extra: bytes) -> Message:
    copy = type(message)()
    copy.MergeFromString(message.SerializeToString() + extra)
    return copy


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


def is_map(fd: FieldDescriptor) -> bool:
    return fd.message_type is not None and fd.message_type.GetOptions().map_entry


def type_range(fd: FieldDescriptor) -> tuple[int, int]:
    if fd.cpp_type == FieldDescriptor.CPPTYPE_INT32:
        return -(2**31), 2**31 - 1
    if fd.cpp_type == FieldDescriptor.CPPTYPE_UINT32:
        return 0, 2**32 - 1
    if fd.cpp_type == FieldDescriptor.CPPTYPE_UINT64:
        return 0, 2**64 - 1
    return -(2**63), 2**63 - 1


def integer_edges(fd: FieldDescriptor) -> list[int]:
    return list({FieldDescriptor.CPPTYPE_INT32: hostile.INT32_EDGES, FieldDescriptor.CPPTYPE_INT64: hostile.INT64_EDGES,
                 FieldDescriptor.CPPTYPE_UINT32: hostile.UINT32_EDGES,
                 FieldDescriptor.CPPTYPE_UINT64: hostile.UINT64_EDGES}[fd.cpp_type])


