"""Rules to durable_rules definitions (plain data), rejecting what durable_rules cannot run.

Every fact carries a `tag` (fact type and stage, e.g. `unit.flags`) and every
pattern tests it first, so a rule only sees the facts of its stage. The limits
below were measured on durable_rules 2.0.28 (see docs/notes on durable_rules):
- more than 64 rule alternatives matching one fact: every assert fails (303);
- 512 distinct `==` values under one node: set_rulesets hangs holding the GIL;
- a pattern with only `$nex` tests matches the engine's state fact, looping;
- more than 16 facts joined in one rule: error 304;
- a number written with an exponent but no decimal point (`2e-05`, `1e+16`: how JSON writes a float
  under 0.0001 or from 10^16 up) makes `create_ruleset` fail with error 204.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from civicscore.ruleset.errors import RulesetIssue
from civicscore.ruleset.model import CompiledRuleset, ParamValue, Rule, RuleTest
from civicscore.ruleset.yamltree import Pos

INIT_RULE = "_init"
INIT_TAG = "init"
MAX_MATCHING = 64
MAX_EQUALITY_VALUES = 256  # half the measured 512, for margin
MAX_JOIN = 16

_OPERATORS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "!=": "$neq"}
# The fact durable_rules keeps per session; a pattern must never match it.
_STATE_FACT: dict[str, Any] = {"sid": "1", "id": "sid-1", "$s": 1}


def compile_test(test: RuleTest) -> dict[str, Any]:
    """One test as a durable_rules pattern expression."""
    if test.op == "==":
        return {test.field: test.value}
    if test.op == "has":
        return {"$iany": {test.field: {"$i": test.value}}}
    if test.op in ("present", "missing"):
        return {"$ex" if test.op == "present" else "$nex": {test.field: 1}}
    return {_OPERATORS[test.op]: {test.field: test.value}}


def compile_pattern(rule: Rule) -> dict[str, Any]:
    """The rule's single-fact pattern: its tag, then its alternatives."""
    branches = [[compile_test(test) for test in branch] for branch in rule.branches]
    tests: list[dict[str, Any]] = [{"tag": rule.tag}]
    if len(branches) == 1:
        tests.extend(branches[0])
    else:
        tests.append({"$or": [b[0] if len(b) == 1 else {"$and": b} for b in branches]})
    return {"$and": tests}


def compile_rules(
    name: str, rules: Sequence[Rule], positions: Mapping[str, Pos]
) -> tuple[CompiledRuleset | None, list[RulesetIssue]]:
    """Compile validated rules; issues name the rule that crosses a durable_rules limit."""
    rules_def: dict[str, Any] = {INIT_RULE: {"all": [{"m": {"tag": INIT_TAG}}], "run": INIT_RULE}}
    for rule in rules:
        rules_def[rule.rule_id] = {"all": [{"m": compile_pattern(rule)}], "run": rule.rule_id}
    issues = (_check_matching(rules, positions) + _check_equality_values(rules, positions)
              + _check_numbers(rules, positions))
    for rule_name, problem in check_definition(rules_def):
        pos = positions.get(rule_name) or next(iter(positions.values()))
        issues.append(pos.issue(f"rule `{rule_name}` {problem}"))
    if issues:
        return None, issues
    compiled = CompiledRuleset(
        name=name,
        definition={name: rules_def},
        init_rule=INIT_RULE,
        init_tag=INIT_TAG,
        action_names=tuple(rules_def),
    )
    return compiled, []


def matching_bound(branches: Sequence[tuple[RuleTest, ...]]) -> int:
    """An upper bound of how many of these alternatives one fact can match at once.

    Alternatives that require different `==` values of one field exclude each
    other; the bound picks the field that splits them best.
    """
    best = len(branches)
    fields = {t.field for branch in branches for t in branch if t.op == "=="}
    for field in fields:
        by_value: Counter[tuple[str, ParamValue | None]] = Counter()
        free = 0
        for branch in branches:
            values = {(type(t.value).__name__, t.value) for t in branch if t.op == "==" and t.field == field}
            if len(values) == 1:
                by_value[next(iter(values))] += 1
            elif not values:
                free += 1
        best = min(best, free + max(by_value.values(), default=0))
    return best


