"""Answers that say what they mean, through the real server, SDK and CLI (issue 11, item 5):

- `score` is the unrounded score and rankings order on it (`score_display` is the rounded text);
- an evaluation of an inactive unit is refused as such, not with "evaluate the period first";
- a watch cursor past the newest change is OUT_OF_RANGE naming the newest change.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from civicscore.domain.canonical import sha256_hex
from civicscore.domain.text import round_half_away
from civicscore_api.v1 import (
    assignments_pb2,
    evaluations_pb2,
    measurements_pb2,
    outcomes_pb2,
    reviews_pb2,
    reviews_pb2_grpc,
    units_pb2,
)
from civicscore_client import FailedPrecondition, NotFound, OutOfRange
from tests.postgres_support import database_url_fixture
from tests.scenario import PERIOD, REPORTED, assignment, completed
from tests.serverproc import ServerProcess, timestamp

database_url = database_url_fixture()

BLOCK = "so-ban-nganh"
DX_TARGET = 0.8  # the default target of dx.online_applications for a department (rules/scoring.yaml)
# Every unit below completes all its assignments on time (task result 1: 70 points) and reports one DX
# indicator, so score = 70 + 30 x (value / target): DX values pick the score to the millionth.
VALUES = {
    "DV-A": (600_000, 1_000_000),  # 70 + 30 x 0.75 = 92.5
    "DV-B": (600_053, 1_000_000),  # 70 + 30 x 0.75006625 = 92.5019875: shown 92.50 like DV-A, 0.002 more
    "DV-C": (5_333, 10_000),       # 70 + 30 x 0.666625 = 89.99875: shown 90.00, yet below the 90 of excellent
}
EVALUATE = evaluations_pb2.EvaluatePeriodRequest(period=f"periods/{PERIOD}")


def score_of(code: str) -> float:
    numerator, denominator = VALUES[code]
    return 70 + 30 * min(1.0, numerator / denominator / DX_TARGET)


def department(code: str, *, active: bool = True) -> units_pb2.Unit:
    return units_pb2.Unit(
        code=code, display_name_vi=f"Đơn vị {code}", display_name_en=f"Unit {code}",
        kind=units_pb2.UNIT_KIND_DEPARTMENT, block=BLOCK, active=active,
        activity=units_pb2.UNIT_ACTIVITY_ACTIVE if active else units_pb2.UNIT_ACTIVITY_INACTIVE)


def load_units(server: ServerProcess, codes: list[str], *, inactive: tuple[str, ...] = ()) -> None:
    """The units, six assignments each completed on time in the quarter, and their DX measurement."""
    s = server.stubs()
    s.units.UpsertUnits(units_pb2.UpsertUnitsRequest(
        units=[department(code) for code in codes] + [department(code, active=False) for code in inactive]),
        timeout=30)
    items, outcomes, measured = [], [], []
    for code in (*codes, *inactive):
        for i in range(6):
            aid = f"{code}-{i}"
            items.append(assignment(aid, code, f"2026-08-{10 + i:02d}"))
            outcomes.append(completed(aid, f"2026-08-{5 + i:02d}"))
        numerator, denominator = VALUES.get(code, (1, 1))
        measured.append(measurements_pb2.Measurement(
            unit=f"units/{code}", period=PERIOD, indicator="dx.online_applications", numerator=numerator,
            denominator=denominator, reported_at=timestamp(REPORTED), reporting_system="dvc"))
    s.assignments.UpsertAssignments(assignments_pb2.UpsertAssignmentsRequest(assignments=items), timeout=30)
    s.outcomes.SubmitOutcomes(outcomes_pb2.SubmitOutcomesRequest(outcomes=outcomes), timeout=30)
    s.measurements.SubmitMeasurements(measurements_pb2.SubmitMeasurementsRequest(measurements=measured), timeout=30)


def evaluation(server: ServerProcess, code: str, revision: int = 0) -> evaluations_pb2.Evaluation:
    reply: evaluations_pb2.GetEvaluationResponse = server.stubs().evaluations.GetEvaluation(
        evaluations_pb2.GetEvaluationRequest(name=f"periods/{PERIOD}/evaluations/{code}", revision=revision),
        timeout=10)
    return reply.evaluation


def ranking(server: ServerProcess) -> list[evaluations_pb2.RankingEntry]:
    return list(server.stubs().evaluations.ListRankings(evaluations_pb2.ListRankingsRequest(
        parent=f"periods/{PERIOD}", block=BLOCK), timeout=10).entries)


# ---- score: unrounded, ranked on ------------------------------------------------------------------


def test_score_is_unrounded_and_rankings_order_on_it(server: ServerProcess) -> None:
    load_units(server, ["DV-A", "DV-B", "DV-C"])
    server.stubs().evaluations.EvaluatePeriod(EVALUATE, timeout=120)

    a, b, c = (evaluation(server, code) for code in ("DV-A", "DV-B", "DV-C"))
    assert b.score == pytest.approx(92.5019875, abs=1e-9) == pytest.approx(score_of("DV-B"), abs=1e-9)
    assert (a.score_display, b.score_display) == ("92.50", "92.50")  # the same for people
    assert b.score - a.score == pytest.approx(0.0019875, abs=1e-9)
    # Grades compare the unrounded score, as rules/grades.yaml says: 89.99875 is shown 90.00 but is "good".
    assert c.score == pytest.approx(89.99875, abs=1e-9) and c.score_display == "90.00"
    assert (a.grade, b.grade, c.grade) == ("excellent", "excellent", "good")

    entries = ranking(server)
    # Equal timeliness, so the old rounded tie (92.50 = 92.50) went to the code: DV-A first.
    assert [(e.unit, e.rank) for e in entries] == [("units/DV-B", 1), ("units/DV-A", 2), ("units/DV-C", 3)]
    assert [e.score for e in entries] == [b.score, a.score, c.score]
    assert [e.score_display for e in entries] == ["92.50", "92.50", "90.00"]


def test_evaluations_stored_rounded_by_an_earlier_version_read_as_stored_until_re_evaluated(
        server: ServerProcess) -> None:
    """An upgrade: revisions stored with the rounded score stay readable (and keep their score); the next
    EvaluatePeriod makes a new revision for each unit whose unrounded score differs from it."""
    load_units(server, ["DV-A", "DV-B"])
    server.stubs().evaluations.EvaluatePeriod(EVALUATE, timeout=120)
    server.stop()
    # What the earlier version stored for DV-B: the same result with the score rounded to 2 decimals.
    with sqlite3.connect(server.workdir / "civicscore.db") as db:
        (text,) = db.execute("SELECT result_json FROM evaluations WHERE unit_code = 'DV-B'").fetchone()
        result = json.loads(text)
        assert json.dumps(result, sort_keys=True, ensure_ascii=False, separators=(",", ":")) == text
        result["score"] = round_half_away(result["score"], 2)
        old = json.dumps(result, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        db.execute("UPDATE evaluations SET result_json = ?, result_digest = ?, score = ? WHERE unit_code = 'DV-B'",
                   (old, sha256_hex(old), result["score"]))
    server.start()

    stored = evaluation(server, "DV-B")
    assert (stored.revision, stored.score, stored.score_display, stored.grade) == (1, 92.5, "92.50", "excellent")
    reply = server.stubs().evaluations.EvaluatePeriod(EVALUATE, timeout=120)
    assert (reply.new_revisions, reply.unchanged) == (1, 1)  # DV-A's 92.5 was already exact
    assert evaluation(server, "DV-B").revision == 2
    assert evaluation(server, "DV-B").score == pytest.approx(score_of("DV-B"), abs=1e-9)
    assert evaluation(server, "DV-B", revision=1).score == 92.5  # the old revision is kept as it was
    assert [e.unit for e in ranking(server)] == ["units/DV-B", "units/DV-A"]
    # The new revision supersedes the open recommendations of the old one with equal new ones.
    recommendations = server.stubs().evaluations.ListRecommendations(evaluations_pb2.ListRecommendationsRequest(
        parent=f"periods/{PERIOD}", filter="unit=units/DV-B"), timeout=10).recommendations
    assert sorted((r.evaluation_revision, r.status) for r in recommendations) == [
        (1, evaluations_pb2.RECOMMENDATION_STATUS_SUPERSEDED), (2, evaluations_pb2.RECOMMENDATION_STATUS_PROPOSED)]


# ---- an inactive unit's evaluation -----------------------------------------------------------------


def test_the_evaluation_of_an_inactive_unit_is_refused_as_such(server: ServerProcess) -> None:
    load_units(server, ["DV-A"], inactive=("DV-OFF",))
    reply = server.stubs().evaluations.EvaluatePeriod(EVALUATE, timeout=120)
    assert reply.units_evaluated == 1  # DV-OFF is skipped
    inactive = ("unit DV-OFF is inactive, so it is not evaluated: periods/2026-Q3/evaluations/DV-OFF does not "
                "exist. Mark units/DV-OFF active (UpsertUnits with active=true) and evaluate 2026-Q3 again to "
                "evaluate it")
    name = f"periods/{PERIOD}/evaluations/DV-OFF"
    evaluations = server.stubs().evaluations
    for call, request in ((evaluations.GetEvaluation, evaluations_pb2.GetEvaluationRequest(name=name)),
                          (evaluations.ExplainEvaluation, evaluations_pb2.ExplainEvaluationRequest(name=name))):
        with pytest.raises(grpc.RpcError) as refused:
            call(request, timeout=30)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert refused.value.details() == inactive
    with server.client() as client:
        with pytest.raises(FailedPrecondition) as typed:
            client.get_evaluation(PERIOD, "DV-OFF")
        assert typed.value.reason == "UNIT_INACTIVE" and typed.value.message == inactive
        with pytest.raises(FailedPrecondition, match="DV-OFF is inactive"):
            client.explain_evaluation(PERIOD, "DV-OFF")

        # The other reasons an evaluation is missing, each said as it is.
        with pytest.raises(NotFound) as unknown:
            client.get_evaluation(PERIOD, "DV-NOPE")
        assert unknown.value.message == (
            "periods/2026-Q3/evaluations/DV-NOPE does not exist: there is no unit 'DV-NOPE'; check the unit "
            "code (ListUnits lists them)")
        server.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=[department("DV-NEW")]), timeout=30)
        with pytest.raises(NotFound) as new:
            client.get_evaluation(PERIOD, "DV-NEW")
        assert new.value.message == ("periods/2026-Q3/evaluations/DV-NEW does not exist: units/DV-NEW has no "
                                     "evaluation for 2026-Q3 yet; evaluate the period first (EvaluatePeriod)")
        with pytest.raises(NotFound) as revision:
            client.get_evaluation(PERIOD, "DV-A", revision=7)
        assert revision.value.message == ("periods/2026-Q3/evaluations/DV-A revision 7 does not exist: "
                                          "the latest revision is 1")


# ---- a watch cursor past the head ------------------------------------------------------------------


@pytest.fixture()
def watched(tmp_path: Path, database_url: str) -> Iterator[tuple[ServerProcess, int]]:
    """A server (on each backend) whose change log holds the recommendations of one evaluation, and its head."""
    proc = ServerProcess(tmp_path, database_url=database_url).start()
    try:
        load_units(proc, ["DV-A", "DV-B", "DV-C"])
        proc.stubs().evaluations.EvaluatePeriod(EVALUATE, timeout=120)
        yield proc, head_of(proc)
    finally:
        proc.stop()


def head_of(server: ServerProcess) -> int:
    """The cursor of the newest change: where a watch from the start says it has caught up."""
    call = watch(server, "")
    try:
        for message in call:
            if message.caught_up:
                return int(message.cursor)
    finally:
        call.cancel()
    raise AssertionError("the watch ended before catching up")


def watch(server: ServerProcess, cursor: str) -> Any:
    """The generated client's stream (an iterator of replies that can be cancelled)."""
    stub = reviews_pb2_grpc.ReviewServiceStub(server.channel())
    return stub.WatchRecommendations(reviews_pb2.WatchRecommendationsRequest(cursor=cursor), timeout=30)


