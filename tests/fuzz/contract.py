"""What the contract's comments say about each field: the strategies read them to choose values.

The generated descriptors carry no comments, so the `.proto` sources are read (a small line parser
that knows the house layout: a `//` comment block above each field). A field's comment decides what
kind of value it gets (a date for `YYYY-MM-DD`, a unit name for `units/{code}`, a filter for
`Terms joined by`), so a new field documented like the others is fuzzed like them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PROTOS = Path(__file__).resolve().parents[2] / "protos"

_MESSAGE = re.compile(r"^\s*message\s+(\w+)\s*\{")
_FIELD = re.compile(r"^\s*(?:repeated\s+|optional\s+)?([\w.<>, ]+?)\s+(\w+)\s*=\s*\d+\s*;")
_BLOCK = re.compile(r"^\s*(?:oneof|enum|service)\s+\w+\s*\{")
_COMMENT = re.compile(r"^\s*//\s?(.*)$")
_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)\s*;")
_FILTER_TERM = re.compile(r"`([a-z_]+)=([^`]*)`")
_LIMIT = re.compile(r"(?:at most|up to|Up to)\s+([\d,]+)")
_LENGTH = re.compile(r"(\d[\d,]*)\s*-\s*(\d[\d,]*)\s+characters")


@dataclass(frozen=True)
class FieldDoc:
    """The comment above one field."""

    text: str

    @property
    def output_only(self) -> bool:
        return "Output only" in self.text

    @property
    def max_items(self) -> int | None:
        """`at most 10,000` / `up to 10,000` in the comment of a repeated field."""
        found = _LIMIT.search(self.text)
        return int(found.group(1).replace(",", "")) if found else None

    @property
    def length(self) -> tuple[int, int] | None:
        """`1-128 characters`."""
        found = _LENGTH.search(self.text)
        return (int(found.group(1).replace(",", "")), int(found.group(2).replace(",", ""))) if found else None


@cache
def field_docs() -> dict[str, FieldDoc]:
    """`package.Message.field` -> its comment, for every field of every proto under protos/."""
    docs: dict[str, FieldDoc] = {}
    for path in sorted(PROTOS.rglob("*.proto")):
        package = ""
        blocks: list[str | None] = []  # open blocks: a message's name, or None for oneof/enum/service
        comment: list[str] = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if found := _COMMENT.match(line):
                comment.append(found.group(1))
                continue
            code = line.split("//", 1)[0]
            if found := _PACKAGE.match(code):
                package = found.group(1)
            if found := _MESSAGE.match(code):
                blocks.append(found.group(1))
            elif _BLOCK.match(code):
                blocks.append(None)
            elif (found := _FIELD.match(code)) and any(blocks):
                messages = [name for name in blocks if name]
                docs[".".join((package, *messages, found.group(2)))] = FieldDoc(" ".join(comment))
            for _ in range(code.count("}")):
                if blocks:
                    blocks.pop()
            comment = []
    return docs


def doc(full_field_name: str) -> FieldDoc:
    """The comment of `civicscore.v1.Outcome.reported_at` (empty when the field is not documented)."""
    return field_docs().get(full_field_name, FieldDoc(""))


@cache
def filter_terms(field: str = "") -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The `name=value` terms a `filter` field's comment documents (every List call's, without
    `field`), with their example values (`area=par|dx` gives both)."""
    terms: dict[str, set[str]] = {}
    for name, field_doc in field_docs().items():
        if not name.endswith(".filter") or (field and name != field):
            continue
        for term, values in _FILTER_TERM.findall(field_doc.text):
            terms.setdefault(term, set()).update(v for v in values.split("|") if v and v != "...")
    return tuple((term, tuple(sorted(values))) for term, values in sorted(terms.items()))
