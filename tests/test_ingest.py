"""Ingest through the real server: atomic batches, precise errors, idempotency, durability."""

from __future__ import annotations

import datetime as dt
import sqlite3
import unicodedata

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from civicscore_api.v1 import assignments_pb2, measurements_pb2, outcomes_pb2, units_pb2
from tests.serverproc import ServerProcess, timestamp

REPORTED = dt.datetime(2026, 10, 2, 9, 0, tzinfo=dt.UTC)


def _assignments(n: int, unit: str = "units/SNV") -> list[assignments_pb2.Assignment]:
    return [
        assignments_pb2.Assignment(assignment_id=f"A-{i}", unit=unit, title=f"Nhiệm vụ số {i}",
                                   area=assignments_pb2.AREA_PAR, source_document="818/QĐ-UBND",
                                   assigned_on="2026-07-01", due_on="2026-08-15")
        for i in range(n)
    ]


def _outcome(i: int, **overrides: object) -> outcomes_pb2.Outcome:
    fields: dict[str, object] = dict(
        outcome_id=f"O-{i}", assignment=f"assignments/A-{i % 10}", status=outcomes_pb2.OUTCOME_STATUS_COMPLETED,
        completed_on="2026-08-10", quality=outcomes_pb2.QUALITY_ACCEPTED, reminders=0,
        reported_at=timestamp(REPORTED), reporting_system="hanoi-task-tracker")
    fields.update(overrides)
    return outcomes_pb2.Outcome(**fields)  # type: ignore[arg-type]


@pytest.fixture
def ready(seeded_server: ServerProcess) -> ServerProcess:
    seeded_server.stubs().assignments.UpsertAssignments(
        assignments_pb2.UpsertAssignmentsRequest(assignments=_assignments(10)), timeout=30)
    return seeded_server


def _violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(err)
    assert status is not None, "error carries no google.rpc.Status"
    out = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.extend((v.field, v.reason) for v in bad.field_violations)
    return out


def _stored_outcomes(server: ServerProcess) -> int:
    response = server.stubs().outcomes.ListOutcomes(outcomes_pb2.ListOutcomesRequest(page_size=1000), timeout=10)
    return len(response.outcomes)


def test_batch_with_bad_items_stores_nothing_and_names_every_bad_item(ready: ServerProcess) -> None:
    batch = [_outcome(i) for i in range(20)]
    batch[2] = _outcome(2, assignment="assignments/NO-SUCH")
    batch[5] = _outcome(5, completed_on="")
    batch[7] = _outcome(7, completed_on="2026-06-01")  # before assigned_on
    batch[9] = _outcome(9, completed_on="2031-01-01")  # in the future
    batch[11] = _outcome(11, reminders=-1)
    batch[13] = _outcome(13, reporting_system="")
    batch[14] = _outcome(14, note="x" * 4001)
    batch[16] = _outcome(16, status=99)  # an enum number the contract does not have
    batch[18] = _outcome(18, reported_at=timestamp(dt.datetime(2031, 1, 1, tzinfo=dt.UTC)))
    with pytest.raises(grpc.RpcError) as info:
        ready.stubs().outcomes.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(outcomes=batch), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = set(_violations(info.value))
    assert found >= {
        ("outcomes[2].assignment", "UNKNOWN_ASSIGNMENT"),
        ("outcomes[5].completed_on", "REQUIRED"),
        ("outcomes[7].completed_on", "BEFORE_ASSIGNMENT"),
        ("outcomes[9].completed_on", "IN_FUTURE"),
        ("outcomes[11].reminders", "OUT_OF_RANGE"),
        ("outcomes[13].reporting_system", "REQUIRED"),
        ("outcomes[14].note", "TOO_LONG"),
        ("outcomes[16].status", "INVALID_ENUM"),
        ("outcomes[18].reported_at", "IN_FUTURE"),
    }
    bad_indexes = {int(f.split("[")[1].split("]")[0]) for f, _ in found}
    assert bad_indexes == {2, 5, 7, 9, 11, 13, 14, 16, 18}
    assert _stored_outcomes(ready) == 0
    # the server keeps serving and the good items go through once fixed
    good = [_outcome(i) for i in range(20)]
    reply = ready.stubs().outcomes.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(outcomes=good), timeout=30)
    assert (reply.accepted, reply.duplicates) == (20, 0)


