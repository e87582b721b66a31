"""Reading the data sections of the rule files: ruleset header, scoring numbers, indicators,
grades and flags. Each reader records issues and returns None for what it cannot use."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass

from civicscore.domain.model import UnitKind
from civicscore.domain.periods import InvalidPeriod, Quarter
from civicscore.domain.scoring import ScoringParameters
from civicscore.ruleset.model import FlagDefinition, GradeDefinition, Indicator, LongPeriods
from civicscore.ruleset.reader import Bilingual, Reader, did_you_mean
from civicscore.ruleset.yamltree import YMap, YNode, YScalar

CODE = re.compile(r"[a-z][a-z0-9_]*\Z")
INDICATOR_CODE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+\Z")
RULESET_ID = re.compile(r"[a-z][a-z0-9-]*\Z")
FLAG_KINDS = ("commendation", "criticism", "escalation")
UNIT_KINDS = tuple(kind.value for kind in UnitKind)


@dataclass(frozen=True)
class Header:
    """The `ruleset:` section."""

    ruleset_id: str
    version: str
    in_force_from: str
    description: Bilingual


@dataclass(frozen=True)
class GradeBand:
    """A grade with the reason text its generated rule gives."""

    grade: GradeDefinition
    reason: Bilingual
    node: YMap


@dataclass(frozen=True)
class Assessment:
    """The `assessment:` section: fewest assignments due to grade a unit, and the grade otherwise."""

    min_due: int
    not_assessable: GradeBand
    long_periods: LongPeriods | None = None
    long_periods_node: YMap | None = None  # where `long_periods` is written, to check its reason


def read_header(reader: Reader, node: YNode) -> Header | None:
    """`ruleset:` — id, version (as text), in_force_from (a quarter) and a bilingual description."""
    block = reader.mapping(node, "`ruleset`", required=("id", "version", "in_force_from", "description"))
    if block is None:
        return None
    items = block.items
    ruleset_id = reader.text(items["id"], "the ruleset id", example="id: hanoi-default")
    if ruleset_id is not None and not RULESET_ID.match(ruleset_id):
        reader.error(items["id"].pos, "the ruleset id may use only a-z, 0-9 and -, e.g. `hanoi-default`")
        ruleset_id = None
    version = reader.text(items["version"], "the version", example='version: "2026.1"')
    quarter = reader.text(items["in_force_from"], "`in_force_from`", example="in_force_from: 2025-Q3")
    if quarter is not None:
        try:
            quarter = str(Quarter.parse(quarter))
        except InvalidPeriod as error:
            reader.error(items["in_force_from"].pos, f"`in_force_from`: {error}")
            quarter = None
    description = reader.bilingual(items["description"], "the ruleset description")
    if ruleset_id is None or version is None or quarter is None or description is None:
        return None
    return Header(ruleset_id, version, quarter, description)


def read_scoring(reader: Reader, tasks_node: YNode, score_node: YNode) -> ScoringParameters | None:
    """`tasks:` (weights, late credit, rework penalty) and `score:` (points split, penalty cap)."""
    tasks = reader.mapping(tasks_node, "`tasks`", required=("weights", "late_credit", "rework_penalty", "names"))
    score = reader.mapping(score_node, "`score`", required=("task_points", "dx_points", "penalty_cap"))
    if tasks is None or score is None:
        return None
    parts = ("completion", "timeliness", "quality")
    weights_block = reader.mapping(tasks.items["weights"], "`tasks.weights`", required=parts)
    weights: dict[str, float | None] = {}
    if weights_block is not None:
        for part in parts:
            if part in weights_block.items:
                weights[part] = reader.number(
                    weights_block.items[part],
                    f"the {part} weight",
                    example=f"{part}: 0.3",
                    minimum=0,
                    maximum=1,
                )
    late = reader.number(tasks.items["late_credit"], "`late_credit`", example="late_credit: 0.75", minimum=0, maximum=1)
    rework = reader.number(
        tasks.items["rework_penalty"],
        "`rework_penalty`",
        example="rework_penalty: 0.25",
        minimum=0,
        maximum=1,
    )
    task_points = reader.number(score.items["task_points"], "`task_points`", example="task_points: 70", minimum=0)
    dx_points = reader.number(score.items["dx_points"], "`dx_points`", example="dx_points: 30", minimum=0)
    cap = reader.number(score.items["penalty_cap"], "`penalty_cap`", example="penalty_cap: 10", minimum=0)
    w = [weights.get(part) for part in parts]
    if None in (late, rework, task_points, dx_points, cap) or any(v is None for v in w):
        return None
    assert weights_block is not None
    total = sum(v for v in w if v is not None)
    if not math.isclose(total, 1.0, abs_tol=1e-9):
        reader.error(weights_block.pos, f"the task weights add up to {total:g}; they must add up to 1")
        return None
    assert late is not None and rework is not None and task_points is not None and dx_points is not None
    assert cap is not None and w[0] is not None and w[1] is not None and w[2] is not None
    if task_points + dx_points <= 0:
        reader.error(score.pos, "`task_points` + `dx_points` must be more than 0 (they are the top score)")
        return None
    return ScoringParameters(w[0], w[1], w[2], late, rework, task_points, dx_points, cap)


TASK_PARTS = ("completion", "timeliness", "quality")


def read_task_names(reader: Reader, tasks_node: YNode) -> tuple[tuple[str, str, str], ...] | None:
    """`tasks.names`: the display name {vi, en} of each task-result component, as
    (indicator code, vi, en) in the order completion, timeliness, quality."""
    if not isinstance(tasks_node, YMap) or "names" not in tasks_node.items:
        return None  # read_scoring has said what is missing
    block = reader.mapping(tasks_node.items["names"], "`tasks.names`", required=TASK_PARTS)
    if block is None:
        return None
    names = [(part, reader.bilingual(block.items[part], f"the name of {part}")) for part in TASK_PARTS]
    if any(name is None for _, name in names):
        return None
    return tuple((f"task.{part}", name.vi, name.en) for part, name in names if name is not None)


def read_indicators(reader: Reader, node: YNode) -> list[Indicator]:
    """`indicators:` — code, name {vi, en}, weight and target (one number, or one per unit kind)."""
    result: list[Indicator] = []
    seen: dict[str, str] = {}
    for item in reader.sequence(node, "`indicators`"):
        block = reader.mapping(item, "an indicator", required=("code", "name", "weight", "target"))
        if block is None:
            continue
        items = block.items
        code = reader.text(items["code"], "an indicator code", example="code: dx.online_applications")
        if code is not None and not INDICATOR_CODE.match(code):
            reader.error(items["code"].pos, f"indicator code `{code}` must look like `dx.online_applications`")
            code = None
        if code is not None and code in seen:
            reader.error(items["code"].pos, f"indicator `{code}` is already defined at {seen[code]}; keep one")
            code = None
        what = f"indicator `{code}`" if code else "this indicator"
        name = reader.bilingual(items["name"], f"the name of {what}")
        weight = reader.number(items["weight"], f"the weight of {what}", example="weight: 6", above=0)
        targets = _read_targets(reader, items["target"], what)
        if code is None or name is None or weight is None or targets is None:
            continue
        seen[code] = str(block.pos)
        result.append(Indicator(code, name.vi, name.en, weight, targets, str(block.pos)))
    return result


def _read_targets(reader: Reader, node: YNode, what: str) -> dict[UnitKind, float] | None:
    if isinstance(node, YScalar):
        value = reader.number(node, f"the target of {what}", example="target: 0.6", above=0)
        return None if value is None else {kind: value for kind in UnitKind}
    block = reader.mapping(node, f"the targets of {what}", optional=UNIT_KINDS)
    if block is None:
        return None
    targets: dict[UnitKind, float] = {}
    for kind in UNIT_KINDS:
        if kind in block.items:
            value = reader.number(block.items[kind], f"the {kind} target of {what}", example=f"{kind}: 0.6", above=0)
            if value is None:
                return None
            targets[UnitKind(kind)] = value
    return targets


def _read_band(reader: Reader, node: YNode, *, with_score: bool) -> GradeBand | None:
    keys = ("grade", "min_score", "label", "reason") if with_score else ("grade", "label", "reason")
    block = reader.mapping(node, "a grade", required=keys)
    if block is None:
        return None
    items = block.items
    code = reader.text(items["grade"], "a grade code", example="grade: excellent")
    if code is not None and not CODE.match(code):
        reader.error(items["grade"].pos, f"grade code `{code}` may use only a-z, 0-9 and _, e.g. `not_completed`")
        code = None
    what = f"grade `{code}`" if code else "this grade"
    min_score = None
    if with_score:
        min_score = reader.number(items["min_score"], f"`min_score` of {what}", example="min_score: 90", minimum=0)
    label = reader.bilingual(items["label"], f"the label of {what}")
    reason = reader.bilingual(items["reason"], f"the reason of {what}")
    if code is None or label is None or reason is None or (with_score and min_score is None):
        return None
    return GradeBand(GradeDefinition(code, label.vi, label.en, min_score, str(block.pos)), reason, block)


def read_grades(reader: Reader, node: YNode) -> list[GradeBand]:
    """`grades:` — bands from the best down, each with `min_score`; the last must start at 0."""
    bands = [
        band
        for item in reader.sequence(node, "`grades`")
        if (band := _read_band(reader, item, with_score=True)) is not None
    ]
    for upper, lower in itertools.pairwise(bands):
        if (lower.grade.min_score or 0) >= (upper.grade.min_score or 0):
            reader.error(
                lower.node.items["min_score"].pos,
                f"grades go from the best down: `min_score` of "
                f"`{lower.grade.grade}` must be below {upper.grade.min_score:g} (`{upper.grade.grade}`)",
            )
    if not bands:
        reader.error(node.pos, "`grades` needs at least one band, e.g. `- grade: completed` with `min_score: 0`")
    elif bands[-1].grade.min_score != 0:
        reader.error(
            bands[-1].node.items["min_score"].pos,
            "the last grade band must have `min_score: 0` so that every score gets a grade",
        )
    return bands


def read_assessment(reader: Reader, node: YNode) -> Assessment | None:
    """`assessment:` — `min_due` and the grade of units with fewer assignments due."""
    block = reader.mapping(node, "`assessment`", required=("min_due", "not_assessable"), optional=("long_periods",))
    if block is None:
        return None
    min_due = reader.integer(block.items["min_due"], "`min_due`", example="min_due: 5", minimum=1)
    band = _read_band(reader, block.items["not_assessable"], with_score=False)
    long_periods, long_node = None, None
    if "long_periods" in block.items:
        long_periods, long_node = _read_long_periods(reader, block.items["long_periods"])
    if min_due is None or band is None:
        return None
    return Assessment(min_due, band, long_periods, long_node)


def _read_long_periods(reader: Reader, node: YNode) -> tuple[LongPeriods | None, YMap | None]:
    """`long_periods:` — `min_assessable_share` of a half-year's or year's quarters that must be assessable,
    and the reason given when fewer are."""
    block = reader.mapping(node, "`long_periods`", required=("min_assessable_share", "reason"))
    if block is None:
        return None, None
    share = reader.number(block.items["min_assessable_share"], "`min_assessable_share` of `long_periods` (0.5: at "
                          "least half of the quarters)", example="min_assessable_share: 0.5", maximum=1, above=0)
    reason = reader.bilingual(block.items["reason"], "the reason of `long_periods`")
    if share is None or reason is None:
        return None, block
    return LongPeriods(float(share), reason.vi, reason.en, str(block.pos)), block


def read_flags(reader: Reader, node: YNode) -> list[FlagDefinition]:
    """`flags:` — flag code, kind (commendation/criticism/escalation), level and label {vi, en}."""
    result: list[FlagDefinition] = []
    for item in reader.sequence(node, "`flags`"):
        block = reader.mapping(item, "a flag", required=("flag", "kind", "level", "label"))
        if block is None:
            continue
        items = block.items
        code = reader.text(items["flag"], "a flag code", example="flag: criticism")
        if code is not None and not CODE.match(code):
            reader.error(items["flag"].pos, f"flag code `{code}` may use only a-z, 0-9 and _")
            code = None
        if code is not None and any(f.flag == code for f in result):
            reader.error(items["flag"].pos, f"flag `{code}` is defined twice; keep one")
            code = None
        what = f"flag `{code}`" if code else "this flag"
        kind = reader.text(items["kind"], f"the kind of {what}", example="kind: criticism")
        if kind is not None and kind not in FLAG_KINDS:
            reader.error(
                items["kind"].pos,
                f"kind of {what} must be commendation, criticism or escalation;{did_you_mean(kind, FLAG_KINDS)}",
            )
            kind = None
        level = reader.integer(items["level"], f"the level of {what}", example="level: 2", minimum=1)
        label = reader.bilingual(items["label"], f"the label of {what}")
        if code and kind and level is not None and label:
            result.append(FlagDefinition(code, kind, level, label.vi, label.en, str(block.pos)))
    return result
