"""The committee's side, through the real server: review, supersede, contest, and watch."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from civicscore.domain.model import RecommendationStatus
from civicscore.store.base import InvalidTransition, NewContest
from civicscore.store.sql import SqlStore, open_store
from civicscore_api.v1 import evaluations_pb2, outcomes_pb2, reviews_pb2, units_pb2
from civicscore_client import Client, FailedPrecondition, InvalidArgument, PermissionDenied
from civicscore_client.cli import app
from tests.postgres_support import database_url_fixture
from tests.scenario import PERIOD, REPORTED, completed, load_quarter
from tests.serverproc import ServerProcess, hanoi_units, timestamp
from tests.test_store import NOW, new_evaluation, unit

pytestmark = pytest.mark.slow
database_url = database_url_fixture()

STP = f"periods/{PERIOD}/recommendations/STP~criticism"
CORRECTED = REPORTED + dt.timedelta(days=1)
S = evaluations_pb2


def corrected(aid: str, on: str) -> outcomes_pb2.Outcome:
    """A correction: the assignment completed on time, reported after the original outcome."""
    outcome = completed(aid, on)
    outcome.outcome_id = f"{aid}-corrected"
    outcome.reported_at.CopyFrom(timestamp(CORRECTED))
    return outcome


# STP's late and open assignments (due 2026-07-16 .. 07-19) completed on time after all.
CORRECTIONS = [corrected(f"STP-{i}", f"2026-07-{10 + i:02d}") for i in range(6, 10)]


@pytest.fixture()
def served(tmp_path: Path, database_url: str) -> Iterator[tuple[ServerProcess, dict[str, str]]]:
    """A server on each backend, with Hanoi's units, the 2026-Q3 scenario evaluated, and an identity per role."""
    proc = ServerProcess(tmp_path, database_url=database_url).start()
    try:
        proc.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=30)
        load_quarter(proc)
        tokens = {}
        with proc.client() as admin:
            admin.evaluate_period(PERIOD)
            for who, roles, scope in (("committee-1", ["committee"], []), ("committee-2", ["committee"], []),
                                      ("reader-1", ["reader"], []), ("stp-reporter", ["reporter"], ["STP"]),
                                      ("snv-reporter", ["reporter"], ["SNV"])):
                admin.create_identity(who, f"Thử nghiệm {who}", roles=roles, scope_units=scope)
                tokens[who] = admin.issue_token(who).token
        yield proc, tokens
    finally:
        proc.stop()


def _stp(client: Client) -> evaluations_pb2.Recommendation:
    found = [r for r in client.list_recommendations(PERIOD, unit="STP") if r.flag == "criticism"]
    return found[-1]


def test_every_allowed_and_refused_transition(served: tuple[ServerProcess, dict[str, str]]) -> None:
    proc, tokens = served
    with proc.client(tokens["committee-1"]) as one, proc.client(tokens["committee-2"]) as two:
        assert _stp(one).status == S.RECOMMENDATION_STATUS_PROPOSED
        # a reason is required
        with pytest.raises(InvalidArgument):
            one.review_recommendation(STP, "defer", "   ")
        # proposed -> deferred -> deferred (a new reason) -> approved
        first = one.review_recommendation(STP, "defer", "Chờ giải trình của đơn vị")
        assert first.recommendation.status == S.RECOMMENDATION_STATUS_DEFERRED
        assert first.review.previous_status == S.RECOMMENDATION_STATUS_PROPOSED
        again = two.review_recommendation(STP, "defer", "Chờ thêm số liệu quý")
        assert again.recommendation.last_decision_reason == "Chờ thêm số liệu quý"
        assert again.recommendation.last_reviewer == "committee-2"
        approved = one.review_recommendation(STP, "approve", "Đồng ý phê bình")
        assert approved.recommendation.status == S.RECOMMENDATION_STATUS_APPROVED
        assert approved.recommendation.last_decision == "approved"
        # approved is final: every decision is refused, naming the current state
        for decision in ("approve", "reject", "defer"):
            with pytest.raises(FailedPrecondition, match="APPROVED"):
                two.review_recommendation(STP, decision, "Đổi ý")
        listed = next(r for r in one.list_recommendations(PERIOD, unit="STP") if r.flag == "criticism")
        assert (listed.last_decision, listed.last_reviewer, listed.last_decision_reason) == (
            "approved", "committee-1", "Đồng ý phê bình")  # the ordinary listing shows decisions too
        history = one.list_recommendation_reviews(STP)
        assert [(r.decision, r.reviewer) for r in history] == [
            (reviews_pb2.REVIEW_DECISION_DEFER, "committee-1"), (reviews_pb2.REVIEW_DECISION_DEFER, "committee-2"),
            (reviews_pb2.REVIEW_DECISION_APPROVE, "committee-1")]
        # proposed -> rejected, then rejected is final
        snv = f"periods/{PERIOD}/recommendations/SNV~praise"
        assert one.review_recommendation(snv, "reject", "Chưa đủ căn cứ").recommendation.status == (
            S.RECOMMENDATION_STATUS_REJECTED)
        for decision in ("approve", "reject", "defer"):
            with pytest.raises(FailedPrecondition, match="REJECTED"):
                two.review_recommendation(snv, decision, "Xem lại")
    # readers and reporters may not review
    for who in ("reader-1", "stp-reporter"):
        with proc.client(tokens[who]) as other, pytest.raises(PermissionDenied):
            other.review_recommendation(STP, "approve", "Tôi đồng ý")


