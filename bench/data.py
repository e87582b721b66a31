"""The benchmarks' data: units, their assignments and one outcome per assignment, as the city sends them."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from civicscore_api.v1 import assignments_pb2, outcomes_pb2, units_pb2
from tests.serverproc import timestamp

PERIOD = "2026-Q3"
SMALL_PERIOD = "2026-Q2"
REPORTED = dt.datetime(2026, 10, 5, 3, 0, tzinfo=dt.UTC)


def units(n: int, prefix: str) -> list[units_pb2.Unit]:
    return [units_pb2.Unit(code=f"{prefix}-{i:04d}", display_name_vi=f"Phường Thử Nghiệm {i}",
                           display_name_en=f"Benchmark Ward {i}", kind=units_pb2.UNIT_KIND_WARD, block="communes",
                           active=True) for i in range(n)]


def assignments(unit_codes: list[str], per_unit: int, period_start: dt.date) -> list[assignments_pb2.Assignment]:
    out = []
    for u, code in enumerate(unit_codes):
        for k in range(per_unit):
            due = period_start + dt.timedelta(days=(u + k) % 88)
            out.append(assignments_pb2.Assignment(
                assignment_id=f"{code}-{k:03d}", unit=f"units/{code}", title=f"Nhiệm vụ thử nghiệm {k}",
                area=assignments_pb2.AREA_PAR if k % 3 else assignments_pb2.AREA_DX, source_document="BENCH",
                assigned_on=(due - dt.timedelta(days=30)).isoformat(), due_on=due.isoformat()))
    return out


def outcome_for(a: assignments_pb2.Assignment, k: int) -> outcomes_pb2.Outcome:
    due = dt.date.fromisoformat(a.due_on)
    if k % 10 == 9:
        return outcomes_pb2.Outcome(outcome_id=f"O-{a.assignment_id}", assignment=f"assignments/{a.assignment_id}",
                                    status=outcomes_pb2.OUTCOME_STATUS_IN_PROGRESS, reminders=k % 5,
                                    reported_at=timestamp(REPORTED), reporting_system="bench")
    done = due + dt.timedelta(days=(k % 7) - 4)
    return outcomes_pb2.Outcome(
        outcome_id=f"O-{a.assignment_id}", assignment=f"assignments/{a.assignment_id}",
        status=outcomes_pb2.OUTCOME_STATUS_COMPLETED, completed_on=done.isoformat(),
        quality=outcomes_pb2.QUALITY_RETURNED_FOR_REWORK if k % 13 == 0 else outcomes_pb2.QUALITY_ACCEPTED,
        reported_at=timestamp(REPORTED), reporting_system="bench", note="Đã hoàn thành")


def load(stubs: SimpleNamespace, unit_list: list[units_pb2.Unit],
         assignment_list: list[assignments_pb2.Assignment]) -> None:
    stubs.units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=unit_list), timeout=120)
    for i in range(0, len(assignment_list), 5000):
        stubs.assignments.UpsertAssignments(
            assignments_pb2.UpsertAssignmentsRequest(assignments=assignment_list[i:i + 5000]), timeout=120)


def submit_payloads(outcome_list: list[outcomes_pb2.Outcome], batch: int = 1000) -> list[bytes]:
    """SubmitOutcomes requests of `batch` outcomes, each with an idempotency key as the SDK sends it, serialised."""
    return [outcomes_pb2.SubmitOutcomesRequest(outcomes=outcome_list[i:i + batch],
                                               idempotency_key=f"bench-batch-{i}").SerializeToString()
            for i in range(0, len(outcome_list), batch)]
