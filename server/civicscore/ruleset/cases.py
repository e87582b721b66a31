"""Golden cases: run case files through the rules engine and compare with what they expect.

Shared by tests/test_default_rules.py and `civicscore rules test`, so both run the same cases
the same way:

    ruleset = load_ruleset(files)
    cases = read_case_files({"tests/default_cases.yaml": text}, ruleset)   # CaseFileInvalid
    with EnginePool(ruleset, workers=1) as pool:
        run = run_cases(pool, ruleset, cases)          # one engine call for every case
    for result in run.failures:
        print(result.headline(), *result.details(), sep="\\n")
    run.coverage.complete, run.coverage.summary()

A case may also list officials (`officialcase`): once every unit is evaluated, their facts are built
from the case's unit and its result (`engine.people.build_official_facts`) and evaluated in one more call.

This module is pure: it takes an engine, never starts one (`rulesets.checking.run_case_files`
starts one for the CLI, in a budgeted process).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, overload

from civicscore.domain.model import FiredRule, RollupFacts, Unit, UnitEvaluation, UnitFacts
from civicscore.domain.officials import OfficialEvaluation, OfficialFacts
from civicscore.domain.periods import Quarter
from civicscore.domain.scoring import display_score
from civicscore.engine.people import build_official_facts
from civicscore.ruleset.casecoverage import (
    CoverageReport,
    RuleCoverage,
    ThresholdCoverage,
    coverage_of,
    facts_seen,
)
from civicscore.ruleset.casefile import (
    CaseFileInvalid,
    Expectation,
    GoldenCase,
    IndicatorExpectation,
    read_case_file,
    read_case_files,
)
from civicscore.ruleset.model import Ruleset
from civicscore.ruleset.officialcase import OfficialExpectation

__all__ = [
    "CaseEngine",
    "CaseFileInvalid",
    "CaseResult",
    "CaseRun",
    "CoverageReport",
    "Expectation",
    "GoldenCase",
    "IndicatorExpectation",
    "OfficialExpectation",
    "RuleCoverage",
    "ThresholdCoverage",
    "case_differences",
    "coverage_of",
    "facts_seen",
    "read_case_file",
    "read_case_files",
    "run_cases",
]

_SCORE_TOLERANCE = 1e-9
_ATTAINMENT_TOLERANCE = 1e-6


class CaseEngine(Protocol):
    """What running cases needs of a rules engine (EnginePool has it)."""

    @overload
    def evaluate(self, facts: Sequence[UnitFacts | RollupFacts]) -> list[UnitEvaluation]: ...

    @overload
    def evaluate(self, facts: Sequence[OfficialFacts]) -> list[OfficialEvaluation]: ...

    def evaluate(self, facts: Sequence[UnitFacts | RollupFacts] | Sequence[OfficialFacts]
                 ) -> list[UnitEvaluation] | list[OfficialEvaluation]:
        """Evaluate units (or officials); results in the order of `facts`."""
        ...


@dataclass(frozen=True)
class CaseResult:
    """One case, what the engine gave for it, and every difference from what it expects."""

    case: GoldenCase
    evaluation: UnitEvaluation
    differences: tuple[str, ...]
    officials: tuple[OfficialEvaluation, ...] = ()  # the case's officials who were evaluated, by id

    @property
    def passed(self) -> bool:
        """Whether the engine gave everything the case expects."""
        return not self.differences

    @property
    def fired(self) -> list[str]:
        """Ids of the rules that fired, each once, in the order they are listed."""
        return list(dict.fromkeys(rule.rule_id for rule in self.evaluation.fired_rules))

    def headline(self) -> str:
        """`PASS name` or `FAIL name (tests/default_cases.yaml:42)`."""
        return f"PASS {self.case.name}" if self.passed else f"FAIL {self.case.name} ({self.case.where})"

    def details(self) -> list[str]:
        """The differences, then what the engine gave (score, grade, flags, the rules that fired)."""
        if self.passed:
            return []
        result = self.evaluation
        score = "no score" if result.score is None else _number(display_score(result.score))
        flags = ", ".join(flag.flag for flag in result.flags) or "none"
        fired: dict[str, list[str]] = {}
        for rule in result.fired_rules:
            fired.setdefault(rule.rule_id, [])
            if rule.fact != "unit":
                fired[rule.rule_id].append(rule.fact)
        rules = ", ".join(f"{rule_id} [{', '.join(facts)}]" if facts else rule_id for rule_id, facts in fired.items())
        people = [
            f"  got for official {official.official_id}: flags {', '.join(f.flag for f in official.flags) or 'none'}"
            f"; rules that fired: {', '.join(dict.fromkeys(r.rule_id for r in official.fired_rules)) or 'none'}"
            for official in self.officials
        ]
        return [
            *(f"  {difference}" for difference in self.differences),
            f"  got: score {score}, grade {result.grade}, flags {flags}",
            f"  rules that fired: {rules or 'none'}",
            *people,
        ]


@dataclass(frozen=True)
class CaseRun:
    """Every case's result and the coverage of the ruleset by these cases."""

    results: tuple[CaseResult, ...]
    coverage: CoverageReport

    @property
    def failures(self) -> list[CaseResult]:
        """The cases that did not get what they expect."""
        return [result for result in self.results if not result.passed]

    @property
    def passed(self) -> bool:
        """Whether every case passed."""
        return not self.failures