def _check_matching(rules: Sequence[Rule], positions: Mapping[str, Pos]) -> list[RulesetIssue]:
    by_tag: dict[str, list[tuple[RuleTest, ...]]] = defaultdict(list)
    issues = []
    for rule in rules:
        branches = by_tag[rule.tag]
        before = matching_bound(branches)
        branches.extend(rule.branches)
        bound = matching_bound(branches)
        if bound > MAX_MATCHING >= before:
            issues.append(
                positions[rule.rule_id].issue(
                    f"with rule `{rule.rule_id}`, up to {bound} rule alternatives (each `or` counts) "
                    f"can match one {rule.fact} fact in the {rule.stage} stage; durable_rules fails past "
                    f"{MAX_MATCHING} (error 303): merge rules, or make them exclusive with `==` tests "
                    "on one field"
                )
            )
    return issues


def engine_number_text(value: float) -> str:
    """A float as JSON writes it (its repr), with a decimal point added before an exponent that has none
    (`1e-05` -> `1.0e-05`): durable_rules' parser refuses the first form and reads the second exactly."""
    text = float.__repr__(value)
    mantissa, exponent, power = text.partition("e")
    return f"{mantissa}.0e{power}" if exponent and "." not in mantissa else text


def engine_cannot_read(value: ParamValue | None) -> bool:
    """Whether durable_rules' parser refuses the number as JSON writes it (an exponent and no decimal point)."""
    return isinstance(value, float) and engine_number_text(value) != float.__repr__(value)


def _check_numbers(rules: Sequence[Rule], positions: Mapping[str, Pos]) -> list[RulesetIssue]:
    issues = []
    for rule in rules:
        for test in dict.fromkeys(t for branch in rule.branches for t in branch if engine_cannot_read(t.value)):
            issues.append(positions[rule.rule_id].issue(
                f"rule `{rule.rule_id}` compares `{test.field}` with {test.value!r}"
                + (f" (parameter `{test.param}`)" if test.param else "")
                + ": the rules engine cannot read a number under 0.0001 or from 10^16 up in a condition (error 204); "
                "compare with 0, or with a number from 0.0001 up to 10^16"))
    return issues


def _check_equality_values(rules: Sequence[Rule], positions: Mapping[str, Pos]) -> list[RulesetIssue]:
    seen: set[tuple[str, str, ParamValue | None]] = {("tag", "str", INIT_TAG)}
    for rule in rules:
        seen.add(("tag", "str", rule.tag))
        for branch in rule.branches:
            seen.update((t.field, type(t.value).__name__, t.value) for t in branch if t.op == "==")
        if len(seen) > MAX_EQUALITY_VALUES:
            busiest = Counter(field for field, _, _ in seen).most_common(1)[0][0]
            return [
                positions[rule.rule_id].issue(
                    f"with rule `{rule.rule_id}`, the rules compare fields with `==` against more than "
                    f"{MAX_EQUALITY_VALUES} distinct values (most on `{busiest}`); durable_rules hangs "
                    "at 512: group the cases into fewer values or use ranges (<, >=)"
                )
            ]
    return []


def check_definition(rules_def: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Generic guard over durable_rules data: (rule name, problem) for joins over 16 facts,
    patterns that would match the engine's state fact (e.g. only `$nex`), and missing actions."""
    problems = []
    for rule_name, rule in rules_def.items():
        patterns = rule.get("all", rule.get("any", []))
        if len(patterns) > MAX_JOIN:
            problems.append((rule_name, f"joins {len(patterns)} facts; durable_rules allows {MAX_JOIN} (error 304)"))
        if "run" not in rule:
            problems.append((rule_name, "has no action"))
        for pattern in patterns:
            for alias, expression in pattern.items():
                if not alias.endswith("$not") and _matches(expression, _STATE_FACT):
                    problems.append(
                        (
                            rule_name,
                            "would match durable_rules' own state fact (e.g. a bare "
                            "`$nex` test) and fire forever; add a test on a present field",
                        )
                    )
    return problems


def _matches(expression: Mapping[str, Any], fact: Mapping[str, Any]) -> bool:
    """Evaluate the subset of pattern syntax the compiler emits (fields absent -> False)."""
    results = []
    for key, arg in expression.items():
        if key == "$and":
            results.append(all(_matches(part, fact) for part in arg))
        elif key == "$or":
            results.append(any(_matches(part, fact) for part in arg))
        elif key == "$nex":
            results.append(all(f not in fact for f in arg))
        elif key == "$ex":
            results.append(all(f in fact for f in arg))
        elif key.startswith("$"):
            results.append(all(f in fact and _compare(key, fact[f], v) for f, v in arg.items()))
        else:
            results.append(key in fact and fact[key] == arg)
    return all(results)


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "$iany":
        return isinstance(left, list) and right.get("$i") in left
    try:
        return bool(
            {
                "$lt": left < right,
                "$lte": left <= right,
                "$gt": left > right,
                "$gte": left >= right,
                "$neq": left != right,
            }[op]
        )
    except (TypeError, KeyError):
        return False
