"""Realistic values, harvested from the running server, so that generated calls reach the deeper logic.

A fuzzer that only sends garbage tests the first check of every RPC. These pools hold what a real
city system would send: existing unit codes, assignment ids, recommendation names, quarters with
data, indicator codes of the ruleset in force, page tokens the server issued. They are filled at
start-up from List calls and refreshed from every reply (any resource name or page token a reply
carries joins its pool), so later calls can use what earlier calls created.

Strategies draw an index and take it modulo the pool's size at call time: the pools may grow while
hypothesis runs, and a derandomised run still draws the same indices.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from collections.abc import Iterable

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

_RESOURCE = re.compile(r"^[a-z]+/[^\s]+$")
MAX_POOL = 400  # per pool: enough variety, bounded memory over a long `make fuzz`
MAX_EXEMPLARS = 40
HARVEST_ITEMS = 8  # items of a repeated field looked at per reply


class Pools:
    """Named lists of realistic values, and exemplar messages by type."""

    def __init__(self, today: dt.date) -> None:
        self.today = today
        self._values: dict[str, list[str]] = defaultdict(list)
        self._seen: dict[str, set[str]] = defaultdict(set)
        self._ints: dict[str, list[int]] = defaultdict(list)
        self.exemplars: dict[str, list[Message]] = defaultdict(list)
        self._rotations: Counter[str] = Counter()
        self.protected_identities: set[str] = set()  # never revoked: the fuzzer's own and the bootstrap admin

    # -- values -----------------------------------------------------------------------------------
    def add(self, pool: str, *values: str) -> None:
        seen = self._seen[pool]
        for value in values:
            if value and value not in seen and len(self._values[pool]) < MAX_POOL:
                seen.add(value)
                self._values[pool].append(value)

    def add_int(self, pool: str, value: int) -> None:
        if value not in self._ints[pool] and len(self._ints[pool]) < MAX_POOL:
            self._ints[pool].append(value)

    def pick(self, pool: str, index: int, default: str = "") -> str:
        values = self._values.get(pool)
        return values[index % len(values)] if values else default

    def pick_int(self, pool: str, index: int, default: int = 0) -> int:
        values = self._ints.get(pool)
        return values[index % len(values)] if values else default

    def values(self, pool: str) -> list[str]:
        return list(self._values.get(pool, ()))

    def names(self) -> list[str]:
        return sorted(self._values)

    def snapshot(self) -> Pools:
        """A copy that later harvests do not change."""
        copy = Pools(self.today)
        for name, values in self._values.items():
            copy._values[name] = list(values)
            copy._seen[name] = set(values)
        for name, numbers in self._ints.items():
            copy._ints[name] = list(numbers)
        for name, messages in self.exemplars.items():
            copy.exemplars[name] = list(messages)
        copy.protected_identities = set(self.protected_identities)
        return copy

    # -- harvesting replies -----------------------------------------------------------------------
    def harvest(self, message: Message, items: int = HARVEST_ITEMS) -> None:
        """Add every resource name, page token, cursor and stored id in a reply to its pool, and keep
        messages as exemplars of their type; of a repeated field, the first `items` (the set-up reads
        whole pages, a fuzzed call's reply a sample)."""
        for field, value in message.ListFields():
            if field.message_type is not None:
                if field.message_type.GetOptions().map_entry:
                    continue
                # a sample of a page is enough, and harvesting whole pages costs more than the call
                children: Iterable[Message] = value[:items] if field.is_repeated else (value,)
                for item in children:
                    self._exemplar(item)
                    self.harvest(item, items)
            elif field.type == FieldDescriptor.TYPE_STRING:
                strings = value[:items] if field.is_repeated else (value,)
                for text in strings:
                    self._string(field.name, text)
            elif field.name.endswith("_id") and isinstance(value, int):
                self.add_int(field.name, value)

    def _string(self, field_name: str, text: str) -> None:
        if field_name == "next_page_token":
            self.add("page_token", text)
        elif field_name == "cursor":
            self.add("cursor", text)
        elif _RESOURCE.match(text):
            self.add(f"name:{collection_of(text)}", text)
        if field_name in ("period", "period_id", "in_force_from", "from_period") and text:
            bare = text.removeprefix("periods/")
            self.add("period" if "-Q" in bare else "rollup", bare)  # quarters; half-years and years
        elif field_name in ("code", "indicator", "block", "flag", "grade", "digest", "reporting_system",
                            "assignment_id", "outcome_id", "identity_id", "certificate_subject", "version"):
            self.add(field_name, text)

    def add_request(self, request: Message, response: Message) -> None:
        """Keep a request the server accepted as an exemplar of its type (generation varies it), and
        when the reply has a next page, the same request asking for it: real paging, not a token
        issued for another filter."""
        self._exemplar(request, rotate=True)
        token = getattr(response, "next_page_token", "")
        if token and "page_token" in request.DESCRIPTOR.fields_by_name:
            follow = type(request)()
            follow.CopyFrom(request)
            follow.page_token = token  # type: ignore[attr-defined]
            self._exemplar(follow, rotate=True)

    def _exemplar(self, message: Message, *, rotate: bool = False) -> None:
        kept = self.exemplars[message.DESCRIPTOR.full_name]
        if len(kept) < MAX_EXEMPLARS or rotate:
            copy = type(message)()
            copy.CopyFrom(message)
            if len(kept) < MAX_EXEMPLARS:
                kept.append(copy)
            else:  # accepted requests keep coming: the newest replace the oldest, in turn
                self._rotations[message.DESCRIPTOR.full_name] += 1
                kept[self._rotations[message.DESCRIPTOR.full_name] % MAX_EXEMPLARS] = copy


def collection_of(name: str) -> str:
    """The collection a resource name belongs to: its last collection segment.

    `units/SNV` -> units; `periods/2026-Q3/evaluations/SNV` -> evaluations;
    `identities/x/credentials/y` -> credentials.
    """
    parts = name.split("/")
    if len(parts) % 2 == 0:
        return parts[-2]
    return parts[0] if len(parts) == 1 else parts[-1]