def run_cases(engine: CaseEngine, ruleset: Ruleset, cases: Sequence[GoldenCase]) -> CaseRun:
    """Evaluate every case's unit in one engine call, then every case's officials in one more, and compare
    each result with its expectations."""
    evaluations = engine.evaluate([case.facts for case in cases]) if cases else []
    people = [case_official_facts(case, evaluation) for case, evaluation in zip(cases, evaluations, strict=True)]
    flat = [facts for facts_of_case in people for facts in facts_of_case]
    evaluated = iter(engine.evaluate(flat) if flat else [])
    officials = [tuple(next(evaluated) for _ in facts_of_case) for facts_of_case in people]
    results = tuple(
        CaseResult(case, evaluation, tuple(case_differences(case.expect, evaluation, theirs)), theirs)
        for case, evaluation, theirs in zip(cases, evaluations, officials, strict=True)
    )
    triples: list[tuple[str, UnitFacts | RollupFacts | OfficialFacts, UnitEvaluation | OfficialEvaluation]] = [
        (case.name, case.facts, evaluation) for case, evaluation in zip(cases, evaluations, strict=True)
    ]
    for case, facts_of_case, theirs in zip(cases, people, officials, strict=True):
        triples.extend((case.name, facts, result) for facts, result in zip(facts_of_case, theirs, strict=True))
    return CaseRun(results, coverage_of(ruleset, triples))


def case_official_facts(case: GoldenCase, evaluation: UnitEvaluation) -> list[OfficialFacts]:
    """The facts of a case's officials, as the server builds them, with the case's unit (its code for its
    names) and its evaluation as the only unit result."""
    if not case.officials or not isinstance(case.facts, UnitFacts):
        return []
    facts = case.facts
    unit = Unit(facts.unit_code, facts.unit_code, facts.unit_code, facts.unit_kind, facts.block,
                under_review_periods=(facts.period,) if facts.under_review else ())
    return build_official_facts(
        Quarter.parse(facts.period),
        [official.official for official in case.officials],
        units={unit.code: unit},
        unit_results={unit.code: evaluation},
        led={official.official.official_id: official.led for official in case.officials},
        led_overdue={official.official.official_id: official.led_overdue for official in case.officials},
    )


def case_differences(expect: Expectation, result: UnitEvaluation,
                     officials: Sequence[OfficialEvaluation] = ()) -> list[str]:
    """Each way the result (and the officials' results) differs from the expectation, as one readable line."""
    found: list[str] = []
    # A case states the score as shown (2 decimals); the engine's score is unrounded.
    shown = None if result.score is None else display_score(result.score)
    if expect.score_given and not _same(expect.score, shown, _SCORE_TOLERANCE):
        wanted = "no score (nothing due)" if expect.score is None else _number(expect.score)
        got = "no score" if shown is None else _number(shown)
        found.append(f"score: expected {wanted}, got {got}")
    if expect.grade is not None and expect.grade != result.grade:
        found.append(f"grade: expected {expect.grade}, got {result.grade}")
    if expect.flags is not None:
        found += _flag_differences(expect.flags, [flag.flag for flag in result.flags])
    if expect.penalty is not None and not _same(expect.penalty, result.penalty, _SCORE_TOLERANCE):
        found.append(f"penalty: expected {_number(expect.penalty)}, got {_number(result.penalty)}")
    fired = {rule.rule_id: rule for rule in result.fired_rules}
    found += [f"fired: {rule_id} did not fire" for rule_id in expect.fired if rule_id not in fired]
    found += [
        f"not_fired: {rule_id} fired ({fired[rule_id].fact}: {fired[rule_id].reason_en})"
        for rule_id in expect.not_fired
        if rule_id in fired
    ]
    found += _indicator_differences(expect.indicators, result)
    found += _reason_differences(expect.reasons, result.fired_rules)
    by_id = {official.official_id: official for official in officials}
    for official_id, expected in expect.officials.items():
        official = by_id.get(official_id)
        if official is None:
            found.append(f"official {official_id}: not evaluated (no active position held during the quarter)")
            continue
        found += [f"official {official_id}: {difference}" for difference in _official_differences(expected, official)]
    return found


