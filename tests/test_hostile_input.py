"""Hostile and broken input, through the real server: each finding of issue 11 gets its precise status.

Every request field has a domain declared in the contract (domains.proto) and checked in one
place (api/request_checks.py); these tests send the values a careless or hostile city system
sent and read back what the caller sees: the code, the reason, the message, and that nothing
was stored.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from civicscore_api.v1 import (
    assignments_pb2,
    maintenance_pb2,
    maintenance_pb2_grpc,
    measurements_pb2,
    outcomes_pb2,
    periods_pb2,
    reviews_pb2,
    reviews_pb2_grpc,
    units_pb2,
)
from tests.scenario import PERIOD, REPORTED, assignment, completed, load_quarter
from tests.serverproc import ROOT, BearerToken, ServerProcess, hanoi_units, timestamp

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server with Hanoi's units and the 2026-Q3 scenario."""
    proc = ServerProcess(tmp_path_factory.mktemp("hostile")).start()
    try:
        proc.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=30)
        load_quarter(proc)
        yield proc
    finally:
        proc.stop()


def _refusal(error: grpc.RpcError) -> tuple[grpc.StatusCode, list[tuple[str, str, str]]]:
    """(code, [(field, reason, description)]) of a refused call."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    found: list[tuple[str, str, str]] = []
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            found += [(v.field, v.reason, v.description) for v in request.field_violations]
    return error.code(), found


def _refused(call: object, request: object) -> tuple[grpc.StatusCode, list[tuple[str, str, str]], str]:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30)  # type: ignore[operator]
    code, violations = _refusal(info.value)
    return code, violations, info.value.details() or ""


def _rows(proc: ServerProcess, table: str) -> int:
    path = proc.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _ts(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def _outcome(oid: str, **fields: object) -> outcomes_pb2.Outcome:
    outcome = completed("SNV-0", "2026-08-05")
    outcome.outcome_id = oid
    for name, value in fields.items():
        if isinstance(value, timestamp_pb2.Timestamp):
            getattr(outcome, name).CopyFrom(value)
        else:
            setattr(outcome, name, value)
    return outcome


# ---- dates and quarters ------------------------------------------------------------------


@pytest.mark.parametrize("due", ["2101-01-01", "9999-12-31", "1999-12-31"])
def test_a_date_outside_2000_2100_is_refused_and_periods_keep_listing(served: ServerProcess, due: str) -> None:
    s = served.stubs()
    before = _rows(served, "assignments")
    code, violations, _ = _refused(s.assignments.UpsertAssignments, assignments_pb2.UpsertAssignmentsRequest(
        assignments=[assignment("FAR-1", "SNV", due)]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [(f, r) for f, r, _ in violations] == [("assignments[0].due_on", "INVALID_DATE")]
    assert f"'{due}' is not a date from 2000-01-01 to 2100-12-31" in violations[0][2]
    assert _rows(served, "assignments") == before
    periods = s.periods.ListPeriods(periods_pb2.ListPeriodsRequest(), timeout=30)
    assert PERIOD in [p.period_id for p in periods.periods]


def test_a_stored_far_future_date_is_reported_by_check_data_and_breaks_no_read(tmp_path: Path) -> None:
    """A row stored before the domain was enforced (written here behind the server's back, as an old
    version could have): ListPeriods still answers, and `civicscore admin check-data` names the row."""
    proc = ServerProcess(tmp_path).start()
    try:
        s = proc.stubs()
        s.units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=30)
        s.assignments.UpsertAssignments(assignments_pb2.UpsertAssignmentsRequest(
            assignments=[assignment("OLD-1", "SNV", "2026-08-01")]), timeout=30)
        path = proc.database_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as db:
            db.execute("UPDATE assignments SET due_on = '2101-01-01' WHERE assignment_id = 'OLD-1'")
            db.execute("UPDATE assignment_states SET due_on = '2101-01-01' WHERE assignment_id = 'OLD-1'")
        periods = s.periods.ListPeriods(periods_pb2.ListPeriodsRequest(), timeout=30)
        assert "2101-Q1" not in [p.period_id for p in periods.periods]
        reply = maintenance_pb2_grpc.MaintenanceServiceStub(proc.channel()).CheckStoredData(
            maintenance_pb2.CheckStoredDataRequest(), timeout=60)
        assert reply.total_findings == 1
        assert reply.checked["assignments"] == 1 and reply.checked["units"] == len(hanoi_units())
        [finding] = reply.findings
        assert (finding.resource, finding.field, finding.value) == ("assignments/OLD-1", "due_on", "2101-01-01")
        cli = subprocess.run([str(Path(sys.executable).parent / "civicscore"), "--server", proc.address,
                              "admin", "check-data"], capture_output=True, text=True, timeout=120,
                             env={"CIVICSCORE_TOKEN": proc.token, "PATH": "/usr/bin:/bin", "COLUMNS": "200"})
        assert cli.returncode == 1, cli.stderr
        assert "assignments/OLD-1 due_on = 2101-01-01" in cli.stdout
        assert "1 value(s) outside their domain" in cli.stdout
        # Mended through the API, the data is clean again.
        s.assignments.UpsertAssignments(assignments_pb2.UpsertAssignmentsRequest(
            assignments=[assignment("OLD-1", "SNV", "2026-08-01")]), timeout=30)
        assert maintenance_pb2_grpc.MaintenanceServiceStub(proc.channel()).CheckStoredData(
            maintenance_pb2.CheckStoredDataRequest(), timeout=60).total_findings == 0
    finally:
        proc.stop()


# ---- timestamps and numbers ----------------------------------------------------------------


@pytest.mark.parametrize(("when", "fragment"), [
    (_ts(-62135596801), "seconds=-62,135,596,801"),
    (_ts(10**15), "seconds=1,000,000,000,000,000"),
    (_ts(253402300799), "9999-12-31T23:59:59+00:00"),  # a valid protobuf Timestamp, outside the domain
    (_ts(1_790_000_000, -1), "nanos -1"),
])
def test_timestamps_outside_the_domain_are_invalid_argument_everywhere(
        served: ServerProcess, when: timestamp_pb2.Timestamp, fragment: str) -> None:
    s = served.stubs()
    before = _rows(served, "outcomes"), _rows(served, "measurements")
    code, violations, _ = _refused(s.outcomes.SubmitOutcomes, outcomes_pb2.SubmitOutcomesRequest(
        outcomes=[_outcome("TS-1", reported_at=when)], idempotency_key="ts-1"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _, _ in violations] == ["outcomes[0].reported_at"]
    assert fragment in violations[0][2]

    code, violations, _ = _refused(s.measurements.SubmitMeasurements, measurements_pb2.SubmitMeasurementsRequest(
        measurements=[measurements_pb2.Measurement(unit="units/SNV", period=PERIOD, indicator="dx.online_applications",
                                                   numerator=1, denominator=2, reported_at=when,
                                                   reporting_system="dvc")]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _, _ in violations] == ["measurements[0].reported_at"]

    chunk = outcomes_pb2.StreamOutcomesRequest(chunk=outcomes_pb2.OutcomeChunk(
        outcomes=[_outcome("TS-2"), _outcome("TS-3", reported_at=when)]))
    commit = outcomes_pb2.StreamOutcomesRequest(commit=outcomes_pb2.StreamCommit(outcome_count=4))
    with pytest.raises(grpc.RpcError) as info:
        s.outcomes.StreamOutcomes(iter([chunk, chunk, commit]), timeout=30)
    code, violations = _refusal(info.value)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    # Numbered through the stream: the second chunk's second outcome is outcome 3.
    assert [f for f, _, _ in violations] == ["outcomes[1].reported_at", "outcomes[3].reported_at"]

    contest = reviews_pb2_grpc.ReviewServiceStub(served.channel())
    code, violations, _ = _refused(contest.ContestRecommendation, reviews_pb2.ContestRecommendationRequest(
        name=f"periods/{PERIOD}/recommendations/STP~criticism", text="Đề nghị xem xét lại",
        outcomes=[_outcome("TS-4", reported_at=when)]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _, _ in violations] == ["outcomes[0].reported_at"]
    assert (_rows(served, "outcomes"), _rows(served, "measurements")) == before


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_invalid_argument_with_or_without_a_key(served: ServerProcess, value: float) -> None:
    s = served.stubs()
    for key in ("", "nan-key"):
        code, violations, _ = _refused(s.measurements.SubmitMeasurements, measurements_pb2.SubmitMeasurementsRequest(
            measurements=[measurements_pb2.Measurement(
                unit="units/SNV", period=PERIOD, indicator="dx.online_applications", numerator=value, denominator=2,
                reported_at=timestamp(REPORTED), reporting_system="dvc")], idempotency_key=key))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert [(f, r) for f, r, _ in violations] == [("measurements[0].numerator", "OUT_OF_RANGE")]
        assert "it must be a finite number from 0 to" in violations[0][2]
        code, violations, _ = _refused(s.measurements.UpsertTargets, measurements_pb2.UpsertTargetsRequest(
            targets=[measurements_pb2.Target(indicator="dx.online_applications", period=PERIOD, unit="units/SNV",
                                             value=value)], idempotency_key=key))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert [(f, r) for f, r, _ in violations] == [("targets[0].value", "OUT_OF_RANGE")]


def test_bytes_that_are_not_a_message_are_invalid_argument(served: ServerProcess) -> None:
    """Invalid UTF-8 in a string field would be INTERNAL ("Exception deserializing request") in plain gRPC."""
    call = served.channel().unary_unary("/civicscore.v1.UnitService/GetUnit")
    for raw in (b"\x0a\x03\xff\xfe\xfd", b"\x0a\x80", b"\xff\xff\xff"):
        with pytest.raises(grpc.RpcError) as info:
            call(raw, timeout=30)
        code, violations = _refusal(info.value)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert [(f, r) for f, r, _ in violations] == [("request", "MALFORMED_REQUEST")]
        assert "is not a valid civicscore.v1.GetUnitRequest message" in (info.value.details() or "")


# ---- text ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "named"), [
    ("Sở \u202eiv ộN", "U+202E RIGHT-TO-LEFT OVERRIDE at character 4"),
    ("Sở\u200bNội vụ", "U+200B ZERO WIDTH SPACE at character 3"),
    ("Sở Nội vụ\ufdd0", "U+FDD0 a noncharacter at character 10"),
    ("Sở\x00Nội vụ", "U+0000 a control at character 3"),
])
def test_invisible_and_reordering_characters_are_refused_by_name(served: ServerProcess, text: str,
                                                                 named: str) -> None:
    unit = units_pb2.Unit(code="TXT-1", display_name_vi=text, display_name_en="Text test",
                          kind=units_pb2.UNIT_KIND_DEPARTMENT, block="departments", active=True)
    code, violations, _ = _refused(served.stubs().units.UpsertUnits, units_pb2.UpsertUnitsRequest(units=[unit]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations == [("units[0].display_name_vi", "FORBIDDEN_CHARACTER",
                           f"units[0].display_name_vi contains {named}; remove it")]


# ---- errors that fit -------------------------------------------------------------------------


def test_a_10_kb_value_is_echoed_cut_and_the_error_fits_a_default_trailer(served: ServerProcess) -> None:
    """With gRPC's default metadata limit (no raised max_metadata_size), as any city system has it."""
    raw = grpc.insecure_channel(served.address)
    channel = grpc.intercept_channel(raw, BearerToken(served.token))
    try:
        units = units_pb2_grpc_stub(channel)
        huge = "A" * 10_240
        code, violations, message = _refused(units.GetUnit, units_pb2.GetUnitRequest(name=f"units/{huge}"))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert [(f, r) for f, r, _ in violations] == [("name", "INVALID_NAME")]
        assert "(10,246 characters) is not a resource name units/{unit_code}" in message
        code, violations, message = _refused(units.UpsertUnits, units_pb2.UpsertUnitsRequest(units=[units_pb2.Unit(
            code=huge, display_name_vi="Sở", display_name_en="D", kind=units_pb2.UNIT_KIND_DEPARTMENT,
            block="departments", active=True)]))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert [(f, r) for f, r, _ in violations] == [("units[0].code", "INVALID_FORMAT")]
        assert "'AAAA" in message and "(10,240 characters)" in message and len(message) < 1000
        assert "the first 0" not in message and "validate_only" not in message
    finally:
        raw.close()


