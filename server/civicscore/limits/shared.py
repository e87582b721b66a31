"""Per-identity limits that hold across replicas (kept in Redis), with local limits as the fallback.

SharedLimits(rate, in_flight, store=None | RedisLimitStore, *, lease_ttl_s, retry_s, on_change)
    try_acquire(identity) -> float | None     the rate limit (same contract as ratelimit.RateLimiter)
    enter(identity) -> Slot | None            the in-flight limit: a slot to release when the call ends
    state -> LimitsState                      LOCAL (no Redis configured), SHARED, or FALLBACK
    start() / close()

With a store, a call's rate check is one script call to Redis (an atomic token bucket on Redis
time) and its in-flight check one more (a lease: an entry in a sorted set scored by its expiry),
plus one command to give the lease back. Every replica renews the leases of its running calls
every `lease_ttl_s / 3` seconds from one background thread, so the leases of a replica that dies
(SIGKILL, power, partition) stop counting at most `lease_ttl_s` after its last renewal.

Fallback, a circuit breaker: the first Redis failure (refused, timed out, script error) switches
this replica to its local limiters (the same rate, burst and in-flight maximum, applied per
replica), logged once as an error and reported through `on_change` (health and metrics). While in
fallback no call touches Redis: the background thread alone checks Redis every `retry_s` seconds
and switches back when it answers, logged once. So an outage costs at most one socket timeout to
each call that was talking to Redis when it started, never an error.

Across a switch: a call holds the slot it was admitted with, local or in Redis, and gives it back
there. Calls admitted locally during an outage are not in Redis when it returns, and leases that
expired during the outage are not renewed (see scripts.RENEW_LEASES): for as long as those calls
run, an identity can have more calls in flight than its maximum. Leases that could not be given
back during the outage are given back when Redis returns (else they expire).
"""

from __future__ import annotations

import enum
import itertools
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

from civicscore import metrics
from civicscore.limits.redis_store import LimitStoreUnavailable, RedisLimitStore
from civicscore.ratelimit import ConcurrencyLimiter, RateLimiter

__all__ = ["LimitsState", "SharedLimits", "Slot"]

log = logging.getLogger("civicscore.limits")


class LimitsState(enum.Enum):
    LOCAL = "local"  # no Redis configured: each replica applies its own limits, by configuration
    SHARED = "shared"  # limits kept in Redis, shared by every replica using the same prefix
    FALLBACK = "fallback"  # Redis configured but unreachable: each replica applies its own limits


class Slot:
    """One call's place among its identity's calls in flight; `release()` once when the call ends."""

    __slots__ = ("_give_back",)

    def __init__(self, give_back: Callable[[], None]) -> None:
        self._give_back = give_back

    def release(self) -> None:
        give_back, self._give_back = self._give_back, _nothing
        give_back()


def _nothing() -> None:
    pass


