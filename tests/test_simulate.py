"""What-if comparison of two rulesets' results (`civicscore.rulesets.comparison`) and its API encoding."""

from __future__ import annotations

import unicodedata

import pytest

from civicscore.api.simulate_out import simulation_out
from civicscore.domain.model import FlagResult, TaskCounts, Unit, UnitEvaluation, UnitKind
from civicscore.rulesets.comparison import FlagChange, GradeChange, Simulation, compare, score_text
from civicscore_api.v1 import rulesets_pb2

FLAGS = {
    "praise": ("commendation", 1),
    "commendation_candidate": ("commendation", 2),
    "reminder": ("criticism", 1),
    "criticism": ("criticism", 2),
    "explanation_required": ("criticism", 3),
}
GRADES = {"excellent": 90.0, "good": 70.0, "completed": 50.0, "not_completed": 0.0}

UNITS = {
    u.code: u
    for u in (
        Unit("SNV", "Sở Nội vụ", "Department of Home Affairs", UnitKind.DEPARTMENT, "departments"),
        Unit("STP", "Sở Tư pháp", "Department of Justice", UnitKind.DEPARTMENT, "departments"),
        Unit("SCT", "Sở Công Thương", "Department of Industry and Trade", UnitKind.DEPARTMENT, "departments"),
        Unit("HOANKIEM", "Phường Hoàn Kiếm", "Hoan Kiem Ward", UnitKind.WARD, "communes"),
        Unit("BADINH", "Phường Ba Đình", "Ba Dinh Ward", UnitKind.WARD, "communes"),
    )
}


def result(code: str, score: float | None, *flags: str, assessable: bool = True,
           grade: str | None = None, digest: str = "a" * 64) -> UnitEvaluation:
    """An evaluation; the grade follows the score through GRADES unless given."""
    if grade is None:
        if not assessable or score is None:
            grade = "not_assessable"
        else:
            grade = next(code for code, floor in GRADES.items() if score >= floor)
    return UnitEvaluation(
        unit_code=code, period="2026-Q3", assessable=assessable, score=score, grade=grade,
        grade_vi=grade, grade_en=grade, counts=TaskCounts(due=10), open_overdue=0, indicators=(),
        penalty=0.0, fired_rules=(),
        flags=tuple(FlagResult(f, FLAGS[f][0], FLAGS[f][1], f, f, ()) for f in flags),
        ruleset_version="2026.1", ruleset_digest=digest, inputs_digest="c" * 64,
    )


def ruleset(version: str, digest: str) -> rulesets_pb2.Ruleset:
    return rulesets_pb2.Ruleset(name=f"rulesets/{digest}", ruleset_id="hanoi-default", version=version,
                                digest=digest, in_force_from="2025-Q3")


# ---- per unit ---------------------------------------------------------------------------------


def test_unit_before_and_after_with_flags_gained_and_lost() -> None:
    sim = compare(
        UNITS,
        [result("STP", 79.0625, "reminder", "criticism")],
        [result("STP", 91.004, "reminder", "praise")],
        changed_only=False,
    )
    (unit,) = sim.units
    assert (unit.unit_code, unit.name_vi, unit.block) == ("STP", "Sở Tư pháp", "departments")
    assert unicodedata.is_normalized("NFC", unit.name_vi)
    assert (unit.score_before, unit.score_after) == ("79.06", "91.00")
    assert unit.score_delta == pytest.approx(11.94) and round(unit.score_delta, 2) == unit.score_delta
    assert (unit.grade_before, unit.grade_after) == ("good", "excellent")
    assert unit.flags_before == ("reminder", "criticism")
    assert unit.flags_after == ("reminder", "praise")
    assert unit.flags_gained == ("praise",)
    assert unit.flags_lost == ("criticism",)
    assert unit.changed and unit.grade_changed and unit.score_changed and unit.flags_changed


def test_display_rounding_decides_whether_a_score_changes() -> None:
    # 2.675 rounds half away from zero to 2.68 (not to binary float's 2.67)
    assert score_text(2.675) == "2.68" and score_text(None) == "" and score_text(100) == "100.00"
    sim = compare(UNITS, [result("SNV", 80.001)], [result("SNV", 80.004)], changed_only=False)
    (unit,) = sim.units
    assert (unit.score_before, unit.score_after, unit.score_delta) == ("80.00", "80.00", 0.0)
    assert not unit.changed and sim.units_changing_score == 0