def units_pb2_grpc_stub(channel: grpc.Channel) -> object:
    from civicscore_api.v1 import units_pb2_grpc

    return units_pb2_grpc.UnitServiceStub(channel)


def test_a_call_without_validate_only_is_not_told_to_use_it(served: ServerProcess) -> None:
    """Contest outcomes are not a batch write: a list too long for the trailer is summarised without
    suggesting a field the call does not have."""
    outcomes = [_outcome(f"C-{i}", note="\u202e" + "x" * 100) for i in range(300)]
    code, violations, message = _refused(
        reviews_pb2_grpc.ReviewServiceStub(served.channel()).ContestRecommendation,
        reviews_pb2.ContestRecommendationRequest(name=f"periods/{PERIOD}/recommendations/STP~criticism",
                                                 text="Đề nghị xem xét lại", outcomes=outcomes))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert re.match(r"300 violations; the first \d+ are listed\. Nothing was stored\. Fix these", message)
    assert "validate_only" not in message and 0 < len(violations) < 300


# ---- validate_only on every batch write ---------------------------------------------------------


def test_every_batch_write_has_validate_only_and_stores_nothing(served: ServerProcess) -> None:
    s = served.stubs()
    counts = {t: _rows(served, t) for t in ("units", "assignments", "measurements", "targets")}
    good_unit = units_pb2.Unit(code="VO-1", display_name_vi="Sở Kiểm thử", display_name_en="Test",
                               kind=units_pb2.UNIT_KIND_DEPARTMENT, block="departments", active=True)
    bad_unit = units_pb2.Unit(code="vo-bad", display_name_vi="", display_name_en="Test",
                              kind=units_pb2.UNIT_KIND_DEPARTMENT, block="departments", active=True)
    reply = s.units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=[good_unit, bad_unit], validate_only=True),
                                timeout=30)
    # Both the value outside its domain and the missing name of the same item are reported at once.
    assert {(v.field, v.reason) for v in reply.violations} == {
        ("units[1].code", "INVALID_FORMAT"), ("units[1].display_name_vi", "REQUIRED")}
    assert s.units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=[good_unit], validate_only=True),
                               timeout=30).violations == []
    reply = s.assignments.UpsertAssignments(assignments_pb2.UpsertAssignmentsRequest(
        assignments=[assignment("VO-A", "NOPE", "2026-08-01")], validate_only=True), timeout=30)
    assert [(v.field, v.reason) for v in reply.violations] == [("assignments[0].unit", "UNKNOWN_UNIT")]
    reply = s.measurements.SubmitMeasurements(measurements_pb2.SubmitMeasurementsRequest(
        measurements=[measurements_pb2.Measurement(unit="units/SNV", period=PERIOD, indicator="dx.online_applications",
                                                   numerator=5, denominator=2, reported_at=timestamp(REPORTED),
                                                   reporting_system="dvc")], validate_only=True), timeout=30)
    assert [(v.field, v.reason) for v in reply.violations] == [("measurements[0].numerator", "ABOVE_DENOMINATOR")]
    reply = s.measurements.UpsertTargets(measurements_pb2.UpsertTargetsRequest(
        targets=[measurements_pb2.Target(indicator="dx.online_applications", period=PERIOD, unit="units/SNV",
                                         value=1.5)], validate_only=True), timeout=30)
    assert [(v.field, v.reason) for v in reply.violations] == [("targets[0].value", "OUT_OF_RANGE")]
    assert {t: _rows(served, t) for t in counts} == counts


