"""Rule conditions: a small safe language, parsed by hand (never eval'd).

    condition  := clause ("or" clause)*
    clause     := term ("and" term)*
    term       := "(" condition ")" | "not" FIELD | FIELD
                | FIELD ("<" | "<=" | ">" | ">=" | "==" | "!=") value
                | FIELD "has" TEXT | FIELD "is" ("missing" | "present")
    value      := NUMBER | TEXT | "true" | "false" | PARAMETER

Examples: `timeliness < threshold and due >= 5`, `not under_review`,
`previous_flags has "criticism"`. Parsing gives a tree; `check` resolves names
against the fact fields and rule parameters; `to_dnf` flattens it into the
alternatives durable_rules expands it into anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from civicscore.ruleset.limits import MAX_CONDITION_CHARS, MAX_CONDITION_DEPTH

KEYWORDS = frozenset({"and", "or", "not", "has", "is", "missing", "present", "true", "false"})
ORDERING_OPS = ("<", "<=", ">", ">=")
OPS = (*ORDERING_OPS, "==", "!=")

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<text>"[^"]*"|'[^']*')
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op><=|>=|==|!=|<|>)
      | (?P<paren>[()])""",
    re.VERBOSE,
)
_MISTAKES = {
    "=": "use `==` to test equality",
    "&": "use `and`",
    "|": "use `or`",
    "!": "use `not` before a yes/no field, or `!=`",
    "%": "write a ratio as a decimal: 80% is 0.8",
    ".": "write decimals with a leading digit and a point, e.g. 0.8",
    ",": "write decimals with a point, e.g. 0.8",
}


class ConditionSyntaxError(ValueError):
    """A condition that does not parse; `offset` is the character index of the problem."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Token:
    """A lexical token; `offset` is its index in the condition text."""

    kind: str  # number | text | name | op | paren | end
    text: str
    offset: int


@dataclass(frozen=True)
class Value:
    """A literal, or a parameter name to resolve (`param` set, `literal` None)."""

    literal: float | int | str | bool | None
    param: str | None
    offset: int


@dataclass(frozen=True)
class Compare:
    """`field op value`, e.g. `timeliness < threshold`."""

    field: str
    op: str
    value: Value
    offset: int


@dataclass(frozen=True)
class Truth:
    """A bare yes/no field (`under_review`) or its negation (`not under_review`)."""

    field: str
    expected: bool
    offset: int


@dataclass(frozen=True)
class Has:
    """`field has value`: a list field contains the value."""

    field: str
    value: Value
    offset: int


@dataclass(frozen=True)
class Presence:
    """`field is missing` / `field is present`."""

    field: str
    present: bool
    offset: int


@dataclass(frozen=True)
class AllOf:
    """Tests joined with `and`."""

    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    """Tests joined with `or`."""

    parts: tuple[Condition, ...]


Test = Compare | Truth | Has | Presence
Condition = Test | AllOf | AnyOf


def tokenize(text: str) -> list[Token]:
    """Split a condition into tokens; anything outside the language is an error."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            char = text[pos]
            hint = _MISTAKES.get(char, "conditions use field names, numbers, quoted text, comparisons, and/or/not")
            if char in "\"'":
                hint = "this quote is never closed"
            raise ConditionSyntaxError(f"unexpected `{char}`: {hint}", pos)
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


