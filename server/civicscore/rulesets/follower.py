"""The Follower: this process's view of which ruleset is in force when, following the database.

The activations in the database are the one truth; every replica keeps a copy of the timeline
they make, and replaces it when they change:

- an activation or rollback commits with a NOTIFY (store/cluster.py); the listener thread hears
  it and the follower reconciles at once (within a second or so of the commit);
- the listener reconciles whenever it (re)connects, catching up on notices missed while it was
  down, and a thread reconciles every `reconcile_s` whatever happens (a notice can be lost);
- a call that must not use a stale view (EvaluatePeriod, SimulateRuleset, an activation) calls
  `reconcile()` itself first; and a save checks the ruleset is still in force in its own
  transaction (see `Rulesets.verify_in_force`).

To apply a new timeline the follower first starts the engine workers of the ruleset it makes in
force today (`EnginePools.warm`), then switches, then closes the workers nobody needs any more:
calls in flight finish on the workers they leased. SQLite (one process) has no notices: the
process's own activations reconcile directly.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from civicscore.domain.periods import Quarter
from civicscore.engine.pools import EnginePools
from civicscore.engine.port import EngineError
from civicscore.rulesets.catalog import RulesetCatalog
from civicscore.rulesets.timeline import InForce, active_in, timeline_of
from civicscore.store import Store
from civicscore.store.base import ActivationRecord
from civicscore.store.cluster import Listener
from civicscore.validation import hanoi_today

log = logging.getLogger("civicscore.rules")

RECONCILE_S = 10.0


@dataclass(frozen=True)
class Applied:
    """The state of the activations this process has applied: the newest live activation, and when."""

    activation: ActivationRecord | None
    at: dt.datetime


def _state(live: list[ActivationRecord]) -> tuple[tuple[int, str], ...]:
    return tuple((a.seq, a.digest) for a in live)


class Follower:
    """Keeps the timeline of the live activations as the database has it; thread-safe."""

    def __init__(self, store: Store, pools: EnginePools, catalog: RulesetCatalog, *,
                 clock: Callable[[], dt.datetime], reconcile_s: float = RECONCILE_S,
                 on_applied: Callable[[Applied], None] | None = None) -> None:
        self._store = store
        self._pools = pools
        self._catalog = catalog
        self._clock = clock
        self._reconcile_s = reconcile_s
        self._on_applied = on_applied
        self._lock = threading.Lock()  # guards the fields below
        self._apply_lock = threading.Lock()  # one reconciliation at a time
        self._timeline: tuple[InForce, ...] = ()
        self._state: tuple[tuple[int, str], ...] | None = None
        self._applied = Applied(None, clock())
        self._listener: Listener | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ruleset-reconcile", daemon=True)

    def start(self) -> None:
        """Load the timeline now, then follow the database (notices and periodic reconciliation)."""
        self.reconcile()
        self._listener = self._store.listen_ruleset_changes(self._notice, self.reconcile)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        if self._thread.is_alive():
            self._thread.join(5.0)

    # -- reading -----------------------------------------------------------------------
    def current_quarter(self) -> Quarter:
        return Quarter.containing(hanoi_today(self._clock()))

    def timeline(self) -> tuple[InForce, ...]:
        with self._lock:
            return self._timeline

    def applied(self) -> Applied:
        with self._lock:
            return self._applied

    @property
    def listening(self) -> bool | None:
        """Whether notices arrive (None where there are none to hear: SQLite)."""
        return None if self._listener is None else self._listener.connected

    def needed(self) -> set[str]:
        """The digest whose workers stay up: the ruleset in force today."""
        active = active_in(self.timeline(), self.current_quarter())
        return {active.digest} if active is not None else set()

    def current(self) -> set[str]:
        """The digests in force for some quarter."""
        return {entry.activation.digest for entry in self.timeline()}

    # -- following -----------------------------------------------------------------------
    def reconcile(self) -> None:
        """Read the live activations; if they changed, start what is now in force today, then switch."""
        live = self._store.activations(include_rolled_back=False)
        state = _state(live)
        with self._apply_lock:
            with self._lock:
                if state == self._state:
                    return
            timeline = tuple(timeline_of(live))
            today = active_in(timeline, self.current_quarter())
            if today is not None:
                try:  # its workers first, so that nothing waits for them after the switch
                    self._pools.warm(self._catalog.get(today.digest))
                except (EngineError, KeyError) as error:  # the database is the truth: follow it regardless
                    log.error("the workers of ruleset %s (%s), now in force, could not start: %s", today.version,
                              today.digest[:12], error)
            newest = max(live, key=lambda a: a.seq) if live else None
            applied = Applied(newest, self._clock())
            with self._lock:
                first = self._state is None
                self._timeline, self._state, self._applied = timeline, state, applied
            self._pools.reap()  # the workers of rulesets replaced or rolled back close once unleased
        if not first:
            log.info("applied ruleset change: newest live activation #%s (%s); in force today: %s",
                     newest.seq if newest else "-", newest.version if newest else "-",
                     today.version if today is not None else "none")
        if self._on_applied is not None:
            self._on_applied(applied)

    def _notice(self, payload: str) -> None:
        self.reconcile()

    def _loop(self) -> None:
        while not self._stop.wait(self._reconcile_s):
            try:
                self.reconcile()
            except Exception:  # a database hiccup: the next round tries again
                log.exception("reconciling the rulesets in force with the database failed")
