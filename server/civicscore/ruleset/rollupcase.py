"""Golden cases of a half-year or a year (`period: 2026-H1`, `period: 2026`): the unit's stored quarterly
results in, what the rules must give for the period out. Read by `casefile` for a case with `quarters:`.

    - name: annual-commendation-three-excellent-quarters
      period: 2026                     # a year; 2026-H1 or 2026-H2 for a half-year
      quarters:                        # the unit's stored results, in quarter order; a quarter left out was
        - {period: 2026-Q1, score: 95, grade: excellent}      # not evaluated for the unit
        - {period: 2026-Q2, score: 92.5, grade: excellent, flags: [praise]}
        - {period: 2026-Q3, score: 91, grade: excellent}
        - {period: 2026-Q4, score: 85, grade: good}
      under_review: false              # at the period's end (its last quarter)
      expect: {score: 90.88, grade: excellent, flags: [annual_commendation_candidate]}

Each quarter: `period` and `grade` (required), `score` (the stored unrounded score; left out or null: no
score), `assessable` (default: the grade is not the not-assessable grade), `flags` raised in the quarter
(default none; their kind, from flags.yaml, says which are criticism), `timeliness` (default 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from civicscore.domain.model import QuarterResult, RollupFacts, TaskCounts, UnitKind
from civicscore.domain.periods import InvalidPeriod, Quarter, Rollup
from civicscore.engine.facts import InvalidFacts, check_facts
from civicscore.ruleset.reader import describe
from civicscore.ruleset.yamltree import YMap, YNode, YScalar

if TYPE_CHECKING:
    from civicscore.ruleset.casefile import GoldenCase, _CaseReader

# Every key a case may have (a quarter's case and a half-year's or year's share one list); those of a
# quarter's facts do not apply here.
CASE_KEYS = ("description", "unit", "period", "counts", "assignments", "overdue", "measurements", "previous",
             "quarters", "obstacles", "under_review", "officials")
QUARTER_FACT_KEYS = ("counts", "assignments", "overdue", "measurements", "previous", "obstacles", "officials")
QUARTER_KEYS = ("score", "assessable", "flags", "timeliness")


def rollup_case(cases: _CaseReader, file: str, node: YMap, name: str, what: str,
                unit_defaults: Mapping[str, str]) -> GoldenCase | None:
    """The case of a half-year or year (None after an issue, recorded in `cases.r`)."""
    from civicscore.ruleset.casefile import GoldenCase

    r = cases.r
    block = r.mapping(node, what, required=("name", "expect"), optional=CASE_KEYS)
    if block is None:
        return None
    items = block.items
    before = len(r.issues)
    for key in QUARTER_FACT_KEYS:
        if key in items:
            r.error(block.key_pos[key], f"`{key}` of {what} is a quarter's fact; a half-year or year case gives its "
                                        "quarters' results in `quarters` instead: remove it")
    if "period" not in items:
        r.error(block.pos, f"{what} gives `quarters` but no `period`: add the half-year or year they belong to, "
                           "e.g. `period: 2026` or `period: 2026-H1`")
        return None
    description = ""
    if "description" in items:
        description = r.text(items["description"], f"the description of {what}", example="...") or ""
    unit = {**unit_defaults, **cases.unit(items.get("unit"), what)}
    rollup = _period(cases, items["period"], what)
    results = [_quarter(cases, item, what, rollup) for item in r.sequence(items["quarters"], f"`quarters` of {what}")]
    under_review = cases.boolean(items["under_review"], f"`under_review` of {what}") if "under_review" in items \
        else False
    expect = cases.expectation(items["expect"], what)
    if rollup is None or expect is None or len(r.issues) > before or any(q is None for q in results):
        return None
    facts = RollupFacts(
        unit_code=unit["code"], unit_kind=UnitKind(unit["kind"]), block=unit["block"], period=str(rollup),
        span=rollup.kind, quarters=tuple(str(q) for q in rollup.quarters),
        results=tuple(q for q in results if q is not None), under_review=bool(under_review))
    try:
        check_facts([facts])
    except InvalidFacts as error:
        detail = str(error).replace(f"unit {facts.unit_code} {facts.period}: ", "")
        r.error(items["quarters"].pos, f"the quarters of {what} contradict each other: {detail}")
        return None
    return GoldenCase(name, file, block.pos.line, facts, expect, description)


def _period(cases: _CaseReader, node: YNode, what: str) -> Rollup | None:
    """`2026` (YAML reads it as a number), `2026-H1` or `2026-H2`."""
    value = node.value if isinstance(node, YScalar) else None
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(text, str):
        try:
            return Rollup.parse(text.strip())
        except InvalidPeriod as error:
            cases.r.error(node.pos, f"the period of {what}: {error}")
            return None
    cases.r.error(node.pos, f"the period of {what} must be a half-year or a year, e.g. `period: 2026` or "
                            f"`period: 2026-H1`, found {describe(node)}")
    return None


def _quarter(cases: _CaseReader, node: YNode, what: str, rollup: Rollup | None) -> QuarterResult | None:
    r = cases.r
    block = r.mapping(node, f"a quarter of {what}", required=("period", "grade"), optional=QUARTER_KEYS)
    if block is None:
        return None
    items = block.items
    before = len(r.issues)
    period = r.text(items["period"], f"the period of a quarter of {what}", example="period: 2026-Q1")
    quarter = None
    if period is not None:
        try:
            quarter = Quarter.parse(period)
        except InvalidPeriod as error:
            r.error(items["period"].pos, f"a quarter of {what}: {error}")
    if quarter is not None and rollup is not None and quarter not in rollup.quarters:
        r.error(items["period"].pos, f"{quarter} is not a quarter of {rollup} ({', '.join(map(str, rollup.quarters))})")
    where = f"{quarter or 'a quarter'} of {what}"
    grade = cases.word(items["grade"], f"the grade of {where}", "grade", cases.grades)
    score = None
    if "score" in items and not (isinstance(items["score"], YScalar) and items["score"].value is None):
        score = r.number(items["score"], f"the score of {where}", example="score: 91.5", minimum=0)
    not_assessable = cases.ruleset.not_assessable.grade
    assessable: bool | None = grade is not None and grade != not_assessable
    if "assessable" in items:
        assessable = cases.boolean(items["assessable"], f"`assessable` of {where}")
    flags = cases.words(items.get("flags"), f"the flags of {where}", "flag", cases.flags)
    timeliness = 0.0
    if "timeliness" in items:
        timeliness = r.number(items["timeliness"], f"the timeliness of {where}", example="timeliness: 0.95",
                              minimum=0, maximum=1) or 0.0
    if len(r.issues) > before or quarter is None or grade is None or flags is None or assessable is None:
        return None
    definition = {flag.grade: flag for flag in cases.ruleset.grades}[grade]
    kinds = {flag.flag: flag.kind for flag in cases.ruleset.flags}
    return QuarterResult(
        period=str(quarter), revision=1, assessable=assessable, score=score, grade=grade,
        grade_vi=definition.label_vi, grade_en=definition.label_en, timeliness=timeliness, flags=flags,
        criticism_flags=tuple(flag for flag in flags if kinds.get(flag) == "criticism"), counts=TaskCounts(),
        open_overdue=0, ruleset_version=cases.ruleset.version, ruleset_digest=cases.ruleset.digest,
        result_digest="")
