"""`SqlStore`: the Store over SQLite or PostgreSQL, and `open_store` to get one.

Each method is one transaction committed before it returns; the SQL lives in
`writes`, `listing`, `aggregates` and `evaluations`, this class only picks the
transaction kind and the idempotency encoding.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from civicscore.domain.canonical import canonical_json, record_from_json
from civicscore.domain.model import (
    Assignment,
    ExtendedTask,
    ExtensionStatus,
    Measurement,
    MeasurementFact,
    Outcome,
    OutcomeWriteResult,
    OverdueTask,
    PriorQuarter,
    RecommendationStatus,
    Target,
    TaskCounts,
    Unit,
    UnitKind,
    UpsertCounts,
)
from civicscore.domain.obstacles import NewObstacle, ObstacleRecord, ObstacleStatus, ObstacleTarget, OpenObstacle
from civicscore.domain.officials import Official
from civicscore.store import aggregates, extensions, listing, obstacles, passwords, reviews, writes
from civicscore.store import evaluations as revisions
from civicscore.store import identities as access
from civicscore.store import officials as people
from civicscore.store import rulesets as versions
from civicscore.store.base import (
    ActivationRecord,
    AuditEntry,
    ChangeRecord,
    ContestRecord,
    CredentialRecord,
    EvaluationRecord,
    ExtensionRecord,
    ExtensionRequested,
    ExtensionTarget,
    IdempotencyRecord,
    IdentityRecord,
    MissingReferences,
    NewActivation,
    NewAuditEvent,
    NewContest,
    NewEvaluation,
    NewExtension,
    NewOfficialEvaluation,
    OfficialEvaluationRecord,
    Page,
    PasswordRecord,
    RecommendationRecord,
    ReviewRecord,
    SaveEvaluationsResult,
    Store,
    StoredRuleset,
    StoreError,
    extension_requested_from_json,
    review_result_from_json,
)
from civicscore.store.checkpoints import Checkpointer
from civicscore.store.cluster import Coordination, Leadership, Listener
from civicscore.store.connection import (
    DEFAULT_POOL_SIZE,
    check_connection_budget,
    create_store_engine,
    schema_revisions,
    upgrade_schema,
)
from civicscore.store.diagnosis import check_sqlite_schema_is_ours, database_unusable, prepare_sqlite_file
from civicscore.store.tables import assignments
from civicscore.store.transactions import Clock, Database, stored_result

# Held shared by a save that checks its ruleset is in force, exclusively by an activation or rollback.
_IN_FORCE = "rulesets-in-force"
# Tries of an outcome batch refused by a foreign key while every assignment exists (a race).
_REFERENCE_ATTEMPTS = 3


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def open_store(url: str, *, clock: Clock | None = None, pool_size: int = DEFAULT_POOL_SIZE) -> SqlStore:
    """Connect to `url` (sqlite:///path or postgresql+psycopg://...) and migrate its schema to head.

    A database that cannot be used (read-only, disk full, locked, not SQLite, not civicscore's,
    from a newer civicscore, a PostgreSQL that cannot take `pool_size` more connections) raises
    DatabaseUnusable naming it and the cause; a SQLite file's
    missing parent folder is created. `clock` stamps evaluations and idempotency keys (tests
    pass a fixed one).
    """
    engine = create_store_engine(url, pool_size=pool_size)
    try:
        if engine.dialect.name == "sqlite":
            path = Path(engine.url.database or "").absolute()
            prepare_sqlite_file(path)
            revisions, head = schema_revisions()
            check_sqlite_schema_is_ours(path, revisions=revisions, head=head)
        check_connection_budget(engine, pool_size)  # logs the peak; refuses, before migrating, a pool too big
        upgrade_schema(engine)
    except BaseException as error:
        engine.dispose()
        unusable = database_unusable(error, engine.url)
        if unusable is None or unusable is error:
            raise
        raise unusable from error
    return SqlStore(engine, clock=clock or _utc_now)


def _result_json(result: object) -> str:
    return canonical_json(result)


def _counts_from(text: str) -> UpsertCounts:
    return UpsertCounts(**json.loads(text))


def _outcome_result_from(text: str) -> OutcomeWriteResult:
    data = json.loads(text)
    conflicts = tuple((int(index), str(outcome_id)) for index, outcome_id in data["conflicts"])
    return OutcomeWriteResult(accepted=data["accepted"], duplicates=data["duplicates"], conflicts=conflicts)


def _save_result_from(text: str) -> SaveEvaluationsResult:
    return SaveEvaluationsResult(**json.loads(text))


T = TypeVar("T")


class _Replayable(Generic[T]):
    """An iterable read once from its source and then from memory: the second iteration gives the items the
    first took, then goes on with the source."""

    def __init__(self, source: Iterable[T]) -> None:
        self._source = iter(source)
        self._taken: list[T] = []

    def __iter__(self) -> Iterator[T]:
        yield from list(self._taken)
        for item in self._source:
            self._taken.append(item)
            yield item


class SqlStore:
    """The Store over SQLAlchemy Core; safe to share between handler threads."""

    def __init__(self, engine: Engine, *, clock: Clock = _utc_now) -> None:
        self.engine = engine
        self._db = Database(engine, clock)
        self.coordination = Coordination(engine)
        # On SQLite this thread checkpoints the WAL, off the request path (see `checkpoints`).
        self.checkpointer = Checkpointer(engine) if engine.dialect.name == "sqlite" else None

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.close()
        self.engine.dispose()

    # -- idempotency -------------------------------------------------------
    def idempotent_result(self, key: str, method: str, request_digest: str) -> str | None:
        """The stored result JSON for a key already used by the same request, else None."""
        return self._db.read(lambda c: stored_result(c, key, method, request_digest))

    def _audited(self, connection: Connection, actor: str, action: str, target: str,
                 detail: dict[str, object]) -> None:
        """Append the audit entry of a write that changed something, in the write's transaction.

        Writes made outside any call (`recorded_by` empty: tests, migrations) are not audited."""
        if actor:
            access.append_audit(connection, [NewAuditEvent(at=self._db.clock(), actor=actor, action=action,
                                                           target=target, outcome="done", detail=detail)])

    def _upsert(
        self,
        write: Callable[..., UpsertCounts],
        batch: Sequence[object],
        idempotency: IdempotencyRecord | None,
        recorded_by: str,
        *,
        action: str,
        target: str,
    ) -> UpsertCounts:
        """Run a batch write; when it changed anything, audit it as `action` on `target` in the same transaction."""

        def work(connection: Connection) -> UpsertCounts:
            counts = write(connection, batch, recorded_by)
            if counts.created or counts.updated:
                self._audited(connection, recorded_by, action, target,
                              {"created": counts.created, "updated": counts.updated, "unchanged": counts.unchanged,
                               "idempotency_key": idempotency.key if idempotency else ""})
            return counts

        return self._db.write(work, idempotency=idempotency, encode=_result_json, decode=_counts_from)

    # -- units ---------------------------------------------------------------
    def upsert_units(
        self, units: Sequence[Unit], *, idempotency: IdempotencyRecord | None = None, recorded_by: str = ""
    ) -> UpsertCounts:
        """Create or update units by code; raises MissingReferences for an unknown parent."""
        return self._upsert(writes.upsert_units, units, idempotency, recorded_by,
                            action="upsert_units", target="units")

    def get_units(self, codes: Sequence[str]) -> dict[str, Unit]:
        return self._db.read(lambda c: listing.get_units(c, codes))

    def list_units(
        self, *, kind: UnitKind | None = None, block: str | None = None, active: bool | None = None,
        parent_code: str | None = None, after: str | None = None, limit: int = 100,
    ) -> Page[Unit]:
        return self._db.read(partial(
            listing.list_units, kind=kind, block=block, active=active, parent_code=parent_code,
            after=after, limit=limit,
        ))

    # -- assignments ---------------------------------------------------------
    def upsert_assignments(
        self, assignments: Sequence[Assignment], *, idempotency: IdempotencyRecord | None = None, recorded_by: str = ""
    ) -> UpsertCounts:
        """Create or update assignments by id; raises MissingReferences for an unknown unit."""
        return self._upsert(writes.upsert_assignments, assignments, idempotency, recorded_by,
                            action="upsert_assignments", target="assignments")

    def get_assignments(self, assignment_ids: Sequence[str]) -> dict[str, Assignment]:
        return self._db.read(lambda c: listing.get_assignments(c, assignment_ids))

    def assignment_dates(self, assignment_ids: Sequence[str]) -> dict[str, dt.date]:
        """`assigned_on` of each existing assignment among `assignment_ids` (what outcome checks need)."""
        return self._db.read(lambda c: listing.assignment_dates(c, assignment_ids))

    def assignment_units(self, assignment_ids: Sequence[str]) -> dict[str, str]:
        """`unit_code` of each existing assignment among `assignment_ids` (a reporter's scope check)."""
        return self._db.read(lambda c: listing.assignment_units(c, assignment_ids))

    def list_assignments(
        self, *, unit_code: str | None = None, area: str | None = None, due_from: dt.date | None = None,
        due_to: dt.date | None = None, after: str | None = None, limit: int = 100,
    ) -> Page[Assignment]:
        return self._db.read(partial(
            listing.list_assignments, unit_code=unit_code, area=area, due_from=due_from, due_to=due_to,
            after=after, limit=limit,
        ))

    # -- outcomes ------------------------------------------------------------
    def record_outcomes(
        self, outcomes: Sequence[Outcome], *, idempotency: IdempotencyRecord | None = None, recorded_by: str = ""
    ) -> OutcomeWriteResult:
        """Store new outcomes atomically; a batch with conflicts writes nothing and claims no key.

        References are guarded by the foreign key, not looked up first: when it
        refuses the batch (nothing is stored, the key stays unclaimed) a read
        lists the unknown assignments for MissingReferences. Assignments are
        never deleted, so if that read finds none missing they were created
        meanwhile and the batch is tried again.
        """
        return self.record_checked_outcomes((), lambda assigned: outcomes, idempotency=idempotency,
                                            recorded_by=recorded_by)

    def record_checked_outcomes(
        self, assignment_ids: Sequence[str], check: Callable[[Mapping[str, dt.date]], Sequence[Outcome]], *,
        idempotency: IdempotencyRecord | None = None, recorded_by: str = "",
    ) -> OutcomeWriteResult:
        """`record_outcomes` of the outcomes `check` makes from the `assigned_on` of `assignment_ids`, read in
        the write transaction once the key is claimed: a batch is one transaction. A replay returns the stored
        result without calling `check`; whatever `check` raises ends the transaction (nothing stored, the key
        left unclaimed) and reaches the caller."""
        for _ in range(_REFERENCE_ATTEMPTS):
            try:
                return self._db.write(
                    partial(self._record_outcomes, assignment_ids=assignment_ids, check=check,
                            recorded_by=recorded_by, key=idempotency.key if idempotency else ""),
                    idempotency=idempotency,
                    encode=_result_json,
                    decode=_outcome_result_from,
                    keep=lambda result: not result.conflicts,
                )
            except writes.ReferenceViolation as violation:
                missing = self._db.read(partial(
                    writes.missing_references, column=assignments.c.assignment_id, refs=violation.refs,
                ))
                if missing:
                    raise MissingReferences(violation.field, missing) from None
        raise StoreError("outcome batch refused by a foreign key although every assignment exists")

    def _record_outcomes(self, connection: Connection, *, assignment_ids: Sequence[str],
                         check: Callable[[Mapping[str, dt.date]], Sequence[Outcome]], recorded_by: str,
                         key: str) -> OutcomeWriteResult:
        outcomes = check(listing.assignment_dates(connection, assignment_ids))
        result = writes.record_outcomes(connection, outcomes, recorded_by)
        if result.accepted:
            self._audited(connection, recorded_by, "record_outcomes", "outcomes",
                          {"accepted": result.accepted, "duplicates": result.duplicates, "idempotency_key": key})
        return result

    def list_outcomes(
        self, *, assignment_id: str | None = None, unit_code: str | None = None,
        after: str | None = None, limit: int = 100,
    ) -> Page[Outcome]:
        return self._db.read(partial(
            listing.list_outcomes, assignment_id=assignment_id, unit_code=unit_code, after=after, limit=limit,
        ))

    def count_outcomes(self) -> int:
        return self._db.read(listing.count_outcomes)

    # -- measurements and targets ------------------------------------------------
    def record_measurements(
        self, measurements: Sequence[Measurement], *, idempotency: IdempotencyRecord | None = None,
        recorded_by: str = "",
    ) -> UpsertCounts:
        """Keep the latest report per (unit, period, indicator); an older report counts as unchanged."""
        return self._upsert(writes.record_measurements, measurements, idempotency, recorded_by,
                            action="record_measurements", target="measurements")

    def list_measurements(
        self, *, unit_code: str | None = None, period: str | None = None, indicator: str | None = None,
        after: str | None = None, limit: int = 100,
    ) -> Page[Measurement]:
        return self._db.read(partial(
            listing.list_measurements, unit_code=unit_code, period=period, indicator=indicator,
            after=after, limit=limit,
        ))

    def upsert_targets(
        self, targets: Sequence[Target], *, idempotency: IdempotencyRecord | None = None, recorded_by: str = ""
    ) -> UpsertCounts:
        """Create or update targets by (period, indicator, unit or kind)."""
        return self._upsert(writes.upsert_targets, targets, idempotency, recorded_by,
                            action="upsert_targets", target="targets")

    def list_targets(
        self, *, period: str | None = None, indicator: str | None = None, unit_code: str | None = None,
        after: str | None = None, limit: int = 100,
    ) -> Page[Target]:
        return self._db.read(partial(
            listing.list_targets, period=period, indicator=indicator, unit_code=unit_code,
            after=after, limit=limit,
        ))

    # -- evaluation inputs (aggregates done in SQL) ----------------------------
    def task_counts(self, *, start: dt.date, end: dt.date, unit_codes: Sequence[str] | None = None
                    ) -> dict[str, TaskCounts]:
        """Per unit code with something due in [start, end]; units with nothing due are absent. With
        `unit_codes`, those units' (and perhaps others': `driver.around`)."""
        return self._db.read(partial(aggregates.task_counts, start=start, end=end, unit_codes=unit_codes))

    def open_overdue(self, *, end: dt.date, unit_codes: Sequence[str] | None = None) -> dict[str, list[OverdueTask]]:
        """Per unit code: assignments due before `end`, not cancelled, not completed by `end`. With `unit_codes`,
        those units' (and perhaps others': `driver.around`)."""
        return self._db.read(partial(aggregates.open_overdue, end=end, unit_codes=unit_codes))

    def measurement_facts(self, *, period: str) -> dict[str, list[MeasurementFact]]:
        """Per unit code: current measurements of `period` with their API target (unit, then kind)."""
        return self._db.read(partial(aggregates.measurement_facts, period=period))

    def prior_quarters(self, *, period: str) -> dict[str, PriorQuarter]:
        """Per unit code: grade and flags of its latest evaluation for `period`."""
        return self._db.read(partial(aggregates.prior_quarters, period=period))

    def period_figures(self, *, start: dt.date, end: dt.date, period: str) -> tuple[int, int]:
        """(non-cancelled assignments due in the quarter, units with an evaluation for it)."""
        return self._db.read(partial(aggregates.period_figures, start=start, end=end, period=period))

    def periods_with_data(self) -> list[str]:
        """Quarters with assignments due or evaluations, newest first."""
        return self._db.read(aggregates.periods_with_data)

    def extended_tasks(self, *, start: dt.date, end: dt.date) -> dict[str, list[ExtendedTask]]:
        """Per unit code: the inputs' assignments whose effective due date as of `end` is not their own."""
        return self._db.read(partial(aggregates.extended_tasks, start=start, end=end))

    # -- evaluations and recommendations ------------------------------------------
    def save_evaluations(
        self, evaluations: Sequence[NewEvaluation], *, period: str,
        idempotency: IdempotencyRecord | None = None, recorded_by: str = "",
        in_force: Callable[[list[ActivationRecord]], None] | None = None,
        officials: Sequence[NewOfficialEvaluation] = (),
    ) -> SaveEvaluationsResult:
        """New revision per changed result; the unit's proposed recommendations are superseded."""
        return self.save_evaluation_stream([evaluations], period=period, idempotency=idempotency,
                                           recorded_by=recorded_by, in_force=in_force, officials=lambda: officials)

    def save_evaluation_stream(
        self, chunks: Iterable[Sequence[NewEvaluation]], *, period: str,
        idempotency: IdempotencyRecord | None = None, recorded_by: str = "",
        in_force: Callable[[list[ActivationRecord]], None] | None = None,
        officials: Callable[[], Sequence[NewOfficialEvaluation]] = tuple,
    ) -> SaveEvaluationsResult:
        """`save_evaluations` of evaluations that arrive a chunk at a time, each written as it comes."""
        db = self._db
        arrived = _Replayable(chunks)  # a write tried again (a busy database, a deadlock) writes them again
        people_of = functools.cache(officials)

        def work(connection: Connection) -> SaveEvaluationsResult:
            saved = SaveEvaluationsResult(units_evaluated=0, new_revisions=0, unchanged=0, not_assessable=0,
                                          recommendations_in_force=0)
            for chunk in arrived:
                part = revisions.save_evaluations(connection, chunk, period=period, now=db.clock(),
                                                  recorded_by=recorded_by)
                saved = dataclasses.replace(
                    saved, units_evaluated=saved.units_evaluated + part.units_evaluated,
                    new_revisions=saved.new_revisions + part.new_revisions, unchanged=saved.unchanged + part.unchanged,
                    not_assessable=saved.not_assessable + part.not_assessable)
            official_results = people_of()
            if in_force is not None:  # no activation commits between this check and the save's commit
                self.coordination.lock_in_transaction(connection, _IN_FORCE, shared=True)
                in_force(versions.activations(connection, include_rolled_back=False))
            official_revisions = people.save_official_evaluations(
                connection, official_results, period=period, now=db.clock(), recorded_by=recorded_by)
            saved = dataclasses.replace(
                saved, officials_evaluated=len(official_results), official_revisions=official_revisions,
                recommendations_in_force=revisions.recommendations_in_force(connection, period))
            if saved.new_revisions or official_revisions:
                detail: dict[str, object] = {"units_evaluated": saved.units_evaluated,
                                             "new_revisions": saved.new_revisions}
                if official_results:
                    detail.update(officials_evaluated=len(official_results), official_revisions=official_revisions)
                self._audited(connection, recorded_by, "save_evaluations", f"periods/{period}", detail)
            return saved

        return db.write(work, idempotency=idempotency, encode=_result_json, decode=_save_result_from)

    def get_evaluation(self, *, unit_code: str, period: str, revision: int = 0, body_format: int | None = None
                       ) -> EvaluationRecord | None:
        """A given revision, or the latest when `revision` is 0; with `body_format`, without `result_json` when
        the stored reply body is in that format (GetEvaluation's read: one statement at the driver level)."""
        if body_format is not None:
            found = (self._db.read_row(revisions.REPLY_REVISION_SQL, (body_format, period, unit_code, revision))
                     if revision > 0 else
                     self._db.read_row(revisions.LATEST_REPLY_SQL, (body_format, period, unit_code)))
            return None if found is None else revisions.reply_record(found)
        return self._db.read(partial(
            revisions.get_evaluation, unit_code=unit_code, period=period, revision=revision))

    def list_evaluations(
        self, *, period: str, block: str | None = None, grade: str | None = None,
        unit_code: str | None = None, after: str | None = None, limit: int = 100,
    ) -> Page[EvaluationRecord]:
        """Latest revision per unit, in unit code order."""
        return self._db.read(partial(
            revisions.list_evaluations, period=period, block=block, grade=grade, unit_code=unit_code,
            after=after, limit=limit,
        ))

    def list_recommendations(
        self, *, period: str, kind: str | None = None, flag: str | None = None,
        status: RecommendationStatus | None = None, unit_code: str | None = None,
        after: str | None = None, limit: int = 100,
    ) -> Page[RecommendationRecord]:
        return self._db.read(partial(
            revisions.list_recommendations, period=period, kind=kind, flag=flag, status=status,
            unit_code=unit_code, after=after, limit=limit,
        ))

    # -- ruleset versions ------------------------------------------------------
    def record_activation(
        self, ruleset: StoredRuleset, activation: NewActivation, *, idempotency: IdempotencyRecord | None = None
    ) -> ActivationRecord | None:
        """Store the content (once per digest) and append an activation of it; None (nothing written) when
        this content is already the one in force from its quarter, judged in the writing transaction."""
        def work(connection: Connection) -> ActivationRecord | None:
            self.coordination.lock_in_transaction(connection, _IN_FORCE, shared=False)
            current = versions.in_force_from_quarter(connection, ruleset.in_force_from)
            if current is not None and current.digest == ruleset.digest:
                return None
            record = versions.record_activation(connection, ruleset, activation)
            self.coordination.notify(connection, f"activate {record.seq}")
            return self._activation_audited(connection, record, "activate")

        return self._db.write(work, idempotency=idempotency, encode=_result_json, decode=activation_from_json,
                              keep=lambda record: record is not None)

    def roll_back_activation(
        self, *, expected_digest: str, actor: str, reason: str, at: dt.datetime,
        idempotency: IdempotencyRecord | None = None,
    ) -> ActivationRecord:
        """Mark the latest live activation rolled back (NothingToRollBack when it must not be)."""
        def work(connection: Connection) -> ActivationRecord:
            self.coordination.lock_in_transaction(connection, _IN_FORCE, shared=False)
            record = versions.roll_back_activation(connection, expected_digest=expected_digest, actor=actor,
                                                   reason=reason, at=at)
            self.coordination.notify(connection, f"rollback {record.seq}")
            return self._activation_audited(connection, record, "rollback")

        return self._db.write(work, idempotency=idempotency, encode=_result_json, decode=activation_from_json)

    def _activation_audited(self, connection: Connection, record: ActivationRecord, what: str) -> ActivationRecord:
        actor = record.actor if what == "activate" else (record.rolled_back_by or "")
        reason = record.reason if what == "activate" else (record.rollback_reason or "")
        self._audited(connection, actor, f"{what}_ruleset", f"rulesets/{record.digest}",
                      {"sequence": record.seq, "version": record.version, "in_force_from": record.in_force_from,
                       "source": record.source, "reason": reason})
        return record

    def activations(self, *, include_rolled_back: bool = True) -> list[ActivationRecord]:
        return self._db.read(partial(versions.activations, include_rolled_back=include_rolled_back))

    def list_activations(
        self, *, version: str | None = None, source: str | None = None, rolled_back: bool | None = None,
        after: str | None = None, limit: int = 100,
    ) -> Page[ActivationRecord]:
        return self._db.read(partial(
            versions.list_activations, version=version, source=source, rolled_back=rolled_back,
            after=after, limit=limit,
        ))

    # -- coordination ----------------------------------------------------------------
    def exclusive(self, name: str) -> contextlib.AbstractContextManager[None]:
        return self.coordination.exclusive(name)

    def try_lead(self, name: str) -> Leadership | None:
        return self.coordination.try_lead(name)

    def listen_ruleset_changes(self, on_notice: Callable[[str], None], on_connect: Callable[[], None]
                               ) -> Listener | None:
        return self.coordination.listen(on_notice, on_connect)

    def get_ruleset(self, digest: str) -> StoredRuleset | None:
        return self._db.read(lambda c: versions.get_ruleset(c, digest))

    # -- identities and credentials -------------------------------------------
    def create_identity(self, identity: IdentityRecord, *, audit: NewAuditEvent | None = None,
                        idempotency: IdempotencyRecord | None = None) -> IdentityRecord:
        return self._db.write(lambda c: access.create_identity(c, identity, audit), idempotency=idempotency,
                              encode=_result_json, decode=partial(record_from_json, IdentityRecord))

    def get_identity(self, identity_id: str) -> IdentityRecord | None:
        return self._db.read(lambda c: access.get_identity(c, identity_id))

    def list_identities(
        self, *, role: str | None = None, revoked: bool | None = None, after: str | None = None, limit: int = 100
    ) -> Page[IdentityRecord]:
        return self._db.read(partial(access.list_identities, role=role, revoked=revoked, after=after, limit=limit))

    def has_active_admin(self) -> bool:
        return self._db.read(access.has_active_admin)

    def create_first_admin(self, identity: IdentityRecord, credential: CredentialRecord, *,
                           audit: Sequence[NewAuditEvent]) -> bool:
        return self._db.write(lambda c: access.create_first_admin(c, identity, credential, audit))

    def add_credential(self, credential: CredentialRecord, *, audit: NewAuditEvent | None = None,
                       idempotency: IdempotencyRecord | None = None) -> CredentialRecord:
        return self._db.write(lambda c: access.add_credential(c, credential, audit), idempotency=idempotency,
                              encode=_credential_json, decode=partial(record_from_json, CredentialRecord))

    def get_credential(self, credential_id: str) -> tuple[CredentialRecord, IdentityRecord] | None:
        return self._db.read(lambda c: access.get_credential(c, credential_id))

    def certificate_credentials(self, subjects: Sequence[str]) -> list[tuple[CredentialRecord, IdentityRecord]]:
        return self._db.read(lambda c: access.certificate_credentials(c, subjects))

    def list_credentials(self, identity_id: str) -> list[CredentialRecord]:
        return self._db.read(lambda c: access.list_credentials(c, identity_id))

    def revoke_credential(self, credential_id: str, *, by: str, at: dt.datetime,
                          audit: NewAuditEvent | None = None) -> CredentialRecord | None:
        return self._db.write(lambda c: access.revoke_credential(c, credential_id, by=by, at=at, audit=audit))

    def revoke_identity(self, identity_id: str, *, by: str, at: dt.datetime,
                        audit: NewAuditEvent | None = None) -> IdentityRecord | None:
        return self._db.write(lambda c: access.revoke_identity(c, identity_id, by=by, at=at, audit=audit))

    def record_use(self, credential_id: str, *, at: dt.datetime, unless_since: dt.datetime) -> bool:
        return self._db.write(lambda c: access.record_use(c, credential_id, at=at, unless_since=unless_since))

    # -- passwords and sign-in -------------------------------------------------------
    def get_password(self, identity_id: str) -> PasswordRecord | None:
        return self._db.read(lambda c: passwords.get_password(c, identity_id))

    def set_password(self, identity_id: str, password_hash: str, *, by: str, at: dt.datetime,
                     keep_session: str | None, audit: Callable[[list[str]], NewAuditEvent]) -> list[str]:
        return self._db.write(lambda c: passwords.set_password(c, identity_id, password_hash, by=by, at=at,
                                                               keep_session=keep_session, audit=audit))

    def record_sign_in_failure(self, identity_id: str, *, at: dt.datetime, limit: int,
                               lock_for: Callable[[int], dt.timedelta],
                               audit: Callable[[PasswordRecord], NewAuditEvent]) -> PasswordRecord | None:
        return self._db.write(lambda c: passwords.record_sign_in_failure(c, identity_id, at=at, limit=limit,
                                                                         lock_for=lock_for, audit=audit))

    def get_sign_in_miss(self, identity_id: str) -> PasswordRecord | None:
        return self._db.read(lambda c: passwords.get_sign_in_miss(c, identity_id))

    def record_sign_in_miss(self, identity_id: str, *, at: dt.datetime, limit: int,
                            lock_for: Callable[[int], dt.timedelta]) -> PasswordRecord:
        return self._db.write(lambda c: passwords.record_sign_in_miss(c, identity_id, at=at, limit=limit,
                                                                      lock_for=lock_for))

    def complete_sign_in(self, identity_id: str, *, verified_hash: str, at: dt.datetime,
                         credential: CredentialRecord, audit: NewAuditEvent) -> PasswordRecord | None:
        return self._db.write(lambda c: passwords.complete_sign_in(c, identity_id, verified_hash=verified_hash,
                                                                   at=at, credential=credential, audit=audit))

    # -- audit log --------------------------------------------------------------
    def append_audit(self, events: Sequence[NewAuditEvent]) -> None:
        self._db.write(lambda c: access.append_audit(c, events))

    def audit_entries(self, *, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        return self._db.read(partial(access.audit_entries, after_seq=after_seq, limit=limit))


    # -- reviews, contests and the change log ------------------------------------
    def find_recommendation(self, *, period: str, unit_code: str, flag: str, recommendation_id: int = 0,
                            official_id: str = "") -> RecommendationRecord | None:
        return self._db.read(partial(reviews.find_recommendation, period=period, unit_code=unit_code, flag=flag,
                                     recommendation_id=recommendation_id, official_id=official_id))

    def get_recommendation(self, recommendation_id: int) -> RecommendationRecord | None:
        return self._db.read(lambda c: reviews.get_recommendation(c, recommendation_id))

    def review_recommendation(self, recommendation_id: int, *, decision: str, reason: str, reviewer: str,
                              at: dt.datetime, idempotency: IdempotencyRecord | None = None
                              ) -> tuple[RecommendationRecord, ReviewRecord]:
        return self._db.write(
            lambda c: reviews.review_recommendation(
                c, recommendation_id, decision=decision, reason=reason, reviewer=reviewer, at=at),
            idempotency=idempotency, encode=_result_json, decode=review_result_from_json)

    def list_reviews(self, *, period: str, unit_code: str, flag: str, official_id: str = "") -> list[ReviewRecord]:
        return self._db.read(partial(reviews.list_reviews, period=period, unit_code=unit_code, flag=flag,
                                     official_id=official_id))

    def record_contest(self, contest: NewContest, *, idempotency: IdempotencyRecord | None = None) -> ContestRecord:
        return self._db.write(lambda c: reviews.record_contest(c, contest), idempotency=idempotency,
                              encode=_result_json, decode=partial(record_from_json, ContestRecord))

    def get_contest(self, contest_id: int) -> ContestRecord | None:
        return self._db.read(lambda c: reviews.get_contest(c, contest_id))

    def list_contests(self, *, period: str, after: str | None = None, limit: int = 100) -> Page[ContestRecord]:
        return self._db.read(partial(reviews.list_contests, period=period, after=after, limit=limit))

    def recommendation_changes(self, *, after_seq: int, limit: int = 500) -> list[ChangeRecord]:
        return self._db.read(partial(reviews.recommendation_changes_after, after_seq=after_seq, limit=limit))

    def recommendation_change_head(self) -> int:
        return self._db.read(reviews.change_log_head)

    # -- extensions -----------------------------------------------------------------
    def request_extension(self, new: NewExtension, *, check: Callable[[ExtensionTarget | None], None],
                          idempotency: IdempotencyRecord | None = None) -> ExtensionRequested:
        return self._db.write(lambda c: extensions.request_extension(c, new, check), idempotency=idempotency,
                              encode=_result_json, decode=extension_requested_from_json)

    def decide_extension(self, extension_id: int, *, approve: bool, reason: str, decided_by: str, at: dt.datetime,
                         idempotency: IdempotencyRecord | None = None) -> ExtensionRecord:
        return self._db.write(
            lambda c: extensions.decide_extension(c, extension_id, approve=approve, reason=reason,
                                                  decided_by=decided_by, at=at),
            idempotency=idempotency, encode=_result_json, decode=partial(record_from_json, ExtensionRecord))

    def get_extension(self, extension_id: int) -> ExtensionRecord | None:
        return self._db.read(lambda c: extensions.get_extension(c, extension_id))

    def list_extensions(
        self, *, assignment_id: str | None = None, unit_code: str | None = None,
        status: ExtensionStatus | None = None, requested: tuple[dt.datetime, dt.datetime] | None = None,
        decided: tuple[dt.datetime, dt.datetime] | None = None, as_of: dt.datetime | None = None,
        after: str | None = None, limit: int = 100,
    ) -> Page[ExtensionRecord]:
        return self._db.read(partial(
            extensions.list_extensions, assignment_id=assignment_id, unit_code=unit_code, status=status,
            requested=requested, decided=decided, as_of=as_of, after=after, limit=limit))

    # -- obstacles ------------------------------------------------------------------
    def report_obstacle(self, new: NewObstacle, *, check: Callable[[ObstacleTarget | None], None],
                        idempotency: IdempotencyRecord | None = None) -> ObstacleRecord:
        return self._db.write(lambda c: obstacles.report_obstacle(c, new, check), idempotency=idempotency,
                              encode=_result_json, decode=partial(record_from_json, ObstacleRecord))

    def assign_obstacle(self, obstacle_id: int, *, resolver_unit: str, resolver_official: str, assigned_by: str,
                        at: dt.datetime, check: Callable[[bool], None],
                        idempotency: IdempotencyRecord | None = None) -> ObstacleRecord:
        return self._db.write(
            lambda c: obstacles.assign_obstacle(c, obstacle_id, resolver_unit=resolver_unit,
                                                resolver_official=resolver_official, assigned_by=assigned_by,
                                                at=at, check=check),
            idempotency=idempotency, encode=_result_json, decode=partial(record_from_json, ObstacleRecord))

    def resolve_obstacle(self, obstacle_id: int, *, resolution: str, resolved_by: str, at: dt.datetime,
                         idempotency: IdempotencyRecord | None = None) -> ObstacleRecord:
        return self._db.write(
            lambda c: obstacles.resolve_obstacle(c, obstacle_id, resolution=resolution, resolved_by=resolved_by,
                                                 at=at),
            idempotency=idempotency, encode=_result_json, decode=partial(record_from_json, ObstacleRecord))

    def get_obstacle(self, obstacle_id: int) -> ObstacleRecord | None:
        return self._db.read(lambda c: obstacles.get_obstacle(c, obstacle_id))

    def list_obstacles(
        self, *, assignment_id: str | None = None, unit_code: str | None = None,
        statuses: Iterable[ObstacleStatus] | None = None, reported_from: dt.datetime | None = None,
        reported_before: dt.datetime | None = None, resolved: tuple[dt.datetime, dt.datetime] | None = None,
        after: str | None = None, limit: int = 100,
    ) -> Page[ObstacleRecord]:
        return self._db.read(partial(
            obstacles.list_obstacles, assignment_id=assignment_id, unit_code=unit_code, statuses=statuses,
            reported_from=reported_from, reported_before=reported_before, resolved=resolved, after=after,
            limit=limit))

    def open_obstacles(self, *, end: dt.date, closes_at: dt.datetime, unit_codes: Iterable[str] | None = None
                       ) -> dict[str, tuple[OpenObstacle, ...]]:
        return self._db.read(partial(obstacles.open_obstacles, end=end, closes_at=closes_at, unit_codes=unit_codes))

    # -- officials --------------------------------------------------------------------
    def upsert_officials(self, batch: Sequence[Official], *, keep_activity: frozenset[str] = frozenset(),
                         idempotency: IdempotencyRecord | None = None, recorded_by: str = "") -> UpsertCounts:
        return self._upsert(partial(_upsert_officials, keep_activity=keep_activity), batch, idempotency,
                            recorded_by, action="upsert_officials", target="officials")

    def get_officials(self, official_ids: Sequence[str]) -> dict[str, Official]:
        return self._db.read(lambda c: people.get_officials(c, official_ids))

    def list_officials(self, *, unit_codes: Sequence[str] | None = None, active: bool | None = None,
                       after: str | None = None, limit: int = 100) -> Page[Official]:
        return self._db.read(partial(people.list_officials, unit_codes=unit_codes, active=active, after=after,
                                     limit=limit))

    def delete_official(self, official_id: str, *, actor: str, idempotency: IdempotencyRecord | None = None
                        ) -> bool:
        def work(connection: Connection) -> bool:
            if not people.delete_official(connection, official_id):
                raise LookupError(official_id)  # nothing is written, the idempotency key included
            self._audited(connection, actor, "delete_official", f"officials/{official_id}", {})
            return True

        return bool(self._db.write(work, idempotency=idempotency, encode=json.dumps, decode=json.loads))

    def officials_in_force(self, *, start: dt.date, end: dt.date) -> list[Official]:
        return self._db.read(partial(people.officials_in_force, start=start, end=end))

    def led_task_counts(self, *, start: dt.date, end: dt.date) -> dict[str, TaskCounts]:
        return self._db.read(partial(people.led_task_counts, start=start, end=end))

    def lead_officials(self) -> dict[str, str]:
        return self._db.read(people.lead_officials)

    def get_official_evaluation(self, *, official_id: str, period: str, revision: int = 0
                                ) -> OfficialEvaluationRecord | None:
        return self._db.read(partial(people.get_official_evaluation, official_id=official_id, period=period,
                                     revision=revision))

    def list_official_evaluations(self, *, period: str, unit_codes: Sequence[str] | None = None,
                                  flagged: bool | None = None, after: str | None = None, limit: int = 100
                                  ) -> Page[OfficialEvaluationRecord]:
        return self._db.read(partial(people.list_official_evaluations, period=period, unit_codes=unit_codes,
                                     flagged=flagged, after=after, limit=limit))

    def list_official_recommendations(
        self, *, period: str, kind: str | None = None, flag: str | None = None,
        status: RecommendationStatus | None = None, unit_codes: Sequence[str] | None = None,
        official_id: str | None = None, after: str | None = None, limit: int = 100,
    ) -> Page[RecommendationRecord]:
        return self._db.read(partial(people.list_official_recommendations, period=period, kind=kind, flag=flag,
                                     status=status, unit_codes=unit_codes, official_id=official_id, after=after,
                                     limit=limit))


def _upsert_officials(connection: Connection, batch: Sequence[Official], recorded_by: str, *,
                      keep_activity: frozenset[str]) -> UpsertCounts:
    return people.upsert_officials(connection, batch, recorded_by, keep_activity=keep_activity)


def _credential_json(credential: CredentialRecord) -> str:
    """What an idempotency key keeps of a credential: everything but a token's secret hash."""
    return canonical_json(dataclasses.replace(credential, secret_sha256=None))


def activation_from_json(text: str) -> ActivationRecord:
    """An ActivationRecord from the canonical JSON kept under an idempotency key."""
    return record_from_json(ActivationRecord, text)


if TYPE_CHECKING:

    def _satisfies_the_protocol(store: SqlStore) -> Store:
        """mypy checks here that SqlStore implements every Store method with its signature."""
        return store