def first_reply(server: ServerProcess, cursor: str) -> reviews_pb2.WatchRecommendationsResponse:
    call = watch(server, cursor)
    try:
        reply: reviews_pb2.WatchRecommendationsResponse = next(iter(call))
        return reply
    finally:
        call.cancel()


def past_head(cursor: str, head: int) -> str:
    return (f"cursor {cursor} is past the head of the change log: the newest change is cursor {head}, so this "
            "server never sent it (it may come from another database, or from before a restore). Resume from "
            f"a cursor of at most {head}, or from 0 (an empty cursor) to replay every change")


def test_a_watch_cursor_past_the_head_is_out_of_range_naming_the_head(
        watched: tuple[ServerProcess, int]) -> None:
    server, head = watched
    assert head > 0
    for cursor in (head + 1, 99_999_999, 2**63 - 1, 2**63, 2**64 + 5):
        with pytest.raises(grpc.RpcError) as refused:
            first_reply(server, str(cursor))
        assert refused.value.code() == grpc.StatusCode.OUT_OF_RANGE, cursor
        assert refused.value.details() == past_head(str(cursor), head)
    with pytest.raises(grpc.RpcError) as long:
        first_reply(server, "9" * 60)
    assert long.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert long.value.details() == past_head("99999999999999999999... (60 digits)", head)
    # At the head (or before it) is a cursor this server sent: caught up at once, or the changes after it.
    assert first_reply(server, str(head)).caught_up
    assert first_reply(server, "0").HasField("change")
    assert first_reply(server, f"00{head}").caught_up
    with pytest.raises(grpc.RpcError) as not_a_number:
        first_reply(server, "1²")  # a digit to str.isdigit, not to int()
    assert not_a_number.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'1²' is not a cursor from WatchRecommendations" in (not_a_number.value.details() or "")

    with server.client() as client:
        stream = client.watch_recommendations("99999999")
        with pytest.raises(OutOfRange) as typed:
            next(iter(stream))
        assert isinstance(typed.value, FailedPrecondition)  # OUT_OF_RANGE is its more specific form
        assert typed.value.code == grpc.StatusCode.OUT_OF_RANGE
        assert typed.value.message == past_head("99999999", head)


