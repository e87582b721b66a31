"""Half-years and years without a server: periods, the rollup fact, the rule-file format (`long_periods`,
`fact: rollup`), golden cases of long periods, and the engine summing quarters up; plus, through a real
server, the refusal of a ruleset that does not say how to sum them up."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from civicscore.domain.canonical import canonical_json
from civicscore.domain.model import QuarterResult, RollupFacts, TaskCounts, UnitKind
from civicscore.domain.periods import InvalidPeriod, Quarter, Rollup, parse_any_period, period_label, period_title
from civicscore.engine.facts import InvalidFacts, check_facts, rollup_fact, summarise_rollup
from civicscore.engine.pool import EnginePool
from civicscore.engine.port import EngineError, encode_evaluation, evaluation_from_json
from civicscore.ruleset import RulesetInvalid, load_ruleset
from civicscore.ruleset.casefile import CaseFileInvalid, read_case_file
from civicscore_client import FailedPrecondition, period_id, period_kind, quarters_of
from tests.serverproc import RULES, ServerProcess
from tests.test_ruleset import edited, only_problem, rule_files, with_rules

QUARTERS = ("2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4")


def test_periods_parse_with_their_quarters_bounds_and_names() -> None:
    year, first, second = Rollup.parse("2026"), Rollup.parse("2026-H1"), Rollup.parse("2026-H2")
    assert [str(q) for q in year.quarters] == list(QUARTERS) and year.kind == "year"
    assert [str(q) for q in first.quarters] == ["2026-Q1", "2026-Q2"] and first.kind == "half_year"
    assert (second.start, second.end, str(second.last)) == (dt.date(2026, 7, 1), dt.date(2026, 12, 31), "2026-Q4")
    assert (str(first.previous()), str(second.previous()), str(year.previous())) == ("2025-H2", "2026-H1", "2025")
    assert parse_any_period("2026-Q3") == Quarter(2026, 3) and parse_any_period("2026") == year
    assert (period_label(first, "vi"), period_label(year, "vi")) == ("6 tháng đầu năm 2026", "năm 2026")
    assert (period_title(first, "en"), period_title(second, "en"), period_title(year, "en")) == (
        "First half of 2026", "Second half of 2026", "2026")
    assert period_title(year, "vi") == "Năm 2026"
    for bad in ("2026-H3", "2026-h1", "1999", "2101-H1", "2026-Q3 ", "26"):
        with pytest.raises(InvalidPeriod, match="write a quarter YYYY-Qn"):
            parse_any_period(bad)


def test_the_sdk_names_half_years_and_years() -> None:
    assert (period_id("periods/2026-h1"), period_id("2026"), period_id(" 2026-q3 ")) == ("2026-H1", "2026", "2026-Q3")
    assert (period_kind("2026-H2"), period_kind("periods/2026"), period_kind("2026-Q1"), period_kind("x")) == (
        "half_year", "year", "quarter", "")
    assert quarters_of("2026-H2") == ["2026-Q3", "2026-Q4"] and quarters_of("2026") == list(QUARTERS)


def result(period: str, score: float | None, grade: str, *flags: str, criticism: tuple[str, ...] = (),
           assessable: bool = True) -> QuarterResult:
    return QuarterResult(period, 1, assessable, score, grade, grade, grade, 0.95, flags, criticism,
                         TaskCounts(10, 10, 9, 1, 0), 1, "2026.1", "d" * 64, "r" * 64)


def year_facts(*results: QuarterResult, under_review: bool = False) -> RollupFacts:
    return RollupFacts("SNV", UnitKind.DEPARTMENT, "departments", "2026", "year", QUARTERS, results, under_review)


def test_the_rollup_fact_carries_exactly_the_fields_rules_may_name() -> None:
    from civicscore.ruleset.fields import FACT_FIELDS, ROLLUP

    facts = year_facts(result("2026-Q1", 95, "excellent", "reminder", criticism=("reminder",)),
                       result("2026-Q3", 40, "not_assessable", assessable=False))
    summary = summarise_rollup(facts, 2, "excellent")
    fact = rollup_fact(facts, summary, 95.0)
    assert set(fact) | {"grade", "flags"} == set(FACT_FIELDS[ROLLUP])
    assert (fact["evaluated_quarters"], fact["assessable_quarters"], fact["criticism_quarters"]) == (2, 1, 1)
    assert fact["quarter_flags"] == ["reminder"] and fact["assessable"] is False
    assert summary.missing == ("2026-Q2", "2026-Q4")


def test_inconsistent_rollup_facts_are_refused_before_the_engine() -> None:
    wrong_quarter = RollupFacts("SNV", UnitKind.DEPARTMENT, "departments", "2026-H1", "half_year",
                                ("2026-Q1", "2026-Q2"), (result("2026-Q3", 90, "excellent"),))
    twice = year_facts(result("2026-Q1", 90, "excellent"), result("2026-Q1", 80, "good"))
    for facts in (wrong_quarter, twice):
        with pytest.raises(InvalidFacts, match="quarterly results must be of its own quarters"):
            check_facts([facts])


@pytest.fixture(scope="module")
def pool() -> Iterator[EnginePool]:
    with EnginePool(load_ruleset(rule_files()), workers=1, job_timeout_s=20) as engine:
        yield engine


def test_the_engine_sums_a_year_up_and_its_json_round_trips(pool: EnginePool) -> None:
    facts = year_facts(*(result(q, 95, "excellent", "praise") for q in QUARTERS))
    evaluation = pool.evaluate([facts])[0]
    assert (evaluation.score, evaluation.grade, [f.flag for f in evaluation.flags]) == (
        95.0, "excellent", ["annual_commendation_candidate"])
    assert evaluation.counts == TaskCounts(40, 40, 36, 4, 0) and evaluation.open_overdue == 1
    assert evaluation_from_json(canonical_json(evaluation)) == evaluation
    assert pool.evaluate_encoded([facts])[0].result_json == encode_evaluation(evaluation).result_json
    reviewed = pool.evaluate([year_facts(*(result(q, 95, "excellent") for q in QUARTERS), under_review=True)])[0]
    assert reviewed.flags == ()


def test_a_ruleset_without_long_periods_cannot_sum_a_year_up() -> None:
    files = rule_files()
    start = files["grades.yaml"].index("  # Sơ kết 6 tháng")
    end = files["grades.yaml"].index("\ngrades:")
    files["grades.yaml"] = files["grades.yaml"][:start] + files["grades.yaml"][end:]
    ruleset = load_ruleset(files)
    assert ruleset.long_periods is None
    with EnginePool(ruleset, workers=1, max_attempts=1) as engine, pytest.raises(EngineError) as failed:
        engine.evaluate([year_facts(result("2026-Q1", 95, "excellent"))])
    assert "add `long_periods` under `assessment` (grades.yaml)" in str(failed.value)


def test_long_periods_are_checked_with_file_and_line() -> None:
    zero = only_problem(edited("grades.yaml", "min_assessable_share: 0.5", "min_assessable_share: 0"))
    assert "`min_assessable_share` of `long_periods`" in zero.message and "more than 0" in zero.message
    unknown = only_problem(edited("grades.yaml", "cần ít nhất {min_assessable_quarters}", "cần ít nhất {min_due}"))
    assert "unknown placeholder {min_due}" in unknown.message
    files = edited("grades.yaml", 'vi: "Điểm {score} từ {min_score} trở lên"',
                   'vi: "Điểm {score} từ {min_score} trở lên ({due} nhiệm vụ)"')
    files["grades.yaml"] = files["grades.yaml"].replace('en: "Score {score} is {min_score} or more"',
                                                        'en: "Score {score} is {min_score} or more ({due} due)"')
    due = only_problem(files)
    assert "shows {due}, which half-years and years do not have" in due.message


def test_rollup_rules_are_checked_against_the_rollup_fields() -> None:
    rule = ("\n  - id: bad-rollup\n    fact: rollup\n    flag: reminder\n    when: due > 3\n"
            '    reason: {vi: "Lý do", en: "Reason"}\n')
    issue = only_problem(with_rules(rule))
    assert "unknown field `due` for rollup facts" in issue.message and "excellent_quarters" in issue.message
    span = rule.replace("due > 3", 'span == "years"')
    assert "unknown span 'years'" in only_problem(with_rules(span)).message
    commend = rule.replace("flag: reminder", "flag: praise").replace("due > 3", "excellent_quarters >= 2")
    assert "without `not under_review`" in only_problem(with_rules(commend)).message
    never = rule.replace("due > 3", "quarters > 4")
    assert "is never true" in only_problem(with_rules(never)).message
    with pytest.raises(RulesetInvalid):
        load_ruleset(with_rules(rule))


def cases(text: str) -> str:
    return "defaults: {unit: {code: SNV, kind: department, block: departments}}\ncases:\n" + text


def test_long_period_cases_say_what_is_wrong() -> None:
    ruleset = load_ruleset(rule_files())
    text = cases(
        "  - name: with-counts\n    period: 2026\n    counts: {due: 3}\n"
        "    quarters: [{period: 2026-Q1, grade: excellent, score: 95}]\n    expect: {grade: excellent}\n"
        "  - name: outside\n    period: 2026-H1\n    quarters: [{period: 2026-Q3, grade: good, score: 80}]\n"
        "    expect: {grade: good}\n"
        "  - name: no-period\n    quarters: [{period: 2026-Q1, grade: good}]\n    expect: {grade: good}\n"
        "  - name: bad-period\n    period: 2026-H3\n    quarters: [{period: 2026-Q1, grade: gud}]\n"
        "    expect: {grade: good}\n")
    with pytest.raises(CaseFileInvalid) as invalid:
        read_case_file("tests/bad.yaml", text, ruleset)
    messages = "\n".join(issue.message for issue in invalid.value.issues)
    assert "`counts` of case `with-counts` is a quarter's fact" in messages
    assert "2026-Q3 is not a quarter of 2026-H1 (2026-Q1, 2026-Q2)" in messages
    assert "case `no-period` gives `quarters` but no `period`" in messages
    assert "'2026-H3' is not a half-year or a year" in messages
    assert "unknown grade `gud`" in messages


def test_a_server_refuses_a_half_year_under_rules_without_long_periods(tmp_path: Path) -> None:
    folder = tmp_path / "rules"
    folder.mkdir()
    for path in RULES.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if path.name == "grades.yaml":
            text = text[:text.index("  # Sơ kết 6 tháng")] + text[text.index("\ngrades:"):]
        (folder / path.name).write_text(text, encoding="utf-8")
    server = ServerProcess(tmp_path, rules=folder).start()
    try:
        with server.client() as admin:
            admin.evaluate_period("2026-Q1")
            admin.evaluate_period("2026-Q2")
            with pytest.raises(FailedPrecondition) as refused:
                admin.evaluate_period("2026-H1")
    finally:
        server.stop()
    assert "in force for 2026-Q2, does not say how to sum up half-years and years" in refused.value.message
    assert "add `long_periods` under `assessment` in grades.yaml" in refused.value.message


def test_the_console_names_half_years_and_years() -> None:
    from civicscore.console.views import PERIOD, period_heading, previous_period
    from civicscore.console.words import Words

    assert period_heading("2026", Words("vi")) == "Kết quả đánh giá năm 2026"
    assert period_heading("2026-H1", Words("vi")) == "Kết quả đánh giá 6 tháng đầu năm 2026"
    assert period_heading("2026-H2", Words("en")) == "Evaluation results, Second half of 2026"
    assert period_heading("2026-Q3", Words("vi")) == "Kết quả đánh giá quý 2026-Q3"
    assert [previous_period(p) for p in ("2026-Q1", "2026-H1", "2026-H2", "2026")] == [
        "2025-Q4", "2025-H2", "2026-H1", "2025"]
    assert all(PERIOD.match(p) for p in ("2026-Q3", "2026-H1", "2026")) and not PERIOD.match("2026-H3")
