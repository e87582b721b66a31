"""Officials (cá nhân) without a server: their facts, who is evaluated and how (`build_official_facts`), the
rule-file format (`fact: official`, `fact: head`), golden cases with officials, and the engine evaluating
them in real durable_rules worker processes, with the JSON round trip."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from civicscore.domain.canonical import canonical_json, digest_of, sha256_hex
from civicscore.domain.model import FiredRule, FlagResult, TaskCounts, Unit, UnitEvaluation, UnitFacts, UnitKind
from civicscore.domain.officials import Appointment, HeadedUnit, Official, OfficialFacts, Position
from civicscore.domain.periods import Quarter
from civicscore.engine.facts import InvalidFacts, check_facts, head_fact, official_fact
from civicscore.engine.people import build_official_facts
from civicscore.engine.pool import EnginePool
from civicscore.engine.port import encode_official_evaluation, official_evaluation_from_json
from civicscore.ruleset import load_ruleset
from civicscore.ruleset.casefile import CaseFileInvalid, read_case_file
from civicscore.ruleset.cases import run_cases
from civicscore.ruleset.fields import FACT_FIELDS, HEAD, OFFICIAL
from civicscore.rulesets.checking import smoke_officials
from tests.test_ruleset import only_problem, rule, rule_files, with_rules

Q1 = Quarter(2026, 1)  # 2026-01-01 .. 2026-03-31
RULESET = load_ruleset(rule_files())


def head_of(code: str, *flags: str, reasons: tuple[FiredRule, ...] = ()) -> HeadedUnit:
    return HeadedUnit(code, f"Sở {code}", f"Department {code}", flags, reasons, UnitKind.DEPARTMENT, "departments")


def official(official_id: str = "P1", *, position: str = "officer", led: TaskCounts | None = None,
             overdue: tuple[int, ...] = (), headed: tuple[HeadedUnit, ...] = (), under_review: bool = False
             ) -> OfficialFacts:
    return OfficialFacts(official_id, "SNV", "2026-Q1", position, under_review, led or TaskCounts(), overdue, headed)


@pytest.fixture(scope="module")
def pool() -> Iterator[EnginePool]:
    with EnginePool(load_ruleset(rule_files()), workers=1, job_timeout_s=20) as engine:
        yield engine


# ---- facts -------------------------------------------------------------------------------------


def test_the_facts_carry_exactly_the_fields_rules_may_name() -> None:
    facts = official(position="head", led=TaskCounts(6, 5, 4, 1, 1), overdue=(45, 31, 2),
                     headed=(head_of("SNV", "reminder", "criticism"),))
    person = official_fact(facts)
    assert set(person) == set(FACT_FIELDS[OFFICIAL])
    assert (person["led_not_on_time"], person["led_open_overdue"], person["longest_overdue"],
            person["second_longest_overdue"]) == (2, 3, 45, 31)
    head = head_fact(facts, facts.headed[0])
    assert set(head) == set(FACT_FIELDS[HEAD])
    assert head["unit_flags"] == ["criticism", "reminder"] and head["unit_kind"] == "department"
    lone = official_fact(official(overdue=(90,)))
    assert (lone["longest_overdue"], lone["second_longest_overdue"]) == (90, 0)


@pytest.mark.parametrize(("facts", "message"), [
    (official(led=TaskCounts(3, 4, 4, 0, 0)), "led completed (4) exceeds led due (3)"),
    (official(led=TaskCounts(5, 5, 3, 1, 0)), "led on_time (3) + led late (1) must equal led completed (5)"),
    (official(led=TaskCounts(5, 5, 5, 0, 6)), "led reworked (6) exceeds led completed (5)"),
    (official(overdue=(10, 40)), "listed longest first"),
    (official(overdue=(-1,)), "days overdue must not be negative"),
    (official(headed=(head_of("SNV"), head_of("SNV"))), "a headed unit is listed twice"),
    (official(position="boss"), "must be head, deputy, officer"),
    (OfficialFacts("P1", "SNV", "2026-Q5", "", False, TaskCounts()), "is not a quarter"),
])
def test_inconsistent_official_facts_are_refused_before_the_engine(facts: OfficialFacts, message: str) -> None:
    with pytest.raises(InvalidFacts, match="official P1") as raised:
        check_facts([facts])
    assert message in str(raised.value)


# ---- who is evaluated, and through which unit ----------------------------------------------------


def unit(code: str, *, reviewed: tuple[str, ...] = ()) -> Unit:
    return Unit(code, f"Sở {code}", f"Department {code}", UnitKind.DEPARTMENT, "departments",
                under_review_periods=reviewed)


def evaluation_with(code: str, *flags: tuple[str, str]) -> UnitEvaluation:
    """A unit's evaluation raising (flag, kind) pairs, each for one reason."""
    results = tuple(
        FlagResult(flag, kind, 1, flag, flag, (FiredRule(f"rule-{flag}", "flags.yaml:1", "unit", {}, f"vi {flag}",
                                                         f"en {flag}", flag),))
        for flag, kind in flags
    )
    return UnitEvaluation(code, "2026-Q1", True, 80.0, "good", "Tốt", "Good", TaskCounts(), 0, (), 0.0,
                          tuple(r for f in results for r in f.reasons), results, "2026.1", "d" * 64, "i" * 64)


