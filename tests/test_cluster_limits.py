"""One identity, one rate, through nginx: three real replicas on one PostgreSQL share a bucket in Redis.

The limits' own tests (tests/test_redis_limits.py) call replicas directly; here every limited call goes
through Debian's nginx (grpc_pass, round robin per call), as a client of a deployment would, and
nginx's access log says which replica answered each call and with which gRPC status. Nothing times a
call: the rate is a count of accepted calls against burst + rate x the measured flooding time (within
10%, the acceptance criterion), and everything else counts calls or waits for a state with a generous
bound. Without PostgreSQL, Redis or nginx these tests are skipped loudly (failed under
CIVICSCORE_REQUIRE_SERVICES=1): see tests/services.py.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from civicscore.cluster.nginx import AccessEntry
from civicscore_api.v1 import identities_pb2, identities_pb2_grpc
from tests.cluster import Cluster, running_cluster
from tests.serverproc import BearerToken, ServerProcess
from tests.services import PrivateRedis, redis_prefix
from tests.waiting import eventually

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

REPLICAS = 3
WHOAMI = "/civicscore.v1.IdentityService/WhoAmI"
LIMITS_HEALTH = "civicscore.limits"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
OK, REFUSED = grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED
GRPC_OK, GRPC_REFUSED = "0", "8"  # as nginx logs the replica's grpc-status
RATE_REFUSAL = "is over its rate limit"


def redis_flags(url: str, prefix: str, *more: str) -> tuple[str, ...]:
    """A replica on that Redis. The command timeout is generous: on a loaded machine a Redis stalled past
    the default (0.25 s) would switch a replica to local limits for a while, right in production but not
    what these tests count."""
    return ("--redis", url, "--redis-prefix", prefix, "--redis-timeout", "2", *more)


def reader_token(cluster: Cluster, identity_id: str) -> str:
    """A bearer token of a new identity with the reader role (not the administrator), made through nginx."""
    with cluster.client(max_attempts=1) as admin:
        admin.create_identity(identity_id, f"Cổng thử nghiệm {identity_id}", roles=["reader"], timeout=60)
        token: str = admin.issue_token(identity_id, valid_days=1, timeout=60).token
        return token


def nginx_channel(cluster: Cluster, token: str) -> grpc.Channel:
    """A channel to nginx on a TCP connection of its own whose calls carry `token` (close it when done)."""
    raw = grpc.insecure_channel(cluster.address, options=[("grpc.use_local_subchannel_pool", 1)])
    return grpc.intercept_channel(raw, BearerToken(token))


def whoami(channel: grpc.Channel) -> tuple[grpc.StatusCode, str]:
    """One WhoAmI call: its status code and, for a refusal, its message."""
    try:
        identities_pb2_grpc.IdentityServiceStub(channel).WhoAmI(identities_pb2.WhoAmIRequest(), timeout=60)
    except grpc.RpcError as error:
        return error.code(), error.details() or ""
    return OK, ""


def whoami_calls(cluster: Cluster, token: str, count: int) -> list[grpc.StatusCode]:
    """`count` WhoAmI calls one after another through nginx; their status codes (refusals must be the rate's)."""
    channel = nginx_channel(cluster, token)
    try:
        replies = [whoami(channel) for _ in range(count)]
    finally:
        channel.close()
    assert all(code is OK or (code is REFUSED and RATE_REFUSAL in details) for code, details in replies), replies
    return [code for code, _ in replies]


def whoami_answers(cluster: Cluster, count: int, *, after: int) -> dict[int, Counter[str]]:
    """Per replica, the gRPC statuses of the `count` WhoAmI calls nginx logged after its first `after` calls
    (waiting for their lines: nginx writes one just after the call's last byte, and other calls, health
    checks say, are logged among them)."""
    def logged() -> list[AccessEntry]:
        return [entry for entry in cluster.calls()[after:] if entry.method == WHOAMI]

    assert eventually(lambda: len(logged()) >= count, timeout_s=30), f"nginx logged {len(logged())} of {count}"
    entries = logged()
    assert len(entries) == count, entries
    return by_replica(cluster, entries)


def by_replica(cluster: Cluster, entries: Sequence[AccessEntry]) -> dict[int, Counter[str]]:
    answered: dict[int, Counter[str]] = {index: Counter() for index in range(len(cluster.replicas))}
    for entry in entries:
        assert entry.answered_by, f"no replica answered {entry}"
        answered[cluster.index_of(entry.answered_by)][entry.grpc_status] += 1
    return answered


def limits_health(replica: ServerProcess) -> int:
    """The replica's own report, asked directly (not through nginx): where its limits are kept."""
    stub = health_pb2_grpc.HealthStub(replica.channel())
    status: int = stub.Check(health_pb2.HealthCheckRequest(service=LIMITS_HEALTH), timeout=30).status
    return status


def server_health(replica: ServerProcess) -> int:
    stub = health_pb2_grpc.HealthStub(replica.channel())
    status: int = stub.Check(health_pb2.HealthCheckRequest(), timeout=30).status
    return status


def metrics_address(replica: ServerProcess) -> str:
    """Where the replica serves its metrics (each was asked for port 0), from its log."""
    pattern = re.compile(r"metrics served on http://(\S+)/metrics")
    assert eventually(lambda: pattern.search(replica.log()) is not None, timeout_s=30), replica.log()[-2000:]
    found = pattern.search(replica.log())
    assert found is not None
    return found.group(1)


def limits_metrics(replica: ServerProcess) -> dict[str, float]:
    """The replica's civicscore_limits_* samples (unlabelled), scraped from its endpoint."""
    with urllib.request.urlopen(f"http://{metrics_address(replica)}/metrics", timeout=30) as reply:
        text = reply.read().decode()
    return {sample.name: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name.startswith("civicscore_limits_") and not sample.labels}


def log_count(replica: ServerProcess, text: str, count: int) -> bool:
    """Whether `text` is in the replica's log exactly `count` times (waiting for it: logs are written as it runs)."""
    return eventually(lambda: replica.log().count(text) >= count, timeout_s=30) and replica.log().count(text) == count


# ---- one identity, one rate -----------------------------------------------------------------------

RATE = 10.0  # per second: far below what three replicas answer even on a loaded machine
BURST = 20  # two seconds of the rate: a stall of the flooding client shorter than that loses no token
FLOOD_S = 10.0
THREADS = 6  # calls in flight at once, below --max-in-flight: every refusal is the rate's
TOLERANCE = 0.10


@dataclass
class Flood:
    """What the flooding threads saw."""

    codes: Counter[grpc.StatusCode] = field(default_factory=Counter)
    strange: list[tuple[grpc.StatusCode, str]] = field(default_factory=list)  # neither OK nor a rate refusal
    first_sent: float = float("inf")
    last_sent: float = float("-inf")


def flood(cluster: Cluster, token: str, seconds: float) -> Flood:
    """THREADS threads call WhoAmI through nginx, each on its own connection, one call after another for
    `seconds` (a refusal comes back once it has been held). The connections are opened first (health checks
    are not limited), so the span starts with the first limited call, not with a TCP handshake."""
    channels = [nginx_channel(cluster, token) for _ in range(THREADS)]
    seen = Flood()
    lock = threading.Lock()
    ready = threading.Barrier(THREADS)

    def run(channel: grpc.Channel) -> None:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=60)
        ready.wait(60)
        first, last, stop_at = time.monotonic(), float("-inf"), time.monotonic() + seconds
        while (sent := time.monotonic()) < stop_at:
            code, details = whoami(channel)
            last = sent
            with lock:
                seen.codes[code] += 1
                if not (code is OK or (code is REFUSED and RATE_REFUSAL in details)):
                    seen.strange.append((code, details))
        with lock:
            seen.first_sent, seen.last_sent = min(seen.first_sent, first), max(seen.last_sent, last)

    try:
        with ThreadPoolExecutor(THREADS, thread_name_prefix="flood") as pool:
            for running in [pool.submit(run, channel) for channel in channels]:
                running.result()  # a thread's error (a health check that failed, say) fails the test here
    finally:
        for channel in channels:
            channel.close()
    return seen


