"""Per-identity limits: a token-bucket rate limiter and an in-flight (concurrency) guard.

Both are keyed by a string (the authenticated identity id), thread-safe (gRPC
handler threads call them concurrently), cheap (one lock, a dict lookup and
some arithmetic per call) and bounded in memory. Neither knows about gRPC:
the authorization interceptor calls them once per RPC after authenticating
the caller and turns a refusal into RESOURCE_EXHAUSTED.

RateLimiter(rate_per_s, burst, *, clock=time.monotonic, max_identities=10_000)
    One token bucket per key: it holds at most `burst` tokens, refills at
    `rate_per_s` tokens a second, and each call takes one.

    try_acquire(key) -> float | None
        None: allowed (a token was taken). Otherwise the call is refused and
        the value is the seconds until the next token, > 0: the delay for a
        `google.rpc.RetryInfo` detail, e.g.
        `duration_pb2.Duration(nanos=...)` / `Duration.FromNanoseconds(int(delay * 1e9))`.
        A refused call takes nothing, so a client that keeps retrying while
        refused is not punished further.
    len(limiter)
        The number of keys tracked now (for tests and metrics).

    Memory: a bucket that has been idle long enough to be full again
    (`burst / rate_per_s` seconds) is the same as no bucket, so it is dropped
    on a later call (the oldest entries are checked first, O(1) amortised).
    Beyond `max_identities` live buckets the least recently used one is
    dropped; its identity then starts again with a full bucket, a leniency
    that only matters when more than `max_identities` identities are active
    within `burst / rate_per_s` seconds.

ConcurrencyLimiter(max_in_flight_per_identity)
    How many calls of one key may be running at once, so that one identity
    cannot occupy every handler thread (the server's own
    `maximum_concurrent_rpcs` caps the total).

    with limiter.hold(key) as admitted:        # admitted: bool
        if not admitted: ...refuse (RESOURCE_EXHAUSTED)...
        ...run the call...
    or, explicitly:
    if limiter.try_acquire(key): try: ... finally: limiter.release(key)
    limiter.in_flight(key) -> int

    The slot must be held for the whole call: for a unary-unary or
    stream-unary handler, around the behaviour; for a response-streaming
    handler, around the iteration of the responses (wrap the returned
    iterator in a generator that holds the slot), not just around the call
    that creates the iterator. Keys with nothing in flight are not stored.

Clocks: `clock` is read under the lock, so the times a RateLimiter sees are
in call order; it must not go backwards (a step back is treated as no time
passing).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["ConcurrencyLimiter", "RateLimiter"]

# A call that waited exactly the delay it was told may find a hair less than one token (float
# rounding of clock readings): that much short still counts as a whole token.
_ROUNDING = 1e-9


class _Bucket:
    """Tokens left at `stamp` (the time of the last call for this key)."""

    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """One token bucket per key; see the module docstring."""

    def __init__(self, rate_per_s: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 max_identities: int = 10_000) -> None:
        if not rate_per_s > 0:
            raise ValueError(f"rate_per_s must be positive, not {rate_per_s!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        if max_identities < 1:
            raise ValueError(f"max_identities must be at least 1, not {max_identities!r}")
        self._rate = float(rate_per_s)
        self._burst = float(burst)
        self._refill_s = self._burst / self._rate  # an idle bucket is full again after this long
        self._clock = clock
        self._max = max_identities
        self._lock = threading.Lock()
        # Least recently used first: each call moves its key to the end.
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        # No bucket can be full before this time (the oldest stamp + the refill time): until then
        # a call skips the sweep. Entries only leave or move to the end, so this is never too late.
        self._sweep_at = float("-inf")

    @property
    def rate_per_s(self) -> float:
        """Tokens added to each bucket per second."""
        return self._rate

    @property
    def burst(self) -> int:
        """The most tokens a bucket holds (calls allowed at once after a quiet spell)."""
        return int(self._burst)

    def __len__(self) -> int:
        with self._lock:
            return len(self._buckets)

    def _sweep(self, now: float) -> None:
        """Drop the buckets idle long enough to be full (least recently used first, so stop at the
        first that is not); note when the oldest left can be dropped, the next sweep."""
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets.values()))
            if now - oldest.stamp < self._refill_s:
                self._sweep_at = oldest.stamp + self._refill_s
                return
            buckets.popitem(last=False)
        self._sweep_at = now + self._refill_s  # every bucket made from now on is stamped `now` or later

    def try_acquire(self, key: str) -> float | None:
        """None when `key` may make a call now (one token taken); else the seconds until it may."""
        buckets = self._buckets
        with self._lock:
            now = self._clock()
            if now >= self._sweep_at:
                self._sweep(now)
            bucket = buckets.get(key)
            if bucket is None:
                if len(buckets) >= self._max:
                    buckets.popitem(last=False)
                buckets[key] = _Bucket(self._burst - 1.0, now)
                return None
            buckets.move_to_end(key)
            elapsed = now - bucket.stamp
            tokens = bucket.tokens
            if elapsed > 0:
                tokens = min(self._burst, tokens + elapsed * self._rate)
                bucket.stamp = now
            if tokens >= 1.0 - _ROUNDING:
                bucket.tokens = max(0.0, tokens - 1.0)
                return None
            bucket.tokens = tokens
            return (1.0 - tokens) / self._rate


class ConcurrencyLimiter:
    """At most `max_in_flight_per_identity` calls per key at once; see the module docstring."""

    def __init__(self, max_in_flight_per_identity: int) -> None:
        if max_in_flight_per_identity < 1:
            raise ValueError(f"max_in_flight_per_identity must be at least 1, not {max_in_flight_per_identity!r}")
        self._max = max_in_flight_per_identity
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}

    @property
    def max_in_flight(self) -> int:
        """The most calls one key may have running at once."""
        return self._max

    def try_acquire(self, key: str) -> bool:
        """Take a slot for `key` if it has fewer than the maximum in flight; the caller must `release` it."""
        with self._lock:
            count = self._in_flight.get(key, 0)
            if count >= self._max:
                return False
            self._in_flight[key] = count + 1
            return True

    def release(self, key: str) -> None:
        """Give back a slot taken by `try_acquire`; raises RuntimeError if `key` holds none."""
        with self._lock:
            count = self._in_flight.get(key, 0)
            if count <= 0:
                raise RuntimeError(f"release({key!r}) without a matching try_acquire")
            if count == 1:
                del self._in_flight[key]
            else:
                self._in_flight[key] = count - 1

    @contextmanager
    def hold(self, key: str) -> Iterator[bool]:
        """Yield whether a slot was taken for `key`; a slot taken is given back when the block ends."""
        admitted = self.try_acquire(key)
        try:
            yield admitted
        finally:
            if admitted:
                self.release(key)

    def in_flight(self, key: str) -> int:
        """How many calls of `key` hold a slot now."""
        with self._lock:
            return self._in_flight.get(key, 0)
