"""Bilingual text: number formatting for vi/en and `{placeholder}` filling.

Vietnamese writes numbers with a decimal comma and dot thousands ("1.234,5",
"72,5%"); English with a decimal point and comma thousands ("1,234.5", "72.5%").
Templates are plain text with `{name}` or `{name:%}` placeholders (`{{`/`}}`
for literal braces); they come from rule files, so errors name the position.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

Language = Literal["vi", "en"]
LANGUAGES: tuple[Language, ...] = ("vi", "en")

# Shown where a template names a value the fact does not have (e.g. no score).
MISSING_VALUE = "—"

_SEPARATORS: dict[Language, tuple[str, str]] = {"vi": (",", "."), "en": (".", ",")}
_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
_SPECS = ("", "%")


class TemplateError(ValueError):
    """A malformed template; `offset` is the character index of the problem."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True)
class Placeholder:
    """One `{name:spec}` occurrence: spec is "" (plain) or "%" (ratio shown as percent)."""

    name: str
    spec: str
    offset: int


def round_half_away(value: float, places: int = 2) -> float:
    """Round half away from zero on the shortest decimal form (2.675 -> 2.68, not 2.67)."""
    quantum = Decimal(1).scaleb(-places)
    return float(Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP))


def format_number(value: float, lang: Language, *, max_decimals: int = 2) -> str:
    """Format a number with up to `max_decimals` decimals, trailing zeros dropped."""
    rounded = Decimal(repr(round_half_away(value, max_decimals)))
    sign = "-" if rounded < 0 else ""
    text = f"{abs(rounded):.{max_decimals}f}"
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0")
    decimal_mark, thousands = _SEPARATORS[lang]
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    body = thousands.join(groups)
    if sign and body == "0" and not fraction:
        sign = ""
    return f"{sign}{body}{decimal_mark}{fraction}" if fraction else f"{sign}{body}"


def format_percent(ratio: float, lang: Language) -> str:
    """Format a ratio (0.725) as a percentage ("72,5%" in vi, "72.5%" in en)."""
    return format_number(ratio * 100, lang) + "%"


@functools.lru_cache(maxsize=4096)
def _segments(template: str) -> tuple[str | Placeholder, ...]:
    """Split a template into literal text and placeholders; raise TemplateError on bad syntax.

    Cached: a worker fills the same few rule reasons for every unit.
    """
    segments: list[str | Placeholder] = []
    literal: list[str] = []
    i = 0
    while i < len(template):
        char = template[i]
        if char in "{}" and template.startswith(char * 2, i):
            literal.append(char)
            i += 2
        elif char == "}":
            raise TemplateError("a lone '}' (write '}}' for a literal brace)", i)
        elif char == "{":
            end = template.find("}", i)
            if end < 0:
                raise TemplateError("'{' is never closed (write '{{' for a literal brace)", i)
            name, _, spec = template[i + 1 : end].partition(":")
            name = name.strip()
            if not _NAME.match(name):
                raise TemplateError(f"{{{name}}} is not a placeholder name (use a-z, 0-9 and _)", i)
            if spec not in _SPECS:
                raise TemplateError(f"unknown format ':{spec}' in {{{name}}}; use {{{name}}} or {{{name}:%}}", i)
            segments.append("".join(literal))
            literal.clear()
            segments.append(Placeholder(name, spec, i))
            i = end + 1
        else:
            literal.append(char)
            i += 1
    segments.append("".join(literal))
    return tuple(segments)


def template_segments(template: str) -> tuple[str | Placeholder, ...]:
    """Literal text and placeholders of `template`, in order; raise TemplateError on bad syntax."""
    return _segments(template)


def parse_template(template: str) -> list[Placeholder]:
    """List the placeholders of `template`; raise TemplateError on bad syntax."""
    return [s for s in _segments(template) if isinstance(s, Placeholder)]


def format_value(value: object, spec: str, lang: Language) -> str:
    """Render one value for a placeholder: numbers localised, lists comma-joined."""
    if type(value) is str:  # the common cases first
        return value
    if type(value) is int or type(value) is float:
        return _number_text(value, spec == "%", lang)
    if value is None:
        return MISSING_VALUE
    if isinstance(value, bool):
        return {"vi": ("có", "không"), "en": ("yes", "no")}[lang][0 if value else 1]
    if isinstance(value, (int, float)):
        return _number_text(value, spec == "%", lang)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(format_value(v, spec, lang) for v in value) or MISSING_VALUE
    return str(value)


@functools.lru_cache(maxsize=8192, typed=True)
def _number_text(value: float, percent: bool, lang: Language) -> str:
    """A number as a placeholder shows it; cached: reasons repeat the same few numbers."""
    return format_percent(value, lang) if percent else format_number(value, lang)


def fill_template(template: str, values: Mapping[str, object], lang: Language) -> str:
    """Replace each placeholder with its formatted value; unknown names show as missing."""
    return "".join(
        [s if isinstance(s, str) else format_value(values.get(s.name), s.spec, lang) for s in _segments(template)]
    )
