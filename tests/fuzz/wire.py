"""Malformed protobuf wire bytes, for the raw-bytes fuzz.

A generated client cannot send a string field holding invalid UTF-8, a truncated varint or a field
with the wrong wire type; a hostile or buggy client can. These strategies take a well-formed request
and break it in the ways a protobuf parser must refuse (or tolerate), plus plain random bytes; the
harness sends them through a generic channel call with identity serializers.
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from tests.fuzz.values import tag, varint

INVALID_UTF8 = (b"\xff", b"\xfe\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80", b"a\xe2\x82",
                b"\xf8\x88\x80\x80\x80")


def _string_fields(descriptor: Descriptor) -> list[FieldDescriptor]:
    return [fd for fd in descriptor.fields if fd.type == FieldDescriptor.TYPE_STRING]


def _any_field_numbers(descriptor: Descriptor) -> list[int]:
    return [fd.number for fd in descriptor.fields] or [1]


def malformed(descriptor: Descriptor, valid: st.SearchStrategy[Message]) -> st.SearchStrategy[tuple[str, bytes]]:
    """(what was done, the bytes) for a request of type `descriptor`."""
    strings = _string_fields(descriptor)
    numbers = _any_field_numbers(descriptor)

    @st.composite
    def build(draw: st.DrawFn) -> tuple[str, bytes]:
        base = draw(valid).SerializeToString()
        choice = draw(st.integers(0, 10))
        if choice <= 2 and strings:
            fd = strings[draw(st.integers(0, len(strings) - 1))]
            bad = draw(st.sampled_from(INVALID_UTF8))
            return f"invalid UTF-8 in {fd.name}", base + tag(fd.number, 2) + varint(len(bad)) + bad
        if choice == 3:
            number = draw(st.sampled_from(numbers))
            return "truncated varint", base + tag(number, 0) + b"\xff\xff"
        if choice == 4:
            fd_number = draw(st.sampled_from(numbers))
            wire_type = draw(st.sampled_from((0, 1, 2, 5)))
            payload = {0: b"\x01", 1: b"\x00" * 8, 2: b"\x01x", 5: b"\x00" * 4}[wire_type]
            return f"field {fd_number} with wire type {wire_type}", base + tag(fd_number, wire_type) + payload
        if choice == 5:
            number = draw(st.sampled_from(numbers))
            return "length past the end", base + tag(number, 2) + varint(1 << 20) + b"abc"
        if choice == 6:
            return "group wire types", base + tag(draw(st.sampled_from(numbers)), 3) + tag(99, 4)
        if choice == 7:
            return "field number 0", base + b"\x00\x01"
        cut = draw(st.integers(0, 2**16))  # drawn whatever the choice: the draws may not depend on the pools
        if choice == 8 and base:
            return "truncated message", base[: cut % len(base)]
        if choice == 9:
            return "11-byte varint", base + tag(draw(st.sampled_from(numbers)), 0) + b"\xff" * 10 + b"\x01"
        return "random bytes", draw(st.binary(max_size=64))

    return build()
