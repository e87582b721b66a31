"""Mistakes the engine would run without complaint: conditions that can never be true,
thresholds outside the values a field can take, and escalation levels whose thresholds are
inverted. Pure functions over resolved tests; the callers turn their answers into issues.

    timeliness < 0.5 and timeliness > 0.8     never true: the two tests exclude each other
    timeliness < 80                           always true: a ratio is between 0 and 1 (80% is 0.8)
    criticism at timeliness < 0.95,           inverted: the higher level fires before the lower
    reminder at timeliness < 0.9
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from civicscore.domain.scoring import ScoringParameters
from civicscore.ruleset.fields import FactField, FieldType
from civicscore.ruleset.model import Effect, FlagDefinition, ParamValue, Rule, RuleTest, literal_text

LOWER_OPS = (">", ">=")  # tests that set a lower bound
UPPER_OPS = ("<", "<=")  # tests that set an upper bound

Located = tuple[int, RuleTest]  # a test and the offset of its text in the condition


@dataclass(frozen=True)
class Range:
    """The values the engine can give a numeric field (None: unbounded on that side)."""

    minimum: float | None
    maximum: float | None
    integer: bool

    def describe(self, name: str) -> str:
        """E.g. "`timeliness` is a ratio between 0 and 1 (80% is written 0.8)"."""
        low, high = self.minimum, self.maximum
        kind = "a whole number " if self.integer else ""
        if low is not None and high is not None:
            if not self.integer and (low, high) == (0, 1):
                return f"`{name}` is a ratio between 0 and 1 (80% is written 0.8)"
            return f"`{name}` is {kind}between {_number(low)} and {_number(high)}"
        if low is not None:
            return f"`{name}` is {kind.rstrip()}{', ' if kind else ''}{_number(low)} or more"
        if high is not None:
            return f"`{name}` is {kind.rstrip()}{', ' if kind else ''}{_number(high)} or less"
        return f"`{name}` can be any number"


def field_range(spec: FactField, limits: Mapping[str, float]) -> Range:
    """The range of a numeric field; `limits` gives maximums that depend on the ruleset (score...)."""
    return Range(spec.minimum, limits.get(spec.name, spec.maximum), spec.type is FieldType.INTEGER)


def ruleset_limits(scoring: ScoringParameters | None, indicators: int) -> dict[str, float]:
    """The maximums of fields that the ruleset's own numbers set."""
    limits = {"dx_indicators": float(indicators)}
    if scoring is not None:
        limits.update(score=scoring.max_score, penalty=scoring.penalty_cap)
    return limits


def always_true(test: RuleTest, span: Range) -> bool:
    """Whether an ordering test holds for every value of the range (e.g. the generated `score >= 0`)."""
    value = _numeric(test.value)
    if value is None:
        return False
    if test.op in LOWER_OPS and span.minimum is not None:
        return value < span.minimum or (test.op == ">=" and value == span.minimum)
    if test.op in UPPER_OPS and span.maximum is not None:
        return value > span.maximum or (test.op == "<=" and value == span.maximum)
    return False


def _number(value: ParamValue | None) -> str:
    return literal_text(value)


def _shown(test: RuleTest) -> str:
    """`timeliness < threshold` (`threshold` is 0.8), or `timeliness < 0.8`."""
    note = f" (`{test.param}` is {literal_text(test.value)})" if test.param else ""
    return f"`{test}`{note}"


def _numeric(value: ParamValue | None) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def threshold_problem(test: RuleTest, spec: FactField, limits: Mapping[str, float]) -> str | None:
    """Why a comparison with a number outside the field's range is always or never true; None if it is not."""
    value = _numeric(test.value)
    if not spec.numeric or value is None or test.op not in (*LOWER_OPS, *UPPER_OPS, "==", "!="):
        return None
    span = field_range(spec, limits)
    below = span.minimum is not None and value < span.minimum
    above = span.maximum is not None and value > span.maximum
    fraction = span.integer and test.op in ("==", "!=") and not value.is_integer()
    if not (below or above or fraction):
        return None
    always = test.op == "!=" or (test.op in UPPER_OPS and above) or (test.op in LOWER_OPS and below)
    verdict = "always true" if always else "never true"
    hint = "use a threshold inside that range"
    if fraction:
        hint = f"compare `{spec.name}` with a whole number"
    elif span.maximum == 1 and not span.integer and above:
        hint = "write a percentage as a ratio, e.g. 0.8 for 80%"
    return f"{_shown(test)} is {verdict}: {span.describe(spec.name)}; {hint}"