# ---- say what you mean ------------------------------------------------------------------------------


def _unit(code: str, **fields: object) -> units_pb2.Unit:
    return units_pb2.Unit(code=code, display_name_vi=f"Đơn vị {code}", display_name_en=f"Unit {code}",
                          kind=units_pb2.UNIT_KIND_DEPARTMENT, block="departments", **fields)  # type: ignore[arg-type]


def test_a_unit_that_does_not_say_whether_it_is_active_is_refused(served: ServerProcess) -> None:
    s = served.stubs()
    code, violations, _ = _refused(s.units.UpsertUnits, units_pb2.UpsertUnitsRequest(units=[_unit("ACT-1")]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [(f, r) for f, r, _ in violations] == [("units[0].activity", "ACTIVITY_REQUIRED")]
    assert "say whether units/ACT-1 is in force" in violations[0][2]
    s.units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=[
        _unit("ACT-1", activity=units_pb2.UNIT_ACTIVITY_INACTIVE), _unit("ACT-2", active=True)]), timeout=30)
    read = {code: s.units.GetUnit(units_pb2.GetUnitRequest(name=f"units/{code}"), timeout=30).unit
            for code in ("ACT-1", "ACT-2")}
    assert (read["ACT-1"].active, read["ACT-1"].activity) == (False, units_pb2.UNIT_ACTIVITY_INACTIVE)
    assert (read["ACT-2"].active, read["ACT-2"].activity) == (True, units_pb2.UNIT_ACTIVITY_ACTIVE)
    # Sent again as stored (an inactive unit without `activity`): unchanged, not refused.
    assert s.units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=[_unit("ACT-1")]), timeout=30).unchanged == 1
    # An active unit is not taken out of force by an `active` that may only be unset.
    code, violations, _ = _refused(s.units.UpsertUnits, units_pb2.UpsertUnitsRequest(units=[_unit("ACT-2")]))
    assert [(f, r) for f, r, _ in violations] == [("units[0].activity", "ACTIVITY_REQUIRED")]
    assert "units/ACT-2 is active; to take it out of force" in violations[0][2]


