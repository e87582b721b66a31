"""Activation and rollback: putting a ruleset in force, or undoing that, once for every replica.

An activation, whoever asks (an RPC, the watched rules folder, start-up):

1. checks the candidate files in a budgeted child process (rulesets/checking.py), outside any
   lock: checks of several candidates may run side by side;
2. then, holding the installation-wide activation lock (a PostgreSQL advisory lock; one process
   at a time across every replica), reads the activations from the database and judges against
   them: content already in force from its quarter is "unchanged" and records nothing (so three
   replicas starting with the same rules folder record one activation);
3. starts the new ruleset's engine workers in this process (blue/green), records the activation
   (its transaction sends the NOTIFY every replica follows), and applies it here at once.

A rollback takes the same lock, undoes the latest live activation only (the store refuses
otherwise), and is followed the same way. Refused candidates are remembered per process (the
last one is in GetRulesetStatus) and logged; the ruleset in force keeps serving.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from civicscore.domain.periods import Quarter
from civicscore.engine.pools import EnginePools
from civicscore.engine.port import EngineError, EvaluationCancelled
from civicscore.engine.sandbox import AnyOf, Cancellation
from civicscore.idempotency import claim_key
from civicscore.ruleset import Ruleset, RulesetIssue, is_rule_file, ruleset_digest
from civicscore.rulesets.catalog import RulesetCatalog
from civicscore.rulesets.checking import CheckOutcome, check_candidate
from civicscore.rulesets.errors import RulesetRefused, refused_issue
from civicscore.rulesets.follower import Follower
from civicscore.rulesets.timeline import in_force_for, timeline_of
from civicscore.store import IdempotencyRecord, Store
from civicscore.store.base import ActivationRecord, NewActivation, StoredRuleset
from civicscore.store.sql import activation_from_json

log = logging.getLogger("civicscore.rules")

ACTIVATION_LOCK = "ruleset-activation"


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


def files_digest(files: Mapping[str, str]) -> str:
    """The digest the rule files among `files` would be stored under."""
    return ruleset_digest({path: text for path, text in files.items() if is_rule_file(path)})


class Activations:
    """Activation, rollback and the rules folder's activation, serialised across replicas."""

    def __init__(self, store: Store, catalog: RulesetCatalog, follower: Follower, pools: EnginePools, *,
                 clock: Callable[[], dt.datetime]) -> None:
        self._store = store
        self._catalog = catalog
        self._follower = follower
        self._pools = pools
        self._clock = clock
        self._lock = threading.Lock()
        self._last_refused: RefusedAttempt | None = None
        self._folder_seen: str | None = None  # the folder content this process last tried, refused or not
        self.closing = threading.Event()  # set when the server shuts down: running checks are killed

    @property
    def last_refused(self) -> RefusedAttempt | None:
        with self._lock:
            return self._last_refused

    # -- checking -----------------------------------------------------------------------
    def check(self, files: Mapping[str, str], *, cancelled: Cancellation | None = None) -> CheckOutcome:
        """Every problem of candidate files, as activation would refuse them (nothing is recorded);
        checked in a budgeted child process. Raises EvaluationCancelled when `cancelled` is set, and
        EngineError when checks are stopped (the server is shutting down)."""
        try:
            return check_candidate(files, cancelled=AnyOf((self.closing, cancelled)))
        except EvaluationCancelled:
            if self.closing.is_set():  # not the caller's doing
                raise EngineError("the server is shutting down; check again once it is back") from None
            raise

    def validated(self, files: Mapping[str, str], cancelled: Cancellation | None = None) -> Ruleset:
        """The checked ruleset of candidate files (never parsed in this process first: a hostile file must
        not cost it anything); raises RulesetRefused."""
        outcome = self.check(files, cancelled=cancelled)
        if outcome.ruleset is None or outcome.issues:
            raise RulesetRefused(outcome.issues, files_digest(files))
        return outcome.ruleset

    # -- activation ---------------------------------------------------------------------------
    def activate(self, files: Mapping[str, str] | None = None, *, digest: str | None = None, actor: str,
                 source: str, reason: str = "", validate_only: bool = False,
                 idempotency: IdempotencyRecord | None = None, cancelled: Cancellation | None = None
                 ) -> ActivationOutcome:
        """Activate rule files (or a stored ruleset by `digest`): check, then under the activation lock
        judge against the database, start the workers, record, apply.

        Raises RulesetRefused (remembered as the last refused attempt), KeyError for an unknown digest,
        and EvaluationCancelled (nothing recorded) when `cancelled` is set while the files are checked.
        """
        try:
            ruleset = self._catalog.get(digest) if digest is not None else self.validated(files or {}, cancelled)
        except RulesetRefused as refused:
            self._refuse(refused, source=source, actor=actor)
            raise
        with self._store.exclusive(ACTIVATION_LOCK):
            self._follower.reconcile()  # judge against the database, not this process's copy
            current = self._entry_for_exact(ruleset.in_force_from)
            if current is not None and current.digest == ruleset.digest:
                return ActivationOutcome(ruleset, None, unchanged=True)
            affected = self._evaluated_periods_affected(ruleset)
            if validate_only:  # the check has test-loaded the files in a throwaway engine process
                return ActivationOutcome(ruleset, None, unchanged=False, evaluated_periods_affected=affected)
            with contextlib.ExitStack() as green:
                try:  # its workers up before anything switches to them, and kept up until it has
                    green.enter_context(self._pools.lease(ruleset))
                except EngineError as error:
                    failed = RulesetRefused([refused_issue("ruleset.yaml", (
                        f"the ruleset passed every check but failed to load in an engine process: {error}; "
                        "run `civicscore rules check` and report this message if the check is clean"))],
                        ruleset.digest)
                    self._refuse(failed, source=source, actor=actor)
                    raise failed from None
                stored = StoredRuleset(digest=ruleset.digest, ruleset_id=ruleset.ruleset_id, version=ruleset.version,
                                       in_force_from=ruleset.in_force_from, files=dict(ruleset.files),
                                       stored_at=self._clock())
                record = self._store.record_activation(
                    stored, NewActivation(actor=actor, source=source, reason=reason, at=self._clock()),
                    idempotency=idempotency)
                if record is None:  # another process (SQLite has no cross-process lock) got there first
                    self._follower.reconcile()
                    return ActivationOutcome(ruleset, None, unchanged=True)
                self._catalog.put(ruleset)
                self._follower.reconcile()  # in force here now; the other replicas follow the NOTIFY
        log.info("ruleset %s %s (%s) activated by %s (%s), in force from %s", ruleset.ruleset_id,
                 ruleset.version, ruleset.digest[:12], actor, source, ruleset.in_force_from)
        return ActivationOutcome(ruleset, record, unchanged=False, evaluated_periods_affected=affected)

    def activate_request(self, files: Mapping[str, str] | None = None, *, digest: str | None = None, actor: str,
                         reason: str, validate_only: bool, idempotency_key: str, request_digest: str,
                         cancelled: Cancellation | None = None) -> ActivationOutcome:
        """ActivateRuleset: `activate`, made safe to retry by `idempotency_key` (a retry of the same request
        gets the first activation back, even after others since)."""
        claim = None
        if not validate_only:
            claim, replayed = claim_key(self._store, idempotency_key, "ActivateRuleset", request_digest)
            if replayed is not None:
                record = activation_from_json(replayed)
                return ActivationOutcome(self._catalog.get(record.digest), record, unchanged=False)
        return self.activate(files, digest=digest, actor=actor, source="rpc", reason=reason,
                             validate_only=validate_only, idempotency=claim, cancelled=cancelled)

    def rollback_request(self, *, expected_digest: str, actor: str, reason: str, idempotency_key: str,
                         request_digest: str) -> ActivationRecord:
        """RollbackRuleset: `rollback`, made safe to retry by `idempotency_key`."""
        claim, replayed = claim_key(self._store, idempotency_key, "RollbackRuleset", request_digest)
        if replayed is not None:
            return activation_from_json(replayed)
        return self.rollback(expected_digest=expected_digest, actor=actor, reason=reason, idempotency=claim)

    def activate_folder(self, files: Mapping[str, str], *, folder: str, startup: bool = False) -> None:
        """Activate the rules folder's files unless this process tried them last (a broken folder is
        refused once, not on every look), or they are what the folder last put in force."""
        digest = files_digest(files)
        with self._lock:
            if digest == self._folder_seen:
                return
            self._folder_seen = digest
        if digest == self._latest_folder_digest():
            return
        self.activate(files, actor=f"rules-folder:{folder}", source="startup" if startup else "rules-folder",
                      reason="the rule files at start-up" if startup else "the rule files on disk changed")

    def rollback(self, *, expected_digest: str, actor: str, reason: str,
                 idempotency: IdempotencyRecord | None = None) -> ActivationRecord:
        """Undo the latest live activation; the workers of what is then in force are started first.

        Raises NothingToRollBack when there is nothing (else) to go back to, or when the latest live
        activation is not of `expected_digest`.
        """
        with self._store.exclusive(ACTIVATION_LOCK):
            live = self._store.activations(include_rolled_back=False)
            after = timeline_of(live[:-1]) if len(live) > 1 else []
            successor = (in_force_for(after, self._follower.current_quarter())
                         or (after[0].activation if after else None))
            if successor is not None:  # its workers before the swap
                with contextlib.suppress(EngineError, KeyError):
                    self._pools.warm(self._catalog.get(successor.digest))
            record = self._store.roll_back_activation(expected_digest=expected_digest, actor=actor, reason=reason,
                                                      at=self._clock(), idempotency=idempotency)
            self._follower.reconcile()
        log.info("activation #%d (%s %s) rolled back by %s", record.seq, record.version, record.digest[:12], actor)
        return record

    # -- internals ---------------------------------------------------------------------------------
    def _refuse(self, refused: RulesetRefused, *, source: str, actor: str) -> None:
        attempt = RefusedAttempt(at=self._clock(), source=source, actor=actor, digest=refused.digest,
                                 issues=tuple(refused.issues))
        with self._lock:
            self._last_refused = attempt
        log.error("ruleset from %s (%s) refused, the ruleset in force keeps serving:\n%s", actor, source,
                  "\n".join(f"  {issue}" for issue in refused.issues))

    def _entry_for_exact(self, in_force_from: str) -> ActivationRecord | None:
        return next((e.activation for e in self._follower.timeline() if str(e.from_quarter) == in_force_from),
                    None)

    def _latest_folder_digest(self) -> str | None:
        folder = [a for a in self._store.activations() if a.source in ("startup", "rules-folder")]
        return folder[-1].digest if folder else None

    def _evaluated_periods_affected(self, ruleset: Ruleset) -> tuple[str, ...]:
        """Quarters with stored evaluations that this ruleset would govern once active."""
        start = Quarter.parse(ruleset.in_force_from)
        later = [e.from_quarter for e in self._follower.timeline() if e.from_quarter > start]
        end = min(later) if later else None
        governed = [(period, Quarter.parse(period)) for period in sorted(self._store.periods_with_data())]
        return tuple(
            period for period, quarter in governed
            if quarter >= start and (end is None or quarter < end)
            and self._store.period_figures(start=quarter.start, end=quarter.end, period=period)[1] > 0
        )
