"""Typed reading of YAML nodes that collects issues instead of stopping at the first.

Each `read_*` method returns the value or None after recording an issue that
says what was expected, with an example, at the node's position.
"""

from __future__ import annotations

import difflib
import math
import unicodedata
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from civicscore.domain.text import LANGUAGES
from civicscore.ruleset.errors import RulesetIssue
from civicscore.ruleset.yamltree import Pos, YList, YMap, YNode, YScalar


@dataclass(frozen=True)
class Bilingual:
    """A text in Vietnamese and English (NFC-normalised)."""

    vi: str
    en: str


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ` did you mean `x`?` suffix when a close match exists, else an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" did you mean `{close[0]}`?" if close else ""


def _describe(value: object) -> str:
    if isinstance(value, bool):
        return f"yes/no value {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return f"text {value!r}"
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"


def describe(node: YNode) -> str:
    """What a node holds, for error messages ("a list", "text 'six'")."""
    if isinstance(node, YMap):
        return "a block of keys"
    if isinstance(node, YList):
        return "a list"
    return _describe(node.value)


class Reader:
    """Reads nodes into values, recording an issue for each problem."""

    def __init__(self) -> None:
        self.issues: list[RulesetIssue] = []

    def error(self, pos: Pos, message: str) -> None:
        """Record an issue at `pos`."""
        self.issues.append(pos.issue(message))

    def mapping(
        self,
        node: YNode,
        what: str,
        *,
        required: Collection[str] = (),
        optional: Collection[str] = (),
    ) -> YMap | None:
        """A block of keys with the allowed ones; None when a required key is missing.

        Unknown keys are reported (with a "did you mean") but do not stop reading.
        """
        if not isinstance(node, YMap):
            self.error(node.pos, f"{what} must be a block of `key: value` lines, found {describe(node)}")
            return None
        allowed = [*required, *optional]
        for key, key_pos in node.key_pos.items():
            if key not in allowed:
                hint = did_you_mean(key, allowed) or f" allowed keys: {', '.join(allowed)}."
                self.error(key_pos, f"unknown key `{key}` in {what};{hint}")
        missing = [key for key in required if key not in node.items]
        if missing:
            keys = ", ".join(f"`{key}`" for key in missing)
            self.error(node.pos, f"{what} is missing {keys}; add {'it' if len(missing) == 1 else 'them'}")
            return None
        return node

    def sequence(self, node: YNode, what: str) -> tuple[YNode, ...]:
        """The items of a list (empty after an issue when the node is not a list)."""
        if not isinstance(node, YList):
            self.error(node.pos, f"{what} must be a list of `- ...` items, found {describe(node)}")
            return ()
        return node.items

    def text(self, node: YNode, what: str, *, example: str) -> str | None:
        """Non-empty text (NFC-normalised)."""
        if isinstance(node, YScalar) and isinstance(node.value, str) and node.value.strip():
            return unicodedata.normalize("NFC", node.value.strip())
        found = describe(node)
        self.error(node.pos, f"{what} must be text, e.g. `{example}`, found {found}; put it in quotes")
        return None

    def number(
        self,
        node: YNode,
        what: str,
        *,
        example: str,
        minimum: float | None = None,
        maximum: float | None = None,
        above: float | None = None,
    ) -> float | None:
        """A finite number within bounds, as a float (yes/no values are not numbers)."""
        value = node.value if isinstance(node, YScalar) else None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.error(node.pos, f"{what} must be a number, e.g. `{example}`, found {describe(node)}")
            return None
        if minimum is not None and value < minimum:
            self.error(node.pos, f"{what} must be at least {minimum:g}, found {value:g}")
            return None
        if maximum is not None and value > maximum:
            self.error(node.pos, f"{what} must be at most {maximum:g}, found {value:g}")
            return None
        if above is not None and value <= above:
            self.error(node.pos, f"{what} must be more than {above:g}, found {value:g}")
            return None
        return float(value)

    def integer(self, node: YNode, what: str, *, example: str, minimum: int = 0) -> int | None:
        """A whole number of at least `minimum`."""
        value = node.value if isinstance(node, YScalar) else None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(node.pos, f"{what} must be a whole number, e.g. `{example}`, found {describe(node)}")
            return None
        if value < minimum:
            self.error(node.pos, f"{what} must be at least {minimum}, found {value}")
            return None
        return value

    def bilingual(self, node: YNode, what: str) -> Bilingual | None:
        """`{vi: ..., en: ...}` with both texts present."""
        block = self.mapping(node, what, required=LANGUAGES)
        if block is None:
            return None
        texts = {
            lang: self.text(block.items[lang], f"the {lang} text of {what}", example="...")
            for lang in LANGUAGES
            if lang in block.items
        }
        vi, en = texts.get("vi"), texts.get("en")
        return Bilingual(vi, en) if vi is not None and en is not None else None