def test_many_violations_are_summarised_and_validate_only_lists_all(ready: ServerProcess) -> None:
    batch = [_outcome(i, assignment="assignments/MISSING") for i in range(2000)]
    with pytest.raises(grpc.RpcError) as info:
        ready.stubs().outcomes.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(outcomes=batch), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "validate_only" in info.value.details()
    listed = _violations(info.value)
    assert 0 < len(listed) < 2000
    reply = ready.stubs().outcomes.SubmitOutcomes(
        outcomes_pb2.SubmitOutcomesRequest(outcomes=batch, validate_only=True), timeout=30)
    assert sorted(v.index for v in reply.violations) == list(range(2000))
    assert reply.accepted == 0 and _stored_outcomes(ready) == 0


def test_duplicates_are_counted_and_conflicts_refused(ready: ServerProcess) -> None:
    stub = ready.stubs().outcomes
    first = stub.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(outcomes=[_outcome(i) for i in range(5)]))
    assert (first.accepted, first.duplicates) == (5, 0)
    again = stub.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(outcomes=[_outcome(i) for i in range(8)]))
    assert (again.accepted, again.duplicates) == (3, 5)
    changed = [_outcome(8), _outcome(3, reminders=4)]
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(outcomes=changed))
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "O-3" in info.value.details()
    assert _stored_outcomes(ready) == 8  # O-8 was not stored either: the batch is atomic


def test_conflict_inside_one_batch_is_refused(ready: ServerProcess) -> None:
    batch = [_outcome(1), _outcome(1, reminders=2)]
    with pytest.raises(grpc.RpcError) as info:
        ready.stubs().outcomes.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(outcomes=batch))
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert _stored_outcomes(ready) == 0


def test_idempotency_key_replays_the_first_reply(ready: ServerProcess) -> None:
    stub = ready.stubs().outcomes
    request = outcomes_pb2.SubmitOutcomesRequest(outcomes=[_outcome(i) for i in range(4)], idempotency_key="k-1")
    assert stub.SubmitOutcomes(request).accepted == 4
    replay = stub.SubmitOutcomes(request)
    assert (replay.accepted, replay.duplicates) == (4, 0)
    other = outcomes_pb2.SubmitOutcomesRequest(outcomes=[_outcome(9)], idempotency_key="k-1")
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitOutcomes(other)
    assert info.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "k-1" in info.value.details()
    assert _stored_outcomes(ready) == 4


def test_batch_limits(ready: ServerProcess) -> None:
    stub = ready.stubs().outcomes
    with pytest.raises(grpc.RpcError) as empty:
        stub.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest())
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as big:
        stub.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(outcomes=[_outcome(i) for i in range(10_001)]))
    assert big.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "10,000" in big.value.details()


def test_stream_needs_commit_and_is_atomic(ready: ServerProcess) -> None:
    stub = ready.stubs().outcomes
    chunks = [outcomes_pb2.StreamOutcomesRequest(chunk=outcomes_pb2.OutcomeChunk(
        outcomes=[_outcome(i) for i in range(k * 100, (k + 1) * 100)])) for k in range(3)]
    with pytest.raises(grpc.RpcError) as missing:
        stub.StreamOutcomes(iter(chunks))
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "commit" in missing.value.details()
    wrong = [*chunks, outcomes_pb2.StreamOutcomesRequest(commit=outcomes_pb2.StreamCommit(outcome_count=299))]
    with pytest.raises(grpc.RpcError):
        stub.StreamOutcomes(iter(wrong))
    assert _stored_outcomes(ready) == 0
    ok = [*chunks, outcomes_pb2.StreamOutcomesRequest(commit=outcomes_pb2.StreamCommit(outcome_count=300))]
    assert stub.StreamOutcomes(iter(ok)).accepted == 300