def test_negative_delta_and_no_minus_zero() -> None:
    sim = compare(UNITS, [result("SNV", 95.0), result("STP", 70.0)],
                  [result("SNV", 88.5), result("STP", 70.0)], changed_only=False)
    snv, stp = sorted(sim.units, key=lambda u: u.unit_code)
    assert snv.score_delta == -6.5 and snv.grade_after == "good"
    assert str(stp.score_delta) == "0.0"


def test_units_without_a_score() -> None:
    """No assignment due: no score either side, an empty display string, a zero delta."""
    sim = compare(UNITS, [result("HOANKIEM", None), result("SCT", 60.0, assessable=False)],
                  [result("HOANKIEM", None), result("SCT", 62.0, assessable=False)], changed_only=False)
    by_code = {u.unit_code: u for u in sim.units}
    none = by_code["HOANKIEM"]
    assert (none.score_before, none.score_after, none.score_delta) == ("", "", 0.0)
    assert (none.grade_before, none.grade_after) == ("not_assessable", "not_assessable")
    assert not none.changed
    sct = by_code["SCT"]  # not assessable but scored: the score change is shown, the grade does not move
    assert (sct.score_before, sct.score_after, sct.score_delta) == ("60.00", "62.00", 2.0)
    assert sct.changed and not sct.grade_changed
    assert (sim.units_changing_grade, sim.units_changing_score) == (0, 1)


def test_a_score_that_appears_is_a_change_with_zero_delta() -> None:
    sim = compare(UNITS, [result("SNV", None)], [result("SNV", 50.0)], changed_only=False)
    (unit,) = sim.units
    assert (unit.score_before, unit.score_after, unit.score_delta) == ("", "50.00", 0.0)
    assert unit.score_changed and sim.units_changing_score == 1


def test_unit_missing_from_the_mapping_is_shown_by_code() -> None:
    sim = compare({}, [result("XYZ", 50.0)], [result("XYZ", 50.0)], changed_only=False)
    assert (sim.units[0].unit_code, sim.units[0].name_vi, sim.units[0].block) == ("XYZ", "", "")


# ---- the quarter --------------------------------------------------------------------------------


def quarter() -> tuple[list[UnitEvaluation], list[UnitEvaluation]]:
    """Five units in the engine's (not alphabetical) order."""
    before = [
        result("STP", 79.06, "reminder", "criticism"),
        result("SNV", 100.0, "praise"),
        result("HOANKIEM", 65.0, "reminder"),
        result("BADINH", 91.0, "praise"),
        result("SCT", None),
    ]
    after = [
        result("STP", 79.06, "reminder"),  # loses criticism
        result("SNV", 100.0, "praise", "commendation_candidate"),  # gains a flag
        result("HOANKIEM", 72.0),  # completed -> good, loses reminder
        result("BADINH", 88.0, "praise"),  # excellent -> good
        result("SCT", None),  # unchanged
    ]
    return before, after


def test_summary_counts_every_unit() -> None:
    before, after = quarter()
    sim = compare(UNITS, before, after, changed_only=False)
    assert isinstance(sim, Simulation)
    assert sim.units_evaluated == 5
    assert sim.units_changing == 4
    assert sim.units_changing_grade == 2
    assert sim.units_changing_score == 2
    assert (sim.flags_added, sim.flags_removed) == (1, 2)
    # commendations before criticisms, by level within a kind
    assert sim.flag_changes == (
        FlagChange("commendation_candidate", 1, 0),
        FlagChange("reminder", 0, 1),
        FlagChange("criticism", 0, 1),
    )
    # best grade before first, then best grade after
    assert sim.grade_changes == (GradeChange("excellent", "good", 1), GradeChange("completed", "good", 1))


def test_units_are_ordered_by_code_and_changed_only_keeps_the_totals() -> None:
    before, after = quarter()
    every = compare(UNITS, before, after, changed_only=False)
    assert [u.unit_code for u in every.units] == ["BADINH", "HOANKIEM", "SCT", "SNV", "STP"]
    changed = compare(UNITS, before, after, changed_only=True)
    assert [u.unit_code for u in changed.units] == ["BADINH", "HOANKIEM", "SNV", "STP"]
    assert (changed.units_evaluated, changed.units_changing, changed.flags_added, changed.flags_removed) == (
        5, 4, 1, 2)
    assert changed.grade_changes == every.grade_changes and changed.flag_changes == every.flag_changes


def test_identical_results_change_nothing() -> None:
    before, _ = quarter()
    sim = compare(UNITS, before, list(before), changed_only=True)
    assert sim.units == () and sim.flag_changes == () and sim.grade_changes == ()
    assert (sim.units_evaluated, sim.units_changing, sim.units_changing_grade, sim.units_changing_score) == (
        5, 0, 0, 0)
    assert len(compare(UNITS, before, list(before), changed_only=False).units) == 5


