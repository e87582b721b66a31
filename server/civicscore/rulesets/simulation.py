"""SimulateRuleset: a stored quarter evaluated with the ruleset in force and with a candidate, compared.

Nothing is stored. The ruleset in force is read from the database when the simulation starts, the
candidate is checked like any activation (in a budgeted process), and both run on the same facts;
`comparison.compare` lines the results up.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from civicscore import evaluate
from civicscore.domain.periods import Quarter
from civicscore.ruleset import Ruleset
from civicscore.rulesets.comparison import Simulation, compare
from civicscore.rulesets.service import Rulesets
from civicscore.store import Store


@dataclass(frozen=True)
class SimulationResult:
    """The comparison, with the two rulesets compared."""

    simulation: Simulation
    baseline: Ruleset
    candidate: Ruleset


def simulate(store: Store, rulesets: Rulesets, files: Mapping[str, str], quarter: Quarter, *, changed_only: bool,
             cancelled: threading.Event | None = None) -> SimulationResult:
    """Evaluate `quarter`'s facts with the ruleset in force for it and with the candidate `files`.

    Raises RulesetRefused (candidate), NoRulesetInForce, EngineError, and EvaluationCancelled when
    `cancelled` is set.
    """
    rulesets.reconcile()  # the ruleset in force as the database has it now
    with (rulesets.lease(quarter) as (baseline, base_engine),
          rulesets.candidate(files, cancelled=cancelled) as (candidate, engine)):
        units = list(evaluate.active_units(store))
        facts = evaluate.gather_facts(store, quarter, units)
        before = base_engine.evaluate(facts, cancelled=cancelled)
        after = engine.evaluate(facts, cancelled=cancelled)
    grade_order = [g.grade for g in candidate.grades] + [g.grade for g in baseline.grades]
    result = compare({u.code: u for u in units}, before, after, changed_only=changed_only, grade_order=grade_order)
    return SimulationResult(result, baseline, candidate)
