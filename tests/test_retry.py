"""A write whose reply is lost is retried by the SDK with the same idempotency key and stored once.

`CutProxy` sits between the SDK and the real server and drops the connection the moment the server
starts its reply, that is after the write has committed and before the client has read a byte of
the answer. The SDK sees UNAVAILABLE, retries through a new connection with the same request (and
key), and must get the first reply back: a fresh key would be answered "0 accepted, N duplicates"
(the outcomes are already stored), which the control at the end of each test shows.
"""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from civicscore_api.v1 import assignments_pb2, identities_pb2, measurements_pb2, outcomes_pb2
from civicscore_client import CivicscoreError, Client, FailedPrecondition, InvalidArgument, Unavailable
from tests.cutproxy import CutProxy
from tests.scenario import PERIOD, completed, load_quarter
from tests.serverproc import ServerProcess, timestamp

REPORTED = dt.datetime(2026, 10, 2, 9, 0, tzinfo=dt.UTC)
COUNT = 40
STP = f"periods/{PERIOD}/recommendations/STP~criticism"


def _outcomes() -> list[outcomes_pb2.Outcome]:
    return [
        outcomes_pb2.Outcome(
            outcome_id=f"R-{i}", assignment=f"assignments/RA-{i % 4}", status=outcomes_pb2.OUTCOME_STATUS_COMPLETED,
            completed_on="2026-08-10", quality=outcomes_pb2.QUALITY_ACCEPTED, reported_at=timestamp(REPORTED),
            reporting_system="hanoi-task-tracker", note=f"Hoàn thành đợt {i}")
        for i in range(COUNT)
    ]


@pytest.fixture
def ready(seeded_server: ServerProcess) -> ServerProcess:
    seeded_server.stubs().assignments.UpsertAssignments(assignments_pb2.UpsertAssignmentsRequest(assignments=[
        assignments_pb2.Assignment(assignment_id=f"RA-{i}", unit="units/SNV", title=f"Nhiệm vụ {i}",
                                   area=assignments_pb2.AREA_PAR, source_document="818/QĐ-UBND",
                                   assigned_on="2026-07-01", due_on="2026-08-15")
        for i in range(4)
    ]), timeout=30)
    return seeded_server


def _stored_outcome_ids(server: ServerProcess) -> list[str]:
    reply = server.stubs().outcomes.ListOutcomes(outcomes_pb2.ListOutcomesRequest(page_size=1000), timeout=10)
    return [o.outcome_id for o in reply.outcomes]


def test_proxy_cuts_after_the_commit_and_the_client_sees_unavailable(ready: ServerProcess) -> None:
    """Without retries the cut is visible, and the batch is nevertheless stored: the cut comes after the commit."""
    with CutProxy(ready.address) as proxy, Client(proxy.address, token=ready.token, max_attempts=1) as client:
        proxy.arm()
        with pytest.raises(Unavailable):
            client.submit_outcomes(_outcomes(), idempotency_key="cut-once")
        assert proxy.cuts == 1
    assert sorted(_stored_outcome_ids(ready)) == sorted(o.outcome_id for o in _outcomes())


def test_submission_retried_after_a_lost_reply_is_stored_once(ready: ServerProcess) -> None:
    with CutProxy(ready.address) as proxy, \
            Client(proxy.address, token=ready.token, initial_backoff=0.05) as client:
        proxy.arm()
        reply = client.submit_outcomes(_outcomes())
        assert (proxy.cuts, proxy.connections) == (1, 2), "the first reply was not cut, or no retry followed"
    # the first attempt's reply, replayed for the key it was sent with
    assert (reply.accepted, reply.duplicates) == (COUNT, 0)
    stored = _stored_outcome_ids(ready)
    assert len(stored) == COUNT and sorted(stored) == sorted(o.outcome_id for o in _outcomes())

    # Control: the same batch under a new key is answered as duplicates, so the reply above could only
    # have come from the key being reused.
    with ready.client() as client:
        again = client.submit_outcomes(_outcomes())
    assert (again.accepted, again.duplicates) == (0, COUNT)
    assert len(_stored_outcome_ids(ready)) == COUNT


def test_measurements_retried_after_a_lost_reply_are_stored_once(ready: ServerProcess) -> None:
    measurements = [
        measurements_pb2.Measurement(unit=f"units/{unit}", period="2026-Q3", indicator="dx.online_applications",
                                     numerator=80 + i, denominator=100, reported_at=timestamp(REPORTED),
                                     reporting_system="dvc")
        for i, unit in enumerate(("SNV", "STP", "SCT"))
    ]
    with CutProxy(ready.address) as proxy, \
            Client(proxy.address, token=ready.token, initial_backoff=0.05) as client:
        proxy.arm()
        reply = client.submit_measurements(measurements)
        assert (proxy.cuts, proxy.connections) == (1, 2)
    assert (reply.created, reply.updated, reply.unchanged) == (3, 0, 0)
    listed = ready.stubs().measurements.ListMeasurements(
        measurements_pb2.ListMeasurementsRequest(page_size=1000), timeout=10).measurements
    assert sorted((m.unit, m.numerator) for m in listed) == [("units/SCT", 82), ("units/SNV", 80), ("units/STP", 81)]
    with ready.client() as client:
        again = client.submit_measurements(measurements)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)


@pytest.fixture
def evaluated(seeded_server: ServerProcess) -> ServerProcess:
    """The 2026-Q3 scenario evaluated: STP has a criticism recommendation to review and contest."""
    load_quarter(seeded_server)
    with seeded_server.client() as admin:
        admin.evaluate_period(PERIOD)
    return seeded_server


