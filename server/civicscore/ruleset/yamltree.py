"""YAML parsed into nodes that remember where they stand (file, line, column).

PyYAML's composer gives node marks; we keep them so that every validation
error can point at the exact spot of a rule file, as policy staff see it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml

from civicscore.ruleset.errors import RulesetIssue


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


def _pos(file: str, node: yaml.Node) -> Pos:
    return Pos(file, node.start_mark.line + 1, node.start_mark.column + 1)


def parse_yaml(file: str, text: str) -> tuple[YNode | None, list[RulesetIssue]]:
    """Parse one YAML document; returns its tree (None when empty) and any syntax issues."""
    loader = yaml.SafeLoader(text)
    issues: list[RulesetIssue] = []
    try:
        root = loader.get_single_node()
        return (None if root is None else _convert(file, root, loader, issues)), issues
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = error.problem or error.context or "invalid YAML"
        issues.append(
            RulesetIssue(file, line, column, f"YAML syntax error: {problem}; check indentation, colons and quotes")
        )
        return None, issues
    except yaml.YAMLError as error:
        issues.append(RulesetIssue(file, 1, 1, f"YAML error: {error}"))
        return None, issues
    finally:
        loader.dispose()


def _convert(file: str, node: yaml.Node, loader: yaml.SafeLoader, issues: list[RulesetIssue]) -> YNode:
    pos = _pos(file, node)
    if isinstance(node, yaml.ScalarNode):
        single_line = node.start_mark.line == node.end_mark.line
        return YScalar(pos, loader.construct_object(node), node.style, single_line)
    if isinstance(node, yaml.SequenceNode):
        return YList(pos, tuple(_convert(file, item, loader, issues) for item in node.value))
    assert isinstance(node, yaml.MappingNode)
    result = YMap(pos)
    for key_node, value_node in node.value:
        key_pos = _pos(file, key_node)
        key = loader.construct_object(key_node) if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str):
            issues.append(key_pos.issue(f"a key must be a word such as `weight`, not {key!r}"))
            continue
        if key in result.items:
            first = result.key_pos[key]
            issues.append(
                key_pos.issue(f"`{key}` is written twice in this block (first at line {first.line}); keep one")
            )
            continue
        result.items[key] = _convert(file, value_node, loader, issues)
        result.key_pos[key] = key_pos
    return result
