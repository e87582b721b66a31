"""A Simulation as the SimulateRuleset response."""

from __future__ import annotations

from civicscore.rulesets.comparison import Simulation, UnitComparison
from civicscore_api.v1 import rulesets_pb2


def simulation_out(
    sim: Simulation, baseline: rulesets_pb2.Ruleset, candidate: rulesets_pb2.Ruleset, period: str
) -> rulesets_pb2.SimulateRulesetResponse:
    """The response for a comparison of `period` (`2026-Q3` or `periods/2026-Q3`; sent as `2026-Q3`, like
    `Evaluation.period`). `baseline` and `candidate` are copied as given: pass them without files."""
    return rulesets_pb2.SimulateRulesetResponse(
        period=period.removeprefix("periods/"),
        baseline=baseline,
        candidate=candidate,
        units_evaluated=sim.units_evaluated,
        units_changing_grade=sim.units_changing_grade,
        units_changing_score=sim.units_changing_score,
        flags_added=sim.flags_added,
        flags_removed=sim.flags_removed,
        flag_changes=[
            rulesets_pb2.FlagChange(flag=change.flag, added=change.added, removed=change.removed)
            for change in sim.flag_changes
        ],
        grade_changes=[
            rulesets_pb2.GradeChange(grade_before=change.grade_before, grade_after=change.grade_after,
                                     units=change.units)
            for change in sim.grade_changes
        ],
        units=[simulated_unit_out(unit) for unit in sim.units],
    )


def simulated_unit_out(unit: UnitComparison) -> rulesets_pb2.SimulatedUnit:
    return rulesets_pb2.SimulatedUnit(
        unit=f"units/{unit.unit_code}",
        unit_display_name_vi=unit.name_vi,
        block=unit.block,
        score_before=unit.score_before,
        score_after=unit.score_after,
        grade_before=unit.grade_before,
        grade_after=unit.grade_after,
        flags_before=unit.flags_before,
        flags_after=unit.flags_after,
        flags_gained=unit.flags_gained,
        flags_lost=unit.flags_lost,
        score_delta=unit.score_delta,
    )
