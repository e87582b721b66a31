"""Operations on request messages the harness needs: copying, rendering a request in one line for a
report, shrinking a failing request, and keeping revocations away from protected identities."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from tests.fuzz.catalog import Rpc

_NOT_ID_CHARS = re.compile(r"[^a-z0-9.-]")


def copy_message(message: Message) -> Message:
    copy = type(message)()
    copy.CopyFrom(message)
    return copy


def idempotency_keys(message: Message) -> Iterator[str]:
    for fd, value in message.ListFields():
        if fd.name == "idempotency_key" and value:
            yield value
        elif fd.message_type is not None and not fd.is_repeated:
            yield from idempotency_keys(value)


def skeleton(text: str) -> str:
    """What an identity id in `text` looks like once case, invisible and compatibility characters are
    gone: what a lenient server might resolve it to."""
    return _NOT_ID_CHARS.sub("", unicodedata.normalize("NFKC", text).lower())


def replace_protected(message: Message, protected: set[str]) -> None:
    skeletons = {skeleton(p) for p in protected}
    for fd, value in message.ListFields():
        if fd.type == FieldDescriptor.TYPE_STRING and not fd.is_repeated:
            if any(s in skeleton(value) for s in skeletons):
                setattr(message, fd.name, value.replace("fuzzer", "fuzz-victim").replace("bootstrap", "victim"))
                if any(s in skeleton(getattr(message, fd.name)) for s in skeletons):
                    setattr(message, fd.name, "identities/fuzz-victim-0")
        elif fd.type == FieldDescriptor.TYPE_STRING:
            kept = [v for v in value if not any(s in skeleton(v) for s in skeletons)]
            del value[:]
            value.extend(kept)
        elif fd.message_type is not None and not fd.is_repeated:
            replace_protected(value, protected)
        elif fd.message_type is not None and not fd.message_type.GetOptions().map_entry:
            for item in value:
                replace_protected(item, protected)


def shrink_message(message: Message, still: Callable[[Message], bool]) -> Message:
    """Drop repeated items and clear fields one at a time while `still(candidate)` holds."""
    current = copy_message(message)
    for fd, value in list(current.ListFields()):
        if fd.is_repeated and len(value) > 1:
            for keep in range(min(len(value), 4)):
                candidate = copy_message(current)
                items = getattr(candidate, fd.name)
                chosen = copy_message(items[keep]) if fd.message_type is not None else items[keep]
                del items[:]
                if fd.message_type is not None:
                    items.add().CopyFrom(chosen)
                else:
                    items.append(chosen)
                if still(candidate):
                    current = candidate
                    break
    for fd, _value in list(current.ListFields()):
        candidate = copy_message(current)
        candidate.ClearField(fd.name)
        if still(candidate):
            current = candidate
    for fd, value in list(current.ListFields()):  # one level down: inside the items that remain
        if fd.message_type is None or fd.message_type.full_name == "google.protobuf.Timestamp":
            continue
        items = value if fd.is_repeated else [value]
        for position, item in enumerate(items):
            for sub, _sub_value in list(item.ListFields()):
                candidate = copy_message(current)
                target = getattr(candidate, fd.name)
                target_item = target[position] if fd.is_repeated else target
                target_item.ClearField(sub.name)
                if still(candidate):
                    current = candidate
    return current


def render(rpc: Rpc, payloads: list[Any], *, raw: bool) -> str:
    """A request in one line: `path=value` for every set field, long values cut with their length."""
    if raw:
        return " | ".join(repr(p[:80]) + (f"…({len(p):,} bytes)" if len(p) > 80 else "") for p in payloads)
    parts = [" ".join(flatten(m)) or "(empty)" for m in payloads]
    return " | ".join(parts) if rpc.client_streaming else (parts[0] if parts else "(empty)")


def flatten(message: Message, prefix: str = "") -> Iterator[str]:
    for fd, value in message.ListFields():
        path = f"{prefix}{fd.name}"
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            continue
        if fd.is_repeated:
            if len(value) > 3:
                yield f"{path}=[{len(value):,} items]"
            for i, item in enumerate(list(value)[:3]):
                if fd.message_type is not None:
                    yield from flatten(item, f"{path}[{i}].")
                else:
                    yield f"{path}[{i}]={short_repr(item)}"
        elif fd.message_type is not None:
            if fd.message_type.full_name == "google.protobuf.Timestamp":
                yield f"{path}={{seconds: {value.seconds}, nanos: {value.nanos}}}"
            else:
                yield from flatten(value, f"{path}.")
        elif fd.enum_type is not None:
            known = fd.enum_type.values_by_number.get(value)
            yield f"{path}={known.name if known else value}"
        else:
            yield f"{path}={short_repr(value)}"


def short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 70 else f"{text[:60]}…({len(str(value)):,} chars)"
