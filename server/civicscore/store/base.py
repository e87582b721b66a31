"""The Store interface: every read and write the use cases make.

Each method is one transaction, committed before it returns (a reply that
follows a write means the data is durable). Implementations: `sql.SqlStore`
(SQLite by default, PostgreSQL in production).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from civicscore.domain.canonical import record_from_plain
from civicscore.domain.model import (
    Assignment,
    ExtendedTask,
    ExtensionStatus,
    Measurement,
    MeasurementFact,
    Outcome,
    OutcomeStatus,
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

if TYPE_CHECKING:
    from civicscore.store.cluster import Leadership, Listener

T = TypeVar("T")


class StoreError(Exception):
    """A storage failure that is not the caller's fault."""


class IdempotencyConflict(Exception):
    """An idempotency key was reused for a different request."""

    def __init__(self, key: str, method: str) -> None:
        super().__init__(f"idempotency key {key!r} was already used for a different {method} request")
        self.key = key
        self.method = method


class MissingReferences(Exception):
    """A write named units or assignments that do not exist; nothing was written.

    `missing` lists (batch index, value) for every bad item; `field` is the
    item field holding the reference (`unit_code`, `parent_code`, `assignment_id`).
    """

    def __init__(self, field: str, missing: Sequence[tuple[int, str]]) -> None:
        shown = ", ".join(f"[{index}] {value!r}" for index, value in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        super().__init__(f"{field} refers to records that do not exist: {shown}{more}; create them first")
        self.field = field
        self.missing = tuple(missing)


class InvalidCursor(Exception):
    """A page cursor that no listing of this kind returned (tampered, truncated or from another list)."""

    def __init__(self, cursor: str) -> None:
        super().__init__(f"page token {cursor[:40]!r} is not valid for this list; start again without one")
        self.cursor = cursor


@dataclass(frozen=True)
class IdempotencyRecord:
    """Claim for an idempotency key, written in the same transaction as the write it guards.

    The store keeps the canonical JSON of the write method's return value
    under the key; `idempotent_result` returns it on replay.
    """

    key: str
    method: str
    request_digest: str


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None  # opaque to callers; None on the last page


@dataclass(frozen=True)
class RecommendationRecord:
    unit_code: str
    period: str
    flag: str
    kind: str
    level: int
    label_vi: str
    label_en: str
    reasons_json: str  # canonical JSON list of FiredRule
    evaluation_revision: int
    status: RecommendationStatus
    created_at: dt.datetime
    unit_name_vi: str = ""
    # Filled by the review reads (`store.reviews`); the listing of EvaluationService leaves the defaults.
    recommendation_id: int = 0
    superseded_by: int | None = None
    successor_flag: str = ""
    last_decision: str = ""
    last_reviewer: str = ""
    last_decision_reason: str = ""
    last_decision_at: dt.datetime | None = None
    # A recommendation about an official: who, and their name (reading them needs `personal.read`);
    # `unit_code` is then the unit through which they are reached. Empty for a unit's.
    official_id: str = ""
    official_name: str = ""


@dataclass(frozen=True)
class EvaluationRecord:
    """A stored evaluation revision; `result_json` is the canonical UnitEvaluation."""

    unit_code: str
    period: str
    revision: int
    result_json: str
    result_digest: str
    ruleset_version: str
    ruleset_digest: str
    inputs_digest: str
    created_at: dt.datetime
    # denormalised for listing and ranking
    block: str = ""
    unit_name_vi: str = ""
    assessable: bool = False
    score: float | None = None
    grade: str = ""
    timeliness: float = 0.0
    flags: tuple[str, ...] = ()
    recorded_by: str = ""  # the identity that ran the evaluation
    # the reply's body as the engine encoded it (api.evaluation_wire), its format (0: none stored), and the
    # result_digest of the result it was made from
    reply_format: int = 0
    reply: bytes = b""
    reply_of: str = ""


@dataclass(frozen=True)
class SaveEvaluationsResult:
    units_evaluated: int
    new_revisions: int
    unchanged: int
    not_assessable: int
    recommendations_in_force: int  # proposed/approved/rejected/deferred (not superseded) for the period
    officials_evaluated: int = 0  # officials' results saved with a quarter's
    official_revisions: int = 0  # of which stored as a new revision


@dataclass(frozen=True)
class NewEvaluation:
    """One evaluation result to save; stored as a new revision only if `result_digest` differs."""

    unit_code: str
    period: str
    result_json: str
    result_digest: str
    ruleset_version: str
    ruleset_digest: str
    inputs_digest: str
    assessable: bool
    score: float | None
    grade: str
    timeliness: float
    flags: tuple[str, ...]
    recommendations: tuple[RecommendationRecord, ...]
    reply_format: int = 0  # the reply's body encoded by the engine (api.evaluation_wire); 0: none
    reply: bytes = b""


@dataclass(frozen=True)
class NewOfficialEvaluation:
    """One official's result to save with a quarter's evaluations (`result_json`: the canonical
    OfficialEvaluation); a new revision only if `result_digest` differs. Its recommendations carry
    `official_id` and, as `unit_code`, the unit through which the official is reached."""

    official_id: str
    unit_code: str
    period: str
    result_json: str
    result_digest: str
    ruleset_version: str
    ruleset_digest: str
    inputs_digest: str
    flags: tuple[str, ...]
    recommendations: tuple[RecommendationRecord, ...]


@dataclass(frozen=True)
class OfficialEvaluationRecord:
    """A stored revision of an official's result for a quarter, with the official's name."""

    official_id: str
    period: str
    revision: int
    unit_code: str
    result_json: str
    result_digest: str
    ruleset_version: str
    ruleset_digest: str
    inputs_digest: str
    flags: tuple[str, ...]
    created_at: dt.datetime
    official_name: str = ""


@dataclass(frozen=True)
class StoredRuleset:
    """A ruleset's content as activated: `files` maps rule file paths to their text."""

    digest: str
    ruleset_id: str
    version: str
    in_force_from: str
    files: dict[str, str]
    stored_at: dt.datetime


@dataclass(frozen=True)
class NewActivation:
    """What an activation records besides the content: who, how, why and when."""

    actor: str
    source: str  # rpc | rules-folder | startup
    reason: str
    at: dt.datetime


@dataclass(frozen=True)
class ActivationRecord:
    seq: int
    digest: str
    version: str
    in_force_from: str
    actor: str
    source: str
    reason: str
    activated_at: dt.datetime
    rolled_back_at: dt.datetime | None = None
    rolled_back_by: str | None = None
    rollback_reason: str | None = None


class NothingToRollBack(Exception):
    """A rollback was refused: nothing to undo, the only activation, or not the expected digest."""


@dataclass(frozen=True)
class IdentityRecord:
    identity_id: str
    display_name: str
    roles: tuple[str, ...]
    scope_units: tuple[str, ...]
    created_at: dt.datetime
    created_by: str
    revoked_at: dt.datetime | None = None
    revoked_by: str | None = None


@dataclass(frozen=True)
class CredentialRecord:
    """A token credential keeps only `secret_sha256`; a certificate credential its subject."""

    credential_id: str
    identity_id: str
    kind: str  # token | certificate
    secret_sha256: str | None
    certificate_subject: str | None
    expires_at: dt.datetime | None
    created_at: dt.datetime
    created_by: str
    revoked_at: dt.datetime | None = None
    revoked_by: str | None = None
    sign_in: bool = False  # a person's sign-in session (SignIn), not an administrator's token
    last_used_at: dt.datetime | None = None  # sign-in sessions: last use, recorded about once a minute


@dataclass(frozen=True)
class PasswordRecord:
    """An identity's password as its argon2id hash (never the password), and its sign-in throttle."""

    identity_id: str
    password_hash: str
    set_at: dt.datetime
    set_by: str
    failed_attempts: int = 0  # consecutive failures since the last success or lock-out
    lockouts: int = 0  # lock-outs since the last success (each doubles the next)
    locked_until: dt.datetime | None = None
    last_failed_at: dt.datetime | None = None  # failures less than a day apart are in a row


@dataclass(frozen=True)
class NewAuditEvent:
    """Something a person or system did (or was refused); `detail` is canonical-JSON-able, never a secret."""

    at: dt.datetime
    actor: str
    action: str
    target: str
    outcome: str  # done | refused
    detail: dict[str, object]


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: dt.datetime
    actor: str
    action: str
    target: str
    outcome: str
    detail_json: str
    prev_hash: str
    entry_hash: str


class Conflict(Exception):
    """A create found the key taken (e.g. an identity id already used)."""


@dataclass(frozen=True)
class ReviewRecord:
    """One committee decision on a recommendation."""

    seq: int
    recommendation_id: int
    decision: str  # approved | rejected | deferred
    previous_status: str
    reason: str
    reviewer: str
    decided_at: dt.datetime
    period: str = ""
    unit_code: str = ""
    flag: str = ""


def review_result_from_json(text: str) -> tuple[RecommendationRecord, ReviewRecord]:
    """A review's result (the recommendation after it, the decision) from the JSON its idempotency key keeps."""
    recommendation, review = json.loads(text)
    return record_from_plain(RecommendationRecord, recommendation), record_from_plain(ReviewRecord, review)


@dataclass(frozen=True)
class NewContest:
    """A unit's reply, with its corrections (JSON list) and the evaluation before/after (JSON objects)."""

    recommendation_id: int
    period: str
    unit_code: str
    text: str
    corrections_json: str
    accepted: int
    duplicates: int
    before_json: str
    after_json: str
    contested_by: str
    created_at: dt.datetime


@dataclass(frozen=True)
class ContestRecord:
    contest_id: int
    recommendation_id: int
    period: str
    unit_code: str
    text: str
    corrections_json: str
    accepted: int
    duplicates: int
    before_json: str
    after_json: str
    contested_by: str
    created_at: dt.datetime
    flag: str = ""


@dataclass(frozen=True)
class ChangeRecord:
    """One entry of the recommendation change log, with the recommendation as it stands now."""

    seq: int
    change: str  # raised | superseded | reviewed | contested
    changed_at: dt.datetime
    recommendation: RecommendationRecord


class InvalidTransition(Exception):
    """A review decision the recommendation's current status does not allow."""

    def __init__(self, current: str, decision: str) -> None:
        super().__init__(f"the recommendation is {current}; it cannot be {decision}")
        self.current = current
        self.decision = decision


@dataclass(frozen=True)
class NewExtension:
    """An extension request to record: the new due date asked for an assignment, and why."""

    assignment_id: str
    requested_due_on: dt.date
    reason: str
    requested_by: str
    requested_at: dt.datetime


@dataclass(frozen=True)
class ExtensionTarget:
    """What a request is checked against, read in the transaction that records it: the assignment, its
    current state, the due date in force at the request's time and the request still pending, if any."""

    assignment_id: str
    unit_code: str
    title: str
    original_due_on: dt.date
    due_on_in_force: dt.date
    status: OutcomeStatus | None  # the current state's status; None without any outcome
    completed_on: dt.date | None
    pending_id: int | None


@dataclass(frozen=True)
class ExtensionRecord:
    """One extension request with its assignment, and the decision once there is one.

    `effective_due_on` is the assignment's due date in force at the instant the read asked about (now,
    unless it said otherwise): its latest approved extension's date, or `original_due_on`."""

    extension_id: int
    assignment_id: str
    unit_code: str
    assignment_title: str
    original_due_on: dt.date
    due_on_at_request: dt.date
    requested_due_on: dt.date
    reason: str
    requested_by: str
    requested_at: dt.datetime
    status: ExtensionStatus
    effective_due_on: dt.date
    decision_reason: str = ""
    decided_by: str = ""
    decided_at: dt.datetime | None = None
    superseded_by: int | None = None


@dataclass(frozen=True)
class ExtensionRequested:
    """A recorded request, and the pending request for the same assignment it superseded (if any)."""

    extension: ExtensionRecord
    superseded: ExtensionRecord | None = None


def extension_requested_from_json(text: str) -> ExtensionRequested:
    """A request's result from the JSON its idempotency key keeps."""
    data = json.loads(text)
    superseded = data["superseded"]
    return ExtensionRequested(record_from_plain(ExtensionRecord, data["extension"]),
                              None if superseded is None else record_from_plain(ExtensionRecord, superseded))


class ExtensionNotPending(Exception):
    """A decision on an extension request that is no longer pending (decided, or superseded)."""

    def __init__(self, current: str, superseded_by: int | None) -> None:
        super().__init__(f"the extension request is {current}; only a pending request can be decided")
        self.current = current
        self.superseded_by = superseded_by


class Store(Protocol):
    """Persistence. Every write takes `recorded_by`: the identity of the caller, kept on each row it
    creates or changes (empty only for writes made outside any call, e.g. in tests)."""

    # -- lifecycle ---------------------------------------------------------
    def close(self) -> None: ...

    # -- idempotency -------------------------------------------------------
    def idempotent_result(self, key: str, method: str, request_digest: str) -> str | None:
        """The stored result JSON for a key already used by the same request, else None.

        Raises IdempotencyConflict when the key was used for a different request.
        """
        ...

    # -- units ---------------------------------------------------------------
    def upsert_units(
        self, units: Sequence[Unit], *, idempotency: IdempotencyRecord | None = None, recorded_by: str = ""
    ) -> UpsertCounts: ...

    def get_units(self, codes: Sequence[str]) -> dict[str, Unit]: ...

    def list_units(
        self,
        *,
        kind: UnitKind | None = None,
        block: str | None = None,
        active: bool | None = None,
        parent_code: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> Page[Unit]: ...

    # -- assignments ---------------------------------------------------------
    def upsert_assignments(
        self, assignments: Sequence[Assignment], *, idempotency: IdempotencyRecord | None = None, recorded_by: str = ""
    ) -> UpsertCounts: ...

    def get_assignments(self, assignment_ids: Sequence[str]) -> dict[str, Assignment]: ...

    def assignment_dates(self, assignment_ids: Sequence[str]) -> dict[str, dt.date]:
        """`assigned_on` per existing assignment id; unknown ids are absent (a slimmer get_assignments)."""
        ...

    def assignment_units(self, assignment_ids: Sequence[str]) -> dict[str, str]:
        """`unit_code` per existing assignment id; unknown ids are absent (a reporter's scope check)."""
        ...

    def list_assignments(
        self,
        *,
        unit_code: str | None = None,
        area: str | None = None,
        due_from: dt.date | None = None,
        due_to: dt.date | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> Page[Assignment]: ...

    # -- outcomes ------------------------------------------------------------
    def record_outcomes(
        self, outcomes: Sequence[Outcome], *, idempotency: IdempotencyRecord | None = None, recorded_by: str = ""
    ) -> OutcomeWriteResult:
        """Store new outcomes atomically; identical ones count as duplicates.

        If any outcome_id exists with different content (or repeats inside the
        batch with different content), nothing is written and the result lists
        the conflicts.
        """
        ...

    def record_checked_outcomes(
        self, assignment_ids: Sequence[str], check: Callable[[Mapping[str, dt.date]], Sequence[Outcome]], *,
        idempotency: IdempotencyRecord | None = None, recorded_by: str = "",
    ) -> OutcomeWriteResult:
        """`record_outcomes` of the outcomes `check` makes from the `assigned_on` of `assignment_ids` (unknown
        ids absent), read in the same transaction as the write once the key is claimed: one transaction per
        batch. A replay returns the stored result without calling `check`; an exception from `check` stores
        nothing, leaves the key unclaimed and reaches the caller."""
        ...

    def list_outcomes(
        self,
        *,
        assignment_id: str | None = None,
        unit_code: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> Page[Outcome]: ...

    def count_outcomes(self) -> int: ...

    # -- measurements and targets ------------------------------------------------
    def record_measurements(
        self, measurements: Sequence[Measurement], *, idempotency: IdempotencyRecord | None = None,
        recorded_by: str = "",
    ) -> UpsertCounts: ...

    def list_measurements(
        self,
        *,
        unit_code: str | None = None,
        period: str | None = None,
        indicator: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> Page[Measurement]: ...

    def upsert_targets(
        self, targets: Sequence[Target], *, idempotency: IdempotencyRecord | None = None, recorded_by: str = ""
    ) -> UpsertCounts: ...

    def list_targets(
        self,
        *,
        period: str | None = None,
        indicator: str | None = None,
        unit_code: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> Page[Target]: ...

    # -- evaluation inputs (aggregates done in SQL) ----------------------------
    # "Due" means the effective due date as of the end of `end` (Hanoi time): an assignment's latest
    # extension approved by then, else its own due date (DEFAULT-RULES.md, "Extensions").
    def task_counts(self, *, start: dt.date, end: dt.date, unit_codes: Sequence[str] | None = None
                    ) -> dict[str, TaskCounts]:
        """Per unit code: due/completed/on_time/late/reworked for assignments due in [start, end]. With
        `unit_codes`, those units' (and perhaps others': `driver.around`)."""
        ...

    def open_overdue(self, *, end: dt.date, unit_codes: Sequence[str] | None = None) -> dict[str, list[OverdueTask]]:
        """Per unit code: assignments due before `end`, not cancelled, not completed by `end`. With `unit_codes`,
        those units' (and perhaps others': `driver.around`)."""
        ...

    def measurement_facts(self, *, period: str) -> dict[str, list[MeasurementFact]]:
        """Per unit code: current measurements of `period` with their API target (unit, then kind)."""
        ...

    def prior_quarters(self, *, period: str) -> dict[str, PriorQuarter]:
        """Per unit code: grade and flags of its latest evaluation for `period` (the previous quarter)."""
        ...

    def period_figures(self, *, start: dt.date, end: dt.date, period: str) -> tuple[int, int]:
        """(assignments due in the quarter, units with an evaluation for it)."""
        ...

    def extended_tasks(self, *, start: dt.date, end: dt.date) -> dict[str, list[ExtendedTask]]:
        """Per unit code: the assignments among the inputs of [start, end] whose effective due date as of
        `end` (Hanoi time) differs from their own (see `ExtendedTask`)."""
        ...

    def periods_with_data(self) -> list[str]:
        """Quarters (`YYYY-Qn`) with assignments due or evaluations, newest first."""
        ...

    # -- evaluations and recommendations ------------------------------------------
    def save_evaluations(
        self, evaluations: Sequence[NewEvaluation], *, period: str,
        idempotency: IdempotencyRecord | None = None, recorded_by: str = "",
        in_force: Callable[[list[ActivationRecord]], None] | None = None,
        officials: Sequence[NewOfficialEvaluation] = (),
    ) -> SaveEvaluationsResult:
        """Store each evaluation as a new revision if its result differs from the latest; the officials'
        results of a quarter in the same transaction (`officials.save_official_evaluations`).

        For a unit with a new revision, its previous proposed recommendations for
        the period become superseded and the new ones are stored as proposed.
        `in_force` is called, inside the saving transaction and with activations held
        off, with the live activations: raising there (the ruleset used is no longer
        in force) saves nothing.
        """
        ...

    def save_evaluation_stream(
        self, chunks: Iterable[Sequence[NewEvaluation]], *, period: str,
        idempotency: IdempotencyRecord | None = None, recorded_by: str = "",
        in_force: Callable[[list[ActivationRecord]], None] | None = None,
        officials: Callable[[], Sequence[NewOfficialEvaluation]] = tuple,
    ) -> SaveEvaluationsResult:
        """`save_evaluations` of evaluations that arrive a chunk at a time (an EvaluatePeriod's engine results),
        one transaction: each chunk is written as it arrives, then `officials()` is called for the officials'
        results, then `in_force` is checked, just before the commit. Whatever the iteration or `officials`
        raise ends the transaction: nothing is saved."""
        ...

    def get_evaluation(
        self, *, unit_code: str, period: str, revision: int = 0, body_format: int | None = None
    ) -> EvaluationRecord | None:
        """A given revision, or the latest when `revision` is 0. With `body_format`, a revision whose stored
        reply body (`EvaluationRecord.reply`) is in that format and made from its result (`reply_of` is its
        `result_digest`) comes with `result_json` "" (not read)."""
        ...

    def list_evaluations(
        self,
        *,
        period: str,
        block: str | None = None,
        grade: str | None = None,
        unit_code: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> Page[EvaluationRecord]: ...

    def list_recommendations(
        self,
        *,
        period: str,
        kind: str | None = None,
        flag: str | None = None,
        status: RecommendationStatus | None = None,
        unit_code: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> Page[RecommendationRecord]: ...

    # -- ruleset versions ------------------------------------------------------
    def record_activation(
        self, ruleset: StoredRuleset, activation: NewActivation, *, idempotency: IdempotencyRecord | None = None
    ) -> ActivationRecord | None:
        """Store the content (once per digest) and append an activation of it; None, and nothing written,
        when this content is already the one in force from its quarter (judged in the same transaction, so
        processes activating the same content at once record it once)."""
        ...

    def roll_back_activation(
        self, *, expected_digest: str, actor: str, reason: str, at: dt.datetime,
        idempotency: IdempotencyRecord | None = None,
    ) -> ActivationRecord:
        """Mark the latest activation not yet rolled back as rolled back, and return it.

        Raises NothingToRollBack when no other activation would remain in force, or
        when `expected_digest` is given and the latest activation is of another digest.
        """
        ...

    def activations(self, *, include_rolled_back: bool = True) -> list[ActivationRecord]:
        """Every activation in sequence order (oldest first)."""
        ...

    def list_activations(
        self, *, version: str | None = None, source: str | None = None, rolled_back: bool | None = None,
        after: str | None = None, limit: int = 100,
    ) -> Page[ActivationRecord]:
        """Activations newest first."""
        ...

    def get_ruleset(self, digest: str) -> StoredRuleset | None:
        """The stored content of a ruleset, by digest."""
        ...

    # -- coordination of the processes sharing the database (store/cluster.py) -------------
    def exclusive(self, name: str) -> contextlib.AbstractContextManager[None]:
        """A block that no other process of the installation runs at the same time (by `name`)."""
        ...

    def try_lead(self, name: str) -> Leadership | None:
        """The leadership of `name` when no other process holds it, else None."""
        ...

    def listen_ruleset_changes(self, on_notice: Callable[[str], None], on_connect: Callable[[], None]
                               ) -> Listener | None:
        """Hear of activations and rollbacks committed by any process (None where there is no one else)."""
        ...

    # -- identities and credentials -------------------------------------------
    def create_identity(self, identity: IdentityRecord, *, audit: NewAuditEvent | None = None,
                        idempotency: IdempotencyRecord | None = None) -> IdentityRecord:
        """Store a new identity (Conflict when the id is taken), with its audit entry; a replayed
        `idempotency` key returns the identity first stored under it."""
        ...

    def get_identity(self, identity_id: str) -> IdentityRecord | None: ...

    def list_identities(
        self, *, role: str | None = None, revoked: bool | None = None, after: str | None = None, limit: int = 100
    ) -> Page[IdentityRecord]: ...

    def has_active_admin(self) -> bool:
        """Whether any identity not revoked holds the admin role (bootstrap creates one otherwise)."""
        ...

    def create_first_admin(self, identity: IdentityRecord, credential: CredentialRecord, *,
                           audit: Sequence[NewAuditEvent]) -> bool:
        """Store an administrator with its credential and audit entries unless an active administrator
        exists, in one transaction that processes sharing the database take in turn; whether it did.
        Conflict when the identity's id is taken."""
        ...

    def add_credential(self, credential: CredentialRecord, *, audit: NewAuditEvent | None = None,
                       idempotency: IdempotencyRecord | None = None) -> CredentialRecord:
        """Store a credential with its audit entry; a replayed `idempotency` key returns the credential
        first stored under it, without its secret hash (which the key's record does not keep)."""
        ...

    def get_credential(self, credential_id: str) -> tuple[CredentialRecord, IdentityRecord] | None:
        """A credential with its identity (what authenticating a token needs)."""
        ...

    def certificate_credentials(self, subjects: Sequence[str]) -> list[tuple[CredentialRecord, IdentityRecord]]:
        """Certificate credentials registered for any of `subjects`, with their identities."""
        ...

    def list_credentials(self, identity_id: str) -> list[CredentialRecord]:
        """An identity's credentials, newest first."""
        ...

    def revoke_credential(self, credential_id: str, *, by: str, at: dt.datetime,
                          audit: NewAuditEvent | None = None) -> CredentialRecord | None:
        """Revoke one credential (kept); None when it does not exist."""
        ...

    def revoke_identity(self, identity_id: str, *, by: str, at: dt.datetime,
                        audit: NewAuditEvent | None = None) -> IdentityRecord | None:
        """Revoke an identity and every credential of it; None when it does not exist."""
        ...

    def record_use(self, credential_id: str, *, at: dt.datetime, unless_since: dt.datetime) -> bool:
        """Record a sign-in session's use at `at` unless one at or after `unless_since` is recorded (by any
        process); whether it wrote."""
        ...

    # -- passwords and sign-in (store.passwords) --------------------------------------
    def get_password(self, identity_id: str) -> PasswordRecord | None:
        """The identity's password hash and sign-in throttle; None when it has no password."""
        ...

    def set_password(self, identity_id: str, password_hash: str, *, by: str, at: dt.datetime,
                     keep_session: str | None, audit: Callable[[list[str]], NewAuditEvent]) -> list[str]:
        """In one transaction: store a new password hash for the identity (which clears its throttle), revoke
        its sign-in sessions but `keep_session`, and append `audit(the revoked credential ids)`; those ids."""
        ...

    def record_sign_in_failure(self, identity_id: str, *, at: dt.datetime, limit: int,
                               lock_for: Callable[[int], dt.timedelta],
                               audit: Callable[[PasswordRecord], NewAuditEvent]) -> PasswordRecord | None:
        """Count one failed sign-in, atomically, in the database (so every replica counts together);
        the `limit`-th consecutive failure locks the identity for `lock_for(lock-outs so far)`, audited
        by `audit(the locked record)`. The record after counting; None when the identity has no password."""
        ...

    def get_sign_in_miss(self, identity_id: str) -> PasswordRecord | None:
        """The sign-in throttle of an id that cannot sign in (no hash); None when it was never tried."""
        ...

    def record_sign_in_miss(self, identity_id: str, *, at: dt.datetime, limit: int,
                            lock_for: Callable[[int], dt.timedelta]) -> PasswordRecord:
        """Count a failed sign-in as an id that cannot sign in (unknown, without a password, revoked) exactly
        as `record_sign_in_failure` counts an identity's, so that the lock-out tells no one which ids exist."""
        ...

    def complete_sign_in(self, identity_id: str, *, verified_hash: str, at: dt.datetime,
                         credential: CredentialRecord, audit: NewAuditEvent) -> PasswordRecord | None:
        """In one transaction: unless the password changed since `verified_hash` was checked (None) or
        the identity is locked (the record returned, nothing written), clear the throttle and store the
        sign-in's credential with its audit entry. The record as it was before."""
        ...

    # -- audit log --------------------------------------------------------------
    def append_audit(self, events: Sequence[NewAuditEvent]) -> None:
        """Append entries to the hash-chained audit log, in order, in one transaction."""
        ...

    def audit_entries(self, *, after_seq: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Entries in sequence order, from after `after_seq`."""
        ...

    # -- reviews, contests and the change log (store.reviews) ---------------------
    def find_recommendation(self, *, period: str, unit_code: str, flag: str, recommendation_id: int = 0,
                            official_id: str = "") -> RecommendationRecord | None:
        """The given id (if it has that name), else the latest recommendation of (period, unit, flag) about the
        unit (`official_id` empty) or about that official."""
        ...

    def get_recommendation(self, recommendation_id: int) -> RecommendationRecord | None: ...

    def review_recommendation(self, recommendation_id: int, *, decision: str, reason: str, reviewer: str,
                              at: dt.datetime, idempotency: IdempotencyRecord | None = None
                              ) -> tuple[RecommendationRecord, ReviewRecord]:
        """Record a decision (InvalidTransition if the status refuses it), its change and audit entry.

        With `idempotency`, a key already claimed by the same request returns the first reply instead.
        """
        ...

    def list_reviews(self, *, period: str, unit_code: str, flag: str, official_id: str = "") -> list[ReviewRecord]:
        """The decisions on the recommendations of a flag on a unit (`official_id` empty) or on an official."""
        ...

    def record_contest(self, contest: NewContest, *, idempotency: IdempotencyRecord | None = None) -> ContestRecord:
        """Store a contest with its change-log and audit entries, in one transaction.

        With `idempotency`, a key already claimed by the same request returns the first contest instead.
        """
        ...

    def get_contest(self, contest_id: int) -> ContestRecord | None: ...

    def list_contests(self, *, period: str, after: str | None = None, limit: int = 100) -> Page[ContestRecord]: ...

    def recommendation_changes(self, *, after_seq: int, limit: int = 500) -> list[ChangeRecord]:
        """Change-log entries after `after_seq`, in sequence order."""
        ...

    def recommendation_change_head(self) -> int:
        """The sequence number of the newest change-log entry, 0 when there is none."""
        ...

    # -- extensions (store.extensions) --------------------------------------------
    def request_extension(self, new: NewExtension, *, check: Callable[[ExtensionTarget | None], None],
                          idempotency: IdempotencyRecord | None = None) -> ExtensionRequested:
        """Record a pending request, superseding the assignment's pending one, with its audit entry.

        `check` is called in the writing transaction with what the request is checked against (None when
        the assignment does not exist); raising there records nothing. With `idempotency`, a key already
        claimed by the same request returns the first reply instead.
        """
        ...

    def decide_extension(self, extension_id: int, *, approve: bool, reason: str, decided_by: str, at: dt.datetime,
                         idempotency: IdempotencyRecord | None = None) -> ExtensionRecord:
        """Approve or refuse a pending request, with its audit entry; ExtensionNotPending when it is not
        pending, LookupError when it does not exist."""
        ...

    def get_extension(self, extension_id: int) -> ExtensionRecord | None: ...

    def list_extensions(
        self, *, assignment_id: str | None = None, unit_code: str | None = None,
        status: ExtensionStatus | None = None, requested: tuple[dt.datetime, dt.datetime] | None = None,
        decided: tuple[dt.datetime, dt.datetime] | None = None, as_of: dt.datetime | None = None,
        after: str | None = None, limit: int = 100,
    ) -> Page[ExtensionRecord]:
        """Requests in id order; `requested` and `decided` are [from, before) ranges of instants. Each
        record's `effective_due_on` is as of `as_of` (exclusive; None: every approval so far)."""
        ...

    # -- obstacles (store.obstacles) ------------------------------------------------
    def report_obstacle(self, new: NewObstacle, *, check: Callable[[ObstacleTarget | None], None],
                        idempotency: IdempotencyRecord | None = None) -> ObstacleRecord:
        """Record an open obstacle with its audit entry; `check` runs in the writing transaction with the
        assignment (None when it does not exist) and raising there records nothing."""
        ...

    def assign_obstacle(self, obstacle_id: int, *, resolver_unit: str, resolver_official: str, assigned_by: str,
                        at: dt.datetime, check: Callable[[bool], None],
                        idempotency: IdempotencyRecord | None = None) -> ObstacleRecord:
        """Name who resolves an open or assigned obstacle, with its audit entry; `check` gets whether the
        resolver unit exists. ObstacleResolved when it is resolved, LookupError when it does not exist."""
        ...

    def resolve_obstacle(self, obstacle_id: int, *, resolution: str, resolved_by: str, at: dt.datetime,
                         idempotency: IdempotencyRecord | None = None) -> ObstacleRecord:
        """Close an open or assigned obstacle with a resolution, with its audit entry; ObstacleResolved when
        it already is, LookupError when it does not exist."""
        ...

    def get_obstacle(self, obstacle_id: int) -> ObstacleRecord | None: ...

    def list_obstacles(
        self, *, assignment_id: str | None = None, unit_code: str | None = None,
        statuses: Iterable[ObstacleStatus] | None = None, reported_from: dt.datetime | None = None,
        reported_before: dt.datetime | None = None, resolved: tuple[dt.datetime, dt.datetime] | None = None,
        after: str | None = None, limit: int = 100,
    ) -> Page[ObstacleRecord]:
        """Obstacles in id order; `reported_*` bound the report's instant, `resolved` is a [from, before) range."""
        ...

    def open_obstacles(self, *, end: dt.date, closes_at: dt.datetime, unit_codes: Iterable[str] | None = None
                       ) -> dict[str, tuple[OpenObstacle, ...]]:
        """Per unit, the obstacles open at a quarter's end (reported before `closes_at`, not resolved before
        it) with their days open at `end`; units without any are absent."""
        ...

    # -- officials (store.officials) --------------------------------------------------
    def upsert_officials(self, batch: Sequence[Official], *, keep_activity: frozenset[str] = frozenset(),
                         idempotency: IdempotencyRecord | None = None, recorded_by: str = "") -> UpsertCounts:
        """Create or replace officials by id (atomic, audited); those in `keep_activity` keep their stored
        activity. MissingReferences for an appointment in a unit that does not exist."""
        ...

    def get_officials(self, official_ids: Sequence[str]) -> dict[str, Official]: ...

    def list_officials(self, *, unit_codes: Sequence[str] | None = None, active: bool | None = None,
                       after: str | None = None, limit: int = 100) -> Page[Official]:
        """Officials by id; `unit_codes`: with an appointment, at any time, in one of them."""
        ...

    def delete_official(self, official_id: str, *, actor: str, idempotency: IdempotencyRecord | None = None
                        ) -> bool:
        """Delete (audited) an official never evaluated and leading no assignment; LookupError when there is
        none, OfficialInUse when they were evaluated or lead an assignment (nothing written either way)."""
        ...

    def officials_in_force(self, *, start: dt.date, end: dt.date) -> list[Official]:
        """Active officials holding a position on some day of [start, end], by id."""
        ...

    def led_task_counts(self, *, start: dt.date, end: dt.date) -> dict[str, TaskCounts]:
        """Per official, the counts of the assignments they lead that are due in [start, end]."""
        ...

    def lead_officials(self) -> dict[str, str]:
        """The lead official of every assignment that names one."""
        ...

    def get_official_evaluation(self, *, official_id: str, period: str, revision: int = 0
                                ) -> OfficialEvaluationRecord | None: ...

    def list_official_evaluations(self, *, period: str, unit_codes: Sequence[str] | None = None,
                                  flagged: bool | None = None, after: str | None = None, limit: int = 100
                                  ) -> Page[OfficialEvaluationRecord]: ...

    def list_official_recommendations(
        self, *, period: str, kind: str | None = None, flag: str | None = None,
        status: RecommendationStatus | None = None, unit_codes: Sequence[str] | None = None,
        official_id: str | None = None, after: str | None = None, limit: int = 100,
    ) -> Page[RecommendationRecord]:
        """Recommendations about officials of a period, in (unit code, id) order."""
        ...