def test_committee_decision_retried_after_a_lost_reply_is_recorded_once(evaluated: ServerProcess) -> None:
    """A deferral may follow a deferral, so a retry with a new key would record a second decision."""
    with CutProxy(evaluated.address) as proxy, \
            Client(proxy.address, token=evaluated.token, initial_backoff=0.05) as client:
        proxy.arm()
        reply = client.review_recommendation(STP, "defer", "Chờ đơn vị giải trình")
        assert (proxy.cuts, proxy.connections) == (1, 2)
    with evaluated.client() as admin:
        reviews = admin.list_recommendation_reviews(STP)
        assert [(r.review_id, r.reason) for r in reviews] == [(reply.review.review_id, "Chờ đơn vị giải trình")]
        # control: the same decision under a new key is a second deferral
        admin.review_recommendation(STP, "defer", "Chờ đơn vị giải trình")
        assert len(admin.list_recommendation_reviews(STP)) == 2


def test_contest_retried_after_a_lost_reply_is_recorded_once(evaluated: ServerProcess) -> None:
    corrections = [completed(f"STP-{i}", f"2026-07-{10 + i:02d}") for i in range(6, 8)]
    for outcome in corrections:
        outcome.outcome_id += "-fixed"
    with CutProxy(evaluated.address) as proxy, \
            Client(proxy.address, token=evaluated.token, initial_backoff=0.05) as client:
        proxy.arm()
        contest = client.contest_recommendation(STP, "Đã hoàn thành đúng hạn, xin xem lại", corrections)
        assert (proxy.cuts, proxy.connections) == (1, 2)
    # the first reply: the corrections were accepted by this contest, not found as duplicates of it
    assert (contest.accepted, contest.duplicates) == (2, 0)
    with evaluated.client() as admin:
        assert [c.name for c in admin.list_contests(PERIOD)] == [contest.name]


def test_a_review_key_reused_for_another_decision_is_refused(evaluated: ServerProcess) -> None:
    with evaluated.client() as admin:
        first = admin.review_recommendation(STP, "defer", "Chờ giải trình", idempotency_key="committee-2026-11-26-1")
        again = admin.review_recommendation(STP, "defer", "Chờ giải trình", idempotency_key="committee-2026-11-26-1")
        assert again.review == first.review and again.recommendation == first.recommendation
        with pytest.raises(CivicscoreError) as refused:
            admin.review_recommendation(STP, "approve", "Đồng ý", idempotency_key="committee-2026-11-26-1")
        assert refused.value.code == grpc.StatusCode.ALREADY_EXISTS and "committee-2026-11-26-1" in str(refused.value)
        assert len(admin.list_recommendation_reviews(STP)) == 1


def test_identity_writes_retried_after_a_lost_reply(seeded_server: ServerProcess) -> None:
    """CreateIdentity and RegisterCertificate answer a retry with the first reply. A token cannot be
    shown twice, so a retried IssueToken is refused naming the credential its lost reply held."""
    server = seeded_server
    with CutProxy(server.address) as proxy, Client(proxy.address, token=server.token, initial_backoff=0.05) as admin:
        proxy.arm()
        created = admin.create_identity("snv-tracker", "Hệ thống theo dõi nhiệm vụ Sở Nội vụ", roles=["reporter"],
                                        scope_units=["SNV"])
        assert created.identity_id == "snv-tracker" and created.display_name == "Hệ thống theo dõi nhiệm vụ Sở Nội vụ"
        proxy.arm()
        certificate = admin.register_certificate("snv-tracker", "CN=snv-tracker")
        proxy.arm()
        with pytest.raises(FailedPrecondition) as refused:
            admin.issue_token("snv-tracker")
        assert (proxy.cuts, proxy.connections) == (3, 4)
    with server.client() as admin:
        assert [i.identity_id for i in admin.list_identities() if i.identity_id == "snv-tracker"] == ["snv-tracker"]
        credentials = admin.list_credentials("snv-tracker")
        tokens = [c for c in credentials if c.kind == identities_pb2.CREDENTIAL_KIND_TOKEN]
        certificates = [c for c in credentials if c.kind == identities_pb2.CREDENTIAL_KIND_CERTIFICATE]
        assert [c.name for c in certificates] == [certificate.name]
        assert len(tokens) == 1  # the token of the lost reply: named, so it can be revoked
        assert refused.value.reason == "TOKEN_ALREADY_ISSUED" and tokens[0].name in refused.value.message
        admin.revoke_credential(tokens[0].name)
        assert admin.issue_token("snv-tracker").token.startswith("cs_")


def test_an_unusable_idempotency_key_is_refused_naming_the_field(evaluated: ServerProcess) -> None:
    key = "k" * 129
    with evaluated.client() as admin:
        calls = [
            lambda: admin.review_recommendation(STP, "defer", "Chờ giải trình", idempotency_key=key),
            lambda: admin.contest_recommendation(STP, "Xin xem lại", idempotency_key=key),
            lambda: admin.create_identity("bad-key", "Khóa sai", roles=["reader"], idempotency_key=key),
            lambda: admin.issue_token("bootstrap-admin", idempotency_key=key),
            lambda: admin.register_certificate("bootstrap-admin", "CN=bad-key", idempotency_key=key),
        ]
        for call in calls:
            with pytest.raises(InvalidArgument) as refused:
                call()
            assert [v.field for v in refused.value.violations] == ["idempotency_key"]
        assert len(admin.list_recommendation_reviews(STP)) == 0 and list(admin.list_contests(PERIOD)) == []
        assert len(admin.list_credentials("bootstrap-admin")) == 1
