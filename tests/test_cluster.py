"""Three replicas on one PostgreSQL database behind Debian's nginx (grpc_pass), as `make cluster` runs them.

Which replica answered each call is read from nginx's access log (the upstream it used), so the
server needs no test-only code to tell. Without nginx or PostgreSQL these tests are skipped loudly;
under CIVICSCORE_REQUIRE_SERVICES=1 (CI) they fail instead (tests/services.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2  # noqa: F401  (registers the detail types json_format unpacks)
from grpc_status import rpc_status

from civicscore.cluster.nginx import render_config
from civicscore_api.v1 import outcomes_pb2, outcomes_pb2_grpc, units_pb2
from civicscore_client import Client, Unavailable
from tests.cluster import Cluster, running_cluster
from tests.scenario import assignment, completed
from tests.serverproc import hanoi_units
from tests.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

WRITERS = 3
STEPS = 12  # per writer: one assignment batch, then one outcome batch for it
BATCH = 5


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with running_cluster(tmp_path, replicas=3) as running:
        running.stubs().units.UpsertUnits(units_pb2.UpsertUnitsRequest(units=hanoi_units()), timeout=60)
        yield running


def test_nginx_config_retries_only_calls_no_replica_received(tmp_path: Path) -> None:
    """The generated config never lets nginx resend a call a replica may have received, and does not cut long calls."""
    written = render_config(listen="127.0.0.1:1", upstreams=["127.0.0.1:2", "127.0.0.1:3"], folder=tmp_path)
    config = "\n".join(line.split("#", 1)[0] for line in written.splitlines())  # directives, not comments
    assert "grpc_next_upstream error timeout;" in config
    assert "non_idempotent" not in config  # gRPC calls are POSTs: nginx resends them only when told this
    assert "grpc_read_timeout 3600s;" in config and "grpc_send_timeout 3600s;" in config
    assert "grpc_buffer_size 64k;" in config  # a refusal's field violations travel in its response headers
    assert "server 127.0.0.1:2 max_fails=1" in config and "server 127.0.0.1:3 max_fails=1" in config
    # ...and again as backups never left out, tried when nginx holds every replica failed
    assert "server 127.0.0.1:2 backup max_fails=0;" in config and "server 127.0.0.1:3 backup max_fails=0;" in config
    assert "grpc_next_upstream_tries 4;" in config
    assert "listen 127.0.0.1:1 http2;" in config


def test_calls_through_nginx_are_spread_over_the_replicas_and_see_one_database(cluster: Cluster) -> None:
    seen = len(cluster.calls())
    with cluster.client(max_attempts=1) as client:
        for _ in range(12):
            assert client.get_active_ruleset().version
    answered = cluster.answers(cluster.logged_calls(12, after=seen))
    assert set(answered) == {0, 1, 2}, f"every replica should have answered some calls: {answered}"
    with cluster.client(max_attempts=1) as client:
        units = sorted(unit.code for unit in client.list_units())
    assert len(units) == 141
    for index, replica in enumerate(cluster.replicas):  # the same token and data on each, asked directly
        with replica.client() as direct:
            assert sorted(unit.code for unit in direct.list_units()) == units, f"replica {index}"


def test_a_rich_error_crosses_nginx_unchanged(cluster: Cluster) -> None:
    """Field violations travel in the response headers (several KiB): nginx passes them on whole."""
    bad = [outcomes_pb2.Outcome(outcome_id=f"bad-{i}", assignment="assignments/NOPE") for i in range(300)]
    request = outcomes_pb2.SubmitOutcomesRequest(outcomes=bad, idempotency_key="rich-error")

    def refusal(channel: grpc.Channel) -> tuple[grpc.StatusCode, dict[str, Any], int]:
        with pytest.raises(grpc.RpcError) as refused:
            outcomes_pb2_grpc.OutcomeServiceStub(channel).SubmitOutcomes(request, timeout=60)
        status = rpc_status.from_call(refused.value)  # type: ignore[arg-type]
        assert status is not None, f"no rich status: {refused.value!r}"
        # Compared as data: a map's entries (ErrorInfo.metadata) may be serialised in any order.
        return refused.value.code(), json_format.MessageToDict(status), status.ByteSize()  # type: ignore[attr-defined]

    code, details, size = refusal(cluster.channel())
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert size > 4096  # larger than nginx's default buffer for response headers
    assert (code, details, size) == refusal(cluster.replicas[0].channel())


def test_kill_9_of_a_replica_during_writes_loses_no_acknowledged_write_and_duplicates_none(cluster: Cluster) -> None:
    """Each writer's first outcome batch is held in flight in the database, one on each replica (nginx hands
    consecutive calls to consecutive replicas); replica 1 is killed with its call in flight, then the writers
    go on through nginx: every acknowledged write is stored once, on every replica's view of the database."""
    with cluster.client() as client:  # the first step's assignments, so that step is a lone outcome batch
        client.upsert_assignments([assignment(f"W{writer}-0-{item}", "SNV", "2026-08-20")
                                   for writer in range(WRITERS) for item in range(BATCH)])
    acknowledged: list[tuple[str, outcomes_pb2.SubmitOutcomesResponse]] = []  # (step, reply)
    failures: list[BaseException] = []
    lock = threading.Lock()

    def write(writer: int) -> None:
        # The SDK retries UNAVAILABLE (a call cut by the kill) with the same idempotency key.
        with cluster.client(max_attempts=10, initial_backoff=0.1, max_backoff=1.0, timeout=120) as client:
            try:
                for step in range(STEPS):
                    name = f"W{writer}-{step}"
                    ids = [f"{name}-{item}" for item in range(BATCH)]
                    if step > 0:
                        client.upsert_assignments([assignment(aid, "SNV", "2026-08-20") for aid in ids],
                                                  idempotency_key=f"{name}-assignments")
                    reply = client.submit_outcomes([completed(aid, "2026-08-10") for aid in ids],
                                                   idempotency_key=f"{name}-outcomes")
                    with lock:
                        acknowledged.append((name, reply))
            except BaseException as error:
                failures.append(error)

    writers = [threading.Thread(target=write, args=(number,)) for number in range(WRITERS)]
    seen = len(cluster.calls())
    try:
        with cluster.writes_held("outcomes"):
            for thread in writers:
                thread.start()
            assert eventually(lambda: cluster.waiting_in_database() >= WRITERS or bool(failures), timeout_s=60)
            cluster.kill(1)
    finally:
        for thread in writers:
            thread.join(300)
    assert not failures, f"a write failed through nginx: {failures!r}"
    assert len(acknowledged) == WRITERS * STEPS
    # A retried write gets its own first reply: stored now, or replayed if it had been stored before the cut.
    assert all(reply.accepted == BATCH and reply.duplicates == 0 for _, reply in acknowledged)
    cut = [entry for entry in cluster.calls()[seen:] if entry.tried == (cluster.replica_address(1),)
           and entry.upstream_statuses == ("502",)]
    assert [entry.method for entry in cut] == ["/civicscore.v1.OutcomeService/SubmitOutcomes"]

    expected = sorted(f"W{writer}-{step}-{item}-done"
                      for writer in range(WRITERS) for step in range(STEPS) for item in range(BATCH))
    cluster.restart(1)
    for index, replica in enumerate(cluster.replicas):  # every replica, the restarted one too, reads one truth
        with replica.client() as direct:
            stored = sorted(o.outcome_id for o in direct.list_outcomes(unit="SNV") if o.outcome_id.startswith("W"))
        assert stored == expected, f"replica {index}: lost {sorted(set(expected) - set(stored))}, " \
                                   f"{len(stored) - len(set(stored))} duplicated"


