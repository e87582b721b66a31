"""EnginePools: the engine workers of each ruleset in use, by digest, shared through leases.

A call takes a *lease* on the workers of the ruleset it evaluates with for the whole of its work,
so that a ruleset can be swapped under load (blue/green): the workers of the new ruleset are
started (`warm`) before anything switches to it, and the workers of one no longer needed are
closed once their last lease is returned. The pool of a digest is started once, by whoever asks
first; others asking meanwhile wait for it. A pool of a ruleset no longer `current` (replaced or
rolled back) closes as soon as it is not leased; pools current but not `needed` (a past
quarter's ruleset) close when idle for `idle_close_s`, and at most `max_spare` of them stay up.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

from civicscore.engine.port import EngineError, RulesEngine
from civicscore.ruleset import Ruleset

log = logging.getLogger("civicscore.engine")

IDLE_CLOSE_S = 300.0
MAX_SPARE_POOLS = 2

EngineStarter = Callable[[Ruleset], RulesEngine]


@dataclass(eq=False)
class _Pool:
    ruleset: Ruleset
    engine: RulesEngine
    started_at: dt.datetime
    leases: int = 0
    last_used: float = field(default_factory=time.monotonic)
    closed: bool = False


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class EnginePools:
    """The engine workers of every ruleset in use; thread-safe."""

    def __init__(self, start: EngineStarter, *, needed: Callable[[], set[str]], current: Callable[[], set[str]],
                 clock: Callable[[], dt.datetime] = _utc_now, idle_close_s: float = IDLE_CLOSE_S,
                 max_spare: int = MAX_SPARE_POOLS) -> None:
        """`start` makes the workers of a ruleset (raising EngineError when they cannot load it);
        `needed` names the digests whose workers stay up whether used or not, `current` those still
        in force for some quarter."""
        self._start = start
        self._needed = needed
        self._current = current
        self._clock = clock
        self._idle_close_s = idle_close_s
        self._max_spare = max_spare
        self._lock = threading.Lock()
        self._pools: dict[str, _Pool] = {}
        self._starting: dict[str, Future[_Pool]] = {}
        self._closed = False
        self._reaper_stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, name="engine-reaper", daemon=True)

    def start_reaper(self) -> None:
        """Close idle pools in the background from now on."""
        self._reaper.start()

    def close(self) -> None:
        """Close every pool (leases still out fail their next call)."""
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
            self._pools.clear()
        self._reaper_stop.set()
        for pool in pools:
            self._close_pool(pool)

    @contextlib.contextmanager
    def lease(self, ruleset: Ruleset) -> Iterator[RulesEngine]:
        """The workers of `ruleset`, started if need be, held until the block ends."""
        pool = self._acquire(ruleset)
        try:
            yield pool.engine
        finally:
            self._release(pool)

    def warm(self, ruleset: Ruleset) -> None:
        """Have the workers of `ruleset` running (started now if they are not): before switching to it."""
        self._release(self._acquire(ruleset))

    def running(self, digest: str) -> _Pool | None:
        """The running pool of `digest`, if any (for status)."""
        with self._lock:
            pool = self._pools.get(digest)
            return pool if pool is not None and not pool.closed else None

    def started_at(self, digest: str) -> dt.datetime | None:
        """When the workers of `digest` were started, if they are running."""
        pool = self.running(digest)
        return pool.started_at if pool is not None else None

    def digests(self) -> tuple[str, ...]:
        """Digests with running workers."""
        with self._lock:
            return tuple(sorted(d for d, p in self._pools.items() if not p.closed))

    def reap(self) -> None:
        """Close unleased pools no longer current, or not needed and idle too long, or beyond the spare limit."""
        doomed = []
        now = time.monotonic()
        needed, current = self._needed(), self._current()
        with self._lock:
            spare = sorted((p for d, p in self._pools.items() if d not in needed and p.leases == 0),
                           key=lambda p: p.last_used, reverse=True)
            for rank, pool in enumerate(spare):
                if (pool.ruleset.digest not in current or now - pool.last_used > self._idle_close_s
                        or rank >= self._max_spare):
                    doomed.append(pool)
                    del self._pools[pool.ruleset.digest]
                    pool.closed = True
        for pool in doomed:
            self._close_pool(pool)

    # -- internals ---------------------------------------------------------------------
    def _acquire(self, ruleset: Ruleset) -> _Pool:
        """Lease the pool of `ruleset`, starting it (once, whoever asks first) if needed."""
        digest = ruleset.digest
        while True:
            with self._lock:
                if self._closed:
                    raise EngineError("the server is shutting down")
                pool = self._pools.get(digest)
                if pool is not None and not pool.closed:
                    pool.leases += 1
                    pool.last_used = time.monotonic()
                    return pool
                starting = self._starting.get(digest)
                owner = starting is None
                if starting is None:
                    starting = self._starting[digest] = Future()
            if not owner:
                starting.result()  # raises what the starter got
                continue  # take the lease under the lock, as above
            try:
                engine = self._start(ruleset)
            except BaseException as error:
                with self._lock:
                    del self._starting[digest]
                starting.set_exception(error)
                raise
            pool = _Pool(ruleset=ruleset, engine=engine, started_at=self._clock(), leases=1)
            with self._lock:
                del self._starting[digest]
                closed = self._closed
                if not closed:
                    self._pools[digest] = pool
            starting.set_result(pool)
            if closed:
                engine.close()
                raise EngineError("the server is shutting down")
            log.info("engine workers started for ruleset %s (%s)", ruleset.version, digest[:12])
            return pool

    def _release(self, pool: _Pool) -> None:
        with self._lock:
            pool.leases -= 1
            pool.last_used = time.monotonic()
        self.reap()

    def _close_pool(self, pool: _Pool) -> None:
        pool.closed = True
        try:
            pool.engine.close()
        except Exception:
            log.exception("closing the engine workers of %s failed", pool.ruleset.digest[:12])
        log.info("engine workers of ruleset %s (%s) closed", pool.ruleset.version, pool.ruleset.digest[:12])

    def _reap_loop(self) -> None:
        while not self._reaper_stop.wait(min(30.0, max(0.5, self._idle_close_s / 4))):
            self.reap()