def test_text_is_stored_as_nfc(ready: ServerProcess) -> None:
    decomposed = unicodedata.normalize("NFD", "Đã hoàn thành, chất lượng tốt")
    assert decomposed != unicodedata.normalize("NFC", decomposed)
    ready.stubs().outcomes.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(outcomes=[_outcome(1, note=decomposed)]))
    stored = ready.stubs().outcomes.ListOutcomes(outcomes_pb2.ListOutcomesRequest()).outcomes[0]
    assert stored.note == "Đã hoàn thành, chất lượng tốt"
    assert stored.note == unicodedata.normalize("NFC", stored.note)
    unit = ready.stubs().units.GetUnit(units_pb2.GetUnitRequest(name="units/P-HOANKIEM")).unit
    assert unit.display_name_vi == "Phường Hoàn Kiếm"


def test_acknowledged_batch_survives_sigkill(ready: ServerProcess) -> None:
    reply = ready.stubs().outcomes.SubmitOutcomes(
        outcomes_pb2.SubmitOutcomesRequest(outcomes=[_outcome(i) for i in range(500)]), timeout=30)
    assert reply.accepted == 500
    ready.kill()  # SIGKILL right after the reply: no shutdown code runs
    db = ready.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as raw:  # what is on disk, before anything else opens it
        assert raw.execute("select count(*) from outcomes").fetchone()[0] == 500
    ready.start()
    assert _stored_outcomes(ready) == 500


def test_assignment_and_unit_validation(ready: ServerProcess) -> None:
    stubs = ready.stubs()
    bad = _assignments(3)
    bad[0].unit = "units/NOPE"
    bad[1].due_on = "2026-06-30"  # before assigned_on
    bad[2].area = assignments_pb2.AREA_UNSPECIFIED
    with pytest.raises(grpc.RpcError) as info:
        stubs.assignments.UpsertAssignments(assignments_pb2.UpsertAssignmentsRequest(assignments=bad))
    assert set(_violations(info.value)) >= {("assignments[0].unit", "UNKNOWN_UNIT"),
                                            ("assignments[1].due_on", "BEFORE_ASSIGNED"),
                                            ("assignments[2].area", "REQUIRED")}
    counts = stubs.assignments.UpsertAssignments(assignments_pb2.UpsertAssignmentsRequest(
        assignments=_assignments(12)))
    assert (counts.created, counts.updated, counts.unchanged) == (2, 0, 10)
    with pytest.raises(grpc.RpcError) as units:
        stubs.units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=[
            units_pb2.Unit(code="bad code", display_name_vi="", display_name_en="X", block="b")]))
    assert set(_violations(units.value)) >= {("units[0].code", "INVALID_FORMAT"),
                                             ("units[0].display_name_vi", "REQUIRED"),
                                             ("units[0].kind", "REQUIRED")}


def test_measurement_validation(ready: ServerProcess) -> None:
    stub = ready.stubs().measurements
    good = measurements_pb2.Measurement(unit="units/SNV", period="2026-Q3", indicator="dx.online_applications",
                                        numerator=80, denominator=100, reported_at=timestamp(REPORTED),
                                        reporting_system="dvc")
    bad = measurements_pb2.Measurement(unit="units/SNV", period="2026-Q9", indicator="dx.nope", numerator=5,
                                       denominator=2, reporting_system="dvc")
    with pytest.raises(grpc.RpcError) as info:
        stub.SubmitMeasurements(measurements_pb2.SubmitMeasurementsRequest(measurements=[good, bad]))
    assert set(_violations(info.value)) >= {("measurements[1].period", "INVALID_PERIOD"),
                                            ("measurements[1].indicator", "UNKNOWN_INDICATOR"),
                                            ("measurements[1].numerator", "ABOVE_DENOMINATOR"),
                                            ("measurements[1].reported_at", "REQUIRED")}
    reply = stub.SubmitMeasurements(measurements_pb2.SubmitMeasurementsRequest(measurements=[good]))
    assert reply.created == 1