def test_one_identity_flooding_through_nginx_gets_its_rate_in_total_not_once_per_replica(
    tmp_path: Path, shared_redis: tuple[str, str]
) -> None:
    """A reader floods WhoAmI through nginx, which spreads the calls over three replicas: the calls accepted
    add up to one bucket's worth, burst + rate x the time flooded (within 10%), though every replica
    refused calls. Three buckets, one per replica, would have accepted about three times it."""
    url, prefix = shared_redis
    flags = redis_flags(url, prefix, "--rate-limit", str(RATE), "--rate-burst", str(BURST),
                        # refusals held until about when a token is due: the flood keeps asking right at the
                        # rate instead of spinning two cores; in-flight room for every thread, and for the
                        # moment between a reply and its lease given back
                        "--rate-limit-hold", "0.5", "--max-in-flight", str(4 * THREADS))
    with running_cluster(tmp_path, replicas=REPLICAS, extra_args=flags) as cluster:
        assert [limits_health(replica) for replica in cluster.replicas] == [SERVING] * REPLICAS
        token = reader_token(cluster, "flood-portal")
        seen_before = len(cluster.calls())

        seen = flood(cluster, token, FLOOD_S)

        accepted, refused = seen.codes[OK], seen.codes[REFUSED]
        elapsed = seen.last_sent - seen.first_sent  # accepted calls were all sent within this span
        expected = BURST + RATE * elapsed  # one bucket: full at the first call, then refilled at the rate
        one_bucket_each = REPLICAS * expected  # each replica would admit a bucket's worth of its third of the flood
        assert one_bucket_each * (1 - TOLERANCE) > expected * (1 + TOLERANCE)  # so the bound tells them apart
        answers = whoami_answers(cluster, accepted + refused, after=seen_before)
        fallbacks = sum(replica.log().count("FALLING BACK") for replica in cluster.replicas)
        report = (f"{accepted} accepted, {refused} refused in {elapsed:.2f} s through nginx; one shared bucket "
                  f"allows {expected:.1f} (±{TOLERANCE:.0%}), one per replica {one_bucket_each:.0f}; per replica "
                  f"{ {index: dict(statuses) for index, statuses in answers.items()} }; fallbacks logged: {fallbacks}")
        print(report)
        assert not seen.strange, (seen.strange[:5], report)
        # Every replica refused calls: each was limiting the identity. A replica with a bucket of its own refuses
        # only once it has admitted its burst and then the rate, so three of them would have admitted ~3x...
        assert all(statuses[GRPC_REFUSED] > 0 for statuses in answers.values()), report
        assert sum(statuses[GRPC_OK] for statuses in answers.values()) == accepted, report
        # ...but together they admitted one identity's rate (which replica got each token is up to timing).
        assert abs(accepted - expected) <= TOLERANCE * expected, report
        assert fallbacks == 0, report


