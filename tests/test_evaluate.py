"""EvaluatePeriod through the real server: results, reproducibility, worker crashes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest

from civicscore_api.v1 import evaluations_pb2, measurements_pb2, units_pb2
from tests.scenario import PERIOD, REPORTED, load_quarter
from tests.serverproc import ServerProcess, hanoi_units, timestamp

EVALUATE = evaluations_pb2.EvaluatePeriodRequest(period=f"periods/{PERIOD}")


def _evaluation(server: ServerProcess, code: str) -> evaluations_pb2.Evaluation:
    return server.stubs().evaluations.GetEvaluation(
        evaluations_pb2.GetEvaluationRequest(name=f"periods/{PERIOD}/evaluations/{code}"), timeout=10).evaluation


def _all_evaluations(server: ServerProcess) -> list[bytes]:
    out: list[bytes] = []
    token = ""
    while True:
        page = server.stubs().evaluations.ListEvaluations(evaluations_pb2.ListEvaluationsRequest(
            parent=f"periods/{PERIOD}", page_size=50, page_token=token), timeout=10)
        out.extend(e.SerializeToString(deterministic=True) for e in page.evaluations)
        token = page.next_page_token
        if not token:
            return out


@pytest.fixture
def quarter(seeded_server: ServerProcess) -> ServerProcess:
    load_quarter(seeded_server)
    return seeded_server


def test_evaluate_period_scores_grades_and_flags(quarter: ServerProcess) -> None:
    reply = quarter.stubs().evaluations.EvaluatePeriod(EVALUATE, timeout=120)
    assert reply.units_evaluated == 141 and reply.new_revisions == 141
    assert reply.ruleset_version and len(reply.ruleset_digest) == 64

    snv = _evaluation(quarter, "SNV")
    assert snv.assessable and snv.has_score
    assert (snv.counts.due, snv.counts.on_time, snv.counts.open_overdue) == (10, 10, 0)
    assert snv.grade == "excellent" and snv.grade_label_vi == "Hoàn thành xuất sắc nhiệm vụ"
    assert "praise" in snv.flags
    # 70 x task_result (1.0) + 30 x dx (0.9 / 0.8 target capped at 1.0) = 100
    assert snv.score_display == "100.00"
    assert len(snv.inputs_digest) == 64 and snv.revision == 1
    points = {i.indicator: round(i.points, 4) for i in snv.indicators}
    assert points == {"task.completion": 21.0, "task.timeliness": 28.0, "task.quality": 21.0,
                      "dx.online_applications": 30.0}

    stp = _evaluation(quarter, "STP")
    assert (stp.counts.due, stp.counts.completed, stp.counts.on_time, stp.counts.late) == (10, 8, 6, 2)
    assert stp.counts.reworked == 1 and stp.counts.open_overdue == 2
    # completion 0.8, timeliness (6 + 0.75*2)/10 = 0.75, quality 1 - 0.25*1/8 = 0.96875
    # task_result = 0.24 + 0.3 + 0.290625 = 0.830625 -> 83.0625, minus 2 x 2 overdue = 79.0625
    assert stp.score_display == "79.06"
    assert stp.grade == "good"
    assert {"criticism", "reminder"} <= set(stp.flags)
    reasons = [r.reason_vi for r in stp.fired_rules if r.flag == "criticism"]
    assert any("75%" in r for r in reasons), reasons

    sct = _evaluation(quarter, "SCT")
    assert not sct.assessable and sct.grade == "not_assessable"

    recs = quarter.stubs().evaluations.ListRecommendations(evaluations_pb2.ListRecommendationsRequest(
        parent=f"periods/{PERIOD}", filter="unit=units/STP AND flag=criticism"), timeout=10).recommendations
    assert len(recs) == 1 and recs[0].kind == evaluations_pb2.RECOMMENDATION_KIND_CRITICISM
    assert recs[0].reasons and all(r.text_vi and r.text_en for r in recs[0].reasons)
    assert recs[0].unit_display_name_vi == "Sở Tư pháp"

    ranking = quarter.stubs().evaluations.ListRankings(evaluations_pb2.ListRankingsRequest(
        parent=f"periods/{PERIOD}", block="departments"), timeout=10).entries
    assert [e.unit for e in ranking[:2]] == ["units/SNV", "units/STP"]
    assert [e.rank for e in ranking[:2]] == [1, 2]
    assert ranking[1].timeliness == 0.75  # the rules' timeliness: (6 on time + 0.75 x 2 late) / 10
    assert all(e.rank == 0 for e in ranking[2:])  # not assessable: listed, unranked


def test_numbers_python_writes_with_an_exponent_reach_the_rules(quarter: ServerProcess) -> None:
    # 1 online application in 200,000 is 5e-06, a number durable_rules' parser refuses unless written 5.0e-06:
    # the measurement was dropped (STP, beside its overdue facts) or crashed the engine (SCT, its only fact).
    quarter.stubs().measurements.SubmitMeasurements(measurements_pb2.SubmitMeasurementsRequest(measurements=[
        measurements_pb2.Measurement(unit=f"units/{code}", period=PERIOD, indicator="dx.online_applications",
                                     numerator=1, denominator=200_000, reported_at=timestamp(REPORTED),
                                     reporting_system="dvc") for code in ("STP", "SCT")]), timeout=30)
    reply = quarter.stubs().evaluations.EvaluatePeriod(EVALUATE, timeout=120)
    assert reply.units_evaluated == 141
    for code in ("STP", "SCT"):
        evaluation = _evaluation(quarter, code)
        dx = [i for i in evaluation.indicators if i.indicator == "dx.online_applications"]
        assert len(dx) == 1 and dx[0].value == 1 / 200_000 and dx[0].counted, (code, dx)
        assert "dx-indicator-counted" in [r.rule_id for r in evaluation.fired_rules]


def test_re_evaluation_is_byte_identical_and_makes_no_new_revision(quarter: ServerProcess) -> None:
    stubs = quarter.stubs()
    stubs.evaluations.EvaluatePeriod(EVALUATE, timeout=120)
    before = _all_evaluations(quarter)
    again = stubs.evaluations.EvaluatePeriod(EVALUATE, timeout=120)
    assert (again.new_revisions, again.unchanged) == (0, 141)
    assert _all_evaluations(quarter) == before
    # fresh processes (server and engine workers) give the same bytes too
    quarter.stop()
    quarter.start()
    third = quarter.stubs().evaluations.EvaluatePeriod(EVALUATE, timeout=120)
    assert third.new_revisions == 0
    assert _all_evaluations(quarter) == before


def test_facts_read_in_groups_of_units_give_each_unit_its_own_result(quarter: ServerProcess) -> None:
    """EvaluatePeriod reads the facts a group of units at a time (128, then 256) while the engine works on the
    groups already read. With 200 units more than the demo city's 141, the city's units are split between two
    groups: each keeps the result it had when all were read at once (no new revision, the same bytes), and
    each added unit has its own counts."""
    from civicscore_api.v1 import assignments_pb2, outcomes_pb2
    from tests.scenario import assignment, completed

    stubs = quarter.stubs()
    stubs.evaluations.EvaluatePeriod(EVALUATE, timeout=120)
    before = _all_evaluations(quarter)
    added = [f"Z-TEST-{i:03d}" for i in range(200)]  # after every code of the city's
    stubs.units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=[
        units_pb2.Unit(code=code, display_name_vi=f"Phường thử {i}", display_name_en=f"Test ward {i}",
                       kind=units_pb2.UNIT_KIND_WARD, block="communes", active=True)
        for i, code in enumerate(added)]), timeout=30)
    stubs.assignments.UpsertAssignments(assignments_pb2.UpsertAssignmentsRequest(assignments=[
        assignment(f"{code}-{k}", code, "2026-08-01") for i, code in enumerate(added) for k in range(i % 3 + 1)]),
        timeout=30)
    stubs.outcomes.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(outcomes=[
        completed(f"{code}-0", "2026-07-20") for code in added[::2]]), timeout=30)
    reply = stubs.evaluations.EvaluatePeriod(EVALUATE, timeout=120)
    assert (reply.units_evaluated, reply.new_revisions, reply.unchanged) == (341, 200, 141)
    after = {evaluations_pb2.Evaluation.FromString(e).unit: e for e in _all_evaluations(quarter)}
    assert [after[evaluations_pb2.Evaluation.FromString(e).unit] for e in before] == before
    for i, code in enumerate(added):
        counts = evaluations_pb2.Evaluation.FromString(after[f"units/{code}"]).counts
        assert (counts.due, counts.completed) == (i % 3 + 1, 1 - i % 2), code


def test_changed_input_makes_a_new_revision_and_supersedes_recommendations(quarter: ServerProcess) -> None:
    from tests.scenario import completed

    stubs = quarter.stubs()
    stubs.evaluations.EvaluatePeriod(EVALUATE, timeout=120)
    from civicscore_api.v1 import outcomes_pb2

    late_done = [completed(f"STP-{i}", "2026-09-01") for i in (8, 9)]
    for o in late_done:
        o.outcome_id = o.outcome_id + "-v2"
    stubs.outcomes.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(outcomes=late_done), timeout=10)
    reply = stubs.evaluations.EvaluatePeriod(EVALUATE, timeout=120)
    assert reply.new_revisions == 1  # only STP changed
    stp = _evaluation(quarter, "STP")
    assert stp.revision == 2 and stp.counts.open_overdue == 0
    first = stubs.evaluations.GetEvaluation(evaluations_pb2.GetEvaluationRequest(
        name=f"periods/{PERIOD}/evaluations/STP", revision=1), timeout=10).evaluation
    assert first.revision == 1 and first.counts.open_overdue == 2
    superseded = stubs.evaluations.ListRecommendations(evaluations_pb2.ListRecommendationsRequest(
        parent=f"periods/{PERIOD}", filter="unit=units/STP AND status=superseded"), timeout=10).recommendations
    assert superseded and all(r.evaluation_revision == 1 for r in superseded)


def _engine_workers(server: ServerProcess) -> list[int]:
    pids = []
    for pid in server.child_pids():
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        if b"spawn_main" in cmdline:
            pids.append(pid)
    return pids


def test_worker_killed_during_evaluate_period_does_not_fail_the_call(tmp_path: Path) -> None:
    # a slowed engine (fault injection: 20 ms per unit) so the kill lands mid-call
    server = ServerProcess(tmp_path, extra_args=("--engine-fault-delay", "0.02")).start()
    try:
        server.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=30)
        load_quarter(server)
        workers = _engine_workers(server)
        assert len(workers) == 1
        result: dict[str, object] = {}

        def call() -> None:
            try:
                result["reply"] = server.stubs().evaluations.EvaluatePeriod(EVALUATE, timeout=120)
            except grpc.RpcError as err:  # recorded, asserted below
                result["error"] = err

        thread = threading.Thread(target=call)
        thread.start()
        time.sleep(0.8)  # 141 units x 20 ms: the worker is busy for about 3 s
        assert thread.is_alive()
        os.kill(workers[0], signal.SIGKILL)
        thread.join(120)
        assert "error" not in result, result.get("error")
        reply = result["reply"]
        assert isinstance(reply, evaluations_pb2.EvaluatePeriodResponse)
        assert reply.units_evaluated == 141 and reply.new_revisions == 141
        replacement = _engine_workers(server)
        assert replacement and workers[0] not in replacement
        assert _evaluation(server, "SNV").grade == "excellent"
    finally:
        server.stop()
