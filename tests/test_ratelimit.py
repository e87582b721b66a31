"""The per-identity limits (civicscore.ratelimit), with a fake clock: no sleeping, no timing (a hold
that must end early is waited for with a generous bound, never timed)."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable

import pytest

from civicscore.ratelimit import ConcurrencyLimiter, RateLimiter, RefusalHold
from tests.waiting import eventually


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def grants(limiter: RateLimiter, key: str, calls: int) -> int:
    return sum(limiter.try_acquire(key) is None for _ in range(calls))


def run_threads(count: int, target: Callable[[int], None]) -> None:
    start = threading.Barrier(count)

    def body(n: int) -> None:
        start.wait()
        target(n)

    threads = [threading.Thread(target=body, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)


# ---- RateLimiter ------------------------------------------------------------------------------


def test_a_new_identity_may_make_burst_calls_then_is_told_how_long_to_wait() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=2.0, burst=5, clock=clock)
    assert [limiter.try_acquire("a") for _ in range(5)] == [None] * 5
    wait = limiter.try_acquire("a")
    assert wait == pytest.approx(0.5)  # one token at 2/s
    assert limiter.try_acquire("a") == pytest.approx(0.5)  # a refused call takes nothing


def test_tokens_refill_at_the_rate_up_to_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=10.0, burst=3, clock=clock)
    assert grants(limiter, "a", 3) == 3
    clock.advance(0.05)  # half a token
    assert limiter.try_acquire("a") == pytest.approx(0.05)
    clock.advance(0.05)
    assert limiter.try_acquire("a") is None
    assert limiter.try_acquire("a") == pytest.approx(0.1)
    clock.advance(0.25)  # 2.5 tokens
    assert grants(limiter, "a", 5) == 2
    clock.advance(3600)  # never more than the burst
    assert grants(limiter, "a", 10) == 3


def test_the_wait_returned_is_exactly_when_the_next_call_is_allowed() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=4.0, burst=1, clock=clock)
    assert limiter.try_acquire("a") is None
    clock.advance(0.1)
    wait = limiter.try_acquire("a")
    assert wait == pytest.approx(0.15)
    assert wait is not None
    clock.advance(wait)
    assert limiter.try_acquire("a") is None


def test_identities_have_independent_buckets() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=1.0, burst=2, clock=clock)
    assert grants(limiter, "flooder", 1000) == 2
    assert grants(limiter, "quiet", 2) == 2
    assert limiter.try_acquire("other") is None
    assert limiter.try_acquire("flooder") is not None


def test_idle_full_buckets_are_dropped() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=10.0, burst=5, clock=clock)  # full again 0.5 s after the last call
    for n in range(100):
        limiter.try_acquire(f"id-{n}")
    assert len(limiter) == 100
    clock.advance(0.4)
    limiter.try_acquire("id-0")  # not idle long enough: nothing dropped
    assert len(limiter) == 100
    clock.advance(0.1)
    limiter.try_acquire("late")  # the other 99 are full again: dropped
    assert len(limiter) == 2
    clock.advance(10)
    assert limiter.try_acquire("late") is None
    assert len(limiter) == 1


def test_a_flooding_identity_keeps_its_bucket_and_stays_limited() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=10.0, burst=5, clock=clock)
    allowed = 0
    for _ in range(1000):  # 10 s of calls every 10 ms: the refill and the burst, no more
        allowed += limiter.try_acquire("flooder") is None
        clock.advance(0.01)
    assert allowed == pytest.approx(5 + 10 * 10, abs=1)
    assert len(limiter) == 1


def test_beyond_max_identities_the_least_recently_used_bucket_is_dropped() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=1.0, burst=1, clock=clock, max_identities=3)
    for key in ("a", "b", "c"):
        assert limiter.try_acquire(key) is None
    assert limiter.try_acquire("a") is not None  # "a" is now the most recently used
    assert limiter.try_acquire("d") is None  # drops "b", the least recently used
    assert len(limiter) == 3
    assert limiter.try_acquire("a") is not None  # "a" kept its empty bucket
    assert limiter.try_acquire("c") is not None
    assert limiter.try_acquire("b") is None  # "b" starts again with a full bucket (dropping "d")
    assert len(limiter) == 3


def test_memory_stays_bounded_under_many_identities() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate_per_s=1.0, burst=10, clock=clock, max_identities=50)
    for n in range(10_000):
        limiter.try_acquire(f"id-{n}")
        clock.advance(0.001)
    assert len(limiter) == 50


@pytest.mark.parametrize("bad", [{"rate_per_s": 0, "burst": 1}, {"rate_per_s": 1, "burst": 0},
                                 {"rate_per_s": -1, "burst": 1}, {"rate_per_s": 1, "burst": 1, "max_identities": 0}])
def test_nonsense_settings_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RateLimiter(**bad)  # type: ignore[arg-type]


def test_many_threads_are_granted_exactly_the_burst_with_a_frozen_clock() -> None:
    limiter = RateLimiter(rate_per_s=1.0, burst=1000, clock=FakeClock())
    counts = [0] * 16

    def hammer(n: int) -> None:
        for _ in range(500):  # 8,000 calls for 1,000 tokens
            if limiter.try_acquire("shared") is None:
                counts[n] += 1
            limiter.try_acquire(f"own-{n}")

    run_threads(16, hammer)
    assert sum(counts) == 1000


def test_many_threads_get_the_same_grants_as_one_thread_would_with_the_same_clock_readings() -> None:
    # The clock is read under the lock, so the n-th call sees the n-th reading whichever thread makes
    # it: the number of grants must equal that of the same calls made one after another.
    def ticking() -> Callable[[], float]:
        ticks = itertools.count()
        return lambda: next(ticks) * 0.001  # 1 ms per call

    calls = 16 * 400
    sequential = RateLimiter(rate_per_s=50.0, burst=20, clock=ticking())
    expected = grants(sequential, "k", calls)
    assert 20 < expected < calls
    limiter = RateLimiter(rate_per_s=50.0, burst=20, clock=ticking())
    counts = [0] * 16

    def hammer(n: int) -> None:
        counts[n] = grants(limiter, "k", 400)

    run_threads(16, hammer)
    assert sum(counts) == expected


# ---- ConcurrencyLimiter ---------------------------------------------------------------------


def test_an_identity_may_hold_at_most_the_maximum_and_others_are_not_affected() -> None:
    limiter = ConcurrencyLimiter(2)
    with limiter.hold("a") as first, limiter.hold("a") as second:
        assert first and second
        with limiter.hold("a") as third:
            assert not third
        assert limiter.in_flight("a") == 2  # a refused hold takes nothing and gives nothing back
        with limiter.hold("b") as other:
            assert other and limiter.in_flight("b") == 1
    assert limiter.in_flight("a") == 0
    with limiter.hold("a") as again:
        assert again


def test_a_slot_is_given_back_when_the_call_raises() -> None:
    limiter = ConcurrencyLimiter(1)
    with pytest.raises(RuntimeError, match="boom"), limiter.hold("a"):
        raise RuntimeError("boom")
    assert limiter.in_flight("a") == 0
    assert limiter.try_acquire("a")
    limiter.release("a")


def test_release_without_acquire_is_an_error_and_idle_keys_are_not_kept() -> None:
    limiter = ConcurrencyLimiter(3)
    with pytest.raises(RuntimeError, match="without a matching try_acquire"):
        limiter.release("a")
    assert limiter.try_acquire("a")
    limiter.release("a")
    assert limiter._in_flight == {}
    with pytest.raises(ValueError):
        ConcurrencyLimiter(0)


def test_concurrent_holders_never_exceed_the_maximum() -> None:
    limiter = ConcurrencyLimiter(3)
    lock = threading.Lock()
    inside = 0
    most = 0
    admitted = [0] * 16

    def work(n: int) -> None:
        nonlocal inside, most
        for _ in range(2000):
            with limiter.hold("shared") as ok:
                if not ok:
                    continue
                admitted[n] += 1
                with lock:
                    inside += 1
                    most = max(most, inside)
                with lock:
                    inside -= 1

    run_threads(16, work)
    assert 1 <= most <= 3
    assert sum(admitted) > 0
    assert limiter.in_flight("shared") == 0


def test_many_threads_take_exactly_the_slots_there_are() -> None:
    limiter = ConcurrencyLimiter(5)
    taken = [0] * 32

    def grab(n: int) -> None:
        for _ in range(10):
            taken[n] += limiter.try_acquire("shared")

    run_threads(32, grab)
    assert sum(taken) == 5 and limiter.in_flight("shared") == 5
    for _ in range(5):
        limiter.release("shared")
    assert limiter.in_flight("shared") == 0


# ---- RefusalHold ------------------------------------------------------------------------------


class NestedWait(threading.Event):
    """An event whose wait records the seconds asked and, instead of sleeping, runs `inside` (once)."""

    def __init__(self, log: list[float], inside: Callable[[], None] = lambda: None) -> None:
        super().__init__()
        self.log = log
        self.inside = inside

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.log.append(timeout)
        self.inside()
        return False


def test_a_refusal_is_held_until_the_next_token_plus_one_interval_per_refusal_already_held() -> None:
    hold = RefusalHold(10.0, max_hold_s=1.0, per_identity=8, total=8)  # a token every 0.1 s
    asked: list[float] = []
    results: list[float] = []

    def nested(depth: int) -> Callable[[], None]:
        def inside() -> None:
            assert hold.held("A") == depth
            if depth < 3:
                results.append(hold.hold("A", 0.05, None, NestedWait(asked, nested(depth + 1))))
        return inside

    results.append(hold.hold("A", 0.05, None, NestedWait(asked, nested(1))))
    assert asked == pytest.approx([0.05, 0.15, 0.25])
    assert (hold.held("A"), hold.held_total()) == (0, 0)


def test_a_hold_never_passes_the_maximum_or_the_calls_deadline() -> None:
    asked: list[float] = []
    hold = RefusalHold(1.0, max_hold_s=0.5)
    assert hold.hold("A", 0.9, None, NestedWait(asked)) == pytest.approx(0.5)
    assert hold.hold("A", 0.4, 0.2, NestedWait(asked)) == pytest.approx(0.18)  # answered before the deadline
    assert asked == pytest.approx([0.5, 0.18])
    assert RefusalHold(1.0, max_hold_s=0).hold("A", 0.9, None, NestedWait(asked)) == 0
    assert hold.hold("A", 0.4, 0.0, NestedWait(asked)) == 0  # the deadline has passed: answer now
    assert len(asked) == 2


def test_past_the_per_identity_or_total_bound_a_refusal_is_answered_at_once() -> None:
    hold = RefusalHold(10.0, per_identity=2, total=3)
    asked: list[float] = []
    answered_at_once: list[tuple[str, float]] = []

    def third_of_a_and_others() -> None:
        answered_at_once.append(("A", hold.hold("A", 0.05, None, NestedWait(asked))))  # A holds 2 already
        hold.hold("B", 0.05, None, NestedWait(asked, lambda: answered_at_once.append(
            ("C", hold.hold("C", 0.05, None, NestedWait(asked))))))  # 3 held in all: C is answered at once

    hold.hold("A", 0.05, None, NestedWait(asked, lambda: hold.hold("A", 0.05, None,
                                                                   NestedWait(asked, third_of_a_and_others))))
    assert answered_at_once == [("A", 0.0), ("C", 0.0)]
    assert len(asked) == 3  # A, A, B were held
    assert hold.held_total() == 0


def test_a_hold_ends_when_the_call_ends_and_its_count_is_given_back_on_errors() -> None:
    hold = RefusalHold(0.01, max_hold_s=600.0)  # a token every 100 s: each hold would last 600 s
    ended = threading.Event()
    holder = threading.Thread(target=hold.hold, args=("A", 600.0, None, ended))
    holder.start()
    assert eventually(lambda: hold.held("A") == 1)
    ended.set()  # the client has gone
    holder.join(60)
    assert not holder.is_alive(), "the hold went on after its call ended"
    assert (hold.held("A"), hold.held_total()) == (0, 0)

    class Broken(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        hold.hold("A", 2.0, None, Broken())
    assert (hold.held("A"), hold.held_total()) == (0, 0)


@pytest.mark.parametrize("bad", [dict(rate_per_s=0.0), dict(rate_per_s=1.0, max_hold_s=-1.0),
                                 dict(rate_per_s=1.0, per_identity=-1), dict(rate_per_s=1.0, total=-1)])
def test_nonsense_hold_settings_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RefusalHold(**bad)  # type: ignore[arg-type]
