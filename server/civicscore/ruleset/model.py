"""A validated ruleset: what the rule files say, as frozen data the engine can run."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from civicscore.domain.model import UnitKind
from civicscore.domain.scoring import ScoringParameters

ParamValue = float | int | str | bool


class Stage(StrEnum):
    """When a rule runs in one unit's evaluation; later stages see what earlier ones decided."""

    SCORE = "score"  # which DX indicators count, which overdue assignments cost points
    GRADE = "grade"  # the grade band, from the score
    FLAGS = "flags"  # flags from the unit's figures, grade and history
    ESCALATION = "escalation"  # flags that depend on this quarter's other flags


class Effect(StrEnum):
    """What a rule does when it fires."""

    COUNT_INDICATOR = "count_indicator"
    PENALTY = "penalty"
    GRADE = "grade"
    FLAG = "flag"


@dataclass(frozen=True)
class Indicator:
    """A DX indicator: its names, weight and default targets per unit kind."""

    code: str
    name_vi: str
    name_en: str
    weight: float
    default_targets: dict[UnitKind, float]
    source: str


@dataclass(frozen=True)
class FlagDefinition:
    """A flag rules may raise (a recommendation for the committee)."""

    flag: str
    kind: str  # "commendation" | "criticism"
    level: int
    label_vi: str
    label_en: str
    source: str


@dataclass(frozen=True)
class GradeDefinition:
    """A grade; `min_score` is None for the not-assessable grade."""

    grade: str
    label_vi: str
    label_en: str
    min_score: float | None
    source: str


@dataclass(frozen=True)
class LongPeriods:
    """How half-years and years are summed up from their quarters (`assessment.long_periods`): a period is
    assessable when at least `min_assessable_share` of its quarters are (rounded up: half of 2 quarters is
    1, of 4 is 2); otherwise its grade is the not-assessable grade, with this reason."""

    min_assessable_share: float
    reason_vi: str
    reason_en: str
    source: str

    def min_assessable_quarters(self, quarters: int) -> int:
        """The fewest assessable quarters, of `quarters`, that make the period assessable (at least 1)."""
        return max(1, math.ceil(self.min_assessable_share * quarters - 1e-9))


@dataclass(frozen=True)
class RuleTest:
    """One resolved test: op is a comparison, "has", "present" or "missing".

    `value` is what the engine compares with; `param` names the rule parameter it came
    from (`timeliness < threshold`), None for a number or text written in the condition.
    """

    field: str
    op: str
    value: ParamValue | None = None
    param: str | None = None

    def __str__(self) -> str:
        """The test as a condition would write it, e.g. `timeliness < threshold` or `not under_review`."""
        if self.op in ("present", "missing"):
            return f"{self.field} is {self.op}"
        if isinstance(self.value, bool) and self.param is None and self.op in ("==", "!="):
            return self.field if self.value == (self.op == "==") else f"not {self.field}"
        return f"{self.field} {self.op} {self.param or literal_text(self.value)}"


def literal_text(value: ParamValue | None) -> str:
    """A value as a condition writes it: 0.8, "excellent", true."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class Rule:
    """A rule ready to compile: its alternatives (or of ands) and what it does."""

    rule_id: str
    fact: str
    stage: Stage
    source: str  # "flags.yaml:42"
    order: int
    condition: str
    branches: tuple[tuple[RuleTest, ...], ...]
    fields: tuple[str, ...]  # fact fields the condition reads: the "values seen"
    params: dict[str, ParamValue]
    effect: Effect
    flag: str | None = None
    penalty: float | None = None
    grade: str | None = None
    reason_vi: str = ""
    reason_en: str = ""

    @property
    def tag(self) -> str:
        """The fact tag this rule matches (fact type and stage)."""
        return fact_tag(self.fact, self.stage)


def fact_tag(fact: str, stage: Stage) -> str:
    """The value of a fact's `tag` field: which rules (fact type and stage) may match it."""
    return f"{fact}.{stage}"


@dataclass(frozen=True)
class CompiledRuleset:
    """durable_rules definitions as plain data; a fresh deep copy on every `Ruleset.compile()`."""

    name: str
    definition: dict[str, dict[str, Any]]
    init_rule: str
    init_tag: str
    action_names: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Ruleset:
    """A validated ruleset; build it with `load_ruleset`."""

    ruleset_id: str
    version: str
    in_force_from: str
    description_vi: str
    description_en: str
    digest: str
    files: dict[str, str]
    scoring: ScoringParameters
    task_names: tuple[tuple[str, str, str], ...]  # (indicator code, vi, en) of completion, timeliness, quality
    min_due: int
    indicators: tuple[Indicator, ...]
    grades: tuple[GradeDefinition, ...]  # score bands from the top, then the not-assessable grade
    flags: tuple[FlagDefinition, ...]
    rules: tuple[Rule, ...]
    _compiled: CompiledRuleset = field(repr=False)
    # None: the rule files do not say how to sum up half-years and years, which are then refused.
    long_periods: LongPeriods | None = None

    @property
    def indicator_codes(self) -> frozenset[str]:
        """Codes of the DX indicators the ruleset scores (measurements of others are ignored)."""
        return frozenset(indicator.code for indicator in self.indicators)

    @property
    def rule_count(self) -> int:
        """Number of rules, the generated grade rules included."""
        return len(self.rules)

    @property
    def rule_ids(self) -> frozenset[str]:
        """Ids of every rule, the generated grade rules (`grade.<code>`) included."""
        return frozenset(rule.rule_id for rule in self.rules)

    @property
    def top_grade(self) -> GradeDefinition:
        """The highest grade band (`excellent` in the default rules)."""
        return self.grades[0]

    @property
    def not_assessable(self) -> GradeDefinition:
        """The grade of units with too few assignments due."""
        return self.grades[-1]

    def indicator(self, code: str) -> Indicator | None:
        """The indicator with this code, if the ruleset has it."""
        return next((i for i in self.indicators if i.code == code), None)

    def grade(self, code: str) -> GradeDefinition | None:
        """The grade with this code (labels for display), if defined."""
        return next((g for g in self.grades if g.grade == code), None)

    def flag(self, code: str) -> FlagDefinition | None:
        """The flag with this code (kind, level, labels), if defined."""
        return next((f for f in self.flags if f.flag == code), None)

    def compile(self) -> CompiledRuleset:
        """The durable_rules definitions, deep-copied (durable_rules mutates what it is given)."""
        return copy.deepcopy(self._compiled)