@dataclass
class _Bound:
    """One side of the values a branch allows for a field, and the test that set it (None: the range)."""

    value: float
    closed: bool
    source: RuleTest | None


def _tighter_low(bound: _Bound | None, new: _Bound) -> bool:
    return bound is None or new.value > bound.value or (new.value == bound.value and bound.closed and not new.closed)


def _tighter_high(bound: _Bound | None, new: _Bound) -> bool:
    return bound is None or new.value < bound.value or (new.value == bound.value and bound.closed and not new.closed)


def _empty(low: _Bound | None, high: _Bound | None, excluded: set[float], integer: bool) -> bool:
    """Whether no value lies between the bounds (whole numbers only for an integer field)."""
    if low is None or high is None:
        return False
    if integer:
        lowest = math.ceil(low.value) if low.closed else math.floor(low.value) + 1
        highest = math.floor(high.value) if high.closed else math.ceil(high.value) - 1
        return lowest > highest or (lowest == highest and lowest in excluded)
    if low.value != high.value:
        return low.value > high.value
    return not (low.closed and high.closed) or low.value in excluded


def _numeric_conflict(tests: Sequence[Located], span: Range) -> tuple[Located, RuleTest | None] | None:
    """The test after which no number satisfies the tests so far, and the test it clashes with
    (None when it clashes with the field's range)."""
    low = None if span.minimum is None else _Bound(span.minimum, True, None)
    high = None if span.maximum is None else _Bound(span.maximum, True, None)
    excluded: dict[float, RuleTest] = {}
    for offset, test in tests:
        value = _numeric(test.value)
        if value is None:
            continue
        if test.op == "!=":
            excluded[value] = test
        if test.op in (*LOWER_OPS, "==") and _tighter_low(low, new := _Bound(value, test.op != ">", test)):
            low = new
        if test.op in (*UPPER_OPS, "==") and _tighter_high(high, new := _Bound(value, test.op != "<", test)):
            high = new
        if _empty(low, high, set(excluded), span.integer):
            lows = [low.source] if low is not None else []
            highs = [high.source] if high is not None else []
            candidates = highs if test.op in LOWER_OPS else lows if test.op in UPPER_OPS else lows + highs
            if test.op == "==":
                candidates += list(excluded.values())
            return (offset, test), next((t for t in candidates if t is not None and t is not test), None)
    return None


def _text_conflict(tests: Sequence[Located]) -> tuple[Located, RuleTest] | None:
    """Two `==` with different values, or `==` and `!=` with the same value (text and yes/no)."""
    equal: tuple[ParamValue | None, RuleTest] | None = None
    unequal: dict[ParamValue | None, RuleTest] = {}
    for offset, test in tests:
        op, value = test.op, test.value
        if isinstance(value, bool) and op == "!=":
            op, value = "==", not value  # a yes/no field that is not true is false
        if op == "==":
            if equal is not None and equal[0] != value:
                return (offset, test), equal[1]
            if value in unequal:
                return (offset, test), unequal[value]
            equal = (value, test)
        elif op == "!=":
            if equal is not None and equal[0] == value:
                return (offset, test), equal[1]
            unequal[value] = test
    return None


