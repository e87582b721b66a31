"""Reading golden case files (`rules/tests/*.yaml`): facts in, expectations out, every mistake
reported with file, line, column and the case's name. The format is described in the header
of rules/tests/default_cases.yaml and in rules/schema/cases.schema.json.

A case gives its task facts either as `counts` (and `overdue`) directly, or as `assignments`: each
assignment with its due date, its state and its approved extensions, from which the counts, the
overdue list and the extended assignments are worked out as the server does (`domain.extensions`,
effective due dates as of the quarter's end). A quarter's case may also list `officials`, evaluated
after its unit (`officialcase`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field

from civicscore.domain.extensions import Approval, QuarterInputs, TaskHistory, quarter_inputs
from civicscore.domain.model import (
    ExtendedTask,
    MeasurementFact,
    OutcomeStatus,
    OverdueTask,
    PriorQuarter,
    RollupFacts,
    TaskCounts,
    UnitFacts,
    UnitKind,
)
from civicscore.domain.obstacles import OpenObstacle
from civicscore.domain.periods import FIRST_YEAR, HANOI, LAST_YEAR, InvalidPeriod, Quarter
from civicscore.engine.facts import InvalidFacts, check_facts
from civicscore.ruleset.errors import RulesetIssue
from civicscore.ruleset.model import Ruleset
from civicscore.ruleset.officialcase import (
    CaseOfficial,
    OfficialExpectation,
    read_official_expectations,
    read_officials,
)
from civicscore.ruleset.reader import Reader, describe, did_you_mean
from civicscore.ruleset.yamltree import Pos, YList, YMap, YNode, YScalar, parse_yaml

UNIT_KINDS = tuple(kind.value for kind in UnitKind)
STATUSES = tuple(status.value for status in OutcomeStatus)
# An extension of a case is approved at this time of its `approved_on` day (Hanoi time).
APPROVAL_TIME = dt.time(12)
# When neither the case nor `defaults` says which unit or quarter: a department, the first quarter in force.
FALLBACK_UNIT = {"code": "CASE", "kind": "department", "block": "departments"}


class CaseFileInvalid(ValueError):
    """A case file that cannot be run; `issues` lists every problem (file, line, column, case name)."""

    def __init__(self, issues: list[RulesetIssue]) -> None:
        self.issues = sorted(issues)
        count = len(self.issues)
        header = f"the case files have {count} problem{'s' if count != 1 else ''}:"
        super().__init__("\n".join([header, *(f"  {issue}" for issue in self.issues)]))

    def __reduce__(self) -> tuple[type[CaseFileInvalid], tuple[list[RulesetIssue]]]:
        # Raised in the process that runs the cases and again in its parent (engine/sandbox.py).
        return (type(self), (self.issues,))


@dataclass(frozen=True)
class IndicatorExpectation:
    """What a case expects of one DX indicator (None: not checked)."""

    counted: bool | None = None
    attainment: float | None = None


@dataclass(frozen=True)
class Expectation:
    """What a case expects; a None field (or `score_given` false) is not checked."""

    score: float | None = None
    score_given: bool = False  # `score: null` expects no score at all
    grade: str | None = None
    flags: tuple[str, ...] | None = None
    penalty: float | None = None
    fired: tuple[str, ...] = ()
    not_fired: tuple[str, ...] = ()
    indicators: Mapping[str, IndicatorExpectation] = field(default_factory=dict)
    reasons: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # rule id -> {lang: text}
    officials: Mapping[str, OfficialExpectation] = field(default_factory=dict)  # official id -> expectation


@dataclass(frozen=True)
class GoldenCase:
    """One case: a unit's facts for a quarter (or a half-year or year) and what the rules must give."""

    name: str
    file: str
    line: int
    facts: UnitFacts | RollupFacts
    expect: Expectation
    description: str = ""
    officials: tuple[CaseOfficial, ...] = ()  # evaluated after the unit (a quarter's case only)

    @property
    def where(self) -> str:
        """`tests/default_cases.yaml:42`."""
        return f"{self.file}:{self.line}"


