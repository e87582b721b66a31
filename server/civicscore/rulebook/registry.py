"""RulesetRegistry: the rulesets in force, their engine workers, activation and rollback.

Engine workers are started per ruleset digest and shared by every request that
needs that ruleset. A request takes a *lease* on the workers for the whole of
its work, so activation can swap rulesets under load (blue/green):

1. the candidate is checked (the same checks and test-load as `civicscore rules check`,
   in a child process with a time and memory budget: the files come from outside);
2. its workers are started; a failure refuses the activation and nothing is recorded;
3. the activation is recorded (one transaction), then the timeline is swapped;
4. the workers of a ruleset no longer needed are closed once their last
   lease is returned: requests in flight finish on the version they started on.

The workers of the ruleset in force for the current quarter stay up; others
(a past quarter's ruleset, a simulation's) are started on demand and closed
when idle.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field

from civicscore.domain.periods import Quarter
from civicscore.engine.port import EngineError, EvaluationCancelled, RulesEngine
from civicscore.engine.sandbox import AnyOf, Cancellation
from civicscore.rulebook.timeline import InForce, active_in, in_force_for, timeline_of
from civicscore.ruleset import Ruleset, RulesetInvalid, RulesetIssue, is_rule_file, load_ruleset, ruleset_digest
from civicscore.ruleset.check import CheckOutcome, check_candidate, start_checking
from civicscore.store import IdempotencyRecord, Store
from civicscore.store.base import ActivationRecord, NewActivation, StoredRuleset
from civicscore.validation import hanoi_today

log = logging.getLogger("civicscore.rules")

EngineFactory = Callable[[Mapping[str, str]], RulesEngine]

IDLE_CLOSE_S = 300.0  # workers of a ruleset not in force today are closed after this long unused
MAX_SPARE_POOLS = 2  # at most this many such pools stay up while unused
_PARSED_CACHE = 8


class NoRulesetInForce(LookupError):
    """No activated ruleset is in force for the quarter asked about."""


class RulesetRefused(Exception):
    """An activation was refused; `issues` say why, by file, line and column."""

    def __init__(self, issues: list[RulesetIssue], digest: str = "") -> None:
        self.issues = sorted(issues)
        self.digest = digest
        count = len(self.issues)
        first = f": {self.issues[0]}" if self.issues else ""
        super().__init__(f"ruleset refused ({count} problem{'s' if count != 1 else ''}){first}")


@dataclass(frozen=True)
class RefusedAttempt:
    at: dt.datetime
    source: str
    actor: str
    digest: str
    issues: tuple[RulesetIssue, ...]


@dataclass(frozen=True)
class ActivationOutcome:
    ruleset: Ruleset
    activation: ActivationRecord | None  # None when validate_only or unchanged
    unchanged: bool
    evaluated_periods_affected: tuple[str, ...] = ()


@dataclass(frozen=True)
class RulesetStatus:
    active: Ruleset
    active_activation: ActivationRecord | None
    loaded_at: dt.datetime | None
    timeline: tuple[InForce, ...]
    last_refused: RefusedAttempt | None
    loaded_digests: tuple[str, ...]


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


def refused_issue(file: str, message: str) -> RulesetIssue:
    """An issue not tied to a line (e.g. the engine could not load the ruleset)."""
    return RulesetIssue(file=file, line=0, column=0, message=message)


class RulesetRegistry:
    """Which ruleset is in force when, and the engine workers that run them; thread-safe."""

    def __init__(
        self,
        store: Store,
        *,
        engine_factory: EngineFactory,
        clock: Callable[[], dt.datetime] = _utc_now,
        idle_close_s: float = IDLE_CLOSE_S,
        max_spare_pools: int = MAX_SPARE_POOLS,
    ) -> None:
        self.store = store
        self._factory = engine_factory
        self._clock = clock
        self._idle_close_s = idle_close_s
        self._max_spare = max_spare_pools
        self._lock = threading.Lock()  # guards everything below
        self._activation_lock = threading.Lock()  # one activation or rollback at a time
        self._timeline: tuple[InForce, ...] = ()
        self._pools: dict[str, _Pool] = {}
        self._starting: dict[str, Future[_Pool]] = {}
        self._parsed: OrderedDict[str, Ruleset] = OrderedDict()
        self._last_refused: RefusedAttempt | None = None
        self._folder_digest: str | None = None
        self._closed = False
        self._closing = threading.Event()  # set by stop_checks() or close(): running checks are killed
        self._reaper_stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, name="ruleset-reaper", daemon=True)

    # -- start and stop ---------------------------------------------------------------
    def start(self, folder_files: Mapping[str, str] | None, *, folder: str = "") -> None:
        """Load the timeline; activate the rules folder if it changed since it was last activated.

        Raises RulesetRefused when the folder is broken and no ruleset is in force yet
        (nothing to serve with); otherwise a broken folder is refused and logged.
        """
        start_checking()  # candidates are checked in budgeted processes: have them ready
        self._reload_timeline()
        if folder_files is not None:
            self._folder_digest = self._latest_folder_digest()
            try:
                self.activate_folder(folder_files, folder=folder, startup=True)
            except RulesetRefused:
                if not self._timeline:
                    raise
                log.error("the rules folder %s was refused at start-up; serving %s", folder,
                          self._timeline[-1].activation.version)
        if not self._timeline:
            raise RulesetRefused([refused_issue("ruleset.yaml", "no ruleset has ever been activated: "
                                                "start the server with a rules folder")])
        with self.lease(self.current_quarter()):  # start the workers of the ruleset in force today
            pass
        self._reaper.start()

    def stop_checks(self) -> None:
        """Kill the checks of candidate files still running, now and from now on (they end refused as
        cancelled): for a prompt shutdown, before waiting for calls in flight to finish."""
        self._closing.set()

    def close(self) -> None:
        """Stop checks and close every engine pool (leases still out fail their next call)."""
        self.stop_checks()
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
            self._pools.clear()
        self._reaper_stop.set()
        for pool in pools:
            self._close_pool(pool)

    # -- reading ------------------------------------------------------------------------
    def current_quarter(self) -> Quarter:
        return Quarter.containing(hanoi_today(self._clock()))

    def timeline(self) -> tuple[InForce, ...]:
        with self._lock:
            return self._timeline

    def activation_for(self, quarter: Quarter) -> ActivationRecord | None:
        """The activation whose ruleset is in force for `quarter`, if any."""
        with self._lock:
            return in_force_for(self._timeline, quarter)

    def ruleset_for(self, quarter: Quarter) -> Ruleset | None:
        """The ruleset in force for `quarter` (parsed, no workers started), if any."""
        activation = self.activation_for(quarter)
        return None if activation is None else self.ruleset(activation.digest)

    def active(self) -> Ruleset:
        """The ruleset in force for the current quarter (or, before any is, the first one)."""
        activation = self._active_activation()
        assert activation is not None, "started registries have a timeline"
        return self.ruleset(activation.digest)

    def ruleset(self, digest: str) -> Ruleset:
        """A stored ruleset by digest, parsed (cached); KeyError when no such ruleset is stored."""
        with self._lock:
            pool = self._pools.get(digest)
            if pool is not None:
                return pool.ruleset
            parsed = self._parsed.get(digest)
            if parsed is not None:
                self._parsed.move_to_end(digest)
                return parsed
        stored = self.store.get_ruleset(digest)
        if stored is None:
            raise KeyError(digest)
        parsed = load_ruleset(stored.files)
        with self._lock:
            self._parsed[digest] = parsed
            while len(self._parsed) > _PARSED_CACHE:
                self._parsed.popitem(last=False)
        return parsed

    def status(self) -> RulesetStatus:
        active = self._active_activation()
        assert active is not None, "started registries have a timeline"
        ruleset = self.ruleset(active.digest)
        with self._lock:
            pool = self._pools.get(active.digest)
            return RulesetStatus(
                active=ruleset,
                active_activation=active,
                loaded_at=pool.started_at if pool is not None and not pool.closed else None,
                timeline=self._timeline,
                last_refused=self._last_refused,
                loaded_digests=tuple(sorted(d for d, p in self._pools.items() if not p.closed)),
            )

    # -- leases ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def lease(self, quarter: Quarter) -> Iterator[tuple[Ruleset, RulesEngine]]:
        """The ruleset in force for `quarter` and its engine, held until the block ends.

        Raises NoRulesetInForce when no ruleset is in force for the quarter.
        """
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
        pool = self._acquire(digest, lambda: self._stored_files(digest))
        try:
            yield pool.ruleset, pool.engine
        finally:
            self._release(pool)

    @contextlib.contextmanager
    def candidate(self, files: Mapping[str, str], *, cancelled: Cancellation | None = None
                  ) -> Iterator[tuple[Ruleset, RulesEngine]]:
        """Engine workers for candidate files, closed afterwards (what-if; stores nothing).

        Raises RulesetRefused when the files are invalid or fail to load in an engine process, and
        EvaluationCancelled when `cancelled` is set while they are checked.
        """
        ruleset = self._validate(files, cancelled)
        with self._lock:
            shared = self._pools.get(ruleset.digest)
        if shared is not None and not shared.closed:  # the candidate is a ruleset already running
            with self.lease_digest(ruleset.digest) as leased:
                yield leased
            return
        engine = self._start_engine(files, ruleset)
        try:
            yield ruleset, engine
        finally:
            engine.close()

    # -- checking and activation -----------------------------------------------------------
    def check(self, files: Mapping[str, str], *, cancelled: Cancellation | None = None) -> CheckOutcome:
        """Every problem of candidate files, as activation would refuse them (nothing is recorded);
        checked in a budgeted child process. Raises EvaluationCancelled when `cancelled` is set, and
        EngineError when checks are stopped (the server is shutting down)."""
        try:
            return check_candidate(files, cancelled=AnyOf((self._closing, cancelled)))
        except EvaluationCancelled:
            if self._closing.is_set():  # not the caller's doing
                raise EngineError("the server is shutting down; check again once it is back") from None
            raise

    def activate(
        self,
        files: Mapping[str, str] | None = None,
        *,
        digest: str | None = None,
        actor: str,
        source: str,
        reason: str = "",
        validate_only: bool = False,
        idempotency: IdempotencyRecord | None = None,
        cancelled: Cancellation | None = None,
    ) -> ActivationOutcome:
        """Activate rule files (or a stored ruleset by `digest`): check, start, record, swap.

        Raises RulesetRefused (recorded as the last refused attempt), KeyError for an unknown digest,
        and EvaluationCancelled (nothing recorded) when `cancelled` is set while the files are checked.
        """
        if digest is not None:
            files = self._stored_files(digest)
        assert files is not None
        with self._activation_lock:
            try:
                ruleset = self._validate(files, cancelled)
            except RulesetRefused as refused:
                self._refuse(refused, source=source, actor=actor)
                raise
            current = self._entry_for_exact(ruleset.in_force_from)
            if current is not None and current.digest == ruleset.digest:
                return ActivationOutcome(ruleset, None, unchanged=True)
            affected = self._evaluated_periods_affected(ruleset)
            if validate_only:  # the check has test-loaded the files in a throwaway engine process
                return ActivationOutcome(ruleset, None, unchanged=False, evaluated_periods_affected=affected)
            try:
                pool = self._acquire(ruleset.digest, lambda: files, parsed=ruleset)  # green workers up
            except RulesetRefused as refused:
                self._refuse(refused, source=source, actor=actor)
                raise
            try:
                stored = StoredRuleset(
                    digest=ruleset.digest, ruleset_id=ruleset.ruleset_id, version=ruleset.version,
                    in_force_from=ruleset.in_force_from, files=dict(ruleset.files), stored_at=self._clock(),
                )
                record = self.store.record_activation(
                    stored, NewActivation(actor=actor, source=source, reason=reason, at=self._clock()),
                    idempotency=idempotency,
                )
                self._reload_timeline()
            finally:
                self._release(pool)  # the swap is done: unneeded pools close when their leases end
            log.info("ruleset %s %s (%s) activated by %s (%s), in force from %s", ruleset.ruleset_id,
                     ruleset.version, ruleset.digest[:12], actor, source, ruleset.in_force_from)
            return ActivationOutcome(ruleset, record, unchanged=False, evaluated_periods_affected=affected)

    def activate_folder(self, files: Mapping[str, str], *, folder: str, startup: bool = False) -> None:
        """Activate the rules folder's files if they changed since the folder was last seen."""
        digest = _digest(files)
        if digest == self._folder_digest:
            return
        self._folder_digest = digest
        self.activate(files, actor=f"rules-folder:{folder}", source="startup" if startup else "rules-folder",
                      reason="the rule files on disk changed" if not startup else "the rule files at start-up")

    def rollback(self, *, expected_digest: str, actor: str, reason: str,
                 idempotency: IdempotencyRecord | None = None) -> ActivationRecord:
        """Undo the latest live activation; the workers of what is then in force are started first.

        Raises NothingToRollBack when there is nothing (else) to go back to.
        """
        with self._activation_lock:
            live = self.store.activations(include_rolled_back=False)
            after = timeline_of(live[:-1]) if len(live) > 1 else []
            successor = in_force_for(after, self.current_quarter()) or (after[0].activation if after else None)
            leased = None
            if successor is not None:  # start its workers before the swap
                with contextlib.suppress(RulesetRefused):
                    leased = self._acquire(successor.digest, lambda: self._stored_files(successor.digest))
            try:
                record = self.store.roll_back_activation(
                    expected_digest=expected_digest, actor=actor, reason=reason, at=self._clock(),
                    idempotency=idempotency)
                self._reload_timeline()
            finally:
                if leased is not None:
                    self._release(leased)
            log.info("activation #%d (%s %s) rolled back by %s", record.seq, record.version, record.digest[:12], actor)
            return record

    # -- internals -----------------------------------------------------------------------------
    def _validate(self, files: Mapping[str, str], cancelled: Cancellation | None = None) -> Ruleset:
        """The checked ruleset of candidate files, checked in a budgeted child process (never parsed
        here first: a hostile file must not cost this process anything); raises RulesetRefused."""
        outcome = self.check(files, cancelled=cancelled)
        if outcome.ruleset is None or outcome.issues:
            raise RulesetRefused(outcome.issues, _digest(files))
        return outcome.ruleset

    def _refuse(self, refused: RulesetRefused, *, source: str, actor: str) -> None:
        attempt = RefusedAttempt(at=self._clock(), source=source, actor=actor, digest=refused.digest,
                                 issues=tuple(refused.issues))
        with self._lock:
            self._last_refused = attempt
        log.error("ruleset from %s (%s) refused, the ruleset in force keeps serving:\n%s", actor, source,
                  "\n".join(f"  {issue}" for issue in refused.issues))

    def _reload_timeline(self) -> None:
        timeline = tuple(timeline_of(self.store.activations(include_rolled_back=False)))
        with self._lock:
            self._timeline = timeline
        self._reap()

    def _active_activation(self) -> ActivationRecord | None:
        with self._lock:
            timeline = self._timeline
        return active_in(timeline, self.current_quarter())

    def _entry_for_exact(self, in_force_from: str) -> ActivationRecord | None:
        with self._lock:
            return next((e.activation for e in self._timeline if str(e.from_quarter) == in_force_from), None)

    def _latest_folder_digest(self) -> str | None:
        folder = [a for a in self.store.activations() if a.source in ("startup", "rules-folder")]
        return folder[-1].digest if folder else None

    def _evaluated_periods_affected(self, ruleset: Ruleset) -> tuple[str, ...]:
        """Quarters with stored evaluations that this ruleset would govern once active."""
        start = Quarter.parse(ruleset.in_force_from)
        with self._lock:
            later = [e.from_quarter for e in self._timeline if e.from_quarter > start]
        end = min(later) if later else None
        governed = [(period, Quarter.parse(period)) for period in sorted(self.store.periods_with_data())]
        return tuple(
            period for period, quarter in governed
            if quarter >= start and (end is None or quarter < end)
            and self.store.period_figures(start=quarter.start, end=quarter.end, period=period)[1] > 0
        )

    def _stored_files(self, digest: str) -> dict[str, str]:
        stored = self.store.get_ruleset(digest)
        if stored is None:
            raise KeyError(digest)
        return stored.files

    def _start_engine(self, files: Mapping[str, str], ruleset: Ruleset) -> RulesEngine:
        try:
            return self._factory(files)
        except RulesetInvalid as invalid:  # the factory validates again; same answer as _validate
            raise RulesetRefused(invalid.issues, ruleset.digest) from None
        except (EngineError, OSError) as error:
            raise RulesetRefused([refused_issue("ruleset.yaml", (
                f"the ruleset passed every check but failed to load in an engine process: {error}; "
                "run `civicscore rules check` and report this message if the check is clean"))],
                ruleset.digest) from None

    def _acquire(self, digest: str, files_of: Callable[[], Mapping[str, str]], *,
                 parsed: Ruleset | None = None) -> _Pool:
        """Lease the pool of `digest`, starting it (once, whoever asks first) if needed."""
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
                files = files_of()
                ruleset = parsed or self.ruleset(digest)
                engine = self._start_engine(files, ruleset)
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
        self._reap()

    def _needed(self) -> set[str]:
        """Digests whose workers stay up: the ruleset in force today (caller holds the lock)."""
        active = active_in(self._timeline, self.current_quarter())
        return {active.digest} if active else set()

    def _reap(self) -> None:
        """Close unleased pools that are no longer in force, idle too long, or beyond the spare limit."""
        doomed = []
        now = time.monotonic()
        with self._lock:
            needed = self._needed()
            in_timeline = {e.activation.digest for e in self._timeline}
            spare = sorted((p for d, p in self._pools.items() if d not in needed and p.leases == 0),
                           key=lambda p: p.last_used, reverse=True)
            for rank, pool in enumerate(spare):
                digest = pool.ruleset.digest
                if (digest not in in_timeline or now - pool.last_used > self._idle_close_s
                        or rank >= self._max_spare):
                    doomed.append(pool)
                    del self._pools[digest]
                    pool.closed = True
        for pool in doomed:
            self._close_pool(pool)

    def _close_pool(self, pool: _Pool) -> None:
        pool.closed = True
        try:
            pool.engine.close()
        except Exception:
            log.exception("closing the engine workers of %s failed", pool.ruleset.digest[:12])
        log.info("engine workers of ruleset %s (%s) closed", pool.ruleset.version, pool.ruleset.digest[:12])

    def _reap_loop(self) -> None:
        while not self._reaper_stop.wait(min(30.0, max(0.5, self._idle_close_s / 4))):
            self._reap()


def _digest(files: Mapping[str, str]) -> str:
    return ruleset_digest({path: text for path, text in files.items() if is_rule_file(path)})