def branch_conflict(
    branch: Sequence[Located], fields: Mapping[str, FactField], limits: Mapping[str, float]
) -> tuple[int, str, str] | None:
    """The first contradiction in one alternative (tests joined by `and`): (offset, what clashes, the fix)."""
    by_field: dict[str, list[Located]] = {}
    for located in sorted(branch, key=lambda item: item[0]):
        by_field.setdefault(located[1].field, []).append(located)
    for name, tests in by_field.items():
        spec = fields[name]
        missing = next((t for _, t in tests if t.op == "missing"), None)
        other = next(((o, t) for o, t in tests if t.op != "missing"), None)
        if missing is not None and other is not None:
            why = f"`{missing}` and {_shown(other[1])} can never both be true: a missing field fails every test"
            return other[0], why, "remove one of the two tests"
        compared = [(o, t) for o, t in tests if t.op not in ("has", "present", "missing")]
        if spec.numeric:
            found = _numeric_conflict(compared, field_range(spec, limits))
            if found is not None:
                (offset, test), clash = found
                if clash is None:
                    span = field_range(spec, limits).describe(name)
                    return offset, f"{_shown(test)} is never true: {span}", "use a threshold inside that range"
                fix = "check the numbers and the direction of `<` / `>`"
                return offset, f"{_shown(clash)} and {_shown(test)} can never both be true", fix
        else:
            text = _text_conflict(compared)
            if text is not None:
                (offset, test), clash = text
                why = f"{_shown(clash)} and {_shown(test)} can never both be true"
                return offset, why, "remove one of the two tests"
    return None


def condition_problems(
    branches: Sequence[Sequence[Located]], fields: Mapping[str, FactField], limits: Mapping[str, float]
) -> list[tuple[int, str]]:
    """Thresholds outside a field's range, and alternatives whose tests exclude each other:
    (offset of the test to fix, message), each once."""
    problems: dict[tuple[int, str], None] = {}
    out_of_range: set[int] = set()
    for branch in branches:
        for offset, test in branch:
            problem = threshold_problem(test, fields[test.field], limits)
            if problem is not None:
                out_of_range.add(offset)
                problems[(offset, problem)] = None
    conflicts = [
        branch_conflict([(o, t) for o, t in branch if o not in out_of_range], fields, limits) for branch in branches
    ]
    never = all(conflict is not None for conflict in conflicts)
    scope = "the condition can never be true" if never else "one alternative of the `or` can never be true"
    for conflict in conflicts:
        if conflict is not None:
            offset, why, fix = conflict
            problems[(offset, f"{why}, so {scope}; {fix}")] = None
    return list(problems)


def _within(inner: RuleTest, outer: RuleTest) -> bool:
    """Whether every value passing `inner` passes `outer` (both bounds on the same side)."""
    a, b = _numeric(inner.value), _numeric(outer.value)
    assert a is not None and b is not None
    if a == b:
        return not (inner.op in ("<=", ">=") and outer.op in ("<", ">"))
    return a > b if inner.op in LOWER_OPS else a < b


def _side(op: str) -> str | None:
    return "lower" if op in LOWER_OPS else "upper" if op in UPPER_OPS else None


def _others(branch: Sequence[RuleTest], left_out: RuleTest) -> set[tuple[str, str, ParamValue | None]]:
    return {(t.field, t.op, t.value) for t in branch if t is not left_out}


def inverted_levels(rules: Sequence[Rule], flags: Sequence[FlagDefinition]) -> list[tuple[Rule, str]]:
    """Flag rules of one kind that differ only in one threshold, where the higher level's threshold
    is the milder one (it fires on values the lower level does not): (the higher rule, message)."""
    levels = {definition.flag: definition for definition in flags}
    singles = [r for r in rules if r.effect is Effect.FLAG and r.flag in levels and len(r.branches) == 1]
    problems: list[tuple[Rule, str]] = []
    for higher in singles:
        high = levels[higher.flag or ""]
        for lower in singles:
            low = levels[lower.flag or ""]
            if low.kind != high.kind or low.level >= high.level or lower.fact != higher.fact:
                continue
            for strict in higher.branches[0]:
                side = _side(strict.op)
                if side is None or _numeric(strict.value) is None:
                    continue
                peers = [t for t in lower.branches[0] if t.field == strict.field and _side(t.op) == side]
                if len(peers) != 1 or _numeric(peers[0].value) is None:
                    continue
                mild = peers[0]
                if _others(higher.branches[0], strict) != _others(lower.branches[0], mild) or _within(strict, mild):
                    continue
                problems.append(
                    (
                        higher,
                        f"the thresholds of `{low.flag}` (level {low.level}) and `{high.flag}` (level {high.level}) "
                        f"are inverted: rule `{higher.rule_id}` raises the higher level when {_shown(strict)}, "
                        f"but rule `{lower.rule_id}` raises the lower level only when {_shown(mild)}; "
                        "a higher level needs the stricter threshold: swap the two numbers",
                    )
                )
    return problems