def test_sigterm_of_an_idle_replica_nginx_routes_around_it_until_it_is_back(cluster: Cluster) -> None:
    assert cluster.terminate(2) == 0
    seen = len(cluster.calls())
    with cluster.client(max_attempts=1) as client:  # no client retries: nginx alone must route around it
        for _ in range(20):
            assert client.get_active_ruleset().version
    after = cluster.logged_calls(20, after=seen)
    assert all(entry.answered_by for entry in after)
    assert {cluster.index_of(entry.answered_by) for entry in after} == {0, 1}

    cluster.restart(2)
    with cluster.client(max_attempts=1) as client:

        def replica_2_answers() -> bool:
            mark = len(cluster.calls())
            client.get_active_ruleset()
            return 2 in cluster.answers(cluster.calls()[mark:])

        # nginx leaves a replica whose connection failed out for fail_timeout, then tries it again.
        assert eventually(replica_2_answers, timeout_s=60, interval_s=0.2)


def test_nginx_stopped_and_started_again_serves_the_same_cluster(cluster: Cluster) -> None:
    with cluster.client(max_attempts=1) as client:
        before = client.get_active_ruleset().digest
    cluster.stop_nginx()
    with Client(cluster.address, token=cluster.token, max_attempts=1, timeout=5) as client, \
            pytest.raises(Unavailable):
        client.get_active_ruleset()
    cluster.start_nginx()
    with cluster.client(max_attempts=1) as client:
        assert client.get_active_ruleset().digest == before
