"""Obstacles (khó khăn, vướng mắc) through the real server and its SDK, on SQLite and PostgreSQL.

The server runs with a clock the tests set (tests/clockserver.py). Covered: report, assign (a unit or a
named official), reassign, resolve, the refused moves, get, list and its filters (unit, status, age,
reported and resolved dates, paging), idempotent retries, who may do what, precise errors that store
nothing, the audit entries, and `obstacle_unresolved` in evaluations (31 days open at the quarter's end
raises it, 30 do not, resolved before the end does not) with its effect on the inputs digest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from civicscore_api.v1 import obstacles_pb2, outcomes_pb2
from civicscore_client import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from tests.postgres_support import database_url_fixture
from tests.scenario import assignment
from tests.serverproc import timestamp
from tests.test_extensions import Served, cli, hanoi, start_server

pytestmark = pytest.mark.slow
database_url_param = database_url_fixture()
OB = obstacles_pb2


@pytest.fixture()
def served(tmp_path: Path, database_url_param: str) -> Iterator[Served]:
    """A server on each backend at 2026-07-01 09:00 Hanoi time, with SNV's and STP's assignments of 2026-Q3."""
    server = start_server(tmp_path, database_url_param, hanoi(7, 1))
    try:
        with server.client() as admin:
            admin.upsert_assignments([
                assignment("SNV-A1", "SNV", "2026-09-15"), assignment("SNV-A2", "SNV", "2026-09-20"),
                assignment("STP-B1", "STP", "2026-09-28")])
        yield server
    finally:
        server.proc.stop()


def test_report_assign_resolve_get_list_and_audit(served: Served) -> None:
    served.at(hanoi(7, 10))
    with served.client("snv-reporter") as snv:
        first = snv.report_obstacle("SNV-A1", "  Chưa có hướng dẫn về định mức chi ", "Đề nghị hướng dẫn định mức",
                                    "Sở Tài chính")
        second = snv.report_obstacle("assignments/SNV-A2", "Thiếu dữ liệu dân cư", "Đề nghị chia sẻ dữ liệu")
    assert first.name == f"assignments/SNV-A1/obstacles/{first.obstacle_id}"
    assert (first.status, first.unit, first.assignment, first.assignment_title) == (
        OB.OBSTACLE_STATUS_OPEN, "units/SNV", "assignments/SNV-A1", "Nhiệm vụ SNV-A1")
    assert first.description == "Chưa có hướng dẫn về định mức chi" and first.requested_of == "Sở Tài chính"
    assert first.reported_by == "snv-reporter" and first.report_time.ToDatetime(dt.UTC) == hanoi(7, 10)
    assert first.days_open == 0 and not first.HasField("assign_time") and not first.HasField("resolve_time")

    served.at(hanoi(7, 20, 15))
    with served.client("committee-1") as committee:
        assert committee.get_obstacle(first.name).days_open == 10
        assert committee.get_obstacle(f"SNV-A1/{first.obstacle_id}").name == first.name  # the short form
        assigned = committee.assign_obstacle(first.name, unit="SCT")
        assert (assigned.status, assigned.resolver_unit, assigned.assigned_by) == (
            OB.OBSTACLE_STATUS_ASSIGNED, "units/SCT", "committee-1")
        reassigned = committee.assign_obstacle(first.name, official="Ông Nguyễn Văn A, Phó Giám đốc Sở Tài chính")
        assert (reassigned.resolver_unit, reassigned.resolver_official) == (
            "", "Ông Nguyễn Văn A, Phó Giám đốc Sở Tài chính")
        resolved = committee.resolve_obstacle(first.name, "Sở Tài chính đã ban hành hướng dẫn số 12/HD-STC")
        assert (resolved.status, resolved.resolved_by, resolved.days_open) == (
            OB.OBSTACLE_STATUS_RESOLVED, "committee-1", 10)
        assert resolved.resolve_time.ToDatetime(dt.UTC) == hanoi(7, 20, 15)
        # resolving an open obstacle directly is allowed (the office answered it itself)
        direct = committee.resolve_obstacle(second.name, "Văn phòng đã chuyển dữ liệu")
        assert direct.status == OB.OBSTACLE_STATUS_RESOLVED and direct.resolver_unit == ""

        with pytest.raises(FailedPrecondition, match=r"obstacles/\d+ is RESOLVED on 2026-07-20 \(final\); it "
                                                     r"cannot be resolved again"):
            committee.resolve_obstacle(first.name, "Lại")
        with pytest.raises(FailedPrecondition, match=r"is RESOLVED on 2026-07-20 \(final\); it cannot be assigned"):
            committee.assign_obstacle(first.name, unit="SNV")

        audit = [(e.action, e.actor, e.target) for e in committee.list_audit_events()
                 if e.action.endswith("_obstacle")]
    assert audit == [("report_obstacle", "snv-reporter", first.name), ("report_obstacle", "snv-reporter", second.name),
                     ("assign_obstacle", "committee-1", first.name), ("assign_obstacle", "committee-1", first.name),
                     ("resolve_obstacle", "committee-1", first.name), ("resolve_obstacle", "committee-1", second.name)]


def test_list_filters_and_paging(served: Served) -> None:
    served.at(hanoi(7, 1))
    with served.client("committee-1") as committee:
        old = committee.report_obstacle("SNV-A1", "Vướng mặt bằng", "Đề nghị hỗ trợ")
    served.at(hanoi(7, 31))
    with served.client("stp-reporter") as stp:
        new = stp.report_obstacle("STP-B1", "Vướng thủ tục", "Đề nghị hướng dẫn")
    served.at(hanoi(8, 2))
    with served.client("committee-1") as committee:
        committee.assign_obstacle(new.name, unit="SNV")

        def ids(**filters: Any) -> list[int]:
            return [o.obstacle_id for o in committee.list_obstacles(**filters)]

        both = [old.obstacle_id, new.obstacle_id]
        assert ids() == both and ids(unit="SNV") == [old.obstacle_id] and ids(unit="units/STP") == [new.obstacle_id]
        assert ids(status="open") == [old.obstacle_id] and ids(status="assigned") == [new.obstacle_id]
        assert ids(status="unresolved") == both and ids(status="resolved") == []
        # today is 2026-08-02: the first is 32 days old, the second 2
        assert ids(age=">30") == [old.obstacle_id] and ids(age=">32") == [] and ids(age=">=32") == [old.obstacle_id]
        assert ids(age="<3") == [new.obstacle_id] and ids(age="2") == [new.obstacle_id] and ids(age="<=32") == both
        assert ids(filter="age>1 AND age<32") == [new.obstacle_id]
        assert ids(reported_in="2026-07-01..2026-07-01") == [old.obstacle_id] and ids(reported_in="2026-Q3") == both
        assert ids(assignment="STP-B1") == [new.obstacle_id]
        pages = committee._obstacles.ListObstacles(OB.ListObstaclesRequest(page_size=1),
                                                    metadata=committee._calls.metadata)
        assert len(pages.obstacles) == 1 and pages.next_page_token
        following = OB.ListObstaclesRequest(page_size=1, page_token=pages.next_page_token)
        rest = committee._obstacles.ListObstacles(following, metadata=committee._calls.metadata)
        assert [o.obstacle_id for o in rest.obstacles] == [new.obstacle_id] and not rest.next_page_token
        with pytest.raises(InvalidArgument, match="status 'closed' is not known"):
            ids(status="closed")
        with pytest.raises(InvalidArgument, match="age is a whole number of days"):
            ids(filter="age>thirty")
        with pytest.raises(InvalidArgument, match="cannot filter on"):
            ids(filter="due_in=2026-Q3")
        with pytest.raises(InvalidArgument, match="ends before it starts"):
            ids(resolved_in="2026-08-01..2026-07-01")


def test_retries_with_the_same_key_are_answered_once(served: Served) -> None:
    served.at(hanoi(7, 10))
    with served.client("snv-reporter") as snv:
        one = snv.report_obstacle("SNV-A1", "Vướng", "Đề nghị", idempotency_key="vuong-1")
        served.at(hanoi(7, 11))
        again = snv.report_obstacle("SNV-A1", "Vướng", "Đề nghị", idempotency_key="vuong-1")
        assert (again.name, again.report_time) == (one.name, one.report_time)  # days_open is counted to today
        with pytest.raises(AlreadyExists, match="vuong-1"):
            snv.report_obstacle("SNV-A1", "Vướng khác", "Đề nghị", idempotency_key="vuong-1")
    with served.client("committee-1") as committee:
        first = committee.resolve_obstacle(one.name, "Đã xử lý", idempotency_key="xu-ly-1")
        served.at(hanoi(7, 12))  # a retry later still gets the first reply, not "already resolved"
        assert committee.resolve_obstacle(one.name, "Đã xử lý", idempotency_key="xu-ly-1") == first
        assert len(list(committee.list_obstacles())) == 1
        assert len([e for e in committee.list_audit_events() if e.action == "resolve_obstacle"]) == 1


def test_who_may_report_and_resolve(served: Served) -> None:
    served.at(hanoi(7, 10))
    with served.client("stp-reporter") as stp:
        with pytest.raises(PermissionDenied, match=r"assignments/SNV-A1 is not an assignment of your units .* "
                                                   r"Your scope is: units/STP"):
            stp.report_obstacle("SNV-A1", "Vướng", "Đề nghị")
        with pytest.raises(PermissionDenied, match="is not an assignment of your units"):
            stp.report_obstacle("NO-SUCH", "Vướng", "Đề nghị")  # learns nothing of what exists
        mine = stp.report_obstacle("STP-B1", "Vướng", "Đề nghị")
        with pytest.raises(PermissionDenied, match=r"obstacles\.resolve"):
            stp.resolve_obstacle(mine.name, "Tự xử lý")
        with pytest.raises(PermissionDenied, match=r"obstacles\.resolve"):
            stp.assign_obstacle(mine.name, unit="STP")
    with served.client("reader-1") as reader:
        with pytest.raises(PermissionDenied, match=r"obstacles\.report"):
            reader.report_obstacle("STP-B1", "Vướng", "Đề nghị")
        assert [o.name for o in reader.list_obstacles()] == [mine.name]
    with served.client("committee-1") as committee:
        with pytest.raises(NotFound, match="assignments/NO-SUCH does not exist"):
            committee.report_obstacle("NO-SUCH", "Vướng", "Đề nghị")
        assert committee.report_obstacle("SNV-A1", "Vướng", "Đề nghị").unit == "units/SNV"


def test_client_mistakes_are_precise_and_store_nothing(served: Served) -> None:
    served.at(hanoi(7, 10))
    with served.client("committee-1") as committee:
        with pytest.raises(InvalidArgument, match="description is required"):
            committee.report_obstacle("SNV-A1", "   ", "Đề nghị")
        with pytest.raises(InvalidArgument, match="request is required"):
            committee.report_obstacle("SNV-A1", "Vướng", "")
        with pytest.raises(InvalidArgument, match="description has 4,001 characters; at most 4,000 are allowed"):
            committee.report_obstacle("SNV-A1", "x" * 4001, "Đề nghị")
        with pytest.raises(InvalidArgument, match="requested_of has 501 characters; at most 500 are allowed"):
            committee.report_obstacle("SNV-A1", "Vướng", "Đề nghị", "x" * 501)
        with pytest.raises(InvalidArgument, match="is not a resource name assignments"):
            committee.report_obstacle("assignments/a/b", "Vướng", "Đề nghị")
        found = committee.report_obstacle("SNV-A1", "Vướng", "Đề nghị")
        with pytest.raises(InvalidArgument, match="resolver_unit is required"):
            committee.assign_obstacle(found.name)
        with pytest.raises(InvalidArgument, match="not both"):
            committee.assign_obstacle(found.name, unit="SNV", official="Ông A")
        with pytest.raises(InvalidArgument, match="units/NOPE does not exist"):
            committee.assign_obstacle(found.name, unit="NOPE")
        with pytest.raises(InvalidArgument, match="resolution is required"):
            committee.resolve_obstacle(found.name, " ")
        with pytest.raises(InvalidArgument, match=r"is not a resource name assignments|is not an obstacle name"):
            committee.get_obstacle("assignments/SNV-A1/obstacles/x")
        with pytest.raises(NotFound, match=f"assignments/SNV-A2/obstacles/{found.obstacle_id} does not exist"):
            committee.get_obstacle(f"SNV-A2/{found.obstacle_id}")
        with pytest.raises(NotFound, match="does not exist"):
            committee.resolve_obstacle("SNV-A1/999", "Đã xử lý")
        assert committee.get_obstacle(found.name).status == OB.OBSTACLE_STATUS_OPEN
    with served.client("snv-reporter") as snv:
        snv.submit_outcomes([outcomes_pb2.Outcome(
            outcome_id="A2-done", assignment="assignments/SNV-A2", status=outcomes_pb2.OUTCOME_STATUS_COMPLETED,
            completed_on="2026-07-09", quality=outcomes_pb2.QUALITY_ACCEPTED, reminders=0,
            reported_at=timestamp(hanoi(7, 9)), reporting_system="hanoi-task-tracker")])
    with served.client("committee-1") as committee:
        with pytest.raises(FailedPrecondition, match="assignments/SNV-A2 is completed: nothing is left to block"):
            committee.report_obstacle("SNV-A2", "Vướng", "Đề nghị")
        assert [o.name for o in committee.list_obstacles()] == [found.name]


# ---- obstacle_unresolved in evaluations and the report ------------------------------------------------------


def test_an_obstacle_open_more_than_30_days_at_the_quarter_end_is_escalated(served: Served) -> None:
    """SNV reports on 08-30 (31 days before 09-30): escalated. STP on 08-31 (30 days): not. SCT's, reported
    07-05 and resolved 09-20, is not open at the end: SCT's inputs digest stays what it was without it."""
    served.at(hanoi(7, 2))
    with served.client() as admin, served.client("committee-1") as committee:
        admin.upsert_assignments([assignment("SCT-C1", "SCT", "2026-09-10")])
        committee.evaluate_period("2026-Q3")
        before = {code: committee.get_evaluation("2026-Q3", code) for code in ("SNV", "STP", "SCT")}
        served.at(hanoi(7, 5))
        sct = committee.report_obstacle("SCT-C1", "Chờ phê duyệt dự toán", "Đề nghị Sở Tài chính thẩm định")
        served.at(hanoi(8, 30))
        snv = committee.report_obstacle("SNV-A1", "Chưa có hướng dẫn định mức", "Đề nghị hướng dẫn", "Sở Tài chính")
        served.at(hanoi(8, 31, 23, 59))
        committee.report_obstacle("STP-B1", "Thiếu biên chế", "Đề nghị bổ sung biên chế")
        served.at(hanoi(9, 20))
        committee.resolve_obstacle(sct.name, "Đã thẩm định dự toán")
        served.at(hanoi(10, 1))
        committee.evaluate_period("2026-Q3")
        after = {code: committee.get_evaluation("2026-Q3", code) for code in ("SNV", "STP", "SCT")}
        escalated = list(committee.list_recommendations("2026-Q3", kind="escalation"))
        explained = committee.explain_evaluation("2026-Q3", "SNV")
        report = committee.get_quarterly_report("2026-Q3").content.decode("utf-8")
        report_en = committee.get_quarterly_report("2026-Q3", language="en").content.decode("utf-8")
        served.at(hanoi(10, 2))
        committee.resolve_obstacle(snv.name, "Sở Tài chính đã hướng dẫn")
        committee.evaluate_period("2026-Q3")
        q3_again = committee.get_evaluation("2026-Q3", "SNV")
        committee.evaluate_period("2026-Q4")
        q4 = {code: committee.get_evaluation("2026-Q4", code) for code in ("SNV", "STP")}
        with pytest.raises(InvalidArgument, match="kind 'praise' is not commendation, criticism or escalation"):
            list(committee.list_recommendations("2026-Q3", kind="praise"))

    flags = {code: list(e.flags) for code, e in after.items()}
    assert flags["SNV"] == ["obstacle_unresolved"] and flags["STP"] == [] and flags["SCT"] == []
    assert after["SNV"].score == before["SNV"].score  # obstacles change no score
    assert after["SCT"].inputs_digest == before["SCT"].inputs_digest  # resolved before the end: left out
    assert after["SNV"].inputs_digest != before["SNV"].inputs_digest
    assert [(r.unit, r.flag, r.kind) for r in escalated] == [
        ("units/SNV", "obstacle_unresolved", escalated[0].kind)]
    from civicscore_api.v1 import evaluations_pb2
    assert escalated[0].kind == evaluations_pb2.RECOMMENDATION_KIND_ESCALATION
    reasons = [(r.text_vi, r.text_en) for r in escalated[0].reasons]
    assert reasons == [(f"Vướng mắc số {snv.obstacle_id} của nhiệm vụ SNV-A1 chưa được giải quyết sau 31 ngày, "
                        "quá 30 ngày",
                        f"Obstacle {snv.obstacle_id} on assignment SNV-A1 is unresolved after 31 days, more than 30")]
    assert "obstacle_unresolved" in str(explained)
    # resolved after the quarter's end: Q3 keeps its flag; Q4 sees STP's still open (122 days), not SNV's
    assert list(q3_again.flags) == ["obstacle_unresolved"]
    assert q3_again.inputs_digest == after["SNV"].inputs_digest
    assert "obstacle_unresolved" not in q4["SNV"].flags and "obstacle_unresolved" in q4["STP"].flags

    assert 'id="obstacles"' in report and "Khó khăn, vướng mắc" in report and "Kiến nghị xử lý" not in report_en
    start = report.index('id="obstacles-open"')
    open_part = report[start:report.index("</table>", start)]
    assert f'data-obstacle="{snv.name}" data-days="31"' in open_part and "STP-B1" in open_part
    assert open_part.index("SNV-A1") < open_part.index("STP-B1")  # oldest first
    resolved_part = report[report.index('id="obstacles-resolved"'):]
    assert f'data-obstacle="{sct.name}"' in resolved_part and "Đã thẩm định dự toán" in resolved_part
    assert 'id="recommendations-escalation"' in report and "Vướng mắc chưa được giải quyết" in report
    assert "Unresolved at the quarter&#39;s end" in report_en or "Unresolved at the quarter's end" in report_en
    assert "Escalations for the committee" in report_en