def _official_differences(expect: OfficialExpectation, result: OfficialEvaluation) -> list[str]:
    found: list[str] = []
    if expect.flags is not None:
        found += _flag_differences(expect.flags, [flag.flag for flag in result.flags])
    fired = {rule.rule_id: rule for rule in result.fired_rules}
    found += [f"fired: {rule_id} did not fire" for rule_id in expect.fired if rule_id not in fired]
    found += [
        f"not_fired: {rule_id} fired ({fired[rule_id].fact}: {fired[rule_id].reason_en})"
        for rule_id in expect.not_fired
        if rule_id in fired
    ]
    # The reasons a flag carries (a headed unit's) count as reasons of the official.
    shown = [*result.fired_rules, *(reason for flag in result.flags for reason in flag.reasons)]
    found += _reason_differences(expect.reasons, shown)
    return found


def _flag_differences(expected: Sequence[str], got: Sequence[str]) -> list[str]:
    missing = [flag for flag in expected if flag not in got]
    unexpected = [flag for flag in got if flag not in expected]
    parts = [f"missing {', '.join(missing)}"] if missing else []
    parts += [f"unexpected {', '.join(unexpected)}"] if unexpected else []
    if parts:
        return ["flags: " + "; ".join(parts)]
    if list(expected) != list(got):
        order = f"expected [{', '.join(expected)}], got [{', '.join(got)}]"
        return [f"flags: {order} (list them in the order of flags.yaml)"]
    return []


def _indicator_differences(expected: Mapping[str, IndicatorExpectation], result: UnitEvaluation) -> list[str]:
    found = []
    scores = {score.indicator: score for score in result.indicators}
    for code, wanted in expected.items():
        score = scores.get(code)
        if score is None:
            found.append(f"indicators: {code} has no measurement in this case")
            continue
        if wanted.counted is not None and wanted.counted != score.counted:
            found.append(
                f"indicators: {code} expected {'counted' if wanted.counted else 'not counted'}, "
                f"was {'counted' if score.counted else 'not counted'}"
            )
        if wanted.attainment is not None and not _same(wanted.attainment, score.attainment, _ATTAINMENT_TOLERANCE):
            found.append(
                f"indicators: {code} attainment expected {_number(wanted.attainment)}, got {_number(score.attainment)}"
            )
    return found


def _reason_differences(expected: Mapping[str, Mapping[str, str]], shown: Sequence[FiredRule]) -> list[str]:
    found = []
    for rule_id, texts in expected.items():
        fired = [rule for rule in shown if rule.rule_id == rule_id]
        if not fired:
            found.append(f"reasons: {rule_id} did not fire")
            continue
        for lang, text in texts.items():
            given = [rule.reason_vi if lang == "vi" else rule.reason_en for rule in fired]
            if text not in given:
                quoted = " | ".join(f'"{g}"' for g in given)
                found.append(f'reasons: {rule_id} ({lang}): expected "{text}", got {quoted}')
    return found


def _same(expected: float | None, got: float | None, tolerance: float) -> bool:
    if expected is None or got is None:
        return expected is None and got is None
    return math.isclose(expected, got, rel_tol=tolerance, abs_tol=tolerance)


def _number(value: float) -> str:
    """72.5, 70.0, 0.875: the shortest form that shows the value (float noise rounded off)."""
    return repr(float(round(value, 9)))