def read_case_file(file: str, text: str, ruleset: Ruleset) -> list[GoldenCase]:
    """The cases of one file (`file` is its name as shown in messages); raise CaseFileInvalid."""
    tree, issues = parse_yaml(file, text)
    reader = Reader()
    reader.issues.extend(issues)
    if tree is None:
        if not issues:
            reader.error(Pos(file, 1, 1), f"{file} is empty; add `cases:` with at least one case")
        raise CaseFileInvalid(reader.issues)
    cases = _CaseReader(reader, ruleset).read(file, tree)
    if reader.issues:
        raise CaseFileInvalid(reader.issues)
    return cases


def read_case_files(texts: Mapping[str, str], ruleset: Ruleset) -> list[GoldenCase]:
    """The cases of several files, in file order; every problem of every file in one CaseFileInvalid,
    including a case name used twice."""
    cases: list[GoldenCase] = []
    issues: list[RulesetIssue] = []
    for file in sorted(texts):
        try:
            cases.extend(read_case_file(file, texts[file], ruleset))
        except CaseFileInvalid as invalid:
            issues.extend(invalid.issues)
    first: dict[str, GoldenCase] = {}
    for case in cases:
        if case.name in first:
            issues.append(
                RulesetIssue(
                    case.file, case.line, 1,
                    f"case name `{case.name}` is already used at {first[case.name].where}; names must be unique",
                )
            )
        first.setdefault(case.name, case)
    if issues:
        raise CaseFileInvalid(issues)
    return cases