def _as_watched(client: Client, recommendation_id: int) -> evaluations_pb2.Recommendation | None:
    """The recommendation as the change stream shows it now (with its decision and successor)."""
    watch = client.watch_recommendations()
    found = None
    for message in watch:
        if message.caught_up:
            break
        if message.change.recommendation.recommendation_id == recommendation_id:
            found = message.change.recommendation
    watch.cancel()
    return found


def test_a_reevaluation_supersedes_links_the_successor_and_keeps_the_decision(
        served: tuple[ServerProcess, dict[str, str]]) -> None:
    proc, tokens = served
    with proc.client(tokens["committee-1"]) as committee, proc.client(tokens["stp-reporter"]) as reporter:
        old = committee.review_recommendation(STP, "defer", "Chờ số liệu hiệu chỉnh").recommendation
        # one open assignment completed after all: the result changes, criticism is raised again
        assert reporter.submit_outcomes([CORRECTIONS[2]]).accepted == 1
        committee.evaluate_period(PERIOD)
        superseded = _as_watched(committee, old.recommendation_id)
        assert superseded is not None and superseded.status == S.RECOMMENDATION_STATUS_SUPERSEDED
        assert (superseded.last_decision, superseded.last_reviewer, superseded.last_decision_reason) == (
            "deferred", "committee-1", "Chờ số liệu hiệu chỉnh")
        assert superseded.HasField("last_decision_time")
        assert _stp(committee).status == S.RECOMMENDATION_STATUS_PROPOSED
        # superseded is final; the successor (the latest of the name) is reviewed on its own
        with pytest.raises(FailedPrecondition, match="SUPERSEDED"):
            committee.review_recommendation(STP, "approve", "Muộn", recommendation_id=old.recommendation_id)
        successor = committee.review_recommendation(STP, "defer", "Vẫn chờ").recommendation
        assert (superseded.successor, superseded.successor_id) == (STP, successor.recommendation_id)
        assert successor.recommendation_id != old.recommendation_id
        # every correction: the flag is dropped, nothing succeeds it, both decisions stay visible
        reporter.submit_outcomes(CORRECTIONS)
        committee.evaluate_period(PERIOD)
        dropped = _as_watched(committee, successor.recommendation_id)
        assert dropped is not None and dropped.status == S.RECOMMENDATION_STATUS_SUPERSEDED
        assert dropped.last_decision_reason == "Vẫn chờ" and dropped.successor_id == 0
        assert [r.reason for r in committee.list_recommendation_reviews(STP)] == [
            "Chờ số liệu hiệu chỉnh", "Vẫn chờ"]
        now = [(r.flag, r.status) for r in committee.list_recommendations(PERIOD, unit="STP")]
        gone = S.RECOMMENDATION_STATUS_SUPERSEDED
        assert now == [("reminder", gone), ("criticism", gone), ("reminder", gone), ("criticism", gone),
                       ("praise", S.RECOMMENDATION_STATUS_PROPOSED)]  # every task on time now


