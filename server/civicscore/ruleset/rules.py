"""Reading `rules:` entries: conditions resolved against fact fields, parameters and reasons checked."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from civicscore.domain.text import LANGUAGES, TemplateError, parse_template
from civicscore.ruleset.conditions import (
    KEYWORDS,
    ORDERING_OPS,
    Compare,
    ConditionSyntaxError,
    Has,
    Presence,
    Test,
    Truth,
    Value,
    parse_condition,
    tests_of,
    to_dnf,
)
from civicscore.ruleset.fields import (
    FACT_FIELDS,
    FACT_TYPES,
    FLAGS_FIELD,
    LOCALISED_PLACEHOLDERS,
    MEASUREMENT,
    OVERDUE,
    FactField,
    FieldType,
    Vocabulary,
)
from civicscore.ruleset.model import Effect, ParamValue, Rule, RuleTest, Stage
from civicscore.ruleset.reachability import condition_problems
from civicscore.ruleset.reader import Bilingual, Reader, did_you_mean
from civicscore.ruleset.yamltree import YMap, YNode, YScalar

RULE_ID = re.compile(r"[a-z][a-z0-9_-]*\Z")
PARAM_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
MAX_BRANCHES = 64  # durable_rules: more than 64 alternatives matching one fact fail with error 303
_EFFECTS = ("flag", "penalty", "count_indicator")
_EFFECT_FACTS = {"flag": FACT_TYPES, "penalty": (OVERDUE,), "count_indicator": (MEASUREMENT,)}


@dataclass(frozen=True)
class Vocabularies:
    """Names defined elsewhere in the rule files that conditions may compare with, and the
    highest values of fields whose maximum the ruleset sets (score, penalty, dx_indicators)."""

    values: Mapping[Vocabulary, tuple[str, ...]]
    limits: Mapping[str, float] = field(default_factory=dict)


def read_rule(reader: Reader, node: YNode, order: int, vocab: Vocabularies) -> Rule | None:
    """Read one `- id: ...` entry; None (with issues recorded) when it is unusable."""
    block = reader.mapping(node, "a rule", required=("id", "fact", "when", "reason"), optional=("params", *_EFFECTS))
    if block is None:
        return None
    items = block.items
    rule_id = _read_rule_id(reader, items["id"])
    what = f"rule `{rule_id}`" if rule_id else "this rule"
    fact = _read_fact(reader, items["fact"], what)
    effects = [key for key in _EFFECTS if key in items]
    if not effects:
        reader.error(
            block.pos,
            f"{what} does not say what it does: add `flag: <flag>`, `penalty: <points>` or `count_indicator: true`",
        )
    elif len(effects) > 1:
        reader.error(block.key_pos[effects[1]], f"{what} does several things ({', '.join(effects)}); keep one")
    params = _read_params(reader, items["params"], what, fact) if "params" in items else {}
    reason = reader.bilingual(items["reason"], f"the reason of {what}")
    if rule_id is None or fact is None or len(effects) != 1 or params is None:
        return None
    effect_key = effects[0]
    if fact not in _EFFECT_FACTS[effect_key]:
        allowed = " or ".join(f"`{f}`" for f in _EFFECT_FACTS[effect_key])
        reader.error(block.key_pos[effect_key], f"`{effect_key}` applies to {allowed} facts, not `{fact}`")
        return None
    flag = penalty = None
    if effect_key == "flag":
        flag = _read_vocab_word(reader, items["flag"], what, Vocabulary.FLAG, vocab)
        effect = Effect.FLAG
    elif effect_key == "penalty":
        penalty = reader.number(items["penalty"], f"the penalty of {what}", example="penalty: 2", minimum=0)
        effect = Effect.PENALTY
    else:
        counted = items["count_indicator"]
        if not (isinstance(counted, YScalar) and counted.value is True):
            reader.error(counted.pos, f"`count_indicator` of {what} must be `true` (remove the rule to stop counting)")
            return None
        effect = Effect.COUNT_INDICATOR
    if (effect is Effect.FLAG and flag is None) or (effect is Effect.PENALTY and penalty is None):
        return None
    resolved = resolve_condition(reader, items["when"], what, fact, params, vocab)
    if resolved is None or reason is None:
        return None
    branches, fields, used_params = resolved
    extra = {"penalty"} if effect is Effect.PENALTY else set()
    placeholders = set(FACT_FIELDS[fact]) | set(params) | set(LOCALISED_PLACEHOLDERS.get(fact, ())) | extra
    used_params |= check_reason(reader, items["reason"], what, reason, placeholders, params)
    for name in params.keys() - used_params:
        reader.error(items["params"].pos, f"parameter `{name}` of {what} is not used in `when` or `reason`; remove it")
    stage = Stage.SCORE if effect in (Effect.PENALTY, Effect.COUNT_INDICATOR) else Stage.FLAGS
    if FLAGS_FIELD in fields:
        stage = Stage.ESCALATION
    return Rule(
        rule_id=rule_id,
        fact=fact,
        stage=stage,
        source=str(block.pos),
        order=order,
        condition=str(_scalar_text(items["when"])),
        branches=branches,
        fields=fields,
        params=params,
        effect=effect,
        flag=flag,
        penalty=penalty,
        reason_vi=reason.vi,
        reason_en=reason.en,
    )


def _scalar_text(node: YNode) -> str | None:
    return node.value if isinstance(node, YScalar) and isinstance(node.value, str) else None


def _read_rule_id(reader: Reader, node: YNode) -> str | None:
    text = reader.text(node, "a rule id", example="id: criticism-low-timeliness")
    if text is not None and not RULE_ID.match(text):
        reader.error(node.pos, f"rule id `{text}` may use only a-z, 0-9, - and _, starting with a letter")
        return None
    return text


def _read_fact(reader: Reader, node: YNode, what: str) -> str | None:
    text = reader.text(node, f"the fact of {what}", example="fact: unit")
    if text is not None and text not in FACT_TYPES:
        choices = ", ".join(FACT_TYPES)
        reader.error(node.pos, f"unknown fact `{text}` in {what};{did_you_mean(text, FACT_TYPES)} facts: {choices}")
        return None
    return text


def _read_vocab_word(reader: Reader, node: YNode, what: str, vocabulary: Vocabulary, vocab: Vocabularies) -> str | None:
    text = reader.text(node, f"the {vocabulary} of {what}", example=f"{vocabulary}: ...")
    known = vocab.values[vocabulary]
    if text is not None and text not in known:
        hint = did_you_mean(text, known) or f" known: {', '.join(known)}."
        reader.error(node.pos, f"unknown {vocabulary} `{text}` in {what};{hint}")
        return None
    return text


def _read_params(reader: Reader, node: YNode, what: str, fact: str | None) -> dict[str, ParamValue] | None:
    if not isinstance(node, YMap):
        reader.error(node.pos, f"`params` of {what} must be a block of `name: value` lines, e.g. `threshold: 0.8`")
        return None
    params: dict[str, ParamValue] = {}
    ok = True
    for name, value_node in node.items.items():
        pos = node.key_pos[name]
        value = value_node.value if isinstance(value_node, YScalar) else None
        if not PARAM_NAME.match(name) or name in KEYWORDS:
            reader.error(pos, f"parameter name `{name}` of {what} must use a-z, 0-9 and _ and not be a keyword")
            ok = False
        elif fact is not None and name in FACT_FIELDS[fact]:
            reader.error(
                pos,
                f"parameter `{name}` of {what} has the name of a {fact} field; rename it, e.g. `max_{name}`",
            )
            ok = False
        elif not isinstance(value, int | float | str | bool):
            reader.error(value_node.pos, f"parameter `{name}` of {what} must be a number, text or true/false")
            ok = False
        elif not isinstance(value, bool | str) and not _finite(value):
            reader.error(value_node.pos, f"parameter `{name}` of {what} must be a number of reasonable size, e.g. "
                                         "`threshold: 0.8`, not infinity, NaN or hundreds of digits")
            ok = False
        else:
            params[name] = value
    return params if ok else None


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(float(value))  # every check compares numbers as floats
    except OverflowError:
        return False


def resolve_condition(
    reader: Reader,
    node: YNode,
    what: str,
    fact: str,
    params: Mapping[str, ParamValue],
    vocab: Vocabularies,
) -> tuple[tuple[tuple[RuleTest, ...], ...], tuple[str, ...], set[str]] | None:
    """Parse and type-check a `when:`; returns its alternatives, fields read and parameters used."""
    text = _scalar_text(node)
    if text is None:
        reader.error(node.pos, f'`when` of {what} must be a condition in quotes, e.g. "timeliness < 0.8"')
        return None
    assert isinstance(node, YScalar)
    try:
        condition = parse_condition(text)
    except ConditionSyntaxError as error:
        reader.error(node.text_pos(error.offset), f"bad condition in {what}: {error}")
        return None
    fields = FACT_FIELDS[fact]
    used: set[str] = set()
    resolved: dict[int, RuleTest] = {}
    before = len(reader.issues)
    for test in tests_of(condition):
        result = _resolve_test(test, fields, fact, params, vocab, used)
        if isinstance(result, tuple):
            reader.error(node.text_pos(result[0]), f"in {what}: {result[1]}")
        else:
            resolved[id(test)] = result
    if len(reader.issues) > before:
        return None
    branches = to_dnf(condition, MAX_BRANCHES)
    if branches is None:
        reader.error(
            node.pos,
            f"the condition of {what} has more than {MAX_BRANCHES} alternatives once its "
            "`or`s are multiplied out; durable_rules fails past 64 (error 303): split the rule",
        )
        return None
    for branch in branches:
        if all(isinstance(test, Presence) and not test.present for test in branch):
            reader.error(
                node.text_pos(branch[0].offset),
                f"in {what}: a condition made only of `is missing` tests "
                "would compile to a bare `$nex` test, which makes durable_rules loop forever; "
                "add a test on a field that is there, e.g. `due == 0 and score is missing`",
            )
            return None
    located = [[(test.offset, resolved[id(test)]) for test in branch] for branch in branches]
    problems = condition_problems(located, fields, vocab.limits)
    for offset, message in problems:
        reader.error(node.text_pos(offset), f"in {what}: {message}")
    if problems:
        return None
    names = tuple(dict.fromkeys(test.field for test in tests_of(condition)))
    compiled = tuple(tuple(resolved[id(test)] for test in branch) for branch in branches)
    return compiled, names, used


def _resolve_test(
    test: Test,
    fields: Mapping[str, FactField],
    fact: str,
    params: Mapping[str, ParamValue],
    vocab: Vocabularies,
    used: set[str],
) -> RuleTest | tuple[int, str]:
    """A resolved test, or (offset, message) explaining what is wrong."""
    spec = fields.get(test.field)
    if spec is None:
        if test.field in params:
            return (
                test.offset,
                f"`{test.field}` is a parameter; a test starts with a field, e.g. `timeliness < {test.field}`",
            )
        hint = did_you_mean(test.field, fields) or f" {fact} fields: {', '.join(fields)}."
        return test.offset, f"unknown field `{test.field}` for {fact} facts;{hint}"
    if isinstance(test, Presence):
        return RuleTest(spec.name, "present" if test.present else "missing")
    if isinstance(test, Truth):
        if spec.type is not FieldType.BOOLEAN:
            return (
                test.offset,
                f"`{spec.name}` is a {spec.type}, not yes/no: compare it, e.g. `{spec.name} > 0`",
            )
        return RuleTest(spec.name, "==", test.expected)
    value = _resolve_value(test.value, fields, params, used)
    if isinstance(value, tuple):
        return value
    if isinstance(test, Has):
        if spec.type is not FieldType.TEXT_LIST:
            return (
                test.offset,
                f"`has` applies to lists (flags, previous_flags); `{spec.name}` is a {spec.type}",
            )
        return _vocab_check(spec, value, test.value.offset, vocab) or RuleTest(
            spec.name, "has", value, test.value.param
        )
    assert isinstance(test, Compare)
    if spec.type is FieldType.TEXT_LIST:
        return test.offset, f'`{spec.name}` is a list: test it with `has`, e.g. `{spec.name} has "criticism"`'
    if spec.numeric:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return (
                test.value.offset,
                f"`{spec.name}` is a {spec.type}: compare it with a number, not {value!r}",
            )
        return RuleTest(spec.name, test.op, value, test.value.param)
    if test.op in ORDERING_OPS:
        return test.offset, f"`{spec.name}` is {spec.type}: only `==` and `!=` apply"
    expected = bool if spec.type is FieldType.BOOLEAN else str
    if not isinstance(value, expected):
        example = "true or false" if expected is bool else "quoted text"
        return test.value.offset, f"`{spec.name}` is {spec.type}: compare it with {example}, not {value!r}"
    return _vocab_check(spec, value, test.value.offset, vocab) or RuleTest(
        spec.name, test.op, value, test.value.param
    )


def _resolve_value(
    value: Value, fields: Mapping[str, FactField], params: Mapping[str, ParamValue], used: set[str]
) -> ParamValue | tuple[int, str]:
    if value.param is None:
        assert value.literal is not None
        return value.literal
    if value.param in params:
        used.add(value.param)
        return params[value.param]
    if value.param in fields:
        return value.offset, (
            f"comparing two fields (`{value.param}`) is not supported: durable_rules cannot "
            "compare fields of one fact; compare with a number or a parameter"
        )
    hint = did_you_mean(value.param, params) or " define it under `params:` or write the number itself."
    return value.offset, f"unknown parameter `{value.param}`;{hint}"


def _vocab_check(spec: FactField, value: ParamValue, offset: int, vocab: Vocabularies) -> tuple[int, str] | None:
    if spec.vocabulary is None:
        return None
    known = vocab.values[spec.vocabulary]
    if value in known:
        return None
    hint = did_you_mean(str(value), known) or f" known: {', '.join(known)}."
    return offset, f"unknown {spec.vocabulary} {value!r} for `{spec.name}`;{hint}"


def check_reason(
    reader: Reader,
    node: YNode,
    what: str,
    reason: Bilingual,
    allowed: set[str],
    params: Mapping[str, ParamValue],
) -> set[str]:
    """Check the placeholders of both reason texts (known, and the same in both languages);
    returns the parameters they use."""
    used: set[str] = set()
    texts = node.items if isinstance(node, YMap) else {}
    shown: dict[str, set[str]] = {}
    for lang in LANGUAGES:
        text_node = texts.get(lang, node)
        template = getattr(reason, lang)
        pos_of = text_node.text_pos if isinstance(text_node, YScalar) else (lambda _o, n=text_node: n.pos)
        try:
            placeholders = parse_template(template)
        except TemplateError as error:
            reader.error(pos_of(error.offset), f"the {lang} reason of {what}: {error}")
            continue
        shown[lang] = {ph.name for ph in placeholders}
        for ph in placeholders:
            if ph.name in params:
                used.add(ph.name)
            elif ph.name not in allowed:
                hint = did_you_mean(ph.name, allowed) or " use a field of the fact or a parameter."
                reader.error(
                    pos_of(ph.offset),
                    f"unknown placeholder {{{ph.name}}} in the {lang} reason of {what};{hint}",
                )
    if len(shown) == len(LANGUAGES) and all(shown[lang] <= allowed | set(params) for lang in LANGUAGES):
        for lang, other in (("vi", "en"), ("en", "vi")):
            for name in sorted(shown[other] - shown[lang]):
                reader.error(
                    texts.get(lang, node).pos,
                    f"the {lang} reason of {what} does not show {{{name}}}, which the {other} reason shows; "
                    "a translation must give the same values: add it, or remove it from both",
                )
    return used