def build(*officials: Official, units: dict[str, Unit] | None = None,
          results: dict[str, UnitEvaluation] | None = None) -> dict[str, OfficialFacts]:
    facts = build_official_facts(
        Q1, officials, units=units if units is not None else {"SNV": unit("SNV"), "SXD": unit("SXD")},
        unit_results=results if results is not None else {"SNV": evaluation_with("SNV", ("criticism", "criticism"))},
        led={"P1": TaskCounts(5, 5, 5, 0, 0)}, led_overdue={"P1": [3, 40, 31]})
    return {f.official_id: f for f in facts}


def held(code: str, position: Position, start: str, end: str | None = None) -> Appointment:
    return Appointment(code, position, dt.date.fromisoformat(start), dt.date.fromisoformat(end) if end else None)


def test_a_head_on_the_quarters_end_heads_the_unit_and_one_who_left_the_day_before_does_not() -> None:
    facts = build(
        Official("P1", "An", (held("SNV", Position.HEAD, "2024-01-01", "2026-03-31"),)),
        Official("P2", "Bình", (held("SNV", Position.HEAD, "2024-01-01", "2026-03-30"),)),
    )
    stays, left = facts["P1"], facts["P2"]
    assert (stays.position, stays.unit_code, [h.unit_code for h in stays.headed]) == ("head", "SNV", ["SNV"])
    assert stays.headed[0].flags == ("criticism",) and stays.headed[0].unit_name_vi == "Sở SNV"
    assert [r.rule_id for r in stays.headed[0].reasons] == ["rule-criticism"]
    assert (left.position, left.unit_code, left.headed) == ("", "SNV", ())
    assert stays.led == TaskCounts(5, 5, 5, 0, 0) and stays.led_overdue_days == (40, 31, 3)
    assert left.led == TaskCounts() and left.led_overdue_days == ()


def test_several_appointments_the_unit_is_that_of_the_highest_position_held_at_the_end() -> None:
    facts = build(
        Official("P1", "An", (held("SXD", Position.OFFICER, "2020-01-01"), held("SNV", Position.DEPUTY, "2025-01-01"),
                              held("STP", Position.HEAD, "2025-01-01", "2026-02-01"))),
        Official("P2", "Bình", (held("SXD", Position.DEPUTY, "2026-01-01", "2026-02-10"),
                                held("STP", Position.OFFICER, "2025-01-01", "2026-03-01"),
                                held("SNV", Position.HEAD, "2026-04-01"))),
        Official("P3", "Chi", (held("SXD", Position.HEAD, "2026-03-31"), held("SNV", Position.HEAD, "2026-03-31"))),
    )
    assert (facts["P1"].unit_code, facts["P1"].position, facts["P1"].headed) == ("SNV", "deputy", ())
    # None held at the end: the one that ended last (STP on 2026-03-01); the head from Q2 does not count yet.
    assert (facts["P2"].unit_code, facts["P2"].position) == ("STP", "")
    # Two heads at the end: the unit code decides; only the unit with a result is headed.
    assert (facts["P3"].unit_code, facts["P3"].position) == ("SNV", "head")
    assert [h.unit_code for h in facts["P3"].headed] == ["SNV"]


def test_inactive_officials_and_those_without_a_position_in_the_quarter_are_not_evaluated() -> None:
    facts = build(
        Official("P1", "An", (held("SNV", Position.OFFICER, "2020-01-01"),), active=False),
        Official("P2", "Bình", (held("SNV", Position.OFFICER, "2020-01-01", "2025-12-31"),)),
        Official("P3", "Chi", (held("SNV", Position.OFFICER, "2026-04-01"),)),
        Official("P4", "Dũng", ()),
        Official("P0", "Em", (held("SNV", Position.OFFICER, "2025-12-31", "2026-01-01"),)),
    )
    assert list(facts) == ["P0"]  # sorted by id; one day in the quarter is enough