def test_grade_transitions_inferred_order_puts_not_assessable_last() -> None:
    before = [result("A", 95.0), result("B", 60.0), result("C", 40.0), result("D", 75.0),
              result("E", 75.0), result("F", 30.0, assessable=False)]
    after = [result("A", 20.0), result("B", 75.0), result("C", 95.0), result("D", 55.0),
             result("E", 91.0), result("F", 30.0, grade="not_completed")]
    sim = compare({}, before, after, changed_only=False)
    assert [(g.grade_before, g.grade_after, g.units) for g in sim.grade_changes] == [
        ("excellent", "not_completed", 1),
        ("good", "excellent", 1),
        ("good", "completed", 1),
        ("completed", "good", 1),
        ("not_completed", "excellent", 1),
        ("not_assessable", "not_completed", 1),
    ]


def test_grade_transitions_follow_a_given_order() -> None:
    before = [result("A", 95.0), result("B", 60.0), result("C", 60.0)]
    after = [result("A", 80.0), result("B", 80.0), result("C", 80.0)]
    sim = compare({}, before, after, changed_only=False, grade_order=["completed", "good", "excellent"])
    assert sim.grade_changes == (GradeChange("completed", "good", 2), GradeChange("excellent", "good", 1))


def test_results_must_line_up() -> None:
    with pytest.raises(ValueError, match="must match"):
        compare(UNITS, [result("SNV", 1.0)], [], changed_only=False)
    with pytest.raises(ValueError, match="out of step"):
        compare(UNITS, [result("SNV", 1.0), result("STP", 1.0)], [result("STP", 1.0), result("SNV", 1.0)],
                changed_only=False)


def test_simulation_is_frozen() -> None:
    before, after = quarter()
    sim = compare(UNITS, before, after, changed_only=False)
    with pytest.raises(AttributeError):
        sim.units_evaluated = 0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        sim.units[0].grade_after = "excellent"  # type: ignore[misc]


# ---- the API response ---------------------------------------------------------------------------


def test_simulation_out() -> None:
    before, after = quarter()
    sim = compare(UNITS, before, after, changed_only=True)
    baseline, candidate = ruleset("2026.1", "a" * 64), ruleset("2026.2", "b" * 64)
    reply = simulation_out(sim, baseline, candidate, "periods/2026-Q3")
    assert reply.period == "2026-Q3"
    assert simulation_out(sim, baseline, candidate, "2026-Q3").period == "2026-Q3"
    assert reply.baseline == baseline and reply.candidate == candidate
    assert (reply.units_evaluated, reply.units_changing_grade, reply.units_changing_score) == (5, 2, 2)
    assert (reply.flags_added, reply.flags_removed) == (1, 2)
    assert [(c.flag, c.added, c.removed) for c in reply.flag_changes] == [
        ("commendation_candidate", 1, 0), ("reminder", 0, 1), ("criticism", 0, 1)]
    assert [(g.grade_before, g.grade_after, g.units) for g in reply.grade_changes] == [
        ("excellent", "good", 1), ("completed", "good", 1)]
    assert [u.unit for u in reply.units] == ["units/BADINH", "units/HOANKIEM", "units/SNV", "units/STP"]
    hoankiem = reply.units[1]
    assert hoankiem == rulesets_pb2.SimulatedUnit(
        unit="units/HOANKIEM", unit_display_name_vi="Phường Hoàn Kiếm", block="communes",
        score_before="65.00", score_after="72.00", grade_before="completed", grade_after="good",
        flags_before=["reminder"], flags_after=[], flags_gained=[], flags_lost=["reminder"], score_delta=7.0)
    snv = reply.units[2]
    assert list(snv.flags_after) == ["praise", "commendation_candidate"]
    assert list(snv.flags_gained) == ["commendation_candidate"] and snv.score_delta == 0.0
    # survives the wire byte for byte (Vietnamese names included)
    again = rulesets_pb2.SimulateRulesetResponse.FromString(reply.SerializeToString())
    assert again == reply and again.units[1].unit_display_name_vi == "Phường Hoàn Kiếm"


def test_simulation_out_of_nothing() -> None:
    sim = compare({}, [], [], changed_only=False)
    reply = simulation_out(sim, rulesets_pb2.Ruleset(), rulesets_pb2.Ruleset(), "2026-Q3")
    assert reply.units_evaluated == 0 and not reply.units and not reply.grade_changes
