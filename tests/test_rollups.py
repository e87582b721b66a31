"""Half-years and years (sơ kết, tổng kết) through the real server, on SQLite and PostgreSQL.

One year of data, 2026, for five departments (every other unit has nothing due), each quarter 10 assignments
due in its middle month:
    SNV  every quarter all on time: 100, excellent four times -> annual commendation candidate
    STP  Q1, Q2 all on time (100); Q3, Q4 five late (95, a reminder each) -> excellent year, no commendation
    STC  every quarter six on time, four late: 96 -> excellent under 2026.1, good under 2026.2
    SCT  2 assignments a quarter: never assessable -> no score for the year
    SXD  Q1 only (100): 1 assessable quarter of 4 (not assessable), of 2 in H1 (assessable)
The four quarters are evaluated under the default ruleset (2026.1); then 2026.2, where `excellent` starts at
97, is activated in force from 2026-Q3. The year is refused until Q3 and Q4 are evaluated again under it;
then each quarter keeps its own ruleset and the year is graded by 2026.2 (its last quarter's).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from civicscore_api.v1 import assignments_pb2, outcomes_pb2, periods_pb2
from civicscore_client import Client, FailedPrecondition, InvalidArgument
from civicscore_client.cli import app
from tests.postgres_support import BACKENDS, database_url
from tests.serverproc import RULES, ServerProcess, hanoi_units, timestamp
from tests.test_report import CHROMIUM, LAUNCH_ARGS, PDFTOTEXT, need_browser, need_pdf_tools, sync_playwright

pytestmark = pytest.mark.slow

YEAR = "2026"
QUARTERS = ("2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4")
REPORTED = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)
# (on time, late) per quarter and unit; 0 late and fewer than 10 in all means fewer due.
PLAN: dict[str, tuple[tuple[int, int], ...]] = {
    "SNV": ((10, 0), (10, 0), (10, 0), (10, 0)),
    "STP": ((10, 0), (10, 0), (5, 5), (5, 5)),
    "STC": ((6, 4), (6, 4), (6, 4), (6, 4)),
    "SCT": ((2, 0), (2, 0), (2, 0), (2, 0)),
    "SXD": ((10, 0), (0, 0), (0, 0), (0, 0)),
}


def load_year(client: Client) -> None:
    """Each unit's assignments due in the middle month of each quarter, completed on time or late."""
    items, outcomes = [], []
    for code, quarters in PLAN.items():
        for number, (on_time, late) in enumerate(quarters, start=1):
            month = 3 * number - 1
            for i in range(on_time + late):
                aid = f"{code}-Q{number}-{i}"
                items.append(assignments_pb2.Assignment(
                    assignment_id=aid, unit=f"units/{code}", title=f"Nhiệm vụ {aid}", area=assignments_pb2.AREA_PAR,
                    source_document="818/QĐ-UBND", assigned_on=f"2026-{3 * number - 2:02d}-01",
                    due_on=f"2026-{month:02d}-{10 + i:02d}"))
                done = f"2026-{month:02d}-{5 if i < on_time else 28:02d}"
                outcomes.append(outcomes_pb2.Outcome(
                    outcome_id=f"{aid}-done", assignment=f"assignments/{aid}", completed_on=done,
                    status=outcomes_pb2.OUTCOME_STATUS_COMPLETED, quality=outcomes_pb2.QUALITY_ACCEPTED,
                    reported_at=timestamp(REPORTED), reporting_system="hanoi-task-tracker"))
    client.upsert_assignments(items)
    client.submit_outcomes(outcomes)


def stricter_rules(tmp: Path) -> dict[str, str]:
    """The default rule files as 2026.2, in force from 2026-Q3, with `excellent` from 97."""
    files = {path.name: path.read_text(encoding="utf-8") for path in RULES.glob("*.yaml")}
    header = files["ruleset.yaml"]
    assert 'version: "2026.1"' in header and "in_force_from: 2025-Q3" in header
    files["ruleset.yaml"] = header.replace('version: "2026.1"', 'version: "2026.2"').replace(
        "in_force_from: 2025-Q3", "in_force_from: 2026-Q3")
    assert files["grades.yaml"].count("    min_score: 90\n") == 1
    files["grades.yaml"] = files["grades.yaml"].replace("    min_score: 90\n", "    min_score: 97\n")
    return files