# ---- Redis stopped and back, through nginx --------------------------------------------------------

TRICKLE_RATE = 0.01  # a token every 100 s: in this test a bucket gives its burst and then refuses
TRICKLE_BURST = 5
CALLS_PER_REPLICA = 8  # more than a burst: every replica both admits and refuses


def test_with_redis_stopped_every_replica_serves_with_its_own_limits_reports_it_and_shares_again_after(
    tmp_path: Path
) -> None:
    """A private Redis behind three replicas, a burst of 5 per identity and almost no refill. Through nginx:
    with Redis up the reader gets 5 calls in all; with Redis stopped the calls keep being answered, each
    replica admits its own 5 and refuses the rest, and each reports the fallback (health, metrics, log
    once); with Redis started again (empty) each reports shared limits and the reader gets 5 in all again,
    though every replica's own bucket is empty by then."""
    with PrivateRedis(tmp_path) as private:
        flags = redis_flags(private.url, redis_prefix(), "--redis-retry", "1", "--rate-limit", str(TRICKLE_RATE),
                            "--rate-burst", str(TRICKLE_BURST), "--rate-limit-hold", "0",
                            "--metrics-listen", "127.0.0.1:0")
        with running_cluster(tmp_path, replicas=REPLICAS, extra_args=flags) as cluster:
            replicas = cluster.replicas
            assert [limits_health(replica) for replica in replicas] == [SERVING] * REPLICAS
            for index, replica in enumerate(replicas):
                samples = limits_metrics(replica)
                assert samples["civicscore_limits_shared"] == 1, (index, samples)
                assert samples["civicscore_limits_redis_fallback"] == 0, (index, samples)
            token = reader_token(cluster, "outage-portal")

            # Redis up: one bucket for the three replicas.
            seen = len(cluster.calls())
            codes = whoami_calls(cluster, token, REPLICAS * CALLS_PER_REPLICA)
            assert codes.count(OK) == TRICKLE_BURST, codes
            answers = whoami_answers(cluster, len(codes), after=seen)
            assert all(sum(statuses.values()) > 0 for statuses in answers.values()), answers

            private.stop()
            # Redis stopped: every call is still answered (no UNAVAILABLE, no error), and each replica applies
            # its own limits: its own full bucket of 5, then refusals.
            seen = len(cluster.calls())
            codes = whoami_calls(cluster, token, REPLICAS * CALLS_PER_REPLICA)
            answers = whoami_answers(cluster, len(codes), after=seen)
            assert all(sum(statuses.values()) > TRICKLE_BURST for statuses in answers.values()), answers
            assert {index: statuses[GRPC_OK] for index, statuses in answers.items()} == dict.fromkeys(
                range(REPLICAS), TRICKLE_BURST), answers
            assert codes.count(OK) == REPLICAS * TRICKLE_BURST, codes
            for index, replica in enumerate(replicas):  # each says so, and keeps serving
                assert limits_health(replica) == NOT_SERVING, index
                assert server_health(replica) == SERVING, index
                samples = limits_metrics(replica)
                assert samples["civicscore_limits_redis_fallback"] == 1, (index, samples)
                assert samples["civicscore_limits_shared"] == 0, (index, samples)
                assert samples["civicscore_limits_redis_errors_total"] >= 1, (index, samples)
                assert log_count(replica, "FALLING BACK to this replica's own limits", 1), replica.log()[-3000:]

            private.start()  # on the same port, empty: Redis kept nothing
            assert eventually(lambda: all(limits_health(replica) == SERVING for replica in replicas), timeout_s=60), (
                [limits_health(replica) for replica in replicas])
            for index, replica in enumerate(replicas):
                samples = limits_metrics(replica)
                assert samples["civicscore_limits_shared"] == 1, (index, samples)
                assert samples["civicscore_limits_redis_fallback"] == 0, (index, samples)
                assert log_count(replica, "is back: per-identity limits are shared", 1), replica.log()[-3000:]
                assert replica.log().count("FALLING BACK") == 1, index  # once per switch, not once per call

            # Shared again: one fresh bucket in Redis for the three replicas (their own buckets are empty).
            seen = len(cluster.calls())
            codes = whoami_calls(cluster, token, REPLICAS * CALLS_PER_REPLICA)
            assert codes.count(OK) == TRICKLE_BURST, codes
            answers = whoami_answers(cluster, len(codes), after=seen)
            assert all(sum(statuses.values()) > 0 for statuses in answers.values()), answers
