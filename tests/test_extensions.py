"""Extensions (gia hạn) through the real server, its SDK and CLI, on SQLite and PostgreSQL.

The server runs with a clock the tests set (tests/clockserver.py): an extension must be asked for
before the due date in force on the day of the request (Hanoi date), and an approval counts for the
quarters that end after it. Covered: request, approve, refuse, supersede, get, list and its filters,
idempotent retries, the due-date boundary, who may ask and decide, audit entries, and the effective
due date in evaluations before and after a quarter's end (EvaluatePeriod, GetEvaluation,
ExplainEvaluation, the quarterly report).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from civicscore_api.v1 import extensions_pb2, outcomes_pb2, units_pb2
from civicscore_client import (
    AlreadyExists,
    Client,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from civicscore_client.cli import app
from tests.clockserver import set_clock
from tests.postgres_support import BACKENDS, database_url, database_url_fixture
from tests.scenario import assignment
from tests.serverproc import ServerProcess, hanoi_units, timestamp

pytestmark = pytest.mark.slow
database_url_param = database_url_fixture()

HANOI = dt.timezone(dt.timedelta(hours=7))
E = extensions_pb2
UNITS = ("SNV", "STP", "SCT")
IDENTITIES = (("committee-1", ["committee"], []), ("reader-1", ["reader"], []),
              ("snv-reporter", ["reporter"], ["SNV"]), ("stp-reporter", ["reporter"], ["STP"]))


def hanoi(month: int, day: int, hour: int = 9, minute: int = 0, second: int = 0, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=HANOI)


class Served:
    """A clock-controlled server with three departments, a token per identity, and the time set to `start`."""

    def __init__(self, proc: ServerProcess, tokens: dict[str, str]) -> None:
        self.proc = proc
        self.tokens = tokens

    def at(self, moment: dt.datetime) -> None:
        set_clock(self.proc.workdir, moment)

    def client(self, who: str = "") -> Client:
        return self.proc.client(self.tokens[who] if who else None)


def start_server(workdir: Path, url: str, start: dt.datetime) -> Served:
    set_clock(workdir, start)
    proc = ServerProcess(workdir, database_url=url, module="tests.clockserver").start()
    try:
        units = [u for u in hanoi_units() if u.code in UNITS]
        proc.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=units), timeout=30)
        tokens = {}
        with proc.client() as admin:
            for who, roles, scope in IDENTITIES:
                admin.create_identity(who, f"Thử nghiệm {who}", roles=roles, scope_units=scope)
                tokens[who] = admin.issue_token(who, valid_days=400).token
    except BaseException:
        proc.stop()
        raise
    return Served(proc, tokens)


@pytest.fixture()
def served(tmp_path: Path, database_url_param: str) -> Iterator[Served]:
    """A server on each backend at 2026-07-01 09:00 Hanoi time, with SNV's and STP's assignments of 2026-Q3."""
    server = start_server(tmp_path, database_url_param, hanoi(7, 1))
    try:
        with server.client() as admin:
            admin.upsert_assignments([
                assignment("SNV-A1", "SNV", "2026-08-15"), assignment("SNV-A2", "SNV", "2026-08-20"),
                assignment("STP-B1", "STP", "2026-09-28")])
        yield server
    finally:
        server.proc.stop()


def done(aid: str, on: str, reported: dt.datetime) -> outcomes_pb2.Outcome:
    return outcomes_pb2.Outcome(
        outcome_id=f"{aid}-done", assignment=f"assignments/{aid}", status=outcomes_pb2.OUTCOME_STATUS_COMPLETED,
        completed_on=on, quality=outcomes_pb2.QUALITY_ACCEPTED, reminders=0, reported_at=timestamp(reported),
        reporting_system="hanoi-task-tracker")


# ---- request, decide, read ----------------------------------------------------------------------------


def test_request_approve_refuse_get_list_and_audit(served: Served) -> None:
    served.at(hanoi(7, 10))
    with served.client("snv-reporter") as snv:
        asked = snv.request_extension("SNV-A1", "2026-08-31", "  Chờ ý kiến thẩm định của Sở Tài chính ")
        second = snv.request_extension("assignments/SNV-A2", "2026-09-05", "Chờ số liệu của các phường")
    first = asked.extension
    assert not asked.HasField("superseded")
    assert first.name == f"assignments/SNV-A1/extensions/{first.extension_id}"
    assert (first.status, first.unit, first.assignment, first.assignment_title) == (
        E.EXTENSION_STATUS_PENDING, "units/SNV", "assignments/SNV-A1", "Nhiệm vụ SNV-A1")
    assert (first.original_due_on, first.due_on_at_request, first.requested_due_on, first.effective_due_on) == (
        "2026-08-15", "2026-08-15", "2026-08-31", "2026-08-15")
    assert first.reason == "Chờ ý kiến thẩm định của Sở Tài chính"  # trimmed, NFC
    assert first.requested_by == "snv-reporter" and first.request_time.ToDatetime(dt.UTC) == hanoi(7, 10)
    assert not first.HasField("decision_time") and first.decided_by == ""

    served.at(hanoi(7, 12, 14, 30))
    with served.client("committee-1") as committee:
        assert committee.get_extension(first.name) == first
        assert committee.get_extension(f"SNV-A1/{first.extension_id}") == first  # the short form
        approved = committee.decide_extension(first.name, "approve", "Đồng ý gia hạn đến 31/8")
        assert (approved.status, approved.decided_by, approved.decision_reason, approved.effective_due_on) == (
            E.EXTENSION_STATUS_APPROVED, "committee-1", "Đồng ý gia hạn đến 31/8", "2026-08-31")
        assert approved.decision_time.ToDatetime(dt.UTC) == hanoi(7, 12, 14, 30)
        refused = committee.decide_extension(second.extension.name, "refuse", "Không đủ căn cứ")
        assert (refused.status, refused.effective_due_on) == (E.EXTENSION_STATUS_REFUSED, "2026-08-20")

        # final decisions are refused, naming the state
        with pytest.raises(FailedPrecondition, match=r"extensions/\d+ is APPROVED \(final\); it cannot be refused"):
            committee.decide_extension(first.name, "refuse", "Đổi ý")
        with pytest.raises(FailedPrecondition, match=r"is REFUSED \(final\); it cannot be approved"):
            committee.decide_extension(second.extension.name, "approve", "Đổi ý")

        def ids(**filters: Any) -> list[int]:
            return [e.extension_id for e in committee.list_extensions(**filters)]

        both = [first.extension_id, second.extension.extension_id]
        assert ids() == both and ids(unit="SNV") == both and ids(unit="STP") == []
        assert ids(status="approved") == [first.extension_id] and ids(status="pending") == []
        assert ids(assignment="SNV-A2") == [second.extension.extension_id]
        assert ids(decided_in="2026-Q3") == both and ids(decided_in="2026-Q4") == []
        assert ids(decided_in="2026-07-12..2026-07-12") == both and ids(decided_in="2026-07-13..2026-09-30") == []
        assert ids(requested_in="2026-07-10..2026-07-10", status="refused") == [second.extension.extension_id]
        pages = committee._extensions.ListExtensions(E.ListExtensionsRequest(page_size=1, filter="unit=units/SNV"),
                                                      metadata=committee._calls.metadata)
        assert len(pages.extensions) == 1 and pages.next_page_token
        with pytest.raises(InvalidArgument, match="not known"):
            ids(status="granted")
        with pytest.raises(InvalidArgument, match="ends before it starts"):
            ids(decided_in="2026-08-01..2026-07-01")
        with pytest.raises(InvalidArgument, match="cannot filter on"):
            ids(filter="due_in=2026-Q3")

        requested = list(committee.list_audit_events(action="request_extension"))
        decided = list(committee.list_audit_events(action="decide_extension"))
    assert [(e.actor, e.target) for e in requested] == [("snv-reporter", first.name),
                                                       ("snv-reporter", second.extension.name)]
    assert '"requested_due_on":"2026-08-31"' in requested[0].detail_json
    assert [(e.actor, e.target) for e in decided] == [("committee-1", first.name),
                                                     ("committee-1", second.extension.name)]
    assert '"decision":"approved"' in decided[0].detail_json and '"decision":"refused"' in decided[1].detail_json


def test_a_new_request_supersedes_the_pending_one(served: Served) -> None:
    served.at(hanoi(7, 10))
    with served.client("snv-reporter") as snv:
        first = snv.request_extension("SNV-A1", "2026-08-25", "Chờ hồ sơ").extension
        again = snv.request_extension("SNV-A1", "2026-08-28", "Chờ hồ sơ bổ sung")
    assert again.superseded.extension_id == first.extension_id
    assert again.superseded.status == E.EXTENSION_STATUS_SUPERSEDED
    assert again.superseded.superseded_by == again.extension.name
    with served.client("committee-1") as committee:
        with pytest.raises(FailedPrecondition, match=f"is SUPERSEDED by {again.extension.name}"):
            committee.decide_extension(first.name, "approve", "Đồng ý")
        assert committee.decide_extension(again.extension.name, "approve", "Đồng ý").status == (
            E.EXTENSION_STATUS_APPROVED)
        assert [e.status for e in committee.list_extensions(assignment="SNV-A1")] == [
            E.EXTENSION_STATUS_SUPERSEDED, E.EXTENSION_STATUS_APPROVED]


def test_retries_with_the_same_key_are_answered_once(served: Served) -> None:
    served.at(hanoi(7, 10))
    with served.client("snv-reporter") as snv:
        one = snv.request_extension("SNV-A1", "2026-08-31", "Chờ thẩm định", idempotency_key="gia-han-1")
        two = snv.request_extension("SNV-A1", "2026-08-31", "Chờ thẩm định", idempotency_key="gia-han-1")
        assert one == two
        with pytest.raises(AlreadyExists, match="gia-han-1"):
            snv.request_extension("SNV-A1", "2026-09-30", "Chờ thẩm định", idempotency_key="gia-han-1")
    served.at(hanoi(7, 11))
    with served.client("committee-1") as committee:
        first = committee.decide_extension(one.extension.name, "approve", "Đồng ý", idempotency_key="quyet-1")
        served.at(hanoi(7, 12))  # a retry later still gets the first reply, not "already approved"
        assert committee.decide_extension(one.extension.name, "approve", "Đồng ý", idempotency_key="quyet-1") == first
        assert len(list(committee.list_extensions())) == 1
        assert len(list(committee.list_audit_events(action="request_extension"))) == 1
        assert len(list(committee.list_audit_events(action="decide_extension"))) == 1


def test_a_request_on_or_after_the_due_date_in_force_is_refused(served: Served) -> None:
    with served.client("snv-reporter") as snv, served.client("committee-1") as committee:
        served.at(hanoi(8, 14, 23, 59, 59))  # the last second of the day before the due date, Hanoi time
        pending = snv.request_extension("SNV-A1", "2026-08-31", "Chờ thẩm định").extension
        served.at(hanoi(8, 15, 0, 0, 0))  # the due date itself
        with pytest.raises(FailedPrecondition) as on_the_day:
            snv.request_extension("SNV-A1", "2026-09-15", "Xin thêm thời gian")
        message = on_the_day.value.message
        assert "assignments/SNV-A1 is due on 2026-08-15 and today is 2026-08-15 (Hanoi time)" in message
        assert "by 2026-08-14" in message
        served.at(hanoi(8, 20))
        with pytest.raises(FailedPrecondition, match="due on 2026-08-15 and today is 2026-08-20"):
            snv.request_extension("SNV-A1", "2026-09-15", "Xin thêm thời gian")
        # the pending request can still be approved after the due date; its date is then the one in force
        committee.decide_extension(pending.name, "approve", "Đồng ý")
        later = snv.request_extension("SNV-A1", "2026-09-15", "Xin thêm thời gian").extension
        assert (later.original_due_on, later.due_on_at_request) == ("2026-08-15", "2026-08-31")
        with pytest.raises(InvalidArgument) as not_later:
            snv.request_extension("SNV-A1", "2026-08-30", "Sớm hơn")
        assert not_later.value.violations[0].reason == "NOT_AFTER_DUE_DATE"
        assert "not after the due date in force, 2026-08-31" in not_later.value.message
        served.at(hanoi(8, 31, 8))
        with pytest.raises(FailedPrecondition, match=r"due on 2026-08-31 \(as extended; its own due date is "
                                                     r"2026-08-15\) and today is 2026-08-31"):
            snv.request_extension("SNV-A1", "2026-09-30", "Xin thêm")


def test_who_may_ask_and_decide_and_what_is_refused(served: Served) -> None:
    served.at(hanoi(7, 10))
    with served.client("stp-reporter") as stp:
        with pytest.raises(PermissionDenied, match=r"assignments/SNV-A1 is not an assignment of your units .* "
                                                   r"Your scope is: units/STP"):
            stp.request_extension("SNV-A1", "2026-08-31", "Không phải của đơn vị")
        with pytest.raises(PermissionDenied, match="NO-SUCH is not an assignment of your units"):
            stp.request_extension("NO-SUCH", "2026-08-31", "Không tồn tại")  # the same answer as another unit's
        asked = stp.request_extension("STP-B1", "2026-10-15", "Chờ ý kiến Bộ Tư pháp").extension
        with pytest.raises(PermissionDenied, match=r"extensions\.decide"):
            stp.decide_extension(asked.name, "approve", "Tự duyệt")
        with pytest.raises(PermissionDenied, match="read"):
            stp.get_extension(asked.name)
    with served.client("reader-1") as reader:
        assert reader.get_extension(asked.name).status == E.EXTENSION_STATUS_PENDING
        with pytest.raises(PermissionDenied, match=r"extensions\.request"):
            reader.request_extension("SNV-A1", "2026-08-31", "Đọc thôi")
        with pytest.raises(PermissionDenied, match=r"extensions\.decide"):
            reader.decide_extension(asked.name, "approve", "Đọc thôi")
    with served.client("committee-1") as committee, served.client() as admin:
        with pytest.raises(NotFound, match="assignments/NO-SUCH does not exist"):
            committee.request_extension("NO-SUCH", "2026-08-31", "Không tồn tại")
        assert admin.request_extension("SNV-A2", "2026-08-31", "Văn phòng đề nghị").extension.requested_by  # any unit
        with pytest.raises(NotFound, match="does not exist"):
            committee.get_extension(f"SNV-A1/{asked.extension_id}")  # the id of another assignment's request
        with pytest.raises(NotFound):
            committee.decide_extension("STP-B1/999999", "approve", "Không có")
        for due_on, reason, field in (("", "Lý do", "due_on"), ("31/08/2026", "Lý do", "due_on"),
                                      ("2026-08-31", "   ", "reason")):
            with pytest.raises(InvalidArgument) as bad:
                committee.request_extension("SNV-A1", due_on, reason)
            assert bad.value.violations[0].field == field, bad.value.message
        unspecified = E.DecideExtensionRequest(name=asked.name, reason="Lý do")
        with pytest.raises(Exception, match="decision is required: approve or refuse"):
            committee._calls.unary(committee._extensions.DecideExtension, unspecified)
        # a completed assignment has nothing left to extend
        admin.submit_outcomes([done("SNV-A1", "2026-07-08", hanoi(7, 10))])
        with pytest.raises(FailedPrecondition, match=r"SNV-A1 is already completed \(on 2026-07-08\)"):
            committee.request_extension("SNV-A1", "2026-08-31", "Đã xong")
        assert len(list(committee.list_extensions())) == 2  # nothing refused was stored


# ---- the effective due date in evaluations ---------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def timeline(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """2026-Q3 and Q4 of SNV and STP, on each backend, evaluated along the way:

    SNV-T0 (due 08-10) gets an extension to 08-31 asked on 08-05 and approved on 08-26, before Q3's end;
    it was completed on 08-20. STP-U0 (due 09-20) gets one to 10-10 asked on 09-15 and approved on 10-06,
    after Q3's end; it was completed on 09-25. The other four tasks of each unit are on time.
    """
    workdir = tmp_path_factory.mktemp(f"extensions-{request.param}")
    with database_url(request.param, workdir) as url:
        served = start_server(workdir, url, hanoi(7, 1))
        try:
            yield _run_timeline(served)
        finally:
            served.proc.stop()


def _evaluation(client: Client, period: str, code: str) -> Any:
    return client.get_evaluation(period, code)


def _run_timeline(served: Served) -> dict[str, Any]:
    seen: dict[str, Any] = {"served": served}
    with served.client() as admin, served.client("committee-1") as committee, \
            served.client("snv-reporter") as snv, served.client("stp-reporter") as stp:
        admin.upsert_assignments([assignment(f"SNV-T{i}", "SNV", f"2026-08-{10 + i}") for i in range(5)]
                                 + [assignment(f"STP-U{i}", "STP", f"2026-09-{20 + i}") for i in range(5)])
        served.at(hanoi(8, 5))
        seen["snv_extension"] = snv.request_extension("SNV-T0", "2026-08-31", "Chờ ý kiến của Sở Tài chính").extension
        served.at(hanoi(8, 25))
        admin.submit_outcomes([done("SNV-T0", "2026-08-20", hanoi(8, 25))]
                              + [done(f"SNV-T{i}", "2026-08-09", hanoi(8, 25)) for i in range(1, 5)])
        seen["q3_before"] = committee.evaluate_period("2026-Q3")
        seen["snv_before"] = _evaluation(committee, "2026-Q3", "SNV")
        served.at(hanoi(8, 26))
        committee.decide_extension(seen["snv_extension"].name, "approve", "Đồng ý gia hạn")
        seen["q3_after"] = committee.evaluate_period("2026-Q3")
        seen["snv_after"] = _evaluation(committee, "2026-Q3", "SNV")
        seen["snv_explained"] = committee.explain_evaluation("2026-Q3", "SNV")
        served.at(hanoi(9, 15))
        seen["stp_extension"] = stp.request_extension("STP-U0", "2026-10-10", "Chờ ý kiến của Bộ Tư pháp").extension
        served.at(hanoi(10, 5))
        admin.submit_outcomes([done("STP-U0", "2026-09-25", hanoi(10, 5))]
                              + [done(f"STP-U{i}", "2026-09-18", hanoi(10, 5)) for i in range(1, 5)])
        committee.evaluate_period("2026-Q3")
        seen["stp_before"] = _evaluation(committee, "2026-Q3", "STP")
        served.at(hanoi(10, 6))
        committee.decide_extension(seen["stp_extension"].name, "approve", "Đồng ý, đã quá quý")
        seen["q3_late"] = committee.evaluate_period("2026-Q3")
        seen["stp_late"] = _evaluation(committee, "2026-Q3", "STP")
        seen["stp_explained"] = committee.explain_evaluation("2026-Q3", "STP")
        seen["q4"] = committee.evaluate_period("2026-Q4")
        seen["stp_q4"] = _evaluation(committee, "2026-Q4", "STP")
        seen["stp_q4_explained"] = committee.explain_evaluation("2026-Q4", "STP")
        seen["q4_period"] = committee.get_period("2026-Q4")
        seen["report_q3"] = committee.get_quarterly_report("2026-Q3").content.decode("utf-8")
        seen["report_q3_en"] = committee.get_quarterly_report("2026-Q3", language="en").content.decode("utf-8")
        seen["report_q4"] = committee.get_quarterly_report("2026-Q4").content.decode("utf-8")
        seen["csv_q3"] = committee.get_quarterly_report("2026-Q3", format="csv").content.decode("utf-8-sig")
    return seen


def test_an_approval_before_the_quarter_end_makes_a_late_task_on_time(timeline: dict[str, Any]) -> None:
    before, after = timeline["snv_before"], timeline["snv_after"]
    assert (before.counts.on_time, before.counts.late) == (4, 1)
    assert (after.counts.due, after.counts.on_time, after.counts.late) == (5, 5, 0)
    assert after.revision == before.revision + 1 and after.inputs_digest != before.inputs_digest
    assert timeline["q3_after"].new_revisions == 1  # SNV only
    assert "praise" in after.flags and "praise" not in before.flags
    extended = list(timeline["snv_explained"].extended_assignments)
    assert [(e.assignment, e.original_due_on, e.effective_due_on, e.extension) for e in extended] == [
        ("assignments/SNV-T0", "2026-08-10", "2026-08-31", timeline["snv_extension"].name)]
    assert not timeline["snv_explained"].inputs_changed


def test_an_approval_after_the_quarter_end_changes_nothing_there_and_counts_in_the_next(
        timeline: dict[str, Any]) -> None:
    before, late = timeline["stp_before"], timeline["stp_late"]
    assert (late.counts.due, late.counts.on_time, late.counts.late) == (5, 4, 1)
    assert (late.revision, late.inputs_digest) == (before.revision, before.inputs_digest)
    assert timeline["q3_late"].new_revisions == 0
    assert list(timeline["stp_explained"].extended_assignments) == []
    assert not timeline["stp_explained"].inputs_changed
    # the extended task is due in Q4 too (its effective date as of Q4's end), completed on time there
    q4 = timeline["stp_q4"]
    assert (q4.counts.due, q4.counts.on_time, q4.counts.late) == (1, 1, 0)
    assert [(e.assignment, e.original_due_on, e.effective_due_on) for e in
            timeline["stp_q4_explained"].extended_assignments] == [("assignments/STP-U0", "2026-09-20", "2026-10-10")]
    assert timeline["q4_period"].assignments_due == 1


def test_the_quarterly_report_lists_the_extensions_approved_in_the_quarter(timeline: dict[str, Any]) -> None:
    q3, q4 = timeline["report_q3"], timeline["report_q4"]
    snv, stp = timeline["snv_extension"], timeline["stp_extension"]
    assert '<section id="extensions">' in q3 and "Gia hạn nhiệm vụ được chấp thuận trong quý" in q3
    row = q3[q3.index(f'data-extension="{snv.name}"'):]
    row = row[:row.index("</tr>")]
    for text in ("SNV-T0", "2026-08-10", "2026-08-31", "2026-08-26", "Chờ ý kiến của Sở Tài chính", "Sở Nội vụ"):
        assert text in row, text
    assert stp.name not in q3  # approved after Q3's end: Q4's report lists it
    assert f'data-extension="{stp.name}"' in q4 and "2026-09-20" in q4 and "2026-10-10" in q4
    assert "Extensions approved in the quarter" in timeline["report_q3_en"]
    rows = {row["Mã đơn vị"]: row for row in csv.DictReader(io.StringIO(timeline["csv_q3"], newline=""))}
    assert rows["SNV"]["Gia hạn được chấp thuận trong quý"] == "1"
    assert rows["STP"]["Gia hạn được chấp thuận trong quý"] == "0"


def cli(served: Served, who: str, *args: str) -> Any:
    token = served.tokens[who] if who else served.proc.token
    return CliRunner().invoke(app, ["--server", served.proc.address, *args],
                              env={"COLUMNS": "250", "NO_COLOR": "1", "CIVICSCORE_TOKEN": token})


def test_the_cli_lists_and_shows_extensions_in_vietnamese_or_english(timeline: dict[str, Any]) -> None:
    served: Served = timeline["served"]
    snv = timeline["snv_extension"]
    listed = cli(served, "committee-1", "extensions", "list", "--unit", "SNV")
    assert listed.exit_code == 0, listed.output
    for text in (snv.name, "Đã chấp thuận", "2026-08-10", "2026-08-31", "Hạn ban đầu"):
        assert text in listed.output, text
    english = cli(served, "committee-1", "extensions", "list", "--decided-in", "2026-Q4", "--lang", "en")
    assert english.exit_code == 0, english.output
    assert "Approved" in english.output and "STP-U0" in english.output and "SNV-T0" not in english.output
    shown = cli(served, "committee-1", "extensions", "show", snv.name)
    assert shown.exit_code == 0, shown.output
    assert "2026-08-26 09:00:00 +07" in shown.output and "Đồng ý gia hạn" in shown.output
    explained = cli(served, "committee-1", "explain", "SNV", "--period", "2026-Q3", "--lang", "en")
    assert explained.exit_code == 0, explained.output
    assert "SNV-T0" in explained.output and "2026-08-10" in explained.output and "2026-08-31" in explained.output


def test_the_cli_requests_and_decides(served: Served) -> None:
    served.at(hanoi(7, 10))
    asked = cli(served, "snv-reporter", "extensions", "request", "SNV-A1", "--due-on", "2026-08-31",
                "--reason", "Chờ thẩm định")
    assert asked.exit_code == 0, asked.output
    assert "Chờ quyết định" in asked.output and "2026-08-31" in asked.output
    name = next(word for word in asked.output.split() if word.startswith("assignments/SNV-A1/extensions/"))
    approved = cli(served, "committee-1", "extensions", "approve", name, "--reason", "Đồng ý", "--lang", "en")
    assert approved.exit_code == 0, approved.output
    assert "pending -> approved" in approved.output.lower() or "Approved" in approved.output
    again = cli(served, "committee-1", "extensions", "refuse", name, "--reason", "Đổi ý")
    assert again.exit_code != 0 and "APPROVED (final)" in again.output
    late = cli(served, "snv-reporter", "extensions", "request", "SNV-A2", "--due-on", "2026-08-10", "--reason", "Sớm")
    assert late.exit_code != 0 and "not after the due date in force, 2026-08-20" in late.output
