"""`Rulesets`: the ruleset lifecycle of one server process, in one place.

    rulesets = Rulesets(store, start_engine=lambda ruleset: EnginePool(ruleset, ...))
    rulesets.start(folder_files, folder="rules")
    rulesets.watch_folder(Path("rules"))
    with rulesets.lease(quarter) as (ruleset, engine): ...
    rulesets.activate(files, actor=..., source="rpc", reason=...)

It puts together the parts, each in its module: the engine workers by digest (engine/pools.py),
the parsed rulesets (catalog), this process's copy of the timeline that follows the database
(follower), activation and rollback serialised across replicas (activation), the rules folder
watched by one replica at a time (folder). What-if is `simulation.simulate`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from civicscore.domain.periods import Quarter
from civicscore.engine.pools import IDLE_CLOSE_S, MAX_SPARE_POOLS, EnginePools
from civicscore.engine.port import EngineError, RulesEngine
from civicscore.engine.sandbox import Cancellation
from civicscore.ruleset import Ruleset
from civicscore.rulesets.activation import ActivationOutcome, Activations, RefusedAttempt
from civicscore.rulesets.catalog import RulesetCatalog
from civicscore.rulesets.checking import CheckOutcome, start_checking
from civicscore.rulesets.errors import NoRulesetInForce, RulesetChanged, RulesetRefused, refused_issue
from civicscore.rulesets.folder import FolderDuty
from civicscore.rulesets.follower import RECONCILE_S, Applied, Follower
from civicscore.rulesets.timeline import InForce, active_in, in_force_for, timeline_of
from civicscore.store import IdempotencyRecord, Store
from civicscore.store.base import ActivationRecord

log = logging.getLogger("civicscore.rules")

EngineStarter = Callable[[Ruleset], RulesEngine]


@dataclass(frozen=True)
class RulesetStatus:
    active: Ruleset
    active_activation: ActivationRecord | None
    loaded_at: dt.datetime | None
    timeline: tuple[InForce, ...]
    last_refused: RefusedAttempt | None
    loaded_digests: tuple[str, ...]
    applied: Applied  # the database's activations as this process last applied them
    listening: bool | None  # whether activation notices arrive (None: one process, none to hear)
    watching_folder: bool  # whether this process watches the rules folder now


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Rulesets:
    """Which ruleset is in force when (as the database says), its engine workers, and changing it."""

    def __init__(self, store: Store, *, start_engine: EngineStarter, clock: Callable[[], dt.datetime] = _utc_now,
                 idle_close_s: float = IDLE_CLOSE_S, max_spare_pools: int = MAX_SPARE_POOLS,
                 reconcile_s: float = RECONCILE_S, on_applied: Callable[[Applied], None] | None = None) -> None:
        self.store = store
        self._start_engine = start_engine
        self._clock = clock
        self.catalog = RulesetCatalog(store)
        self.pools = EnginePools(self._start_pool, needed=lambda: self.follower.needed(),
                                 current=lambda: self.follower.current(), clock=clock,
                                 idle_close_s=idle_close_s, max_spare=max_spare_pools)
        self.follower = Follower(store, self.pools, self.catalog, clock=clock, reconcile_s=reconcile_s,
                                 on_applied=on_applied)
        self.activations = Activations(store, self.catalog, self.follower, self.pools, clock=clock)
        self._folder: FolderDuty | None = None
        self._folder_name = ""

    # -- start and stop ---------------------------------------------------------------
    def start(self, folder_files: Mapping[str, str] | None, *, folder: str = "") -> None:
        """Follow the database's timeline; activate the rules folder if it changed since it was last
        activated.

        Raises RulesetRefused when the folder is broken and no ruleset is in force yet (nothing to
        serve with); otherwise a broken folder is refused and logged.
        """
        start_checking()  # candidates are checked in budgeted processes: have them ready
        self._folder_name = folder
        self.follower.start()
        if folder_files is not None:
            try:
                self.activations.activate_folder(folder_files, folder=folder, startup=True)
            except RulesetRefused:
                if not self.follower.timeline():
                    raise
                log.error("the rules folder %s was refused at start-up; serving %s", folder,
                          self.follower.timeline()[-1].activation.version)
        if not self.follower.timeline():
            raise RulesetRefused([refused_issue("ruleset.yaml", "no ruleset has ever been activated: "
                                                "start the server with a rules folder")])
        with self.lease(self.current_quarter()):  # the workers of the ruleset in force today
            pass
        self.pools.start_reaper()

    def watch_folder(self, rules_dir: Path) -> None:
        """Watch the rules folder whenever this process holds its leadership (one replica at a time)."""
        self._folder = FolderDuty(self.store, rules_dir, self._folder_changed)
        self._folder.start()

    def stop_checks(self) -> None:
        """Kill the checks of candidate files still running, now and from now on (they end refused as
        cancelled): for a prompt shutdown, before waiting for calls in flight to finish."""
        self.activations.closing.set()

    def close(self) -> None:
        """Stop checks, the folder watcher and the follower; close every engine pool."""
        self.stop_checks()
        if self._folder is not None:
            self._folder.stop()
        self.follower.close()
        self.pools.close()

    # -- reading ------------------------------------------------------------------------
    def current_quarter(self) -> Quarter:
        return self.follower.current_quarter()

    def timeline(self) -> tuple[InForce, ...]:
        return self.follower.timeline()

    def reconcile(self) -> None:
        """Bring this process's copy of the timeline up to the database now."""
        self.follower.reconcile()

    def activation_for(self, quarter: Quarter) -> ActivationRecord | None:
        """The activation whose ruleset is in force for `quarter`, if any."""
        return in_force_for(self.timeline(), quarter)

    def ruleset_for(self, quarter: Quarter) -> Ruleset | None:
        """The ruleset in force for `quarter` (parsed, no workers started), if any."""
        activation = self.activation_for(quarter)
        return None if activation is None else self.catalog.get(activation.digest)

    def active(self) -> Ruleset:
        """The ruleset in force for the current quarter (or, before any is, the first one)."""
        activation = active_in(self.timeline(), self.current_quarter())
        assert activation is not None, "started rulesets have a timeline"
        return self.catalog.get(activation.digest)

    def ruleset(self, digest: str) -> Ruleset:
        """A stored ruleset by digest, parsed (cached); KeyError when no such ruleset is stored."""
        return self.catalog.get(digest)

    def status(self) -> RulesetStatus:
        timeline = self.timeline()
        active = active_in(timeline, self.current_quarter())
        assert active is not None, "started rulesets have a timeline"
        return RulesetStatus(
            active=self.catalog.get(active.digest), active_activation=active,
            loaded_at=self.pools.started_at(active.digest), timeline=timeline,
            last_refused=self.activations.last_refused, loaded_digests=self.pools.digests(),
            applied=self.follower.applied(), listening=self.follower.listening,
            watching_folder=self._folder is not None and self._folder.leading)

    # -- leases -----------------------------------------------------------------------------
    @contextlib.contextmanager
    def lease(self, quarter: Quarter) -> Iterator[tuple[Ruleset, RulesEngine]]:
        """The ruleset in force for `quarter` (in this process's copy) and its engine, held until the
        block ends. Raises NoRulesetInForce when no ruleset is in force for the quarter."""
        activation = self.activation_for(quarter)
        if activation is None:
            first = self.timeline()
            since = f": the first ruleset is in force from {first[0].from_quarter}" if first else ""
            raise NoRulesetInForce(f"no ruleset is in force for {quarter}{since}")
        with self.lease_digest(activation.digest) as leased:
            yield leased

    @contextlib.contextmanager
    def lease_digest(self, digest: str) -> Iterator[tuple[Ruleset, RulesEngine]]:
        """A stored ruleset's engine by digest (e.g. to explain an evaluation made with it)."""
        ruleset = self.catalog.get(digest)
        with self.pools.lease(ruleset) as engine:
            yield ruleset, engine

    @contextlib.contextmanager
    def candidate(self, files: Mapping[str, str], *, cancelled: Cancellation | None = None
                  ) -> Iterator[tuple[Ruleset, RulesEngine]]:
        """Engine workers for candidate files, closed afterwards (what-if; stores nothing).

        Raises RulesetRefused when the files are invalid or fail to load in an engine process, and
        EvaluationCancelled when `cancelled` is set while they are checked.
        """
        ruleset = self.activations.validated(files, cancelled)
        if self.pools.running(ruleset.digest) is not None:  # the candidate is a ruleset already running
            with self.lease_digest(ruleset.digest) as leased:
                yield leased
            return
        engine = self._start_pool(ruleset)
        try:
            yield ruleset, engine
        finally:
            engine.close()

    def verify_in_force(self, quarter: Quarter, digest: str) -> Callable[[list[ActivationRecord]], None]:
        """A check for `Store.save_evaluations`: raises RulesetChanged unless `digest` is (still) the
        ruleset in force for `quarter` according to the live activations it is given."""
        def verify(live: list[ActivationRecord]) -> None:
            now = in_force_for(timeline_of(live), quarter)
            if now is None or now.digest != digest:
                raise RulesetChanged(
                    f"the ruleset in force for {quarter} changed while it was evaluated (now "
                    f"{now.version if now else 'none'}); nothing was saved")
        return verify

    # -- checking and changing -----------------------------------------------------------------
    def check(self, files: Mapping[str, str], *, cancelled: Cancellation | None = None) -> CheckOutcome:
        """See Activations.check."""
        return self.activations.check(files, cancelled=cancelled)

    def activate(self, files: Mapping[str, str] | None = None, *, digest: str | None = None, actor: str,
                 source: str, reason: str = "", validate_only: bool = False,
                 idempotency: IdempotencyRecord | None = None, cancelled: Cancellation | None = None
                 ) -> ActivationOutcome:
        """See Activations.activate."""
        return self.activations.activate(files, digest=digest, actor=actor, source=source, reason=reason,
                                         validate_only=validate_only, idempotency=idempotency,
                                         cancelled=cancelled)

    def activate_request(self, files: Mapping[str, str] | None = None, *, digest: str | None = None, actor: str,
                         reason: str, validate_only: bool, idempotency_key: str, request_digest: str,
                         cancelled: Cancellation | None = None) -> ActivationOutcome:
        """See Activations.activate_request."""
        return self.activations.activate_request(
            files, digest=digest, actor=actor, reason=reason, validate_only=validate_only,
            idempotency_key=idempotency_key, request_digest=request_digest, cancelled=cancelled)

    def rollback_request(self, *, expected_digest: str, actor: str, reason: str, idempotency_key: str,
                         request_digest: str) -> ActivationRecord:
        """See Activations.rollback_request."""
        return self.activations.rollback_request(expected_digest=expected_digest, actor=actor, reason=reason,
                                                 idempotency_key=idempotency_key, request_digest=request_digest)

    def activate_folder(self, files: Mapping[str, str], *, folder: str, startup: bool = False) -> None:
        """See Activations.activate_folder."""
        self.activations.activate_folder(files, folder=folder, startup=startup)

    def rollback(self, *, expected_digest: str, actor: str, reason: str,
                 idempotency: IdempotencyRecord | None = None) -> ActivationRecord:
        """See Activations.rollback."""
        return self.activations.rollback(expected_digest=expected_digest, actor=actor, reason=reason,
                                         idempotency=idempotency)

    # -- internals ----------------------------------------------------------------------------------
    def _start_pool(self, ruleset: Ruleset) -> RulesEngine:
        try:
            return self._start_engine(ruleset)
        except OSError as error:  # e.g. no more processes
            raise EngineError(f"engine workers could not start: {error}") from error

    def _folder_changed(self, files: Mapping[str, str]) -> None:
        # A refusal is logged and reported by GetRulesetStatus; the ruleset in force keeps serving.
        with contextlib.suppress(RulesetRefused):
            self.activations.activate_folder(files, folder=self._folder_name)


__all__ = ["NoRulesetInForce", "RulesetChanged", "RulesetRefused", "RulesetStatus", "Rulesets"]
