"""Per-identity limits that hold across replicas: real server processes sharing one real Redis.

Every test has a key prefix of its own (`--redis-prefix`), so tests and deployments can share one
Redis. Tests that need Redis skip LOUDLY when it is unreachable, and fail instead under
CIVICSCORE_REQUIRE_SERVICES=1 (CI): see tests/services.py. Nothing here times a call: the rate is a
count of accepted calls over a window (within 10%), and everything else waits for a state with a
generous bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from civicscore.__main__ import main as server_main
from civicscore.limits import LimitsState, RedisLimitStore, SharedLimits, TrustedProxies, forwarded_client
from civicscore.ratelimit import ConcurrencyLimiter, RateLimiter
from civicscore_api.v1 import identities_pb2, identities_pb2_grpc, outcomes_pb2, outcomes_pb2_grpc
from tests.serverproc import ServerProcess
from tests.services import PrivateRedis, free_port, redis_prefix
from tests.waiting import eventually

pytestmark = pytest.mark.slow

IDENTITY = "bootstrap-admin"  # every replica's administrator (each replica has its own SQLite file here)
LIMITS_HEALTH = "civicscore.limits"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def start_replicas(workdir: Path, count: int, *flags: str) -> list[ServerProcess]:
    """`count` server processes started side by side, each with its own database, all with `flags`."""
    replicas = []
    for n in range(count):
        (workdir / f"replica-{n}").mkdir()
        replicas.append(ServerProcess(workdir / f"replica-{n}", extra_args=flags))
    with ThreadPoolExecutor(count) as pool:
        started = [pool.submit(replica.start) for replica in replicas]
    errors = [future.exception() for future in started if future.exception() is not None]
    if errors:
        stop_all(replicas)
        raise errors[0]  # type: ignore[misc]
    return replicas


def stop_all(replicas: list[ServerProcess]) -> None:
    for replica in replicas:
        replica.stop()


def whoami(server: ServerProcess, timeout: float = 30) -> grpc.StatusCode:
    """One WhoAmI call as the administrator; its status code."""
    try:
        identities_pb2_grpc.IdentityServiceStub(server.channel()).WhoAmI(identities_pb2.WhoAmIRequest(),
                                                                         timeout=timeout)
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        return code
    return grpc.StatusCode.OK


def limits_health(server: ServerProcess) -> int:
    stub = health_pb2_grpc.HealthStub(server.channel())
    status: int = stub.Check(health_pb2.HealthCheckRequest(service=LIMITS_HEALTH), timeout=10).status
    return status


def redis_flags(url: str, prefix: str, *more: str) -> tuple[str, ...]:
    """Options for a replica on that Redis. The timeout is generous: on a loaded test machine a Redis
    stalled for longer than the default would switch a replica to local limits for a few seconds,
    which is right in production but not what these tests count."""
    return ("--redis", url, "--redis-prefix", prefix, "--redis-timeout", "2", *more)


# ---- the scripts, against the real Redis --------------------------------------------------------


def test_the_bucket_in_redis_gives_the_burst_then_says_how_long_to_wait(shared_redis: tuple[str, str]) -> None:
    url, prefix = shared_redis
    store = RedisLimitStore(url, prefix=prefix, timeout_s=2)
    try:
        assert [store.take_token("a", 0.01, 3) for _ in range(3)] == [None] * 3
        wait = store.take_token("a", 0.01, 3)
        assert wait is not None and 99 < wait <= 100  # one token per 100 s
        assert store.take_token("a", 0.01, 3) is not None  # a refused call takes nothing, and gets nothing
        assert store.take_token("b", 0.01, 3) is None  # another identity, its own bucket
        other = RedisLimitStore(url, prefix=prefix + "other:", timeout_s=2)
        try:
            assert other.take_token("a", 0.01, 3) is None  # another prefix, another deployment
        finally:
            other.close()
        # An idle bucket expires when it would be full again (300 s), plus a second of margin.
        client = redis.Redis.from_url(url)
        assert 0 < client.pttl(f"{prefix}rate:a") <= 301_000
        client.close()
    finally:
        store.close()


def test_leases_in_redis_cap_the_calls_in_flight_and_expire(shared_redis: tuple[str, str]) -> None:
    url, prefix = shared_redis
    store = RedisLimitStore(url, prefix=prefix, timeout_s=2)
    try:
        assert store.take_lease("a", "r1:1", 2, 60) and store.take_lease("a", "r2:1", 2, 60)
        assert not store.take_lease("a", "r3:1", 2, 60)
        store.drop_lease("a", "r1:1")
        assert store.take_lease("a", "r3:1", 2, 60)
        # Leases of 1 s that nobody renews stop counting once they expire.
        assert store.take_lease("b", "dead:1", 1, 1.0) and not store.take_lease("b", "live:1", 1, 60)
        assert eventually(lambda: store.take_lease("b", "live:1", 1, 60), timeout_s=30)
        # A renewal pushes a live lease's expiry and never brings back one that is gone.
        assert store.renew_leases([("a", "r2:1"), ("a", "gone:1")], 60) == 1
        assert {member for member, _ in leases(url, f"{prefix}leases:a")} == {b"r2:1", b"r3:1"}
    finally:
        store.close()


def test_without_redis_the_limits_fall_back_to_local_ones_and_say_so_once(tmp_path: Path) -> None:
    changes: list[LimitsState] = []
    limits = SharedLimits(RateLimiter(0.01, 2), ConcurrencyLimiter(1),
                          RedisLimitStore(f"redis://127.0.0.1:{free_port()}/0", prefix="unused:", timeout_s=0.5),
                          retry_s=60, on_change=changes.append)
    limits.start()
    try:
        assert limits.state is LimitsState.FALLBACK and changes == [LimitsState.FALLBACK]
        assert [limits.try_acquire("a") is None for _ in range(3)] == [True, True, False]
        slot = limits.enter("a")
        assert slot is not None and limits.enter("a") is None
        slot.release()
        assert limits.enter("a") is not None
        assert changes == [LimitsState.FALLBACK]
    finally:
        limits.close()


# ---- across replicas ----------------------------------------------------------------------------

RATE = 20.0
WARMUP_S = 2.0  # flooding before the count starts: the burst is spent, every replica is busy
WINDOW_S = 8.0
THREADS = 6


def test_one_identity_calling_three_replicas_gets_its_rate_in_total(
    tmp_path: Path, shared_redis: tuple[str, str]
) -> None:
    """Six threads call three replicas round robin as fast as the replicas let them: the accepted calls
    over a window add up to the configured rate (within 10%), not three times it."""
    url, prefix = shared_redis
    replicas = start_replicas(tmp_path, 3, *redis_flags(url, prefix), "--rate-limit", str(RATE),
                              "--rate-burst", "4", "--rate-limit-hold", "0.5")
    try:
        assert all(limits_health(replica) == SERVING for replica in replicas)
        accepted: list[float] = []
        refused = [0]
        lock = threading.Lock()
        start = time.monotonic()
        end = start + WARMUP_S + WINDOW_S

        def flood(thread: int) -> None:
            n = thread
            while time.monotonic() < end:
                code = whoami(replicas[n % 3])
                n += 1
                with lock:
                    if code == grpc.StatusCode.OK:
                        accepted.append(time.monotonic())
                    elif code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        refused[0] += 1
                    else:
                        raise AssertionError(f"unexpected {code}")

        with ThreadPoolExecutor(THREADS) as pool:
            for future in [pool.submit(flood, n) for n in range(THREADS)]:
                future.result()
        in_window = sum(start + WARMUP_S <= at < end for at in accepted)
        expected = RATE * WINDOW_S
        print(f"accepted {in_window} calls in {WINDOW_S:.0f} s across 3 replicas: {in_window / WINDOW_S:.2f}/s "
              f"for a configured {RATE}/s ({refused[0]} refused)")
        assert refused[0] > 0  # the replicas were asked for more than the rate
        fallbacks = sum(replica.log().count("FALLING BACK") for replica in replicas)
        assert abs(in_window - expected) <= 0.1 * expected, (in_window, expected, refused[0], fallbacks)
    finally:
        stop_all(replicas)


class LongCall:
    """A StreamOutcomes call whose client sends nothing until it is ended: the server's handler waits for
    the stream, holding one of the identity's in-flight slots all along."""

    def __init__(self, server: ServerProcess) -> None:
        self._end = threading.Event()
        stub = outcomes_pb2_grpc.OutcomeServiceStub(server.channel())
        self.call: Any = stub.StreamOutcomes.future(self._nothing_until_ended(), timeout=300)

    def _nothing_until_ended(self) -> Iterator[outcomes_pb2.StreamOutcomesRequest]:
        self._end.wait(300)
        yield from ()

    def state(self) -> str:
        return f"ended with {self.call.code()}: {self.call.details()}" if self.call.done() else "running"

    def end(self) -> None:
        self._end.set()
        self.call.cancel()


