"""YAML parsed into nodes that remember where they stand (file, line, column).

Rule files and case files are plain data. The tree is built from PyYAML's events, never from
its composed node graph, and refuses at the spot where it is written (file:line:col) what
policy staff never need and what would let a small file grow without bound: anchors and
aliases (a 342-byte file of nested aliases expands to billions of values), merge keys `<<`,
tags (`!!python/object`, `!!set`), more than MAX_DEPTH levels of nesting, more than MAX_NODES
values and more than MAX_FILE_BYTES. Nothing is expanded; a limit stops reading at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from civicscore.ruleset.errors import RulesetIssue
from civicscore.ruleset.limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, size_text


@dataclass(frozen=True)
class Pos:
    """A 1-based position in a rule file."""

    file: str
    line: int
    column: int

    def issue(self, message: str) -> RulesetIssue:
        """An issue at this position."""
        return RulesetIssue(self.file, self.line, self.column, message)

    def shifted(self, columns: int) -> Pos:
        """The position `columns` characters further on the same line."""
        return Pos(self.file, self.line, self.column + columns)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class YScalar:
    """A scalar with its Python value (str, int, float, bool, None, date...)."""

    pos: Pos
    value: object
    style: str | None = None  # None for plain, '"' / "'" for quoted, '|' / '>' for blocks
    single_line: bool = True

    def text_pos(self, offset: int) -> Pos:
        """Position of character `offset` of the scalar's text, exact for one-line scalars."""
        if not self.single_line or self.style in ("|", ">"):
            return self.pos
        return self.pos.shifted(offset + (1 if self.style in ('"', "'") else 0))


@dataclass(frozen=True)
class YList:
    """A YAML sequence."""

    pos: Pos
    items: tuple[YNode, ...]


@dataclass(frozen=True)
class YMap:
    """A YAML mapping with text keys; `key_pos` holds where each key is written."""

    pos: Pos
    items: dict[str, YNode] = field(default_factory=dict)
    key_pos: dict[str, Pos] = field(default_factory=dict)


YNode = YScalar | YList | YMap


_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAX_REFUSALS = 10  # anchors, aliases, merge keys and tags reported per file before reading stops
_KINDS = {"tag:yaml.org,2002:timestamp": "date", "tag:yaml.org,2002:int": "whole number",
          "tag:yaml.org,2002:float": "number"}


class _StopReading(Exception):
    """A limit was reached: the issue is recorded, nothing more of the file is read."""


def _pos(file: str, mark: object) -> Pos:
    marked = _mark(mark)
    return Pos(file, marked.line + 1, marked.column + 1)


def _mark(mark: object) -> yaml.Mark:
    """An event's mark: the pure-Python parser's (the stubs also allow libyaml's, never used here)."""
    assert isinstance(mark, yaml.Mark), "the parser marks every event"
    return mark


def size_issue(file: str, text: str) -> RulesetIssue | None:
    """The issue of a text over MAX_FILE_BYTES (in UTF-8), else None."""
    # A text of more characters than the limit has more bytes too: no need to encode it.
    if len(text) <= MAX_FILE_BYTES and len(text.encode("utf-8")) <= MAX_FILE_BYTES:
        return None
    return RulesetIssue(file, 1, 1, f"{file} is larger than {size_text(MAX_FILE_BYTES)}, the most a rule file or "
                                    "case file may be; nothing in it was read: split it into smaller files")


def parse_yaml(file: str, text: str) -> tuple[YNode | None, list[RulesetIssue]]:
    """Parse one YAML document; returns its tree (None when empty or refused) and any issues.

    A refusal (size, depth, values, anchor, alias, merge key, tag; see the module docstring)
    returns no tree, so that nothing is read into a half-built file.
    """
    too_large = size_issue(file, text)
    if too_large is not None:
        return None, [too_large]
    loader = yaml.SafeLoader(text)
    builder = _TreeBuilder(file, loader)
    try:
        root = builder.document()
        return (None if builder.refused else root), builder.issues
    except _StopReading:
        return None, builder.issues
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = error.problem or error.context or "invalid YAML"
        builder.issues.append(
            RulesetIssue(file, line, column, f"YAML syntax error: {problem}; check indentation, colons and quotes")
        )
        return None, builder.issues
    except yaml.YAMLError as error:
        builder.issues.append(RulesetIssue(file, 1, 1, f"YAML error: {error}"))
        return None, builder.issues
    finally:
        loader.dispose()


@dataclass
class _Open:
    """A list or block of keys being read; a block's key waits here for its value."""

    pos: Pos
    mapping: YMap | None  # None for a list
    items: list[YNode] = field(default_factory=list)
    key: str | None = None
    key_pos: Pos | None = None
    skip_value: bool = False  # the key was refused: its value is read (to move past it), then dropped

    def close(self) -> YNode:
        return self.mapping if self.mapping is not None else YList(self.pos, tuple(self.items))


