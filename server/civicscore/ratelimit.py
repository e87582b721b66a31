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

RefusalHold(rate_per_s, *, max_hold_s=1.0, per_identity=8, total=8)
    Holds back the answer to a call refused by the rate limiter for about as
    long as its caller should have waited: the time until the next token plus
    one token interval per call of the same identity already held, at most
    `max_hold_s` and never past the call's deadline; a client that goes away
    ends its hold at once. A client that honours the RetryInfo loses nothing
    (it would have waited that long anyway); a client that ignores it and
    retries at once can no longer make the server refuse it a thousand times a
    second: its calls come back at about its rate limit. Held calls sleep
    (they take a handler thread, no CPU), at most `per_identity` of one
    identity and `total` of all, so held refusals cannot take every handler
    thread; past either bound a refusal is answered at once.

    seconds = hold.hold(key, wait_s, remaining_s, ended)   # ended: threading.Event set when the call ends
    hold.held(key) -> int; hold.held_total() -> int

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

__all__ = ["ConcurrencyLimiter", "RateLimiter", "RefusalHold"]

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


class RefusalHold:
    """Holds the answer to a rate-limited call back for about as long as its caller should have waited."""

    def __init__(self, rate_per_s: float, *, max_hold_s: float = 1.0, per_identity: int = 8, total: int = 8) -> None:
        if not rate_per_s > 0:
            raise ValueError(f"rate_per_s must be positive, not {rate_per_s!r}")
        if max_hold_s < 0:
            raise ValueError(f"max_hold_s must not be negative, not {max_hold_s!r}")
        if per_identity < 0 or total < 0:
            raise ValueError(f"per_identity and total must not be negative, not {per_identity!r}, {total!r}")
        self._interval = 1.0 / rate_per_s
        self._max_hold = max_hold_s
        self._per_identity = per_identity
        self._total = total
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}
        self._held_total = 0

    def hold(self, key: str, wait_s: float, remaining_s: float | None, ended: threading.Event) -> float:
        """Wait before `key`'s refusal is sent; returns how long it was to be held (0: answer at once).

        `wait_s` is the limiter's time until the next token; `remaining_s` the time left before the
        call's deadline (None: no deadline); `ended` is set when the call ends (the client went away).
        """
        with self._lock:
            mine = self._held.get(key, 0)
            if mine >= self._per_identity or self._held_total >= self._total:
                return 0.0
            seconds = min(self._max_hold, wait_s + mine * self._interval)
            if remaining_s is not None:
                seconds = min(seconds, remaining_s * 0.9)  # answer before the deadline, not after it
            if seconds <= 0:
                return 0.0
            self._held[key] = mine + 1
            self._held_total += 1
        try:
            ended.wait(seconds)
        finally:
            with self._lock:
                count = self._held[key] - 1
                if count:
                    self._held[key] = count
                else:
                    del self._held[key]
                self._held_total -= 1
        return seconds

    def held(self, key: str) -> int:
        """How many refusals of `key` are being held now."""
        with self._lock:
            return self._held.get(key, 0)

    def held_total(self) -> int:
        """How many refusals are being held now, of every identity."""
        with self._lock:
            return self._held_total