def leases(url: str, key: str) -> list[tuple[bytes, float]]:
    """The leases in `key`: (lease id, expiry in ms of Redis time)."""
    client = redis.Redis.from_url(url)
    try:
        found: list[tuple[bytes, float]] = cast(Any, client.zrange(key, 0, -1, withscores=True))
        return found
    finally:
        client.close()


def redis_now_ms(url: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        seconds, micros = client.time()
        return seconds * 1000 + micros // 1000
    finally:
        client.close()


def live_leases(url: str, prefix: str) -> list[tuple[bytes, float]]:
    """The administrator's leases that have not expired."""
    now_ms = redis_now_ms(url)
    return [(member, expiry) for member, expiry in leases(url, f"{prefix}leases:{IDENTITY}") if expiry > now_ms]


def test_calls_in_flight_count_across_replicas_and_a_killed_replicas_stop_counting_after_the_lease_ttl(
    tmp_path: Path, shared_redis: tuple[str, str]
) -> None:
    """Two calls running on A are the identity's two allowed: B refuses a third, also after several
    lease lifetimes (A renews its leases). A is killed with SIGKILL: its leases expire at most the
    lease TTL after its last renewal, and then B admits calls again."""
    url, prefix = shared_redis
    ttl_s = 4  # short for the test, long enough for a loaded machine's stalls (renewed every 1.3 s)
    a, b = start_replicas(tmp_path, 2, *redis_flags(url, prefix), "--max-in-flight", "2",
                          "--redis-lease-ttl", str(ttl_s))
    calls: list[LongCall] = []
    try:
        calls = [LongCall(a) for _ in range(2)]
        assert eventually(lambda: len(live_leases(url, prefix)) == 2, timeout_s=60), (
            live_leases(url, prefix), [call.state() for call in calls], a.log()[-3000:])
        assert whoami(b) == grpc.StatusCode.RESOURCE_EXHAUSTED
        time.sleep(2.5 * ttl_s)  # lease lifetimes: the running calls' leases are renewed
        assert len(live_leases(url, prefix)) == 2
        assert whoami(b) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "calls in flight (from ipv4:127.0.0.1)" in eventually_in_log(b, "calls in flight")

        a.kill()
        killed_at_ms = redis_now_ms(url)
        expiries = [score for _, score in live_leases(url, prefix)]
        assert all(expiry <= killed_at_ms + ttl_s * 1000 for expiry in expiries), (expiries, killed_at_ms)
        assert eventually(lambda: whoami(b) == grpc.StatusCode.OK, timeout_s=ttl_s + 30)
        assert live_leases(url, prefix) == []
    finally:
        for call in calls:
            call.end()
        stop_all([a, b])


def eventually_in_log(server: ServerProcess, text: str) -> str:
    """The first line of `server`'s log that contains `text` (waiting for it: refusals are logged off the
    request path)."""
    assert eventually(lambda: text in server.log(), timeout_s=30), server.log()[-3000:]
    return next(line for line in server.log().splitlines() if text in line)


# ---- Redis unreachable, stopped and back ----------------------------------------------------------


def test_a_replica_that_cannot_reach_redis_serves_with_local_limits_and_reports_it(tmp_path: Path) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    server = ServerProcess(tmp_path, extra_args=("--redis", closed, "--rate-limit", "0.01", "--rate-burst", "3",
                                                 "--rate-limit-hold", "0")).start()
    try:
        assert [whoami(server) for _ in range(4)] == [grpc.StatusCode.OK] * 3 + [grpc.StatusCode.RESOURCE_EXHAUSTED]
        assert limits_health(server) == NOT_SERVING
        stub = health_pb2_grpc.HealthStub(server.channel())
        assert stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status == SERVING  # the server itself
        assert "STARTING WITH this replica's own limits" in eventually_in_log(server, "is unreachable")
    finally:
        server.stop()


def test_redis_stopped_and_back_local_limits_meanwhile_then_shared_again(tmp_path: Path) -> None:
    """A token every 100 s and a burst of 5, two replicas: through Redis they admit 5 calls in all; with
    Redis stopped each admits its own 5 (and reports the fallback once); with Redis back, 5 in all again."""
    with PrivateRedis(tmp_path) as private:
        a, b = start_replicas(tmp_path, 2, *redis_flags(private.url, redis_prefix(), "--redis-retry", "1"),
                              "--rate-limit", "0.01", "--rate-burst", "5", "--rate-limit-hold", "0")
        try:
            replicas = (a, b)
            assert [limits_health(r) for r in replicas] == [SERVING, SERVING]
            codes = [whoami(replicas[n % 2]) for n in range(8)]
            assert codes.count(grpc.StatusCode.OK) == 5, codes  # one bucket for both

            private.stop()
            for replica in replicas:  # each replica: its own local bucket, full
                codes = [whoami(replica) for _ in range(7)]
                assert codes == [grpc.StatusCode.OK] * 5 + [grpc.StatusCode.RESOURCE_EXHAUSTED] * 2, codes
                assert limits_health(replica) == NOT_SERVING
            for replica in replicas:
                assert "FALLING BACK to this replica's own limits" in eventually_in_log(replica, "FALLING BACK")
                assert replica.log().count("FALLING BACK") == 1  # once per switch, not once per call

            private.start()  # empty: Redis kept nothing
            assert eventually(lambda: all(limits_health(r) == SERVING for r in replicas), timeout_s=30)
            codes = [whoami(replicas[n % 2]) for n in range(8)]
            assert codes.count(grpc.StatusCode.OK) == 5, codes
            for replica in replicas:
                assert replica.log().count("is back: per-identity limits are shared") == 1
        finally:
            stop_all([a, b])


# ---- options --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("flags", "message"), [
    (("--redis", "http://127.0.0.1:6379"), "--redis http://127.0.0.1:6379 is not a Redis URL"),
    (("--redis", "redis://:secret@127.0.0.1:1/0", "--redis-timeout", "0"), "--redis-timeout must be greater than 0"),
    (("--redis", "ftp://:secret@host/0"), "--redis ftp://:***@host/0 is not a Redis URL"),
    (("--redis-lease-ttl", "0.5"), "--redis-lease-ttl must be at least 1 second"),
    (("--trusted-proxy", "nginx"), "--trusted-proxy 'nginx' is not an IP address or network"),
])
def test_a_limits_option_out_of_range_stops_the_server_naming_it(
    flags: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        server_main(["--database", "sqlite:///unused.db", *flags])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "secret" not in err


# ---- the client's address behind a trusted proxy, in refusal logs ---------------------------------


def test_forwarded_client_is_believed_only_from_a_trusted_proxy() -> None:
    trusted = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    forwarded = [("x-forwarded-for", "198.51.100.9, 203.0.113.7, 10.1.2.3")]
    assert forwarded_client("ipv4:127.0.0.1:5000", forwarded, trusted) == "203.0.113.7"  # rightmost untrusted
    assert forwarded_client("ipv4:192.0.2.1:5000", forwarded, trusted) is None  # an untrusted peer: ignored
    assert forwarded_client("ipv4:127.0.0.1:5000", [], trusted) is None
    assert forwarded_client("ipv4:127.0.0.1:5000", forwarded, TrustedProxies()) is None
    assert forwarded_client("ipv6:[::1]:5000", forwarded, TrustedProxies(["::1"])) == "10.1.2.3"


def test_a_limit_refusal_names_the_client_a_trusted_proxy_forwarded(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, extra_args=("--trusted-proxy", "127.0.0.1", "--rate-limit", "0.01",
                                                 "--rate-burst", "1", "--rate-limit-hold", "0")).start()
    try:
        stub = identities_pb2_grpc.IdentityServiceStub(server.channel())
        metadata = [("x-forwarded-for", "203.0.113.7")]
        stub.WhoAmI(identities_pb2.WhoAmIRequest(), metadata=metadata, timeout=30)
        with pytest.raises(grpc.RpcError) as refused:
            stub.WhoAmI(identities_pb2.WhoAmIRequest(), metadata=metadata, timeout=30)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        line = eventually_in_log(server, "rate limit (from")
        assert f"for {IDENTITY}: rate limit (from 203.0.113.7 via ipv4:127.0.0.1)" in line
    finally:
        server.stop()
