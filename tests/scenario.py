"""A small, hand-checkable quarter of data for integration tests (2026-Q3)."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from civicscore_api.v1 import assignments_pb2, measurements_pb2, outcomes_pb2
from civicscore_client import Client
from tests.serverproc import ServerProcess, timestamp

PERIOD = "2026-Q3"
REPORTED = dt.datetime(2026, 10, 3, 2, 0, tzinfo=dt.UTC)


def assignment(aid: str, unit: str, due: str, assigned: str = "2026-06-15") -> assignments_pb2.Assignment:
    return assignments_pb2.Assignment(assignment_id=aid, unit=f"units/{unit}", title=f"Nhiệm vụ {aid}",
                                      area=assignments_pb2.AREA_PAR, source_document="818/QĐ-UBND",
                                      assigned_on=assigned, due_on=due)


def completed(aid: str, on: str, *, rework: bool = False, reminders: int = 0) -> outcomes_pb2.Outcome:
    return outcomes_pb2.Outcome(
        outcome_id=f"{aid}-done", assignment=f"assignments/{aid}", status=outcomes_pb2.OUTCOME_STATUS_COMPLETED,
        completed_on=on,
        quality=outcomes_pb2.QUALITY_RETURNED_FOR_REWORK if rework else outcomes_pb2.QUALITY_ACCEPTED,
        reminders=reminders, reported_at=timestamp(REPORTED), reporting_system="hanoi-task-tracker")


def in_progress(aid: str, reminders: int) -> outcomes_pb2.Outcome:
    return outcomes_pb2.Outcome(outcome_id=f"{aid}-open", assignment=f"assignments/{aid}",
                                status=outcomes_pb2.OUTCOME_STATUS_IN_PROGRESS, reminders=reminders,
                                reported_at=timestamp(REPORTED), reporting_system="hanoi-task-tracker")


def load_quarter(server: ServerProcess) -> None:
    """SNV: 10 due, all on time (praise). STP: 10 due, 6 on time, 2 late, 2 open with many reminders
    (criticism). SCT: 2 due (not assessable). Every other unit: nothing due."""
    s = server.stubs()
    items, outs = [], []
    for i in range(10):
        aid = f"SNV-{i}"
        items.append(assignment(aid, "SNV", f"2026-08-{10 + i:02d}"))
        outs.append(completed(aid, f"2026-08-{5 + i:02d}"))
    for i in range(10):
        aid = f"STP-{i}"
        items.append(assignment(aid, "STP", f"2026-07-{10 + i:02d}"))
        if i < 6:
            outs.append(completed(aid, f"2026-07-{5 + i:02d}", rework=i == 0))
        elif i < 8:
            outs.append(completed(aid, f"2026-08-{20 + i:02d}", reminders=2))
        else:
            outs.append(in_progress(aid, reminders=5))
    for i in range(2):
        aid = f"SCT-{i}"
        items.append(assignment(aid, "SCT", "2026-09-01"))
        outs.append(completed(aid, "2026-08-30"))
    s.assignments.UpsertAssignments(assignments_pb2.UpsertAssignmentsRequest(assignments=items), timeout=30)
    s.outcomes.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(outcomes=outs), timeout=30)
    s.measurements.SubmitMeasurements(measurements_pb2.SubmitMeasurementsRequest(measurements=[
        measurements_pb2.Measurement(unit="units/SNV", period=PERIOD, indicator="dx.online_applications",
                                     numerator=90, denominator=100, reported_at=timestamp(REPORTED),
                                     reporting_system="dvc"),
    ]), timeout=30)


class _Watchable(Protocol):
    def client(self) -> Client: ...


def every_cursor(target: _Watchable) -> list[str]:
    """The cursor of every change in the log, read in one go from the start, from a server or through a
    cluster's nginx."""
    with target.client() as reader:
        watch = reader.watch_recommendations(resume=False)
        cursors = []
        for message in watch:
            if message.caught_up:
                break
            cursors.append(message.cursor)
        watch.cancel()
    return cursors