def test_a_unit_contests_with_corrections_and_the_committee_sees_before_and_after(
        served: tuple[ServerProcess, dict[str, str]]) -> None:
    proc, tokens = served
    text = "Đơn vị đã hoàn thành đúng hạn; hệ thống ghi nhận sai ngày"
    with proc.client(tokens["snv-reporter"]) as other, pytest.raises(PermissionDenied):
        other.contest_recommendation(STP, "Không phải đơn vị của tôi", CORRECTIONS)
    with proc.client(tokens["stp-reporter"]) as reporter:
        with pytest.raises(InvalidArgument):
            reporter.contest_recommendation(STP, "  ", CORRECTIONS)
        contest = reporter.contest_recommendation(STP, text, CORRECTIONS)
    assert contest.text == text and contest.contested_by == "stp-reporter" and contest.unit == "units/STP"
    assert contest.accepted == 4 and [c.outcome_id for c in contest.corrections] == [
        o.outcome_id for o in CORRECTIONS]
    assert "criticism" in contest.before.flags and "criticism" not in contest.after.flags
    assert contest.after.revision == contest.before.revision + 1
    assert contest.after.score > contest.before.score
    assert contest.current.status == S.RECOMMENDATION_STATUS_SUPERSEDED
    with proc.client(tokens["committee-1"]) as committee:
        # stored through ingest: the corrections are outcomes recorded by the unit's reporter
        stored = {o.outcome_id for o in committee.list_outcomes(unit="STP")}
        assert {o.outcome_id for o in CORRECTIONS} <= stored
        assert committee.get_evaluation(PERIOD, "STP").evaluated_by == "stp-reporter"
        shown = committee.get_contest(contest.name)
        assert (shown.before, shown.after, shown.text) == (contest.before, contest.after, text)
        assert [c.name for c in committee.list_contests(PERIOD)] == [contest.name]
        events = [e for e in committee.list_audit_events() if e.action == "contest_recommendation"]
        assert [e.actor for e in events] == ["stp-reporter"]


def test_a_watcher_resumes_from_its_cursor_without_gaps_or_duplicates(
        served: tuple[ServerProcess, dict[str, str]]) -> None:
    proc, tokens = served
    received: list[str] = []
    done = threading.Event()

    def churn() -> None:  # changes keep happening while the watcher disconnects and comes back
        with proc.client(tokens["committee-1"]) as committee:
            for n in range(30):
                committee.review_recommendation(STP, "defer", f"Hoãn lần {n + 1}")
                time.sleep(0.02)
        done.set()

    writer = threading.Thread(target=churn)
    with proc.client(tokens["reader-1"]) as reader:
        cursor = ""
        writer.start()
        disconnects = 0
        while not done.is_set() or disconnects < 3:
            watch = reader.watch_recommendations(cursor)
            taken = 0
            for message in watch:  # never waits for changes to come: reads until caught up, or 3 changes
                if message.HasField("change"):
                    received.append(message.cursor)
                    taken += 1
                if taken >= 3 or message.caught_up:
                    break
            cursor = watch.cursor
            watch.cancel()  # disconnect (mid-stream when it stopped after 3 changes)
            disconnects += 1
            time.sleep(0.05)
        writer.join()
        # drain the rest
        watch = reader.watch_recommendations(cursor)
        for message in watch:
            if message.HasField("change"):
                received.append(message.cursor)
            if message.caught_up:
                break
        watch.cancel()
        # everything, once, in order: the full log read in one go from the start
        full = reader.watch_recommendations()
        every = []
        for message in full:
            if message.caught_up:
                break
            every.append(message.cursor)
        full.cancel()
    assert disconnects >= 3
    assert received == every  # no gaps, no duplicates, in order
    assert len(set(every)) == len(every) >= 30


def test_the_cli_reviews_contests_and_shows_side_by_side(served: tuple[ServerProcess, dict[str, str]],
                                                         tmp_path: Path) -> None:
    proc, tokens = served

    def civicscore(who: str, *args: str) -> Result:
        return CliRunner().invoke(app, ["--server", proc.address, *args],
                                  env={"COLUMNS": "250", "NO_COLOR": "1", "CIVICSCORE_TOKEN": tokens[who]})

    done = civicscore("committee-1", "review", "defer", f"{PERIOD}/STP~criticism", "--reason", "Chờ giải trình")
    assert done.exit_code == 0, done.output
    assert "proposed -> deferred by committee-1: Chờ giải trình" in done.output
    refused = civicscore("committee-1", "review", "approve", STP, "--reason", "")
    assert refused.exit_code != 0
    corrections = tmp_path / "corrections.csv"
    corrections.write_text(
        "outcome_id,assignment_id,status,completed_on,quality,reminders,reported_at,reporting_system\n"
        + "".join(f"STP-{i}-fixed,STP-{i},completed,2026-07-{10 + i:02d},accepted,0,2026-10-04T02:00:00Z,"
                  "ward-app\n" for i in range(6, 10)), encoding="utf-8")
    contested = civicscore("stp-reporter", "contest", STP, "--text", "Sai ngày hoàn thành",
                           "--outcomes", str(corrections))
    assert contested.exit_code == 0, contested.output
    assert "criticism" in contested.output and "Corrections: 4 (4 stored" in contested.output
    listed = civicscore("committee-1", "contests", PERIOD)
    assert listed.exit_code == 0 and "contests/1" in listed.output, listed.output
    shown = civicscore("committee-1", "contest-show", "1")
    assert shown.exit_code == 0 and "Before" in shown.output and "After" in shown.output, shown.output
    table = civicscore("reader-1", "recommendations", PERIOD, "--unit", "STP")
    assert table.exit_code == 0 and "superseded" in table.output, table.output