def test_a_parent_cycle_of_any_length_is_refused(served: ServerProcess) -> None:
    s = served.stubs()
    active = {"activity": units_pb2.UNIT_ACTIVITY_ACTIVE}
    code, violations, _ = _refused(s.units.UpsertUnits, units_pb2.UpsertUnitsRequest(units=[
        _unit("CY-A", parent="units/CY-B", **active), _unit("CY-B", parent="units/CY-A", **active)]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert [(f, r) for f, r, _ in violations] == [("units[0].parent", "PARENT_CYCLE"),
                                                  ("units[1].parent", "PARENT_CYCLE")]
    assert "units/CY-A → units/CY-B → units/CY-A" in violations[0][2]
    # Three units, the cycle closed through units already stored.
    s.units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=[
        _unit("CY-1", **active), _unit("CY-2", parent="units/CY-1", **active),
        _unit("CY-3", parent="units/CY-2", **active)]), timeout=30)
    code, violations, _ = _refused(s.units.UpsertUnits, units_pb2.UpsertUnitsRequest(units=[
        _unit("CY-1", parent="units/CY-3", **active)]))
    assert [(f, r) for f, r, _ in violations] == [("units[0].parent", "PARENT_CYCLE")]
    assert "units/CY-1 → units/CY-3 → units/CY-2 → units/CY-1" in violations[0][2]
    assert s.units.GetUnit(units_pb2.GetUnitRequest(name="units/CY-1"), timeout=30).unit.parent == ""