class _Parser:
    """Recursive descent over the grammar in the module docstring, one method per rule."""

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0  # parentheses open here

    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def at_word(self, word: str) -> bool:
        return self.token.kind == "name" and self.token.text == word

    def condition(self) -> Condition:
        parts = [self.clause()]
        while self.at_word("or"):
            self.take()
            parts.append(self.clause())
        return parts[0] if len(parts) == 1 else AnyOf(tuple(parts))

    def clause(self) -> Condition:
        parts = [self.term()]
        while self.at_word("and"):
            self.take()
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else AllOf(tuple(parts))

    def term(self) -> Condition:
        token = self.take()
        if token.kind == "paren" and token.text == "(":
            if self.depth >= MAX_CONDITION_DEPTH:  # the parser and every pass after it recurse once per level
                raise ConditionSyntaxError(f"parentheses nested more than {MAX_CONDITION_DEPTH} deep here; a "
                                           "condition needs two or three levels: simplify it", token.offset)
            self.depth += 1
            inner = self.condition()
            self.depth -= 1
            if not (self.token.kind == "paren" and self.token.text == ")"):
                raise ConditionSyntaxError("expected `)` to close the `(`", self.token.offset)
            self.take()
            return inner
        if token.kind == "name" and token.text == "not":
            field = self.field_name(self.take())
            return Truth(field.text, False, field.offset)
        field = self.field_name(token)
        nxt = self.token
        if nxt.kind == "op":
            self.take()
            return Compare(field.text, nxt.text, self.value(), field.offset)
        if self.at_word("has"):
            self.take()
            return Has(field.text, self.value(), field.offset)
        if self.at_word("is"):
            self.take()
            word = self.take()
            if word.text not in ("missing", "present"):
                raise ConditionSyntaxError("write `is missing` or `is present`", word.offset)
            return Presence(field.text, word.text == "present", field.offset)
        return Truth(field.text, True, field.offset)

    def field_name(self, token: Token) -> Token:
        if token.kind != "name" or token.text in KEYWORDS:
            found = f"`{token.text}`" if token.text else "the end of the condition"
            raise ConditionSyntaxError(f"expected a field name, found {found}", token.offset)
        return token

    def value(self) -> Value:
        token = self.take()
        if token.kind == "number":
            try:
                number = float(token.text) if "." in token.text else int(token.text)
                float(number)  # every later check compares it as a float
            except (ValueError, OverflowError):  # hundreds of digits
                raise ConditionSyntaxError(f"this number has {len(token.text)} characters; write a number of "
                                           "reasonable size", token.offset) from None
            return Value(number, None, token.offset)
        if token.kind == "text":
            return Value(token.text[1:-1], None, token.offset)
        if token.kind == "name" and token.text in ("true", "false"):
            return Value(token.text == "true", None, token.offset)
        if token.kind == "name" and token.text not in KEYWORDS:
            return Value(None, token.text, token.offset)
        found = f"`{token.text}`" if token.text else "the end of the condition"
        raise ConditionSyntaxError(
            f"expected a number, quoted text, true/false or a parameter name, found {found}", token.offset
        )


def parse_condition(text: str) -> Condition:
    """Parse a condition; raise ConditionSyntaxError with the offset of the problem."""
    if len(text) > MAX_CONDITION_CHARS:  # every pass over a condition stays small and quick
        raise ConditionSyntaxError(f"the condition is {len(text):,} characters long, more than the "
                                   f"{MAX_CONDITION_CHARS:,} a condition may have: split the rule into several",
                                   MAX_CONDITION_CHARS)
    parser = _Parser(text)
    if parser.token.kind == "end":
        raise ConditionSyntaxError("the condition is empty", 0)
    result = parser.condition()
    if parser.token.kind != "end":
        tok = parser.token
        raise ConditionSyntaxError(f"unexpected `{tok.text}` here; join tests with `and` / `or`", tok.offset)
    return result


def tests_of(condition: Condition) -> list[Test]:
    """Every test in the condition, left to right."""
    if isinstance(condition, AllOf | AnyOf):
        return [test for part in condition.parts for test in tests_of(part)]
    return [condition]


def to_dnf(condition: Condition, limit: int) -> list[tuple[Test, ...]] | None:
    """Alternatives (or of ands) of the condition; None when there would be more than `limit`."""
    if isinstance(condition, AnyOf):
        branches: list[tuple[Test, ...]] = []
        for part in condition.parts:
            sub = to_dnf(part, limit)
            if sub is None or len(branches) + len(sub) > limit:
                return None
            branches.extend(sub)
        return branches
    if isinstance(condition, AllOf):
        product: list[tuple[Test, ...]] = [()]
        for part in condition.parts:
            sub = to_dnf(part, limit)
            if sub is None or len(product) * len(sub) > limit:
                return None
            product = [left + right for left in product for right in sub]
        return product
    return [(condition,)]