# ---- the store, on SQLite and (when CIVICSCORE_TEST_POSTGRES_URL is set) PostgreSQL ----------------
@pytest.fixture()
def store(database_url: str) -> Iterator[SqlStore]:
    opened = open_store(database_url, clock=lambda: NOW)
    try:
        yield opened
    finally:
        opened.close()


def test_the_store_keeps_decisions_links_successors_and_logs_every_change(store: SqlStore) -> None:
    store.upsert_units([unit("STP")])
    store.save_evaluations([new_evaluation("STP", "2026-Q2", "a", flags=("criticism",))], period="2026-Q2")
    first = store.find_recommendation(period="2026-Q2", unit_code="STP", flag="criticism")
    assert first is not None and first.status == RecommendationStatus.PROPOSED and first.recommendation_id
    deferred, review = store.review_recommendation(first.recommendation_id, decision="deferred",
                                                   reason="Chờ giải trình", reviewer="committee-1", at=NOW)
    assert deferred.status == RecommendationStatus.DEFERRED and review.previous_status == "proposed"
    assert (deferred.last_decision, deferred.last_reviewer, deferred.last_decision_reason) == (
        "deferred", "committee-1", "Chờ giải trình")
    # the flag changes (same kind): the deferred one is superseded, linked, and keeps its decision
    store.save_evaluations([new_evaluation("STP", "2026-Q2", "b", flags=("reminder",))], period="2026-Q2")
    old = store.get_recommendation(first.recommendation_id)
    new = store.find_recommendation(period="2026-Q2", unit_code="STP", flag="reminder")
    assert old is not None and new is not None
    assert (old.status, old.superseded_by, old.successor_flag) == (
        RecommendationStatus.SUPERSEDED, new.recommendation_id, "reminder")
    assert old.last_decision == "deferred" and old.last_decision_at == NOW
    with pytest.raises(InvalidTransition) as refused:
        store.review_recommendation(old.recommendation_id, decision="approved", reason="x", reviewer="c", at=NOW)
    assert refused.value.current == "superseded"
    store.review_recommendation(new.recommendation_id, decision="approved", reason="Đồng ý", reviewer="c", at=NOW)
    for decision in ("approved", "rejected", "deferred"):
        with pytest.raises(InvalidTransition):
            store.review_recommendation(new.recommendation_id, decision=decision, reason="x", reviewer="c", at=NOW)
    contest = store.record_contest(NewContest(
        recommendation_id=new.recommendation_id, period="2026-Q2", unit_code="STP", text="Xin xem lại",
        corrections_json="[]", accepted=0, duplicates=0, before_json="{}", after_json="{}",
        contested_by="stp-reporter", created_at=NOW))
    assert [c.contest_id for c in store.list_contests(period="2026-Q2").items] == [contest.contest_id]
    changes = store.recommendation_changes(after_seq=0)
    assert [(c.change, c.recommendation.recommendation_id) for c in changes] == [
        ("raised", first.recommendation_id), ("reviewed", first.recommendation_id),
        ("raised", new.recommendation_id), ("superseded", first.recommendation_id),
        ("reviewed", new.recommendation_id), ("contested", new.recommendation_id)]
    assert [c.seq for c in store.recommendation_changes(after_seq=changes[2].seq)] == [c.seq for c in changes[3:]]
    audited = [(e.action, e.actor) for e in store.audit_entries()]
    assert audited == [("review_recommendation", "committee-1"), ("review_recommendation", "c"),
                       ("contest_recommendation", "stp-reporter")]