class _CaseReader:
    """Reads one file's `defaults` and `cases`, checking names against the ruleset."""

    def __init__(self, reader: Reader, ruleset: Ruleset) -> None:
        self.r = reader
        self.ruleset = ruleset
        self.grades = tuple(grade.grade for grade in ruleset.grades)
        self.flags = tuple(flag.flag for flag in ruleset.flags)
        self.rule_ids = tuple(sorted(ruleset.rule_ids))
        self.indicators = tuple(indicator.code for indicator in ruleset.indicators)

    def read(self, file: str, tree: YNode) -> list[GoldenCase]:
        top = self.r.mapping(tree, f"the top level of {file}", required=("cases",), optional=("defaults",))
        if top is None:
            return []
        unit, period = dict(FALLBACK_UNIT), self.ruleset.in_force_from
        if "defaults" in top.items:
            defaults = self.r.mapping(top.items["defaults"], "`defaults`", optional=("unit", "period"))
            if defaults is not None:
                unit.update(self.unit(defaults.items.get("unit"), "`defaults`"))
                period = self.period(defaults.items.get("period"), "`defaults`") or period
        cases: list[GoldenCase] = []
        seen: dict[str, Pos] = {}
        for item in self.r.sequence(top.items["cases"], "`cases`"):
            case = self.case(file, item, unit, period)
            if case is None:
                continue
            if case.name in seen:
                self.r.error(item.pos, f"case name `{case.name}` is already used at {seen[case.name]}; keep one")
                continue
            seen[case.name] = item.pos
            cases.append(case)
        if not cases and not self.r.issues:
            self.r.error(top.items["cases"].pos, "`cases` is empty; add at least one case")
        return cases

    def case(self, file: str, node: YNode, unit_defaults: Mapping[str, str], period: str) -> GoldenCase | None:
        name_node = node.items.get("name") if isinstance(node, YMap) else None
        name = None
        if name_node is not None:
            name = self.r.text(name_node, "a case name", example="name: timeliness-72.5-criticism")
        what = f"case `{name}`" if name else "this case"
        if isinstance(node, YMap) and "quarters" in node.items and name is not None:
            from civicscore.ruleset.rollupcase import rollup_case  # a half-year or year; it builds on this module

            return rollup_case(self, file, node, name, what, unit_defaults)
        block = self.r.mapping(
            node,
            what,
            required=("name", "expect"),
            optional=("description", "unit", "period", "counts", "assignments", "overdue", "measurements",
                      "previous", "quarters", "under_review", "obstacles", "officials"),
        )
        if block is None or name is None:
            return None
        items = block.items
        before = len(self.r.issues)
        description = ""
        if "description" in items:
            description = self.r.text(items["description"], f"the description of {what}", example="...") or ""
        unit = {**unit_defaults, **self.unit(items.get("unit"), what)}
        period = self.period(items.get("period"), what) or period
        quarter = Quarter.parse(period)
        counts: TaskCounts | None = None
        overdue: list[OverdueTask | None] = []
        extended: tuple[ExtendedTask, ...] = ()
        if "counts" in items and "assignments" in items:
            self.r.error(items["assignments"].pos, f"{what} gives both `counts` and `assignments`: give one, the "
                                                   "counts or the assignments they are worked out from")
        elif "assignments" in items:
            if "overdue" in items:
                self.r.error(items["overdue"].pos, f"`overdue` of {what} is worked out from `assignments`; leave "
                                                   "it out (list the open assignments with their reminders)")
            inputs = self.assignments(items["assignments"], what, quarter)
            if inputs is not None:
                counts, overdue, extended = inputs.counts, list(inputs.overdue), inputs.extended
        elif "counts" in items:
            counts = self.counts(items["counts"], what)
            if "overdue" in items:
                listed = self.r.sequence(items["overdue"], f"`overdue` of {what}")
                overdue = [self.task(item, what, quarter) for item in listed]
        else:
            self.r.error(block.pos, f"{what} has no task facts: add `counts` (how many assignments were due, "
                                    "completed, on time...) or `assignments` (each one with its dates)")
        measurements: list[MeasurementFact | None] = []
        if "measurements" in items:
            listed = self.r.sequence(items["measurements"], f"`measurements` of {what}")
            measurements = [self.measurement(item, what) for item in listed]
        previous = self.previous(items["previous"], what, quarter) if "previous" in items else None
        obstacles = self.obstacles(items["obstacles"], what, quarter) if "obstacles" in items else ()
        under_review: bool | None = False
        if "under_review" in items:
            under_review = self.boolean(items["under_review"], f"`under_review` of {what}")
        officials: tuple[CaseOfficial, ...] | None = ()
        if "officials" in items:
            officials = read_officials(self, items["officials"], what, quarter, unit["code"])
        official_ids = tuple(o.official.official_id for o in officials or ())
        expect = self.expectation(items["expect"], what, official_ids)
        if counts is None or officials is None:
            return None
        facts = UnitFacts(
            unit_code=unit["code"],
            unit_kind=UnitKind(unit["kind"]),
            block=unit["block"],
            period=period,
            counts=counts,
            overdue=tuple(task for task in overdue if task is not None),
            measurements=tuple(m for m in measurements if m is not None),
            under_review=bool(under_review),
            previous=previous,
            extended=extended,
            obstacles=obstacles,
        )
        try:
            check_facts([facts])
        except InvalidFacts as error:
            detail = str(error).replace(f"unit {facts.unit_code} {facts.period}: ", "")
            where = items["counts"] if "counts" in items else items["assignments"]
            self.r.error(where.pos, f"the facts of {what} contradict each other: {detail}")
            return None
        if expect is None or len(self.r.issues) > before:
            return None
        return GoldenCase(name, file, block.pos.line, facts, expect, description, officials)

    # ---- facts ------------------------------------------------------------------------------

    def unit(self, node: YNode | None, what: str) -> dict[str, str]:
        if node is None:
            return {}
        block = self.r.mapping(node, f"`unit` of {what}", optional=("code", "kind", "block"))
        if block is None:
            return {}
        found: dict[str, str] = {}
        for key, example in (("code", "code: SNV"), ("kind", "kind: department"), ("block", "block: departments")):
            if key in block.items:
                text = self.r.text(block.items[key], f"the unit {key} of {what}", example=example)
                if text is not None and key == "kind" and text not in UNIT_KINDS:
                    hint = did_you_mean(text, UNIT_KINDS) or f" kinds: {', '.join(UNIT_KINDS)}."
                    self.r.error(block.items[key].pos, f"unknown unit kind `{text}` in {what};{hint}")
                    text = None
                if text is not None:
                    found[key] = text
        return found

    def period(self, node: YNode | None, what: str) -> str | None:
        if node is None:
            return None
        text = self.r.text(node, f"the period of {what}", example="period: 2026-Q1")
        if text is None:
            return None
        try:
            return str(Quarter.parse(text))
        except InvalidPeriod as error:
            self.r.error(node.pos, f"the period of {what}: {error}")
            return None

    def counts(self, node: YNode, what: str) -> TaskCounts | None:
        keys = ("completed", "on_time", "late", "reworked")
        block = self.r.mapping(node, f"`counts` of {what}", required=("due",), optional=keys)
        if block is None:
            return None
        values = {
            key: self.r.integer(block.items[key], f"`{key}` of {what}", example=f"{key}: 10")
            for key in ("due", *keys)
            if key in block.items
        }
        if any(value is None for value in values.values()):
            return None
        numbers = {key: value for key, value in values.items() if value is not None}
        numbers.setdefault("completed", 0)
        numbers.setdefault("on_time", 0)
        numbers.setdefault("late", numbers["completed"] - numbers["on_time"])
        return TaskCounts(**numbers)

    def task(self, node: YNode, what: str, quarter: Quarter) -> OverdueTask | None:
        block = self.r.mapping(
            node, f"an overdue assignment of {what}", required=("id", "days_overdue"), optional=("reminders",)
        )
        if block is None:
            return None
        items = block.items
        task_id = self.r.text(items["id"], f"the id of an overdue assignment of {what}", example="id: T1")
        days = self.r.integer(items["days_overdue"], f"`days_overdue` of {what}", example="days_overdue: 31")
        reminders = (
            self.r.integer(items["reminders"], f"`reminders` of {what}", example="reminders: 4")
            if "reminders" in items
            else 0
        )
        if task_id is None or days is None or reminders is None:
            return None
        return OverdueTask(task_id, quarter.end - dt.timedelta(days=days), days, reminders)

    def assignments(self, node: YNode, what: str, quarter: Quarter, *, extra_keys: tuple[str, ...] = ()
                    ) -> QuarterInputs | None:
        """The task facts worked out from a case's assignments (None after an issue); `extra_keys` are keys an
        assignment may also have, read as text and otherwise unused (`unit` of an official's led ones)."""
        listed = self.r.sequence(node, f"`assignments` of {what}")
        if not listed:
            if isinstance(node, YList):
                self.r.error(node.pos, f"`assignments` of {what} is empty; list at least one assignment")
            return None
        approvals = iter(range(1, 1_000_000))  # extension ids in listing order: the later one wins a tie
        tasks = [self.history(item, what, approvals, extra_keys) for item in listed]
        seen: dict[str, Pos] = {}
        for item, task in zip(listed, tasks, strict=True):
            if task is not None and task.assignment_id in seen:
                self.r.error(item.pos, f"assignment `{task.assignment_id}` of {what} is already listed at "
                                       f"{seen[task.assignment_id]}; ids must be unique")
            elif task is not None:
                seen[task.assignment_id] = item.pos
        if any(task is None for task in tasks) or len(seen) != len(tasks):
            return None
        return quarter_inputs([task for task in tasks if task is not None], quarter)

    def history(self, node: YNode, what: str, approvals: Iterator[int], extra_keys: tuple[str, ...] = ()
                ) -> TaskHistory | None:
        block = self.r.mapping(node, f"an assignment of {what}", required=("id", "due_on"),
                               optional=("status", "completed_on", "rework", "reminders", "extensions", *extra_keys))
        if block is None:
            return None
        items = block.items
        before = len(self.r.issues)
        for key in extra_keys:
            if key in items:
                self.r.text(items[key], f"`{key}` of an assignment of {what}", example=f"{key}: SNV")
        task_id = self.r.text(items["id"], f"the id of an assignment of {what}", example="id: T1")
        name = f"assignment `{task_id}` of {what}" if task_id else f"an assignment of {what}"
        due_on = self.date(items["due_on"], f"`due_on` of {name}")
        completed_on = None
        if "completed_on" in items:
            completed_on = self.date(items["completed_on"], f"`completed_on` of {name}")
        status: str | None = "completed" if "completed_on" in items else "in_progress"
        if "status" in items:
            status = self.word(items["status"], f"the status of {name}", "status", STATUSES)
        if status == "completed" and "completed_on" not in items:
            self.r.error(block.pos, f"{name} is completed: add `completed_on` (the day it was completed)")
        if status not in (None, "completed") and "completed_on" in items:
            self.r.error(items["completed_on"].pos, f"{name} is {status}: leave `completed_on` out, or make it "
                                                    "`status: completed`")
        rework = self.boolean(items["rework"], f"`rework` of {name}") if "rework" in items else False
        if rework and status != "completed":
            self.r.error(items["rework"].pos, f"`rework` of {name}: only a completed assignment is returned for "
                                              "rework")
        reminders = (self.r.integer(items["reminders"], f"`reminders` of {name}", example="reminders: 4")
                     if "reminders" in items else 0)
        extensions: list[Approval | None] = []
        if "extensions" in items:
            extensions = [self.approval(item, name, next(approvals))
                          for item in self.r.sequence(items["extensions"], f"`extensions` of {name}")]
        if len(self.r.issues) > before or task_id is None or due_on is None or status is None:
            return None
        return TaskHistory(
            assignment_id=task_id, due_on=due_on, status=OutcomeStatus(status), completed_on=completed_on,
            reworked=bool(rework), reminders=reminders or 0,
            approvals=tuple(a for a in extensions if a is not None))

    def approval(self, node: YNode, name: str, extension_id: int) -> Approval | None:
        """An approved extension `{due_on, approved_on}`, approved at noon of its day (Hanoi time)."""
        block = self.r.mapping(node, f"an extension of {name}", required=("due_on", "approved_on"))
        if block is None:
            return None
        due_on = self.date(block.items["due_on"], f"the new `due_on` of an extension of {name}")
        approved_on = self.date(block.items["approved_on"], f"`approved_on` of an extension of {name}")
        if due_on is None or approved_on is None:
            return None
        return Approval(extension_id, due_on, dt.datetime.combine(approved_on, APPROVAL_TIME, HANOI))

    def obstacles(self, node: YNode, what: str, quarter: Quarter) -> tuple[OpenObstacle, ...]:
        """The obstacles of a case open at the quarter's end: each `{assignment, reported_on}` with an optional
        `id` (default: its place in the list) and `resolved_on`. One resolved by the end, or reported after
        it, is not open then (as the server counts them: Hanoi dates)."""
        found: list[OpenObstacle] = []
        seen: set[int] = set()
        for number, item in enumerate(self.r.sequence(node, f"`obstacles` of {what}"), start=1):
            block = self.r.mapping(item, f"an obstacle of {what}", required=("assignment", "reported_on"),
                                   optional=("id", "resolved_on"))
            if block is None:
                continue
            items = block.items
            obstacle_id = (self.r.integer(items["id"], f"the id of an obstacle of {what}", example="id: 3", minimum=1)
                           if "id" in items else number)
            name = f"obstacle {obstacle_id} of {what}"
            assignment = self.r.text(items["assignment"], f"the assignment of {name}", example="assignment: T1")
            reported_on = self.date(items["reported_on"], f"`reported_on` of {name}")
            resolved_on = self.date(items["resolved_on"], f"`resolved_on` of {name}") if "resolved_on" in items \
                else None
            if obstacle_id is not None and obstacle_id in seen:
                self.r.error(item.pos, f"{name}: the id is already listed; ids must be unique")
                continue
            if resolved_on is not None and reported_on is not None and resolved_on < reported_on:
                self.r.error(items["resolved_on"].pos, f"{name} is resolved before it was reported")
                continue
            if obstacle_id is None or assignment is None or reported_on is None:
                continue
            seen.add(obstacle_id)
            if reported_on <= quarter.end and (resolved_on is None or resolved_on > quarter.end):
                found.append(OpenObstacle(obstacle_id, assignment, (quarter.end - reported_on).days))
        return tuple(sorted(found, key=lambda o: (-o.days_open, o.obstacle_id)))

    def date(self, node: YNode, what: str) -> dt.date | None:
        """A date `YYYY-MM-DD` in 2000-2100 (YAML reads an unquoted one as a date already)."""
        value = node.value if isinstance(node, YScalar) else None
        if isinstance(value, str) and len(value.strip()) == 10:
            with contextlib.suppress(ValueError):
                value = dt.date.fromisoformat(value.strip())
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime) and FIRST_YEAR <= value.year <= LAST_YEAR:
            return value
        self.r.error(node.pos, f"{what} must be a date from {FIRST_YEAR}-01-01 to {LAST_YEAR}-12-31, e.g. "
                               f"`2026-02-10`, found {describe(node)}")
        return None

    def measurement(self, node: YNode, what: str) -> MeasurementFact | None:
        block = self.r.mapping(
            node, f"a measurement of {what}", required=("indicator", "numerator", "denominator"), optional=("target",)
        )
        if block is None:
            return None
        items = block.items
        code = self.word(items["indicator"], f"the indicator of a measurement of {what}", "indicator", self.indicators)
        numbers = {
            key: self.r.number(items[key], f"`{key}` of a measurement of {what}", example=f"{key}: 70", minimum=0)
            for key in ("numerator", "denominator", "target")
            if key in items
        }
        if code is None or any(value is None for value in numbers.values()):
            return None
        numerator, denominator = numbers["numerator"], numbers["denominator"]
        assert numerator is not None and denominator is not None
        return MeasurementFact(code, numerator, denominator, numbers.get("target"))

    def previous(self, node: YNode, what: str, quarter: Quarter) -> PriorQuarter | None:
        block = self.r.mapping(node, f"`previous` of {what}", required=("grade",), optional=("flags",))
        if block is None:
            return None
        grade = self.word(block.items["grade"], f"the previous grade of {what}", "grade", self.grades)
        flags = self.words(block.items.get("flags"), f"the previous flags of {what}", "flag", self.flags)
        if grade is None or flags is None:
            return None
        return PriorQuarter(str(quarter.previous()), grade, flags)

    # ---- expectations -----------------------------------------------------------------------

    def expectation(self, node: YNode, what: str, official_ids: tuple[str, ...] = ()) -> Expectation | None:
        keys = ("score", "grade", "flags", "penalty", "fired", "not_fired", "indicators", "reasons", "officials")
        block = self.r.mapping(node, f"`expect` of {what}", optional=keys)
        if block is None:
            return None
        items = block.items
        if not items:
            self.r.error(block.pos, f"`expect` of {what} is empty; say at least the `grade` and `flags` expected")
            return None
        score = None
        if "score" in items and not (isinstance(items["score"], YScalar) and items["score"].value is None):
            score = self.r.number(items["score"], f"the expected score of {what}", example="score: 82.06")
        penalty = None
        if "penalty" in items:
            what_penalty = f"the expected penalty of {what}"
            penalty = self.r.number(items["penalty"], what_penalty, example="penalty: 2", minimum=0)
        grade = None
        if "grade" in items:
            grade = self.word(items["grade"], f"the expected grade of {what}", "grade", self.grades)
        flags = self.words(items.get("flags"), f"the expected flags of {what}", "flag", self.flags)
        fired = self.words(items.get("fired"), f"`fired` of {what}", "rule", self.rule_ids)
        not_fired = self.words(items.get("not_fired"), f"`not_fired` of {what}", "rule", self.rule_ids)
        indicators = self.indicator_expectations(items["indicators"], what) if "indicators" in items else {}
        reasons = self.reason_expectations(items["reasons"], what) if "reasons" in items else {}
        officials = (read_official_expectations(self, items["officials"], what, official_ids)
                     if "officials" in items else {})
        return Expectation(
            score=score,
            score_given="score" in items,
            grade=grade,
            flags=flags if "flags" in items else None,
            penalty=penalty,
            fired=fired or (),
            not_fired=not_fired or (),
            indicators=indicators,
            reasons=reasons,
            officials=officials,
        )

    def indicator_expectations(self, node: YNode, what: str) -> dict[str, IndicatorExpectation]:
        block = self.r.mapping(node, f"`indicators` of {what}", optional=self.indicators)
        found: dict[str, IndicatorExpectation] = {}
        for code, item in (block.items if block is not None else {}).items():
            if code not in self.indicators:
                continue  # reported by `mapping`, with a "did you mean"
            expected = self.r.mapping(item, f"the expected {code} of {what}", optional=("counted", "attainment"))
            if expected is None:
                continue
            counted = attainment = None
            if "counted" in expected.items:
                counted = self.boolean(expected.items["counted"], f"`counted` of {code} in {what}")
            if "attainment" in expected.items:
                attainment = self.r.number(
                    expected.items["attainment"],
                    f"`attainment` of {code} in {what}",
                    example="attainment: 0.875",
                    minimum=0,
                    maximum=1,
                )
            found[code] = IndicatorExpectation(counted, attainment)
        return found

    def reason_expectations(self, node: YNode, what: str) -> dict[str, dict[str, str]]:
        block = self.r.mapping(node, f"`reasons` of {what}", optional=self.rule_ids)
        found: dict[str, dict[str, str]] = {}
        for rule_id, item in (block.items if block is not None else {}).items():
            if rule_id not in self.rule_ids:
                continue
            texts = self.r.mapping(item, f"the expected reason of `{rule_id}` in {what}", optional=("vi", "en"))
            if texts is None:
                continue
            found[rule_id] = {
                lang: text
                for lang, text_node in texts.items.items()
                if (text := self.r.text(text_node, f"the {lang} reason of `{rule_id}` in {what}", example="..."))
            }
        return found

    # ---- values -----------------------------------------------------------------------------

    def boolean(self, node: YNode, what: str) -> bool | None:
        if isinstance(node, YScalar) and isinstance(node.value, bool):
            return node.value
        self.r.error(node.pos, f"{what} must be true or false, found {describe(node)}")
        return None

    def word(self, node: YNode, what: str, kind: str, known: Collection[str]) -> str | None:
        text = self.r.text(node, what, example=f"{kind}: ...")
        if text is not None and text not in known:
            hint = did_you_mean(text, known) or f" known: {', '.join(known)}."
            self.r.error(node.pos, f"unknown {kind} `{text}` in {what};{hint}")
            return None
        return text

    def words(self, node: YNode | None, what: str, kind: str, known: Collection[str]) -> tuple[str, ...] | None:
        if node is None:
            return ()
        items = self.r.sequence(node, what)
        found = [self.word(item, what, kind, known) for item in items]
        return tuple(word for word in found if word is not None) if len(found) == len(items) else None