class _TreeBuilder:
    """Builds one document's tree from parser events, with an explicit stack (no recursion)."""

    def __init__(self, file: str, loader: yaml.SafeLoader) -> None:
        self.file = file
        self.loader = loader
        self.issues: list[RulesetIssue] = []
        self.refused = False
        self._refusals = 0
        self._nodes = 0
        self._open: list[_Open] = []

    def document(self) -> YNode | None:
        """The single document's root (None for an empty stream)."""
        self._next()  # stream start
        if self.loader.check_event(yaml.StreamEndEvent):
            self._next()
            return None
        start = self._next()  # document start
        root = self._root()
        self._next()  # document end
        if not self.loader.check_event(yaml.StreamEndEvent):  # as PyYAML's get_single_node says it
            raise yaml.composer.ComposerError("expected a single document in the stream", _mark(start.start_mark),
                                              "but found another document", _mark(self._next().start_mark))
        self._next()
        return root

    def _next(self) -> yaml.Event:
        event: yaml.Event = self.loader.get_event()  # type: ignore[no-untyped-call]  # untyped in types-PyYAML
        return event

    def _root(self) -> YNode:
        while True:
            event = self._next()
            done: YNode
            if isinstance(event, yaml.CollectionEndEvent):
                done = self._open.pop().close()
            else:
                pos = _pos(self.file, event.start_mark)
                self._count(pos)
                if isinstance(event, yaml.AliasEvent):
                    self._refuse(pos, f"YAML aliases such as `*{event.anchor}` are not allowed in rule and case "
                                      f"files: write the value out in full here instead of `*{event.anchor}`")
                    done = YScalar(pos, None)
                elif isinstance(event, yaml.ScalarEvent):
                    done = self._scalar(event, pos)
                else:
                    assert isinstance(event, yaml.CollectionStartEvent)
                    self._check_anchor_and_tag(event, pos)
                    if len(self._open) >= MAX_DEPTH:
                        self._stop(pos, f"values are nested more than {MAX_DEPTH} levels deep here (rule files "
                                        "need about 6): check the indentation and the brackets `[` `{` above")
                    self._open.append(_Open(pos, YMap(pos) if isinstance(event, yaml.MappingStartEvent) else None))
                    continue
            if not self._open:
                return done
            self._add(self._open[-1], done)

    def _scalar(self, event: yaml.ScalarEvent, pos: Pos) -> YScalar:
        self._check_anchor_and_tag(event, pos)
        tag = event.tag
        if tag is None or tag == "!":
            tag = str(self.loader.resolve(yaml.ScalarNode, event.value, event.implicit))  # type: ignore[no-untyped-call]
        single_line = _mark(event.start_mark).line == _mark(event.end_mark).line
        if tag == _MERGE_TAG:
            self._refuse(pos, "YAML merge keys `<<` are not allowed in rule and case files: write each key out "
                              'in this block (for the text << itself, put it in quotes: "<<")')
            return YScalar(pos, None, event.style, single_line)
        if self.refused:  # only placeholders from here on: nothing is kept
            return YScalar(pos, None, event.style, single_line)
        node = yaml.ScalarNode(tag, event.value, _mark(event.start_mark), _mark(event.end_mark), style=event.style)
        try:
            value = self.loader.construct_object(node)
        except ValueError as error:  # e.g. 2026-02-30, or an integer of thousands of digits
            shown = event.value if len(event.value) <= 40 else f"{event.value[:40]}… ({len(event.value)} characters)"
            kind = _KINDS.get(tag, "value")
            self.issues.append(pos.issue(f"`{shown}` cannot be read as a {kind} ({error}); correct it, or put it "
                                         "in quotes if it is text"))
            return YScalar(pos, event.value, event.style, single_line)
        self.loader.constructed_objects.pop(node, None)  # keep no second copy of every value
        return YScalar(pos, value, event.style, single_line)

    def _add(self, parent: _Open, node: YNode) -> None:
        if parent.mapping is None:
            parent.items.append(node)
            return
        if parent.key_pos is None:  # `node` is a key
            key = node.value if isinstance(node, YScalar) else None
            parent.key_pos = node.pos
            parent.key = key if isinstance(key, str) else None
            parent.skip_value = True
            if not isinstance(key, str):
                if not self.refused:
                    self.issues.append(node.pos.issue(f"a key must be a word such as `weight`, not {key!r}"))
            elif key in parent.mapping.items:
                first = parent.mapping.key_pos[key]
                self.issues.append(
                    node.pos.issue(f"`{key}` is written twice in this block (first at line {first.line}); keep one")
                )
            else:
                parent.skip_value = False
            return
        if not parent.skip_value and parent.key is not None:
            parent.mapping.items[parent.key] = node
            parent.mapping.key_pos[parent.key] = parent.key_pos
        parent.key, parent.key_pos = None, None

    def _check_anchor_and_tag(self, event: yaml.NodeEvent, pos: Pos) -> None:
        if event.anchor is not None:
            self._refuse(pos, f"YAML anchors such as `&{event.anchor}` are not allowed in rule and case files: "
                              f"remove `&{event.anchor}` and write the value out in full wherever "
                              f"`*{event.anchor}` is used")
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!":
            shown = "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag
            self._refuse(pos, f"YAML tags such as `{shown}` are not allowed in rule and case files: remove "
                              f"`{shown}` and write the value itself (put text that looks like a number in quotes)")

    def _count(self, pos: Pos) -> None:
        self._nodes += 1
        if self._nodes > MAX_NODES:
            self._stop(pos, f"the file has more than {MAX_NODES:,} values (keys, list items and texts), the most "
                            "a rule file or case file may have: split it into smaller files")

    def _refuse(self, pos: Pos, message: str) -> None:
        """Record a refusal and read on (to report the others), keeping nothing; stop after a few."""
        self.refused = True
        self._refusals += 1
        if self._refusals == _MAX_REFUSALS:
            message += f" (reading this file stopped after {_MAX_REFUSALS} such problems; there may be more)"
        self.issues.append(pos.issue(message))
        if self._refusals >= _MAX_REFUSALS:
            raise _StopReading

    def _stop(self, pos: Pos, message: str) -> None:
        self.refused = True
        self.issues.append(pos.issue(message))
        raise _StopReading