@pytest.fixture(scope="module", params=BACKENDS)
def year(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The year's timeline, run once per backend; what each step returned, by name."""
    workdir = tmp_path_factory.mktemp(f"rollups-{request.param}")
    with database_url(request.param, workdir) as url:
        server = ServerProcess(workdir, database_url=url).start()
        try:
            yield _run(server)
        finally:
            server.stop()


def _run(server: ServerProcess) -> dict[str, Any]:
    seen: dict[str, Any] = {"server": server}
    with server.client() as admin:
        admin.upsert_units(hanoi_units())
        load_year(admin)
        for quarter in QUARTERS[:2]:
            admin.evaluate_period(quarter)
        seen["h2_missing"] = _refusal(admin, "2026-H2")
        for quarter in QUARTERS[2:]:
            admin.evaluate_period(quarter)
        seen["periods_before"] = list(admin.list_periods())
        seen["h1"] = admin.evaluate_period("2026-H1")
        seen["h1_sxd"] = admin.get_evaluation("2026-H1", "SXD")
        seen["activated"] = admin.activate_ruleset(stricter_rules(server.workdir), reason="Siết ngưỡng xuất sắc")
        seen["year_stale"] = _refusal(admin, YEAR)
        for quarter in QUARTERS[2:]:
            admin.evaluate_period(quarter)
        seen["year"] = admin.evaluate_period(YEAR)
        seen["year_again"] = admin.evaluate_period(YEAR)
        seen["h2"] = admin.evaluate_period("2026-H2")
        seen["evaluations"] = {e.unit.removeprefix("units/"): e for e in admin.list_evaluations(YEAR)}
        seen["rankings"] = admin.list_rankings(YEAR, "departments")
        seen["rankings_h1"] = admin.list_rankings("2026-H1", "departments")
        seen["recommendations"] = list(admin.list_recommendations(YEAR))
        seen["explained"] = admin.explain_evaluation(YEAR, "STC")
        seen["period"] = admin.get_period(YEAR)
        seen["periods"] = list(admin.list_periods())
        seen["year_2025"] = _refusal(admin, "2025")
        name = f"periods/{YEAR}/recommendations/SNV~annual_commendation_candidate"
        seen["reviewed"] = admin.review_recommendation(name, "approve", "Đủ điều kiện khen thưởng năm 2026")
        seen["reviews"] = list(admin.list_recommendation_reviews(name))
        seen["report_vi"] = admin.get_quarterly_report(YEAR).content.decode("utf-8")
        seen["report_en"] = admin.get_quarterly_report(YEAR, language="en").content.decode("utf-8")
        seen["report_h1_vi"] = admin.get_quarterly_report("2026-H1").content.decode("utf-8")
        seen["report_h1_en"] = admin.get_quarterly_report("2026-H1", language="en").content.decode("utf-8")
        seen["csv"] = admin.get_quarterly_report(YEAR, format="csv").content.decode("utf-8-sig")
    return seen


def _refusal(client: Client, period: str) -> FailedPrecondition:
    with pytest.raises(FailedPrecondition) as refused:
        client.evaluate_period(period)
    return refused.value


def test_a_year_is_the_mean_of_its_assessable_quarters_with_the_annual_commendation(year: dict[str, Any]) -> None:
    assert year["year"].units_evaluated == 141 and year["year"].new_revisions == 141
    assert year["year"].ruleset_version == "2026.2"
    snv = year["evaluations"]["SNV"]
    assert (snv.period, snv.assessable, snv.score_display, snv.grade) == (YEAR, True, "100.00", "excellent")
    assert list(snv.flags) == ["annual_commendation_candidate"]
    assert snv.flag_labels[0].label_vi == "Đề nghị khen thưởng năm"
    assert snv.rollup.span == "year" and list(snv.rollup.quarters) == list(QUARTERS)
    assert (snv.rollup.assessable_quarters, snv.rollup.excellent_quarters, snv.rollup.criticism_quarters) == (4, 4, 0)
    assert (snv.counts.due, snv.counts.on_time) == (40, 40)
    reason = next(rule for rule in snv.fired_rules if rule.rule_id == "annual-commendation")
    assert reason.reason_vi.startswith("Xếp loại “Hoàn thành xuất sắc nhiệm vụ” năm 2026, 4 quý xếp loại xuất sắc")
    stp = year["evaluations"]["STP"]
    # (100 + 100 + 95 + 95)/4 = 97.5, excellent under 2026.2; two quarters with a reminder: no commendation
    assert (stp.score_display, stp.grade, list(stp.flags)) == ("97.50", "excellent", [])
    assert (stp.rollup.excellent_quarters, stp.rollup.criticism_quarters) == (2, 2)
    assert [list(r.criticism_flags) for r in stp.rollup.results] == [[], [], ["reminder"], ["reminder"]]


def test_each_quarter_keeps_the_ruleset_in_force_for_it_and_the_last_one_grades(year: dict[str, Any]) -> None:
    sgd = year["evaluations"]["STC"]
    results = sgd.rollup.results
    assert [r.ruleset_version for r in results] == ["2026.1", "2026.1", "2026.2", "2026.2"]
    assert [r.grade for r in results] == ["excellent", "excellent", "good", "good"]
    assert all(r.score_display == "96.00" for r in results)
    # 96 is excellent under 2026.1 but the year is graded by 2026.2, in force for 2026-Q4
    assert (sgd.score_display, sgd.grade, sgd.ruleset_version) == ("96.00", "good", "2026.2")
    assert year["activated"].evaluated_periods_affected  # Q3 and Q4 had been evaluated


def test_a_quarter_evaluated_under_a_ruleset_no_longer_in_force_is_named(year: dict[str, Any]) -> None:
    refused = year["year_stale"]
    assert "2026-Q3 was evaluated under ruleset 2026.1" in refused.message
    assert "2026-Q4 was evaluated under ruleset 2026.1" in refused.message
    assert "but 2026.2" in refused.message and "evaluate those quarters again first" in refused.message


def test_a_period_with_a_quarter_never_evaluated_is_refused_naming_it(year: dict[str, Any]) -> None:
    assert "2026-Q3 and 2026-Q4 have none yet: evaluate 2026-Q3 and 2026-Q4 first" in year["h2_missing"].message
    assert "2025-Q1, 2025-Q2, 2025-Q3 and 2025-Q4 have none yet" in year["year_2025"].message


def test_assessable_when_at_least_half_of_the_quarters_are(year: dict[str, Any]) -> None:
    sxd_year = year["evaluations"]["SXD"]
    assert (sxd_year.assessable, sxd_year.score_display, sxd_year.grade) == (False, "100.00", "not_assessable")
    assert (sxd_year.rollup.assessable_quarters, sxd_year.rollup.min_assessable_quarters) == (1, 2)
    why = next(rule for rule in sxd_year.fired_rules if rule.rule_id == "grade.not_assessable")
    assert why.reason_en == "Only 1 of 4 quarters were assessable; at least 2 are needed"
    sxd_h1 = year["h1_sxd"]
    assert (sxd_h1.assessable, sxd_h1.score_display, sxd_h1.grade) == (True, "100.00", "excellent")
    assert sxd_h1.rollup.min_assessable_quarters == 1
    sct = year["evaluations"]["SCT"]
    assert (sct.assessable, sct.has_score, sct.grade) == (False, False, "not_assessable")


def test_re_evaluating_with_unchanged_quarters_makes_no_new_revision(year: dict[str, Any]) -> None:
    again = year["year_again"]
    assert (again.new_revisions, again.unchanged) == (0, 141)
    assert all(e.revision == 1 for e in year["evaluations"].values())


def test_rankings_order_by_score_then_mean_timeliness(year: dict[str, Any]) -> None:
    ranked = [(e.rank, e.unit.removeprefix("units/"), e.score_display) for e in year["rankings"] if e.rank]
    assert ranked == [(1, "SNV", "100.00"), (2, "STP", "97.50"), (3, "STC", "96.00")]
    stp = next(e for e in year["rankings"] if e.unit == "units/STP")
    assert stp.timeliness == pytest.approx((1 + 1 + 0.875 + 0.875) / 4)
    h1 = [(e.unit.removeprefix("units/"), e.score_display) for e in year["rankings_h1"] if e.rank]
    # SNV, STP and SXD all 100 in H1: ties by timeliness (1.0 each), then by code
    assert h1 == [("SNV", "100.00"), ("STP", "100.00"), ("SXD", "100.00"), ("STC", "96.00")]


def test_recommendations_go_through_the_same_review(year: dict[str, Any]) -> None:
    found = {(r.unit.removeprefix("units/"), r.flag) for r in year["recommendations"]}
    assert found == {("SNV", "annual_commendation_candidate")}
    reviewed = year["reviewed"].recommendation
    assert reviewed.period == YEAR and reviewed.status == 2  # approved
    assert [r.decision for r in year["reviews"]] and year["reviews"][0].reason.startswith("Đủ điều kiện")


def test_explanation_names_the_quarters_and_their_share(year: dict[str, Any]) -> None:
    explained = year["explained"]
    assert explained.evaluation.period == YEAR and len(explained.evaluation.rollup.results) == 4
    assert [c.indicator for c in explained.contributions] == [f"quarter:{q}" for q in QUARTERS]
    assert sum(c.points for c in explained.contributions) == pytest.approx(96.0)
    assert (explained.next_grade, explained.next_grade_min_score) == ("excellent", 97.0)
    assert not explained.inputs_changed and not explained.margins
    assert "grade.good" in [rule.rule_id for rule in explained.evaluation.fired_rules]


def test_periods_list_half_years_and_years_with_their_quarters(year: dict[str, Any]) -> None:
    before = {p.period_id: p for p in year["periods_before"]}
    assert before["2026-H1"].kind == periods_pb2.PERIOD_KIND_HALF_YEAR and before["2026-H1"].units_evaluated == 0
    ids = [p.period_id for p in year["periods"]]
    assert ids.index("2026-Q4") < ids.index("2026-H2") < ids.index("2026") < ids.index("2026-Q3")
    assert ids.index("2026-Q2") < ids.index("2026-H1") < ids.index("2026-Q1")
    period = year["period"]
    assert (period.kind, list(period.quarters), period.quarters_evaluated) == (
        periods_pb2.PERIOD_KIND_YEAR, list(QUARTERS), 4)
    assert (period.start_date, period.end_date, period.units_evaluated) == ("2026-01-01", "2026-12-31", 141)
    assert period.assignments_due == sum(a + b for plan in PLAN.values() for a, b in plan)


def test_the_reply_to_a_year_recommendation_carries_no_corrections(year: dict[str, Any]) -> None:
    server: ServerProcess = year["server"]
    with server.client() as admin:
        name = f"periods/{YEAR}/recommendations/SNV~annual_commendation_candidate"
        with pytest.raises(InvalidArgument) as refused:
            admin.contest_recommendation(name, "Đề nghị xem lại", [outcomes_pb2.Outcome(
                outcome_id="SNV-Q4-0-fix", assignment="assignments/SNV-Q4-0", completed_on="2026-11-05",
                status=outcomes_pb2.OUTCOME_STATUS_COMPLETED, reported_at=timestamp(REPORTED),
                reporting_system="hanoi-task-tracker")])
        replied = admin.contest_recommendation(name, "Đơn vị đề nghị giữ nguyên đề xuất khen thưởng năm")
    assert (replied.before.revision, replied.after.revision, replied.after.grade) == (1, 1, "excellent")
    assert replied.period == YEAR and not replied.corrections
    assert refused.value.violations[0].field == "outcomes"
    assert "contest of the recommendation of the quarter they change" in refused.value.violations[0].description


def test_invalid_periods_are_refused_naming_the_forms(year: dict[str, Any]) -> None:
    server: ServerProcess = year["server"]
    with server.client() as admin:
        for bad in ("2026-H3", "2026-Q5", "26", "2101"):
            with pytest.raises(InvalidArgument) as refused:
                admin.evaluate_period(bad)
            assert "write a quarter YYYY-Qn (2026-Q3), a half-year YYYY-H1 or YYYY-H2" in str(refused.value), bad


def test_the_cli_evaluates_ranks_and_shows_a_year(year: dict[str, Any]) -> None:
    server: ServerProcess = year["server"]
    env = {"COLUMNS": "200", "NO_COLOR": "1", "CIVICSCORE_TOKEN": server.token}

    def cli(*args: str) -> Any:
        return CliRunner().invoke(app, ["--server", server.address, *args], env=env)

    evaluated = cli("evaluate", YEAR)
    assert evaluated.exit_code == 0, evaluated.output
    assert "Evaluated 141 units for 2026 with ruleset 2026.2" in evaluated.output
    ranked = cli("rankings", "2026-h1", "--block", "departments", "--lang", "en")
    assert ranked.exit_code == 0, ranked.output
    assert ranked.output.index("SNV") < ranked.output.index("STC")
    shown = cli("show", "STC", "--period", YEAR, "--lang", "en")
    assert shown.exit_code == 0, shown.output
    assert "Year 2026" in shown.output and "2026-Q3" in shown.output and "2026.2" in shown.output
    assert "Quarters (4 of 4 assessable, at least 2 needed)" in shown.output
    explained = cli("explain", "STC", "--period", YEAR)
    assert explained.exit_code == 0, explained.output
    assert "Year 2026" in explained.output and "quarter:2026-Q4" in explained.output


def test_the_year_report_has_its_label_and_a_table_of_quarters(year: dict[str, Any]) -> None:
    html = year["report_vi"]
    assert "<title>Báo cáo đánh giá năm 2026</title>" in html
    assert "<title>Evaluation report: 2026</title>" in year["report_en"]
    assert "<title>Báo cáo đánh giá 6 tháng đầu năm 2026</title>" in year["report_h1_vi"]
    assert "<title>Evaluation report: First half of 2026</title>" in year["report_h1_en"]
    assert 'id="quarters-departments"' in html and 'data-quarter="2026-Q4"' in html
    assert "Kết quả từng quý" in html and "Đề nghị khen thưởng năm" in html
    header, *rows = year["csv"].splitlines()
    assert "Điểm 2026-Q1" in header and "Xếp loại 2026-Q4" in header and "Điểm kỳ trước" in header
    sgd = next(row for row in rows if row.startswith("STC,"))
    assert "96.00" in sgd and "Hoàn thành tốt nhiệm vụ" in sgd


def test_the_year_report_in_headless_chromium_and_as_pdf(year: dict[str, Any], tmp_path: Path) -> None:
    need_browser()
    need_pdf_tools()
    assert sync_playwright is not None and CHROMIUM is not None and PDFTOTEXT is not None
    page_file = tmp_path / "report-2026-vi.html"
    page_file.write_text(year["report_vi"], encoding="utf-8")
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
            page.goto(page_file.as_uri(), wait_until="load")
            title = page.title()
            heading = page.inner_text("#report-title")
            cells = page.locator("#quarters-departments tr[data-unit=STC] td.quarter-cell")
            sgd = [cells.nth(i).inner_text() for i in range(cells.count())]
            ranked = page.locator("#ranking-departments tbody tr")
            ranked_units = [ranked.nth(i).get_attribute("data-unit") for i in range(ranked.count())]
            summary = page.locator("#quarter-summary tbody tr").count()
            page.screenshot(path=str(tmp_path / "report-2026-vi.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert title == heading == "Báo cáo đánh giá năm 2026"
    assert ranked_units == ["SNV", "STP", "STC"]
    assert [cell.split("\n")[0] for cell in sgd] == ["96,00"] * 4
    assert "Hoàn thành xuất sắc nhiệm vụ" in sgd[0] and "Hoàn thành tốt nhiệm vụ" in sgd[3]
    assert summary == 4
    server: ServerProcess = year["server"]
    target = tmp_path / "report-2026.pdf"
    result = CliRunner().invoke(app, ["--server", server.address, "report", "--period", YEAR, "--format", "pdf",
                                      "-o", str(target)], env={"CIVICSCORE_TOKEN": server.token, "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    text = subprocess.run([PDFTOTEXT, "-enc", "UTF-8", str(target), "-"], capture_output=True, check=True,
                          timeout=60).stdout.decode("utf-8")
    text = unicodedata.normalize("NFC", text)
    for expected in ("Báo cáo đánh giá năm 2026", "Kết quả từng quý", "Sở Nội vụ", "Đề nghị khen thưởng năm"):
        assert expected in text, expected