def test_a_watch_on_an_empty_log_accepts_only_the_start(server: ServerProcess) -> None:
    assert first_reply(server, "").caught_up and first_reply(server, "0").cursor == "0"
    with pytest.raises(grpc.RpcError) as refused:
        first_reply(server, "5")
    assert refused.value.code() == grpc.StatusCode.OUT_OF_RANGE
    assert refused.value.details() == (
        "cursor 5 is past the head of the change log: no change has been recorded yet (the head is 0), so this "
        "server never sent it (it may come from another database, or from before a restore). Resume from 0 "
        "(an empty cursor)")


def test_the_cli_watch_from_past_the_head_fails_naming_the_head(watched: tuple[ServerProcess, int]) -> None:
    server, head = watched
    command = Path(sys.executable).parent / "civicscore"
    env = {**os.environ, "CIVICSCORE_TOKEN": server.token, "NO_COLOR": "1", "COLUMNS": "250"}
    # Before the fix this printed "caught up" and waited for ever: the timeout fails the test then.
    run = subprocess.run([str(command), "--server", server.address, "watch", "--from", "99999999"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 1, run.stderr
    assert run.stdout == "" and "caught up" not in run.stderr
    assert run.stderr.splitlines() == [
        f"error: {past_head('99999999', head)}",
        "  `civicscore watch --from CURSOR` resumes after a cursor this server printed; `civicscore watch "
        "--from 0` replays every change",
    ]
