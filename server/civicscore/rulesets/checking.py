"""Checking candidate rule files, and running golden cases, in processes of their own.

`check_ruleset_files`: everything candidate rule files must pass before they may go live.

1. The static checks of `load_ruleset`: YAML syntax and limits, keys, types, names, translations,
   thresholds that can never be crossed, and the durable_rules hazards (DESIGN §4).
2. A test-load: the compiled ruleset in a throwaway engine process (an EnginePool of one
   worker) and one smoke evaluation of units and officials, within `timeout_s`. It catches what only durable_rules
   itself can tell (a ruleset it refuses, or hangs on) without touching a live worker.

Candidate files come from outside (an RPC, the watched folder, a policy person's editor), so the
server's CheckRuleset RPC, its activations and `civicscore rules check` call `check_candidate`:
both steps in a child process with a time and memory budget (engine/sandbox.py), killed when the
budget is spent or the caller goes away. A spent budget is an issue like any other.
The pure `ruleset` package parses, checks statically and runs cases with an engine it is given;
this module is where processes are started for it.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from civicscore.domain.model import (
    MeasurementFact,
    OverdueTask,
    PriorQuarter,
    TaskCounts,
    UnitEvaluation,
    UnitFacts,
    UnitKind,
)
from civicscore.domain.officials import HeadedUnit, OfficialEvaluation, OfficialFacts, Position
from civicscore.domain.periods import Quarter
from civicscore.engine.pool import EnginePool
from civicscore.engine.port import EngineError, EvaluationCancelled
from civicscore.engine.sandbox import Budget, BudgetExceeded, Cancellation, run_budgeted, start_early
from civicscore.ruleset.casecoverage import coverage_of
from civicscore.ruleset.cases import CaseRun, read_case_files, run_cases
from civicscore.ruleset.errors import RulesetInvalid, RulesetIssue
from civicscore.ruleset.limits import CHECK_MEMORY_BYTES, CHECK_TIME_S
from civicscore.ruleset.loader import load_ruleset
from civicscore.ruleset.model import Ruleset

HEADER_FILE = "ruleset.yaml"
CHECK_BUDGET = Budget(CHECK_TIME_S, CHECK_MEMORY_BYTES)
_REPLY_MARGIN_S = 2.0  # of the time budget, kept for the child to report a late test-load itself


@dataclass(frozen=True)
class CheckOutcome:
    """The result of checking rule files: the ruleset when it may go live, else every issue."""

    ruleset: Ruleset | None
    issues: list[RulesetIssue]

    @property
    def valid(self) -> bool:
        """True when the files passed every check and test-loaded."""
        return self.ruleset is not None and not self.issues


def check_ruleset_files(files: Mapping[str, str], timeout_s: float = 60.0) -> CheckOutcome:
    """Check rule files (`{path: text}`, as `load_ruleset` takes them) statically, then test-load them
    in a throwaway engine process bounded by `timeout_s`; a failed or late test-load is an issue
    (line 0: not tied to a line). Runs in this process: for files from outside, `check_candidate`."""
    try:
        ruleset = load_ruleset(files)
    except RulesetInvalid as invalid:
        return CheckOutcome(None, list(invalid.issues))
    problem = trial_load(files, ruleset, timeout_s=timeout_s)
    if problem is not None:
        return CheckOutcome(None, [problem])
    return CheckOutcome(ruleset, [])


def check_candidate(files: Mapping[str, str], *, budget: Budget = CHECK_BUDGET,
                    cancelled: Cancellation | None = None) -> CheckOutcome:
    """`check_ruleset_files` in a child process within `budget` (the test-load gets all but a
    moment of its time); a spent budget, or a child that fails, is an issue (line 0).

    Raises EvaluationCancelled soon after `cancelled` is set (the child is killed).
    """
    test_load_s = max(budget.time_s - _REPLY_MARGIN_S, budget.time_s / 2)
    try:
        outcome: CheckOutcome = run_budgeted(check_ruleset_files, dict(files), test_load_s, budget=budget,
                                             cancelled=cancelled, what="checking the rule files")
        return outcome
    except EvaluationCancelled:
        raise
    except BudgetExceeded as spent:
        busy = " (or the machine is very busy)" if spent.resource == "time" else ""
        return CheckOutcome(None, [RulesetIssue(HEADER_FILE, 0, 0, (
            f"{spent}; nothing was changed. These files are far larger or more complex than rules need{busy}: "
            "look for a very long list, text or file added last, and shorten or split it"))])
    except EngineError as error:
        return CheckOutcome(None, [RulesetIssue(HEADER_FILE, 0, 0, (
            f"{error}; nothing was changed. Undo the change you made last, and send these files to the "
            "civicscore team if they look right to you"))])


def start_checking() -> None:
    """Get `check_candidate`'s processes ready (a server calls this at start-up): the first check is
    then as quick as the others."""
    start_early(check_ruleset_files)


def smoke_units(ruleset: Ruleset) -> list[UnitFacts]:
    """Two synthetic units that reach every stage and every kind of fact: a busy department with
    an overdue assignment, every indicator and a previous quarter, and a ward with nothing due."""
    quarter = Quarter.parse(ruleset.in_force_from)
    previous = PriorQuarter(str(quarter.previous()), ruleset.grades[0].grade, tuple(f.flag for f in ruleset.flags))
    busy = UnitFacts(
        unit_code="CHECK-DEPARTMENT",
        unit_kind=UnitKind.DEPARTMENT,
        block="departments",
        period=str(quarter),
        counts=TaskCounts(due=10, completed=8, on_time=6, late=2, reworked=1),
        overdue=(OverdueTask("CHECK-1", quarter.end - dt.timedelta(days=45), 45, 4),),
        measurements=tuple(MeasurementFact(indicator.code, 50.0, 100.0) for indicator in ruleset.indicators),
        previous=previous,
    )
    idle = UnitFacts("CHECK-WARD", UnitKind.WARD, "communes", str(quarter), TaskCounts(), under_review=True)
    return [busy, idle]


def smoke_officials(ruleset: Ruleset) -> list[OfficialFacts]:
    """Two synthetic officials that reach every kind of fact of people: the head of a unit that raised every
    flag, leading assignments with two long overdue, and an official under review with no position."""
    period = str(Quarter.parse(ruleset.in_force_from))
    flags = tuple(f.flag for f in ruleset.flags)
    headed = HeadedUnit("CHECK-DEPARTMENT", "Đơn vị kiểm tra", "Check department", flags, (), UnitKind.DEPARTMENT,
                        "departments")
    busy = OfficialFacts("CHECK-HEAD", "CHECK-DEPARTMENT", period, Position.HEAD.value, False,
                         TaskCounts(due=10, completed=8, on_time=6, late=2, reworked=1), (45, 40), (headed,))
    idle = OfficialFacts("CHECK-OFFICER", "CHECK-WARD", period, "", True, TaskCounts())
    return [busy, idle]


def trial_load(files: Mapping[str, str], ruleset: Ruleset, *, timeout_s: float) -> RulesetIssue | None:
    """Load the ruleset in a one-worker EnginePool and evaluate `smoke_units` and `smoke_officials`; an
    issue when that fails or does not finish within `timeout_s` (a worker still starting then is killed by
    the pool)."""
    units = smoke_units(ruleset)
    officials = smoke_officials(ruleset)
    outcome: list[Sequence[UnitEvaluation | OfficialEvaluation] | BaseException] = []

    def trial() -> None:
        try:
            with EnginePool(ruleset, workers=1, job_timeout_s=max(timeout_s, 0.001), max_attempts=1,
                            start_timeout_s=max(timeout_s, 0.001)) as pool:
                outcome.append([*pool.evaluate(units), *pool.evaluate(officials)])
        except Exception as error:  # any failure of the trial is reported, never raised
            outcome.append(error)

    thread = threading.Thread(target=trial, name="ruleset-test-load", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if not outcome:
        return RulesetIssue(
            HEADER_FILE,
            0,
            0,
            f"the rules passed every check, but loading them into the rules engine did not finish within "
            f"{timeout_s:g} s: durable_rules may hang on a ruleset (e.g. very many `==` values or rules); "
            "nothing was changed. Simplify the rules you changed last, or try again if the machine is busy",
        )
    result = outcome[0]
    if isinstance(result, BaseException):
        message = f"{type(result).__name__}: {result}"
        return RulesetIssue(
            _file_named_in(message, ruleset),
            0,
            0,
            f"the rules passed every check, but the rules engine failed to load or run them in a test "
            f"({message}); nothing was changed. Undo the change you made last, and send these files "
            "to the civicscore team if they look right to you",
        )
    if len(result) != len(units) + len(officials):
        return RulesetIssue(
            HEADER_FILE,
            0,
            0,
            f"the rules engine gave {len(result)} results for {len(units)} test units and {len(officials)} test "
            "officials; nothing was changed. Send these files to the civicscore team",
        )
    return None


def _file_named_in(message: str, ruleset: Ruleset) -> str:
    """The file of the rule an error message names (the longest id found), else ruleset.yaml."""
    named = [rule for rule in ruleset.rules if rule.rule_id in message]
    if not named:
        return HEADER_FILE
    rule = max(named, key=lambda r: len(r.rule_id))
    return rule.source.rsplit(":", 1)[0]


def run_case_files(
    files: Mapping[str, str], case_texts: Mapping[str, str], select: str | None = None, *, workers: int | None = None
) -> tuple[Ruleset, CaseRun]:
    """Load the rule files, read the case files (`{name: text}`), keep the cases whose name contains
    `select`, and run them in a fresh EnginePool (two workers past 100 cases unless `workers` says).
    Raises RulesetInvalid or CaseFileInvalid. `civicscore rules test` runs it in a budgeted process
    (engine/sandbox.py): the files come from outside."""
    ruleset = load_ruleset(files)
    cases = [case for case in read_case_files(case_texts, ruleset) if select is None or select in case.name]
    if not cases:
        return ruleset, CaseRun((), coverage_of(ruleset, []))
    with EnginePool(ruleset, workers=workers or (2 if len(cases) > 100 else 1)) as pool:
        return ruleset, run_cases(pool, ruleset, cases)