def test_assignment_ids_are_what_the_contract_says(served: ServerProcess) -> None:
    s = served.stubs()
    ok = assignment("L" * 128, "SNV", "2026-08-01")
    assert s.assignments.UpsertAssignments(assignments_pb2.UpsertAssignmentsRequest(assignments=[ok]),
                                           timeout=30).created == 1
    _, violations, _ = _refused(s.assignments.UpsertAssignments, assignments_pb2.UpsertAssignmentsRequest(
        assignments=[assignment("L" * 129, "SNV", "2026-08-01")]))
    assert [(f, r) for f, r, _ in violations] == [("assignments[0].assignment_id", "INVALID_FORMAT")]
    assert "1-128 characters" in violations[0][2]
    proto = (ROOT / "protos" / "civicscore" / "v1" / "assignments.proto").read_text()
    assert "1-128 characters of letters" in proto


def test_the_contract_states_every_outcome_rule_the_server_enforces() -> None:
    """Each reason the outcome checks can give is named in the Outcome message's comments."""
    source = (ROOT / "server" / "civicscore" / "ingest_outcomes.py").read_text()
    reasons = set(re.findall(r'c\.add\("\w+", "([A-Z_]+)"', source)) | {"REQUIRED"}
    proto = (ROOT / "protos" / "civicscore" / "v1" / "outcomes.proto").read_text()
    outcome = proto[proto.index("message Outcome {"):proto.index("message SubmitOutcomesRequest")]
    assert "AFTER_REPORT" in reasons
    assert {r for r in reasons if r not in outcome} == set()


def test_a_completion_after_its_own_report_is_refused_as_the_contract_says(served: ServerProcess) -> None:
    reported = dt.datetime(2026, 8, 10, 2, 0, tzinfo=dt.UTC)
    outcome = _outcome("AR-1", completed_on="2026-08-11", reported_at=timestamp(reported))
    _, violations, _ = _refused(served.stubs().outcomes.SubmitOutcomes,
                                outcomes_pb2.SubmitOutcomesRequest(outcomes=[outcome]))
    assert [(f, r) for f, r, _ in violations] == [("outcomes[0].completed_on", "AFTER_REPORT")]


def test_a_forged_page_token_is_invalid_argument(served: ServerProcess) -> None:
    """Page tokens are not secret (base64 JSON with a fingerprint of the list): one built with a cursor of
    the wrong type is refused as not issued here, not INTERNAL."""
    import base64
    import hashlib
    import json

    fingerprint = hashlib.sha256(b"periods").hexdigest()[:16]
    for cursor in ([], "x", "99999999999999999999", {"a": 1}):
        token = base64.urlsafe_b64encode(json.dumps({"c": cursor, "s": fingerprint}).encode()).decode().rstrip("=")
        code, violations, _ = _refused(served.stubs().periods.ListPeriods, periods_pb2.ListPeriodsRequest(
            page_token=token))
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert [(f, r) for f, r, _ in violations] == [("page_token", "INVALID_PAGE_TOKEN")]
