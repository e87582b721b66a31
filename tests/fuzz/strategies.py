"""Hypothesis strategies for any request, derived from the protobuf descriptors.

Each field gets a *kind* (a date, a quarter, a unit name, an idempotency key, a page token, text, ...)
from, in order: the field's declared domain (`[(civicscore.v1.domain) = {...}]`, where the contract
has one), its name, and its comment in the `.proto` (see `contract`). The kind decides the mix of
values: mostly realistic ones from `pools` (so calls get past the first check), realistic values with
one hostile mutation (a bidi override inside a valid unit code), and the bare hostile values of
`hostile`. Nested messages are built either field by field or from an exemplar the server returned
(an outcome listed by ListOutcomes, with a fresh id and a few fields mutated), so a fair share of
batch items is valid and reaches the store.

Nothing here names an RPC except `SHAPERS`, which give a client stream its commit marker most of the
time; a new RPC gets the generic strategies.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from tests.fuzz import contract, hostile
from tests.fuzz.catalog import Rpc
from tests.fuzz.kinds import Kind, kind_of
from tests.fuzz.pools import Pools, collection_of
from tests.fuzz.values import (
    EDGE_SECONDS,
    FRESH,
    REALISTIC_TEXT,
    RULE_PATHS,
    SPECIFIC_HOSTILE,
    TIMESTAMP,
    Choices,
    blobs,
    fill_pattern,
    integer_edges,
    is_map,
    make_filter,
    message_class,
    mutate,
    pattern_variable,
    tamper_token,
    type_range,
    unknown_field_bytes,
    value_slots,
    with_unknown_fields,
)

MAX_DEPTH = 4


@dataclass
class Call:
    """One generated call: its request messages (one, or a client stream's), who sends it, and notes
    on what was done to it that the messages alone do not show."""

    messages: list[Message]
    caller: str = "main"
    notes: list[str] = field(default_factory=list)
    replay: bool = False  # send the last accepted request of this RPC again instead (idempotent replay)


_SAFE_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)  # no lone surrogates: not UTF-8
_COUNTS = (0, 1, 1, 1, 2, 2, 3, 5)


class Strategies:
    """Strategies for the requests of every RPC, drawing realistic values from `pools`."""

    def __init__(self, pools: Pools, *, hostile_values: bool = True) -> None:
        """With `hostile_values` off, every value is realistic: 40% of calls are made that way, so that
        whole batches are valid and reach the store; the others carry a hostile value here and there."""
        self._pools = pools
        self.hostile = hostile_values
        self._kinds: dict[str, Kind] = {}
        self.clean = Strategies(pools, hostile_values=False) if hostile_values else self

    @property
    def pools(self) -> Pools:
        return self._pools

    @pools.setter
    def pools(self, pools: Pools) -> None:
        self._pools = pools
        if self.clean is not self:
            self.clean.pools = pools

    # ---- calls -----------------------------------------------------------------------------------
    def call(self, rpc: Rpc) -> st.SearchStrategy[Call]:
        """A whole call of `rpc`: its messages, its caller, and the rare oddities (unknown fields,
        an oversized batch, a replay)."""
        descriptor = rpc.request_descriptor
        shaper = SHAPERS.get(rpc.method)
        head = blobs(4)

        @st.composite
        def build(draw: st.DrawFn) -> Call:
            choices = Choices(draw(head))
            mode = choices.weighted(40, 35, 25) if self.hostile else 0  # clean, mixed, one edge value
            strategies = self if mode == 1 else self.clean
            count = choices.pick(5) if rpc.client_streaming else 1
            messages = [strategies.draw_message(draw, descriptor, 0) for _ in range(count)]
            call = Call(messages, caller=("main", "reporter", "reader")[choices.weighted(92, 4, 4)])
            if mode == 2:
                self._probe(choices, call)
            if shaper is not None:
                shaper(choices, call, rpc)
            roll = choices.pick(200)
            if roll < 6 and call.messages:
                call.messages[-1] = with_unknown_fields(call.messages[-1], unknown_field_bytes(choices))
                call.notes.append("unknown fields appended")
            elif roll < 8:
                self._oversize(choices, call)
            elif roll < 14:
                call.replay = True
                call.notes.append("replay of the last accepted request")
            return call

        return build()

    def _probe(self, choices: Choices, call: Call) -> None:
        """Put one edge value (a domain bound, just past it, a value the issue lists) into one field of
        an otherwise realistic request: the call gets past every other check to the one under test."""
        slots = [slot for message in call.messages for slot in value_slots(message, "")]
        if not slots:
            return
        # dates, quarters, timestamps and numbers are where issue 11 found most: probe them more often
        weights = [4 if fd.message_type is not None or self.kind(fd).name in ("date", "period", "evaluation_period",
                                                                                  "number") else 1
                   for _, fd, _ in slots]
        message, fd, path = slots[choices.weighted(*weights)]
        value = self.edge(choices, fd)
        if fd.is_repeated:
            items = getattr(message, fd.name)
            if fd.message_type is not None:
                items.add().CopyFrom(value)
            else:
                items.append(value)
        elif fd.message_type is not None:
            getattr(message, fd.name).CopyFrom(value)
        else:
            setattr(message, fd.name, value)
        call.notes.append(f"edge value in {path}")

    def edge(self, choices: Choices, fd: FieldDescriptor) -> Any:
        """A value at or just past the edge of the field's domain, or one the issue lists for its kind."""
        from google.protobuf import timestamp_pb2

        if fd.message_type is not None:
            stamp = timestamp_pb2.Timestamp()
            if choices.chance(70):
                stamp.seconds = choices.one(EDGE_SECONDS)
            else:
                stamp.seconds = int(dt.datetime.now(dt.UTC).timestamp()) - 3600
                stamp.nanos = choices.one((-1, 10**9, -(10**9)))
            return stamp
        kind = self.kind(fd)
        if fd.type == FieldDescriptor.TYPE_BOOL:
            return True
        if fd.enum_type is not None:
            return choices.one(hostile.UNKNOWN_ENUM_NUMBERS)
        if fd.type == FieldDescriptor.TYPE_BYTES:
            return b"\xff" * choices.pick(64)
        if kind.name == "number":
            edges = list(hostile.HOSTILE_DOUBLES)
            if kind.minimum is not None and kind.maximum is not None and (kind.minimum or kind.maximum):
                edges.extend((kind.minimum, kind.maximum, kind.minimum - 1e-9, kind.maximum + 1e-9))
            return choices.one(edges)
        if fd.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
                           FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64):
            low, high = type_range(fd)
            edges_int = [v for v in integer_edges(fd) if low <= v <= high]
            if kind.minimum is not None and kind.maximum is not None and (kind.minimum or kind.maximum):
                edges_int.extend(int(v) for v in (kind.minimum - 1, kind.minimum, kind.maximum, kind.maximum + 1)
                                 if low <= v <= high)
            return choices.one(edges_int)
        if kind.name == "date":
            return choices.one(hostile.DATE_EDGES) if choices.chance(70) else choices.one(hostile.MALFORMED_DATES)
        if kind.name in ("period", "evaluation_period"):
            edges, malformed = hostile.QUARTER_EDGES, hostile.MALFORMED_QUARTERS
            if kind.name == "evaluation_period" and choices.chance(50):
                edges, malformed = hostile.ROLLUP_EDGES, hostile.MALFORMED_ROLLUPS
            quarter = choices.one(edges) if choices.chance(70) else choices.one(malformed)
            return f"periods/{quarter}" if "`periods/" in contract.doc(fd.full_name).text else quarter
        if kind.name == "cursor":
            return choices.one(hostile.HOSTILE_CURSORS)
        realistic = self.clean.realistic(choices, fd, kind) or "x"
        shape = choices.pick(4)
        if shape == 0 and kind.max_length:
            return choices.one(("A" * kind.max_length, "A" * (kind.max_length + 1)))
        if shape <= 1:
            hidden = choices.one(hostile.BIDI + hostile.ZERO_WIDTH + hostile.NONCHARACTERS + hostile.CONTROL)
            at = choices.pick(len(realistic) + 1)
            return realistic[:at] + hidden + realistic[at:]
        if shape == 2:
            return realistic + "x" * hostile.TEN_KB
        return choices.one(hostile.HOSTILE_TEXT)

    def _oversize(self, choices: Choices, call: Call) -> None:
        """Blow one repeated message field up past its documented limit, or to 200 copies of one
        item (a long violation list that must still fit the trailer)."""
        for message in call.messages:
            for fd in message.DESCRIPTOR.fields:
                if not fd.is_repeated or fd.message_type is None or is_map(fd):
                    continue
                items = getattr(message, fd.name)
                if not items:
                    continue
                limit = contract.doc(fd.full_name).max_items
                first = type(items[0])()
                first.CopyFrom(items[0])
                # past the documented limit only with small items: 10,001 copies of a 10 KB item would
                # pass the server's 32 MiB message limit, whose RESOURCE_EXHAUSTED is documented
                small = first.ByteSize() <= 1000
                count = (limit + 1) if limit and small and choices.chance(50) else 200
                del items[:]
                items.extend([first] * count)
                call.notes.append(f"{fd.name}: {count:,} copies of one item")
                return

    def message(self, descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
        """A message of this type, as a strategy (the raw-bytes fuzz starts from one)."""

        @st.composite
        def build(draw: st.DrawFn) -> Message:
            return self.draw_message(draw, descriptor, depth)

        return build()

    # ---- messages --------------------------------------------------------------------------------
    def draw_message(self, draw: st.DrawFn, descriptor: Descriptor, depth: int) -> Message:
        cls = message_class(descriptor)
        fields = [fd for fd in descriptor.fields if not is_map(fd)]
        choices = Choices(draw(blobs(len(fields))))
        message = cls()
        if depth >= MAX_DEPTH:
            return message
        kept = self.pools.exemplars.get(descriptor.full_name)
        if kept and fields and choices.chance(55):
            return self._from_exemplar(draw, choices, message, kept, fields, depth)
        presence = 88 if depth == 0 else 75  # top-level request fields matter most: set them more often
        chosen = {oneof.name: choices.pick(len(oneof.fields) + 1) for oneof in descriptor.oneofs}
        for fd in fields:
            if fd.containing_oneof is not None:
                members = list(fd.containing_oneof.fields)
                if chosen[fd.containing_oneof.name] != members.index(fd):
                    continue
            elif not choices.chance(presence):
                continue
            self._set(draw, choices, message, fd, depth)
        return message

    def _from_exemplar(self, draw: st.DrawFn, choices: Choices, message: Message, kept: list[Message],
                       fields: list[FieldDescriptor], depth: int) -> Message:
        """A message the server returned, with output-only fields cleared, a fresh id half the time,
        and 0-3 fields replaced by generated values."""
        message.CopyFrom(kept[choices.pick(len(kept))])
        for fd in fields:
            if fd.message_type is None and self.kind(fd).output_only and choices.pick(10) < 9:
                message.ClearField(fd.name)
        if choices.chance(50):
            fresh = choices.pick(10**9)
            for fd in fields:
                kind = self.kind(fd).name
                if not fd.is_repeated and fd.message_type is None and kind in FRESH:
                    setattr(message, fd.name, FRESH[kind](fresh))
        for _ in range(choices.one((0, 0, 0, 1, 1, 2, 3)) if self.hostile else 0):
            fd = fields[choices.pick(len(fields))]
            message.ClearField(fd.name)
            self._set(draw, Choices(draw(blobs(1))), message, fd, depth)
        return message

    def _set(self, draw: st.DrawFn, choices: Choices, message: Message, fd: FieldDescriptor, depth: int) -> None:
        if fd.message_type is not None and fd.message_type.full_name != TIMESTAMP:
            if fd.is_repeated:
                items = getattr(message, fd.name)
                for _ in range(choices.one(_COUNTS)):
                    items.add().CopyFrom(self.draw_message(draw, fd.message_type, depth + 1))
            else:
                getattr(message, fd.name).CopyFrom(self.draw_message(draw, fd.message_type, depth + 1))
            return
        if fd.is_repeated:
            values = [self.value(draw, choices, fd) for _ in range(choices.pick(4))]
            if fd.message_type is not None:
                getattr(message, fd.name).extend(values)
            else:
                getattr(message, fd.name).extend(values)
            return
        value = self.value(draw, choices, fd)
        if fd.message_type is not None:
            getattr(message, fd.name).CopyFrom(value)
        else:
            setattr(message, fd.name, value)

    # ---- scalars ---------------------------------------------------------------------------------
    def kind(self, fd: FieldDescriptor) -> Kind:
        found = self._kinds.get(fd.full_name)
        if found is None:
            found = self._kinds[fd.full_name] = kind_of(fd)
        return found

    def value(self, draw: st.DrawFn, choices: Choices, fd: FieldDescriptor) -> Any:
        """One value for a scalar field (or a Timestamp), decoded from `choices`."""
        if fd.message_type is not None:
            return self.timestamp(choices)
        kind = self.kind(fd)
        if fd.type == FieldDescriptor.TYPE_BOOL:
            return choices.chance(50)
        if fd.enum_type is not None:
            known = [v.number for v in fd.enum_type.values]
            named = [n for n in known if n != 0] or known
            if not self.hostile:
                return choices.one(named) if choices.chance(95) else 0
            return choices.one(known) if choices.chance(85) else choices.one(hostile.UNKNOWN_ENUM_NUMBERS)
        if fd.type == FieldDescriptor.TYPE_BYTES:
            return bytes(choices.pick(256) for _ in range(choices.pick(16)))
        if kind.name == "number":
            return self.number(choices, kind)
        if fd.cpp_type in (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
                           FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64):
            return self.integer(choices, fd, kind)
        return self.text(draw, choices, fd, kind)

    def integer(self, choices: Choices, fd: FieldDescriptor, kind: Kind) -> int:
        low, high = type_range(fd)
        if self.hostile and choices.chance(25):
            edges = [v for v in integer_edges(fd) if low <= v <= high]
            if kind.minimum is not None and kind.maximum is not None and (kind.minimum or kind.maximum):
                bounds = (kind.minimum - 1, kind.minimum, kind.maximum, kind.maximum + 1)
                edges.extend(int(v) for v in bounds if low <= v <= high)
            return choices.one(edges)
        if kind.name == "page_size":
            return choices.one((1, 2, 3, 5, 10, 10, 25, 0))  # 0 means 100: a full page costs the server most
        if fd.name.endswith(("_id", "sequence")):
            return self.pools.pick_int(fd.name, choices.pick(10**6), default=1)
        return choices.pick(13)

    def number(self, choices: Choices, kind: Kind) -> float:
        if self.hostile and choices.chance(25):
            edges = list(hostile.HOSTILE_DOUBLES)
            if kind.minimum is not None and kind.maximum is not None and (kind.minimum or kind.maximum):
                edges.extend((kind.minimum, kind.maximum, kind.minimum - 1e-9, kind.maximum * 1.0000001 + 1e-9))
            return choices.one(edges)
        shape = choices.weighted(50, 30, 20)
        if shape == 0:
            return choices.pick(1_000_001) / 1_000_000
        if shape == 1:
            return float(choices.pick(5001))
        return choices.one((0.0, 0.5, 0.6, 1.0))

    def timestamp(self, choices: Choices) -> Message:
        from google.protobuf import timestamp_pb2

        now = int(dt.datetime.now(dt.UTC).timestamp())
        stamp = timestamp_pb2.Timestamp()
        shape = choices.weighted(70, 8, 14, 8) if self.hostile else 0
        if shape == 0:
            stamp.seconds, stamp.nanos = now - 60 - choices.pick(120 * 86400), choices.pick(10**9)
        elif shape == 1:
            stamp.seconds = now + choices.one((60, 299, 400, 86400))
        elif shape == 2:
            stamp.seconds, stamp.nanos = choices.one(hostile.HOSTILE_SECONDS), choices.one((0, 1, 999_999_999))
        else:
            stamp.seconds, stamp.nanos = now - choices.pick(86400), choices.one(hostile.HOSTILE_NANOS)
        return stamp

    def text(self, draw: st.DrawFn, choices: Choices, fd: FieldDescriptor, kind: Kind) -> str:
        if not self.hostile:
            return self.realistic(choices, fd, kind)
        shape = choices.weighted(72, 10, 8, 8, 2)
        if shape == 0:
            return self.realistic(choices, fd, kind)
        if shape == 1:
            return mutate(self.realistic(choices, fd, kind), choices)
        if shape == 2:
            return choices.one(hostile.HOSTILE_TEXT)
        if shape == 3:
            edges: tuple[str, ...] = ()
            if kind.max_length:
                edges = ("A" * kind.max_length, "A" * (kind.max_length + 1), "é" * (kind.max_length + 1))
            specific = (*SPECIFIC_HOSTILE.get(kind.name, ()), *edges)
            return choices.one(specific) if specific else choices.one(hostile.HOSTILE_TEXT)
        return draw(_SAFE_TEXT)

    def realistic(self, choices: Choices, fd: FieldDescriptor, kind: Kind) -> str:
        """A value a real client would send for this kind of field."""
        pools = self.pools
        name = kind.name

        def pool(pool_name: str, default: str = "") -> str:
            return pools.pick(pool_name, choices.pick(10**6), default)

        if name == "resource":
            return self.resource(choices, kind.patterns or (f"{fd.name}s/{{id}}",))
        if name in ("period", "evaluation_period"):
            prefixed = "`periods/" in contract.doc(fd.full_name).text
            quarter = pool("period", "2026-Q3")
            if name == "evaluation_period" and choices.chance(30):  # a half-year or a year
                quarter = pool("rollup", choices.one(("2026", "2026-H1", "2026-H2")))
            return f"periods/{quarter}" if prefixed == choices.chance(80) else quarter
        if name == "date":
            if choices.chance(60):
                return pool("date", "2026-09-30")
            return (pools.today + dt.timedelta(days=choices.pick(431) - 400)).isoformat()
        if name == "unit_code":
            return pool("code", "SNV") if choices.chance(70) else f"FZ-{choices.pick(10**6)}"
        if name == "identity_id":
            return pool("identity_id", "fuzz-victim-0") if choices.chance(60) else f"fz-{choices.pick(10**6)}"
        if name == "indicator":
            return pool("indicator", "dx.online_applications")
        if name == "language":
            return choices.one(("", "vi", "en"))
        if name == "digest":
            return pool("digest", "0" * 64)
        if name == "idempotency_key":
            shape = choices.weighted(40, 35, 25)
            return ("", f"fz-key-{choices.pick(10**9)}", pool("idempotency_key"))[shape]
        if name == "page_token":
            shape = choices.weighted(45, 25, 10, 20)
            own = pool(f"page_token:{fd.containing_type.full_name}")
            token = pool("page_token")
            return ("", own, token, tamper_token(own or token, choices))[shape]
        if name == "cursor":
            shape = choices.weighted(30, 50, 20)
            return ("", pool("cursor", "0"), str(choices.pick(5001)))[shape]
        if name == "filter":
            return make_filter(pools, choices, fd.full_name)
        if name == "rule_path":
            return pool("rule_path", "ruleset.yaml") if choices.chance(80) else choices.one(RULE_PATHS)
        if name == "file_content":
            return pool("rule_content", "ruleset: {}\n")
        if name == "block":
            return pool("block", "departments")
        if name == "subject":
            return f"CN=fz-{choices.pick(10**6)}.hanoi.gov.vn"
        if name == "id":
            own = fd.name if fd.name in ("assignment_id", "outcome_id", "identity_id") else ""
            if own and choices.chance(50):
                return pool(own, "FZ-0")
            return f"FZ-{choices.pick(10**9)}"
        if fd.name == "reporting_system":
            return pool("reporting_system", "hanoi-task-tracker")
        if fd.name == "version":
            return pool("version", "2026.1")
        return choices.one(REALISTIC_TEXT)

    def resource(self, choices: Choices, patterns: Sequence[str]) -> str:
        """A name following one of `patterns`: mostly one the server returned, else one made from the
        pools (an existing unit code in `units/{unit_code}`), sometimes one that does not exist."""
        pattern = choices.one(patterns)
        collection = collection_of(re.sub(r"\{[^}]*\}", "x", pattern))
        roll = choices.pick(10)
        known = self.pools.values(f"name:{collection}")
        if roll < 6 and known:
            return choices.one(known)
        return fill_pattern(pattern, lambda variable: pattern_variable(self.pools, variable, choices.pick(10**6),
                                                         missing=roll == 9))


# ---- shapers: give a call the structure its RPC needs, most of the time ----------------------------
Shaper = Callable[[Choices, Call, Rpc], None]


def _shape_outcome_stream(choices: Choices, call: Call, rpc: Rpc) -> None:
    """StreamOutcomes: chunks, then one commit carrying the true count (75%); the rest is left as
    generated (no commit, a wrong count, a message after the commit)."""
    if not choices.chance(75):
        return
    chunks = [m for m in call.messages if m.WhichOneof("item") == "chunk"]
    total = sum(len(m.chunk.outcomes) for m in chunks)
    commit: Any = rpc.request()
    commit.commit.outcome_count = total
    given = next((m for m in call.messages if m.WhichOneof("item") == "commit"), None)
    if given is not None:
        commit.commit.idempotency_key = given.commit.idempotency_key
    call.messages[:] = [*chunks, commit]


SHAPERS: dict[str, Shaper] = {"StreamOutcomes": _shape_outcome_stream}