class SharedLimits:
    """Rate and in-flight limits per identity, in Redis when there is one, else (or meanwhile) local."""

    def __init__(self, rate: RateLimiter, in_flight: ConcurrencyLimiter, store: RedisLimitStore | None = None, *,
                 lease_ttl_s: float = 10.0, retry_s: float = 3.0,
                 on_change: Callable[[LimitsState], None] = lambda state: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not lease_ttl_s > 0 or not retry_s > 0:
            raise ValueError(f"lease_ttl_s and retry_s must be positive, not {lease_ttl_s!r}, {retry_s!r}")
        self._rate = rate
        self._in_flight = in_flight
        self._store = store
        self._lease_ttl_s = lease_ttl_s
        self._retry_s = retry_s
        self._on_change = on_change
        self._clock = clock
        self._lock = threading.Lock()
        self._state = LimitsState.LOCAL if store is None else LimitsState.FALLBACK
        self._retry_at = float("-inf")
        # This replica's lease ids: unique across replicas and restarts, and they say who holds them.
        self._replica = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._lease_numbers = itertools.count(1)
        self._leases: dict[str, str] = {}  # lease id -> identity, for the renewals
        self._undropped: list[tuple[str, str]] = []  # (identity, lease id) to give back when Redis returns
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def state(self) -> LimitsState:
        return self._state

    @property
    def replica_id(self) -> str:
        """The prefix of this replica's lease ids in Redis."""
        return self._replica

    def leases_held(self) -> int:
        """How many of this replica's calls hold a lease in Redis now (for tests and metrics)."""
        with self._lock:
            return len(self._leases)

    # ---- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Check Redis once (a replica starts in fallback if it cannot reach it) and start the renewals."""
        if self._store is None:
            log.warning("per-identity limits are LOCAL to this process (no --redis): behind a load balancer, "
                        "N replicas let each identity make N times its rate and in-flight calls")
            self._on_change(LimitsState.LOCAL)
            return
        self._probe(starting=True)
        self._thread = threading.Thread(target=self._run, name="limits-heartbeat", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the renewals and disconnect (leases still held expire on their own)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        if self._store is not None:
            self._store.close()

    # ---- the limits -----------------------------------------------------------------------------

    def try_acquire(self, identity: str) -> float | None:
        """None when `identity` may make a call now (a token taken); else the seconds until it may."""
        store = self._store
        if store is not None and self._state is LimitsState.SHARED:
            try:
                return store.take_token(identity, self._rate.rate_per_s, self._rate.burst)
            except LimitStoreUnavailable as error:
                self._failed(error)
        return self._rate.try_acquire(identity)

    def enter(self, identity: str) -> Slot | None:
        """A slot among `identity`'s calls in flight, or None when it has as many as it may."""
        store = self._store
        if store is not None and self._state is LimitsState.SHARED:
            lease_id = f"{self._replica}:{next(self._lease_numbers)}"
            try:
                taken = store.take_lease(identity, lease_id, self._in_flight.max_in_flight, self._lease_ttl_s)
            except LimitStoreUnavailable as error:
                self._failed(error)
            else:
                if not taken:
                    return None
                with self._lock:
                    self._leases[lease_id] = identity
                return Slot(lambda: self._drop_lease(identity, lease_id))
        if not self._in_flight.try_acquire(identity):
            return None
        return Slot(lambda: self._in_flight.release(identity))

    def _drop_lease(self, identity: str, lease_id: str) -> None:
        with self._lock:
            self._leases.pop(lease_id, None)
        store = self._store
        assert store is not None
        if self._state is LimitsState.SHARED:
            try:
                store.drop_lease(identity, lease_id)
                return
            except LimitStoreUnavailable as error:
                self._failed(error)
        with self._lock:
            self._undropped.append((identity, lease_id))

    # ---- the circuit breaker --------------------------------------------------------------------

    def _failed(self, error: LimitStoreUnavailable) -> None:
        """Redis failed a call: switch to local limits (logged and reported once, not per call)."""
        metrics.limits_redis_error()
        with self._lock:
            if self._state is not LimitsState.SHARED:
                return
            self._state = LimitsState.FALLBACK
            self._retry_at = self._clock() + self._retry_s
        assert self._store is not None
        log.error("limits: Redis at %s failed (%s): FALLING BACK to this replica's own limits (each replica now "
                  "allows an identity its full rate and in-flight calls); trying Redis again every %.0f s",
                  self._store.url, error, self._retry_s)
        self._on_change(LimitsState.FALLBACK)

    def _probe(self, *, starting: bool = False) -> None:
        """Check Redis and use it again if it answers (logged and reported once per switch)."""
        store = self._store
        assert store is not None
        try:
            store.check()
        except LimitStoreUnavailable as error:
            metrics.limits_redis_error()
            with self._lock:
                self._retry_at = self._clock() + self._retry_s
            if starting:
                log.error("limits: Redis at %s is unreachable (%s): STARTING WITH this replica's own limits; "
                          "trying Redis again every %.0f s", store.url, error, self._retry_s)
                self._on_change(LimitsState.FALLBACK)
            return
        with self._lock:
            self._state = LimitsState.SHARED
            undropped, self._undropped = self._undropped, []
        for identity, lease_id in undropped:
            try:
                store.drop_lease(identity, lease_id)
            except LimitStoreUnavailable:
                break  # the rest expire on their own
        if starting:
            log.info("limits: per-identity limits are shared through Redis at %s (lease TTL %.0f s)",
                     store.url, self._lease_ttl_s)
        else:
            log.warning("limits: Redis at %s is back: per-identity limits are shared across replicas again",
                        store.url)
        self._on_change(LimitsState.SHARED)

    def _run(self) -> None:
        """Renew this replica's leases every lease_ttl_s / 3 seconds; in fallback, probe every retry_s."""
        store = self._store
        assert store is not None
        renew_every = self._lease_ttl_s / 3
        renew_at = self._clock() + renew_every
        while True:
            fallback = self._state is LimitsState.FALLBACK
            wake = self._retry_at if fallback else renew_at
            if self._stop.wait(max(0.0, wake - self._clock())):
                return
            now = self._clock()
            if self._state is LimitsState.FALLBACK:
                if now >= self._retry_at:
                    self._probe()
                    renew_at = self._clock()  # back on Redis: renew what still runs at once
                continue
            if now < renew_at:
                continue
            renew_at = now + renew_every
            with self._lock:
                leases = [(identity, lease_id) for lease_id, identity in self._leases.items()]
            if leases:
                try:
                    store.renew_leases(leases, self._lease_ttl_s)
                except LimitStoreUnavailable as error:
                    self._failed(error)