def test_under_review_through_the_official_or_any_unit_held_during_the_quarter() -> None:
    reviewed = {"SNV": unit("SNV"), "SXD": unit("SXD", reviewed=("2026-Q1",)),
                "STP": unit("STP", reviewed=("2025-Q4",))}
    facts = build(
        Official("P1", "An", (held("SNV", Position.OFFICER, "2020-01-01"),), under_review_periods=("2026-Q1",)),
        Official("P2", "Bình", (held("SXD", Position.OFFICER, "2020-01-01", "2026-01-15"),
                                held("SNV", Position.OFFICER, "2026-01-16"))),
        Official("P3", "Chi", (held("STP", Position.OFFICER, "2020-01-01"),), under_review_periods=("2025-Q4",)),
        units=reviewed,
    )
    assert (facts["P1"].under_review, facts["P2"].under_review, facts["P3"].under_review) == (True, True, False)


def test_a_headed_unit_passes_on_the_reasons_of_its_criticism_kind_flags_only() -> None:
    result = evaluation_with("SNV", ("praise", "commendation"), ("reminder", "criticism"), ("obstacle_unresolved",
                                                                                          "escalation"))
    facts = build(Official("P1", "An", (held("SNV", Position.HEAD, "2020-01-01"),)), results={"SNV": result})
    (headed,) = facts["P1"].headed
    assert headed.flags == ("praise", "reminder", "obstacle_unresolved")
    assert [r.rule_id for r in headed.reasons] == ["rule-reminder"]


# ---- the rules and the engine ------------------------------------------------------------------


def test_the_engine_evaluates_officials_with_the_units_reasons_and_the_json_round_trips(pool: EnginePool) -> None:
    unit_result = pool.evaluate([UnitFacts("SNV", UnitKind.DEPARTMENT, "departments", "2026-Q1",
                                           TaskCounts(20, 16, 10, 6, 2))])[0]
    (facts,) = build_official_facts(
        Q1, [Official("H1", "An", (held("SNV", Position.HEAD, "2024-01-01"),))],
        units={"SNV": Unit("SNV", "Sở Nội vụ", "Department of Home Affairs", UnitKind.DEPARTMENT, "departments")},
        unit_results={"SNV": unit_result}, led={"H1": TaskCounts(5, 5, 5, 0, 0)}, led_overdue={"H1": (31, 31)})
    evaluation = pool.evaluate([facts])[0]
    assert [f.flag for f in evaluation.flags] == ["individual_praise", "individual_reminder", "head_accountability"]
    assert [r.rule_id for r in evaluation.fired_rules] == ["head-accountability", "individual-praise",
                                                          "individual-reminder"]
    head = evaluation.flags[-1]
    assert [r.rule_id for r in head.reasons] == ["head-accountability", "reminder-low-timeliness",
                                                "criticism-low-timeliness"]
    assert head.reasons[0].reason_vi == (
        "Người đứng đầu Sở Nội vụ, đơn vị bị phê bình hoặc yêu cầu giải trình trong quý")
    assert head.reasons[0].reason_en == (
        "Head of Department of Home Affairs, which was criticised or asked for an explanation this quarter")
    assert head.reasons[0].fact == "unit SNV"
    assert (evaluation.official_id, evaluation.position, evaluation.headed_units, evaluation.led_open_overdue) == (
        "H1", "head", ("SNV",), 2)
    assert evaluation.inputs_digest == digest_of(facts)
    assert (evaluation.ruleset_version, evaluation.ruleset_digest) == (RULESET.version, RULESET.digest)
    text = canonical_json(evaluation)
    assert official_evaluation_from_json(text) == evaluation
    assert canonical_json(official_evaluation_from_json(text)) == text
    assert pool.evaluate([facts])[0] == evaluation and canonical_json(pool.evaluate([facts])[0]) == text
    encoded = pool.evaluate_encoded([facts])[0]
    assert encoded.result_json == text and encoded.result_digest == sha256_hex(text)
    assert encoded.evaluation() == evaluation and encode_official_evaluation(evaluation) == encoded
    assert [f.reasons_json for f in encoded.flags] == [canonical_json(list(f.reasons)) for f in evaluation.flags]


def test_an_official_with_nothing_to_note_gets_no_flag_and_round_trips(pool: EnginePool) -> None:
    evaluations = pool.evaluate([official("P1", led=TaskCounts(4, 4, 4, 0, 0), overdue=(90,)),
                                 official("P2", led=TaskCounts(9, 9, 9, 0, 0), under_review=True),
                                 official("P3", position="head", headed=(head_of("SNV", "reminder", "praise"),))])
    assert [(e.official_id, e.flags, e.fired_rules) for e in evaluations] == [
        ("P1", (), ()), ("P2", (), ()), ("P3", (), ())]
    assert all(official_evaluation_from_json(canonical_json(e)) == e for e in evaluations)


