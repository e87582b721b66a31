"""Officials (cá nhân) through the real server and its SDK, on SQLite and PostgreSQL.

Covered: upserts and their precise refusals (nothing stored), deactivation instead of deletion, the lead
official of an assignment, who may read person-level data (`personal.read`: committee, admin, a reporter
for its own units' people; never a reader) with every read in the audit log, and a quarter's evaluation
that gives a head accountability and an official individual praise, reviewed like a unit's.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from civicscore_api.v1 import officials_pb2
from civicscore_client import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from tests.postgres_support import database_url_fixture
from tests.scenario import assignment
from tests.test_extensions import Served, done, hanoi, start_server

pytestmark = pytest.mark.slow
database_url_param = database_url_fixture()
OF = officials_pb2


def appointment(unit: str, position: int, start: str, end: str = "") -> officials_pb2.Appointment:
    return OF.Appointment(unit=f"units/{unit}", position=position, start_on=start, end_on=end)


def official(oid: str, name: str, *appointments: officials_pb2.Appointment, activity: int = 0,
             under_review: tuple[str, ...] = ()) -> officials_pb2.Official:
    return OF.Official(official_id=oid, display_name=name, appointments=list(appointments), activity=activity,
                      under_review_periods=list(under_review))


LAN = official("CB-001", "Nguyễn Thị Lan", appointment("SNV", OF.OFFICIAL_POSITION_HEAD, "2024-01-01"))
BINH = official("CB-002", "Trần Văn Bình", appointment("STP", OF.OFFICIAL_POSITION_OFFICER, "2023-03-01", "2026-07-31"),
                appointment("SCT", OF.OFFICIAL_POSITION_DEPUTY, "2026-08-01"))
HUNG = official("CB-003", "Lê Quang Hùng", appointment("SNV", OF.OFFICIAL_POSITION_HEAD, "2020-01-01", "2026-09-29"))


@pytest.fixture()
def served(tmp_path: Path, database_url_param: str) -> Iterator[Served]:
    server = start_server(tmp_path, database_url_param, hanoi(7, 1))
    try:
        with server.client() as admin:
            admin.upsert_officials([LAN, BINH, HUNG])
        yield server
    finally:
        server.proc.stop()


def personal_reads(client: object, actor: str) -> list[dict[str, object]]:
    events = client.list_audit_events(actor=actor, action="read_personal")  # type: ignore[attr-defined]
    return [{"target": e.target, **json.loads(e.detail_json)} for e in events]


def test_upserts_reads_scopes_and_audit(served: Served) -> None:
    with served.client() as admin:
        got = admin.get_official("CB-002")
        assert got.name == "officials/CB-002" and got.display_name == "Trần Văn Bình"
        assert [(a.unit, a.position, a.start_on, a.end_on) for a in got.appointments] == [
            ("units/STP", OF.OFFICIAL_POSITION_OFFICER, "2023-03-01", "2026-07-31"),
            ("units/SCT", OF.OFFICIAL_POSITION_DEPUTY, "2026-08-01", "")]
        assert got.activity == OF.OFFICIAL_ACTIVITY_ACTIVE
        # sent again unchanged: nothing written
        assert admin.upsert_officials([LAN]).unchanged == 1

        # every problem of every item, nothing stored
        bad = [
            official("CB-009", "Phạm Thu", appointment("XYZ", OF.OFFICIAL_POSITION_HEAD, "2026-01-01")),
            official("CB-010", "", appointment("SNV", OF.OFFICIAL_POSITION_OFFICER, "2026-05-01", "2026-04-30")),
            official("CB-011", "Đỗ Minh", appointment("SNV", OF.OFFICIAL_POSITION_OFFICER, "2026-01-01"),
                     appointment("SNV", OF.OFFICIAL_POSITION_HEAD, "2026-06-01")),
            official("CB 012", "Hà An"),
        ]
        with pytest.raises(InvalidArgument) as refused:
            admin.upsert_officials(bad)
        found = {(v.field, v.reason) for v in refused.value.violations}
        assert found == {
            ("officials[0].appointments[0].unit", "UNKNOWN_UNIT"), ("officials[1].display_name", "REQUIRED"),
            ("officials[1].appointments[0].end_on", "BEFORE_START"),
            ("officials[2].appointments", "OVERLAPPING_APPOINTMENTS"),
            ("officials[3].official_id", "INVALID_FORMAT"), ("officials[3].appointments", "REQUIRED")}
        assert "unit 'units/XYZ' does not exist; create it with UpsertUnits first" in str(refused.value)
        assert {o.official_id for o in admin.list_officials()} == {"CB-001", "CB-002", "CB-003"}
        checked = admin.upsert_officials(bad, validate_only=True)
        assert len(checked.violations) == 6

    with served.client("reader-1") as reader:
        with pytest.raises(PermissionDenied, match=r"personal\.read"):
            reader.get_official("CB-001")
        with pytest.raises(PermissionDenied, match=r"personal\.read"):
            list(reader.list_officials())

    with served.client("snv-reporter") as snv:
        assert snv.get_official("CB-001").display_name == "Nguyễn Thị Lan"
        assert [o.official_id for o in snv.list_officials()] == ["CB-001", "CB-003"]
        assert [o.official_id for o in snv.list_officials(unit="STP")] == []
        with pytest.raises(NotFound, match=r"officials/CB-002 does not exist, or is not an official of your units"):
            snv.get_official("CB-002")  # Bình works at STP and SCT: the same answer as for nobody
        with pytest.raises(PermissionDenied, match=r"officials\.write"):
            snv.upsert_officials([LAN])

    with served.client("committee-1") as committee:
        assert [o.official_id for o in committee.list_officials(unit="SCT")] == ["CB-002"]
        reads = personal_reads(committee, "snv-reporter")
    # what the reporter read, with whom; the lookups that returned no one read nothing and are not recorded
    assert [(r["method"], r["target"], r["officials"]) for r in reads] == [
        ("GetOfficial", "officials/CB-001", ["CB-001"]), ("ListOfficials", "officials", ["CB-001", "CB-003"])]


def test_lead_official_deactivation_and_deletion(served: Served) -> None:
    lead = assignment("STP-L1", "STP", "2026-08-20")
    lead.lead_official = "officials/CB-002"
    with served.client() as admin:
        unknown = assignment("STP-L2", "STP", "2026-08-20")
        unknown.lead_official = "officials/CB-404"
        with pytest.raises(InvalidArgument, match=r"official 'officials/CB-404' does not exist"):
            admin.upsert_assignments([lead, unknown])
        admin.upsert_assignments([lead])
        assert admin.get_assignment("STP-L1").lead_official == "officials/CB-002"
    with served.client("reader-1") as reader:
        assert reader.get_assignment("STP-L1").lead_official == ""  # personal data: not for readers
    with served.client() as admin:
        with pytest.raises(FailedPrecondition, match=r"officials/CB-002 leads 1 assignment\(s\): an evaluated or "
                                                     r"leading official is kept; deactivate them instead"):
            admin.delete_official("CB-002")
        admin.delete_official("CB-003")  # entered by mistake: never evaluated, leads nothing
        with pytest.raises(NotFound):
            admin.get_official("CB-003")
        inactive = official("CB-002", BINH.display_name, *BINH.appointments, activity=OF.OFFICIAL_ACTIVITY_INACTIVE)
        assert admin.upsert_officials([inactive]).updated == 1
        assert admin.get_official("CB-002").activity == OF.OFFICIAL_ACTIVITY_INACTIVE
        # sent again without saying: the stored activity is kept
        assert admin.upsert_officials([BINH]).unchanged == 1
        assert admin.get_official("CB-002").activity == OF.OFFICIAL_ACTIVITY_INACTIVE
        assert [o.official_id for o in admin.list_officials(active=False)] == ["CB-002"]
        actions = [(e.action, e.target) for e in admin.list_audit_events() if e.action.endswith("_official")
                   or e.action == "upsert_officials"]
    assert ("delete_official", "officials/CB-003") in actions and actions.count(("upsert_officials", "officials")) == 2


def test_a_quarter_gives_head_accountability_and_individual_praise(served: Served) -> None:
    """Q3 2026: SNV completes 5 of 10 on time (criticism): its head on 2026-09-30, Lan, gets head
    accountability, with SNV's reasons; Hùng, head until 2026-09-29, gets nothing. Bình leads 5 assignments
    across STP and SCT, all on time: individual praise, reached through SCT (his position at the end)."""
    snv = [assignment(f"SNV-{i}", "SNV", "2026-08-10") for i in range(10)]
    led = [assignment(f"STP-{i}", "STP", "2026-07-20") for i in range(3)] + [
        assignment(f"SCT-{i}", "SCT", "2026-09-10") for i in range(2)]
    for task in led:
        task.lead_official = "officials/CB-002"
    served.at(hanoi(9, 1))
    with served.client() as admin:
        admin.upsert_assignments(snv + led)
        admin.submit_outcomes([done(f"SNV-{i}", "2026-08-01", hanoi(8, 2)) for i in range(5)]
                              + [done(t.assignment_id, "2026-07-15", hanoi(8, 2)) for t in led])
    served.at(hanoi(10, 5))
    with served.client("committee-1") as committee:
        result = committee.evaluate_period("2026-Q3")
        assert (result.officials_evaluated, result.official_revisions) == (3, 3)
        units_only = {(r.unit, r.flag) for r in committee.list_recommendations("2026-Q3")}
        assert all(not r.official for r in committee.list_recommendations("2026-Q3"))
        assert ("units/SNV", "criticism") in units_only
        people = {(r.official, r.flag): r for r in committee.list_official_recommendations("2026-Q3")}
        assert set(people) == {("officials/CB-001", "head_accountability"), ("officials/CB-002", "individual_praise")}
        head = people[("officials/CB-001", "head_accountability")]
        assert head.name == "periods/2026-Q3/recommendations/SNV~head_accountability~CB-001"
        assert head.unit == "units/SNV" and head.official_display_name == "Nguyễn Thị Lan"
        assert head.reasons[0].text_vi.startswith("Người đứng đầu Sở Nội vụ")
        assert any(r.rule_id == "criticism-low-timeliness" for r in head.reasons[1:])  # SNV's own reasons
        praise = people[("officials/CB-002", "individual_praise")]
        assert praise.unit == "units/SCT" and "Chủ trì 5 nhiệm vụ" in praise.reasons[0].text_vi

        evaluation = committee.get_official_evaluation("2026-Q3", "CB-002")
        assert evaluation.led.due == 5 and evaluation.led.on_time == 5 and evaluation.unit == "units/SCT"
        assert evaluation.position == OF.OFFICIAL_POSITION_DEPUTY and evaluation.revision == 1
        assert [f.flag for f in evaluation.flags] == ["individual_praise"]
        hung = committee.get_official_evaluation("2026-Q3", "CB-003")
        assert list(hung.flags) == [] and list(hung.headed_units) == []
        assert [e.official for e in committee.list_official_evaluations("2026-Q3", flagged=True)] == [
            "officials/CB-001", "officials/CB-002"]

        # the change stream stays about units: changes about officials are read with OfficialService
        watch = committee.watch_recommendations()
        streamed = []
        for message in watch:
            if message.caught_up:
                break
            streamed.append(message.change.recommendation)
        watch.cancel()
        assert streamed and all(not r.official for r in streamed)
        assert {r.recommendation_id for r in streamed} == {
            r.recommendation_id for r in committee.list_recommendations("2026-Q3")}

        reviewed = committee.review_recommendation(head.name, "approve", "Đồng ý, đề nghị kiểm điểm")
        assert reviewed.recommendation.last_decision == "approved" and reviewed.recommendation.official == head.official
        assert [r.reviewer for r in committee.list_recommendation_reviews(head.name)] == ["committee-1"]
        # evaluating again with nothing changed stores nothing new
        again = committee.evaluate_period("2026-Q3")
        assert (again.officials_evaluated, again.official_revisions) == (3, 0)

    with served.client("reader-1") as reader:
        with pytest.raises(PermissionDenied, match=r"personal\.read"):
            list(reader.list_official_recommendations("2026-Q3"))
        with pytest.raises(PermissionDenied, match=r"personal\.read"):
            reader.get_official_evaluation("2026-Q3", "CB-001")
        with pytest.raises(PermissionDenied, match=r"reading it needs the permission personal\.read"):
            reader.list_recommendation_reviews(head.name)
        assert all(not r.official for r in reader.list_recommendations("2026-Q3"))

    with served.client("stp-reporter") as stp:
        assert list(stp.list_official_recommendations("2026-Q3")) == []  # Bình is reached through SCT now
        with pytest.raises(PermissionDenied, match=r"outside your scope"):
            stp.contest_recommendation(head.name, "Không phải đơn vị của tôi")
    with served.client("snv-reporter") as snv_reporter:
        assert [r.flag for r in snv_reporter.list_official_recommendations("2026-Q3")] == ["head_accountability"]
        # the person's reply, through their unit's reporter
        reply = snv_reporter.contest_recommendation(head.name, "Đơn vị đã có kế hoạch khắc phục từ tháng 9")
        assert reply.recommendation == head.name and reply.unit == "units/SNV"
    with served.client("reader-1") as reader:
        with pytest.raises(PermissionDenied, match=r"personal\.read"):
            reader.get_contest(reply.name)
        assert [c.name for c in reader.list_contests("2026-Q3")] == []  # the reply about a person is left out
    with served.client("committee-1") as committee:
        assert committee.get_contest(reply.name).text == "Đơn vị đã có kế hoạch khắc phục từ tháng 9"
        assert [c.name for c in committee.list_contests("2026-Q3")] == [reply.name]

    with served.client("committee-1") as committee:
        reads = personal_reads(committee, "committee-1")
    methods = [r["method"] for r in reads]
    assert methods.count("ListOfficialRecommendations") == 1 and "GetOfficialEvaluation" in methods
    assert "ReviewRecommendation" in methods and "ListRecommendationReviews" in methods


def test_the_quarterly_and_annual_reports_list_individuals_for_those_who_may_read_them(
        served: Served, tmp_path: Path) -> None:
    """The Q3 report (and the year's, from its quarters) lists the recommendations about officials, with their
    names, positions and units, for the committee (the read audited), with the quarter's extensions and
    obstacles; a reader's report says the individuals' section is personal data instead. Rendered in headless
    Chromium as the report is."""
    need_browser()
    snv = [assignment(f"SNV-{i}", "SNV", "2026-08-10") for i in range(10)] + [assignment("SNV-E", "SNV", "2026-09-20")]
    served.at(hanoi(9, 1))
    with served.client() as admin:
        admin.upsert_assignments(snv)
        admin.submit_outcomes([done(f"SNV-{i}", "2026-08-01", hanoi(8, 2)) for i in range(4)])
    with served.client("snv-reporter") as reporter:
        asked = reporter.request_extension("SNV-E", "2026-09-28", "[Thử nghiệm] Chờ ý kiến thẩm định").extension
        reporter.report_obstacle("SNV-E", "[Thử nghiệm] Chưa có hướng dẫn định mức", "Đề nghị hướng dẫn")
    served.at(hanoi(9, 2))
    with served.client("committee-1") as committee:
        committee.decide_extension(asked.name, "approve", "[Thử nghiệm] Đồng ý gia hạn")
    served.at(dt.datetime(2027, 1, 5, 9, tzinfo=dt.timezone(dt.timedelta(hours=7))))
    with served.client("committee-1") as committee:
        for quarter in ("2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"):
            committee.evaluate_period(quarter)
        committee.evaluate_period("2026")
        quarterly = committee.get_quarterly_report("2026-Q3").content
        annual = committee.get_quarterly_report("2026").content
        english = committee.get_quarterly_report("2026-Q3", language="en").content
        reads = [r for r in personal_reads(committee, "committee-1") if r["method"] == "GetQuarterlyReport"]
    with served.client("reader-1") as reader:
        hidden = reader.get_quarterly_report("2026-Q3").content
    assert [(r["target"], r["officials"]) for r in reads] == [
        ("periods/2026-Q3", ["CB-001"]), ("periods/2026", ["CB-001"]), ("periods/2026-Q3", ["CB-001"])]

    shown = {name: browser_text(tmp_path, name, content) for name, content in (
        ("quarterly", quarterly), ("annual", annual), ("english", english), ("hidden", hidden))}
    assert "Đề xuất đối với cá nhân" in shown["quarterly"]["heading"]
    row = shown["quarterly"]["rows"][0]
    assert row.startswith("Nguyễn Thị Lan\tNgười đứng đầu\tSở Nội vụ (SNV)\tTrách nhiệm người đứng đầu\tChờ xem xét")
    assert "Người đứng đầu Sở Nội vụ, đơn vị bị phê bình hoặc yêu cầu giải trình trong quý" in row
    assert len(shown["quarterly"]["rows"]) == 1 and "Lê Quang Hùng" not in shown["quarterly"]["body"]
    assert shown["annual"]["rows"][0].startswith("2026-Q3\tNguyễn Thị Lan\tNgười đứng đầu\tSở Nội vụ (SNV)")
    assert shown["english"]["rows"][0].startswith("Nguyễn Thị Lan\tHead\tDepartment of Home Affairs (SNV)\t"
                                                  "Head accountability")
    assert shown["hidden"]["rows"] == [] and "Nguyễn Thị Lan" not in shown["hidden"]["body"]
    assert "không hiển thị với tài khoản này (cần quyền personal.read" in shown["hidden"]["body"]
    assert all(not errors for errors in (s["errors"] for s in shown.values()))
    for name in ("quarterly", "annual"):  # the quarter's extension and obstacle are there too
        assert shown[name]["extensions"] == ["SNV-E"] and shown[name]["open_obstacles"] == ["SNV"]


def need_browser() -> None:
    from tests.test_report import need_browser as needed

    needed()


def browser_text(tmp_path: Path, name: str, content: bytes) -> dict[str, Any]:
    """The individuals section of a report page as Chromium renders it: heading, row texts, whole body."""
    from playwright.sync_api import sync_playwright

    from tests.test_report import CHROMIUM, LAUNCH_ARGS

    page_file = tmp_path / f"{name}.html"
    page_file.write_bytes(content)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(page_file.as_uri(), wait_until="load")
            rows = page.locator("#individuals tr.individual")
            extensions = page.locator("#extensions-approved tbody tr")
            obstacles = page.locator("#obstacles-open tr.obstacle")
            found = {"heading": page.inner_text("#individuals h2"), "body": page.inner_text("body"),
                     "rows": [rows.nth(i).inner_text() for i in range(rows.count())], "errors": errors,
                     "extensions": [(extensions.nth(i).get_attribute("data-extension") or "").split("/")[1]
                                    for i in range(extensions.count())],
                     "open_obstacles": [obstacles.nth(i).get_attribute("data-unit") for i in range(obstacles.count())]}
            page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
        finally:
            browser.close()
    return found


def test_an_obstacle_is_assigned_to_an_official_by_name(served: Served) -> None:
    with served.client() as admin:
        admin.upsert_assignments([assignment("SNV-O1", "SNV", "2026-09-15")])
    with served.client("snv-reporter") as snv:
        reported = snv.report_obstacle("SNV-O1", "Chưa có hướng dẫn", "Đề nghị hướng dẫn")
    with served.client("committee-1") as committee:
        assigned = committee.assign_obstacle(reported.name, official="officials/CB-001")
        assert (assigned.resolver_official, assigned.resolver_unit) == ("officials/CB-001", "")
        with pytest.raises(InvalidArgument, match=r"'officials/CB-404' does not exist; ListOfficials lists"):
            committee.assign_obstacle(reported.name, official="officials/CB-404")
        assert committee.get_obstacle(reported.name).resolver_official == "officials/CB-001"  # unchanged