# ---- the CLI ---------------------------------------------------------------------------------------------


def test_the_cli_reports_assigns_resolves_lists_and_shows(served: Served) -> None:
    served.at(hanoi(7, 10))
    reported = cli(served, "snv-reporter", "obstacles", "report", "SNV-A1", "--description", "Thiếu hướng dẫn",
                   "--request", "Đề nghị hướng dẫn", "--requested-of", "Sở Tài chính")
    assert reported.exit_code == 0, reported.output
    assert "Chưa giao xử lý" in reported.output
    name = next(word for word in reported.output.split() if word.startswith("assignments/SNV-A1/obstacles/"))
    served.at(hanoi(8, 15))
    assigned = cli(served, "committee-1", "obstacles", "assign", name, "--unit", "SCT", "--lang", "en")
    assert assigned.exit_code == 0, assigned.output
    assert "Assigned" in assigned.output and "units/SCT" in assigned.output and "36 days open" in assigned.output
    listed = cli(served, "committee-1", "obstacles", "list", "--age", ">30", "--status", "unresolved")
    assert listed.exit_code == 0, listed.output
    assert name in listed.output and "Đã giao xử lý" in listed.output and "2026-07-10 09:00 +07" in listed.output
    assert "Không có" in cli(served, "committee-1", "obstacles", "list", "--age", "<30").output
    resolved = cli(served, "committee-1", "obstacles", "resolve", name, "--resolution", "Đã hướng dẫn")
    assert resolved.exit_code == 0 and "Đã giải quyết" in resolved.output, resolved.output
    again = cli(served, "committee-1", "obstacles", "resolve", name, "--resolution", "Lại")
    assert again.exit_code != 0 and "RESOLVED on 2026-08-15 (final)" in again.output
    shown = cli(served, "reader-1", "obstacles", "show", name, "--lang", "en")
    assert shown.exit_code == 0, shown.output
    for text in ("Thiếu hướng dẫn", "Sở Tài chính", "2026-08-15 09:00:00 +07", "Đã hướng dẫn", "Resolution"):
        assert text in shown.output, text