def test_the_smoke_check_reaches_every_official_rule(pool: EnginePool) -> None:
    fired = {r.rule_id for e in pool.evaluate(smoke_officials(RULESET)) for r in e.fired_rules}
    assert fired == {"head-accountability", "individual-reminder"}  # praise: the smoke head has late work


def test_official_rules_are_checked_against_their_own_fields() -> None:
    wrong = only_problem(with_rules(rule("led", "due > 3", fact="official", flag="reminder")))
    assert "unknown field `due` for official facts" in wrong.message and "led_due" in wrong.message
    position = only_problem(with_rules(rule("pos", 'position == "boss"', fact="official", flag="reminder")))
    assert "unknown position 'boss' for `position`" in position.message
    praise = only_problem(with_rules(rule("p", "led_due > 3", fact="official", flag="individual_praise")))
    assert "without `not under_review`" in praise.message
    name = only_problem(with_rules(rule("n", 'unit_flags has "reminder"', fact="official", flag="reminder")))
    assert "unknown field `unit_flags` for official facts" in name.message
    head = with_rules(rule("head-reminded", 'unit_flags has "reminder" and position == ""', fact="head",
                           flag="reminder"))
    assert "unknown field `position` for head facts" in only_problem(head).message
    never = only_problem(with_rules(rule("never", "second_longest_overdue < 0", fact="official", flag="reminder")))
    assert "never true" in never.message
    assert load_ruleset(with_rules(rule("ok", 'position == "" and led_open_overdue > 2', fact="official",
                                        flag="reminder"))).rule_count == 21


# ---- golden cases with officials ---------------------------------------------------------------

CASE = """\
defaults:
  unit: {code: SNV, kind: department, block: departments}
  period: 2026-Q1
cases:
  - name: criticised
    counts: {due: 20, completed: 16, on_time: 10, late: 6, reworked: 2}
    officials:
      - id: H1
        positions: [{position: head, from: 2024-01-01}]
        led_assignments:
          - {id: L1, due_on: 2026-02-20, completed_on: 2026-02-21, unit: SXD}
          - {id: L2, due_on: 2026-01-20}
      - id: H2
        positions: [{position: head, from: 2024-01-01, to: 2026-03-30}]
    expect:
      flags: [reminder, criticism]
      officials:
        H1: {flags: [individual_reminder]}
        H2: {flags: [head_accountability]}
"""


def test_a_case_with_officials_runs_and_shows_what_differs(pool: EnginePool) -> None:
    cases = read_case_file("tests/officials.yaml", CASE, RULESET)
    (official_of_case, _) = cases[0].officials
    assert official_of_case.led == TaskCounts(2, 1, 0, 1, 0) and official_of_case.led_overdue == (70,)
    run = run_cases(pool, RULESET, cases)
    (result,) = run.results
    assert not result.passed
    assert result.differences == (
        "official H1: flags: missing individual_reminder; unexpected head_accountability",
        "official H2: flags: missing head_accountability",
    )
    assert "  got for official H1: flags head_accountability; rules that fired: head-accountability" in (
        result.details())
    coverage = {rule.rule_id: rule for rule in run.coverage.rules}
    assert coverage["head-accountability"].fired_in == ("criticised",)
    assert coverage["individual-praise"].silent_in == ("criticised",)


@pytest.mark.parametrize(("text", "message"), [
    (CASE.replace("        H2: {flags: [head_accountability]}\n", "        H3: {flags: []}\n"),
     "unknown key `H3` in `officials` of the expectations of case `criticised`"),
    (CASE.replace("{position: head, from: 2024-01-01}]", "{position: chief, from: 2024-01-01}]", 1),
     "unknown position `chief`"),
    (CASE.replace("from: 2024-01-01, to: 2026-03-30", "from: 2024-01-01, to: 2023-03-30"),
     "ends (2023-03-30) before it starts (2024-01-01)"),
    (CASE.replace("        led_assignments:", "        led: {due: 2}\n        led_assignments:"),
     "gives both `led` and `led_assignments`"),
    (CASE.replace("      - id: H2\n", "      - id: H1\n"), "official `H1` of case `criticised` is already listed"),
    (CASE.replace("      - id: H2\n        positions: [{position: head, from: 2024-01-01, to: 2026-03-30}]\n",
                  "      - id: H2\n        positions: [{position: head, from: 2024-01-01}]\n"
                  "        led: {due: 2, completed: 3, on_time: 3}\n"),
     "what official `H2` of case `criticised` leads contradicts itself: led completed (3) exceeds led due (2)"),
])
def test_malformed_officials_in_a_case_are_refused_with_file_and_line(text: str, message: str) -> None:
    with pytest.raises(CaseFileInvalid) as raised:
        read_case_file("tests/officials.yaml", text, RULESET)
    assert any(message in issue.message for issue in raised.value.issues), raised.value.issues
