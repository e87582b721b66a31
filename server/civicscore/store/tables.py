"""SQLModel tables: the schema the queries run against.

The authoritative DDL lives in `migrations/versions/`; these classes mirror it
and a test checks that the two agree. Queries use the Core `Table` objects
exported at the bottom (`units`, `outcomes`, ...), never one ORM object per row.

Stored as given: text (the api layer NFC-normalises), enum values as their
string value, timestamps as naive UTC (`UtcDateTime` re-attaches the zone).
Measurements keep only the current value per (period, unit, indicator): a
report with an older `reported_at` than the stored one is ignored, a newer one
replaces it (no history; outcomes are the append-only record).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlmodel import Field, SQLModel

metadata = SQLModel.metadata
# Constraint names as the migrations spell them, so autogenerate diffs stay empty.
metadata.naming_convention = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ix": "ix_%(table_name)s_%(column_0_name)s",
}

def _recorded_by() -> Column[str]:
    """Who wrote the row (the caller's identity); the database fills "" when an insert leaves it out."""
    return Column("recorded_by", Text, nullable=False, server_default="")


# An INTEGER PRIMARY KEY is SQLite's rowid alias (autoincrement); PostgreSQL gets a bigint.
SerialKey = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware datetimes stored as naive UTC, so text (SQLite) and timestamps (PostgreSQL) sort alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # the domain promises UTC; a naive value is taken as UTC
            return value
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC)


class UnitRow(SQLModel, table=True):
    """A department, ward, commune or district; `under_review_json` lists periods under review."""

    __tablename__ = "units"
    __table_args__ = (
        Index("ix_units_block", "block"),
        Index("ix_units_parent_code", "parent_code"),
    )

    code: str = Field(sa_type=String, primary_key=True)
    name_vi: str = Field(sa_type=Text)
    name_en: str = Field(sa_type=Text)
    kind: str = Field(sa_type=String)
    block: str = Field(sa_type=String)
    # Deferred so a batch may name a parent that appears later in the same batch.
    parent_code: str | None = Field(
        default=None,
        sa_column=Column(
            "parent_code",
            String,
            ForeignKey("units.code", deferrable=True, initially="DEFERRED"),
            nullable=True,
        ),
    )
    active: bool = Field(sa_type=Boolean)
    under_review_json: str = Field(sa_type=Text)
    recorded_by: str = Field(sa_column=_recorded_by())

class AssignmentRow(SQLModel, table=True):
    """A task assigned to a unit."""

    __tablename__ = "assignments"
    __table_args__ = (
        Index("ix_assignments_unit_due", "unit_code", "due_on"),
        Index("ix_assignments_due_on", "due_on"),
        Index("ix_assignments_lead_official", "lead_official"),
    )

    assignment_id: str = Field(sa_type=String, primary_key=True)
    unit_code: str = Field(sa_type=String, foreign_key="units.code")
    title: str = Field(sa_type=Text)
    area: str = Field(sa_type=String)
    assigned_on: dt.date = Field(sa_type=Date)
    due_on: dt.date = Field(sa_type=Date)
    source_document: str = Field(sa_type=Text)
    priority: str = Field(sa_type=String)
    recorded_by: str = Field(sa_column=_recorded_by())
    # The official who leads it (người chủ trì), if any (0013).
    lead_official: str | None = Field(default=None, sa_type=String, nullable=True,
                                      foreign_key="officials.official_id")

class OutcomeRow(SQLModel, table=True):
    """An immutable report; `seq` is the arrival order that breaks `reported_at` ties."""

    __tablename__ = "outcomes"
    __table_args__ = (
        UniqueConstraint("outcome_id", name="uq_outcomes_outcome_id"),
        Index("ix_outcomes_assignment_current", "assignment_id", "reported_at", "seq"),
    )

    seq: int | None = Field(default=None, sa_type=SerialKey, primary_key=True)
    outcome_id: str = Field(sa_type=String)
    assignment_id: str = Field(sa_type=String, foreign_key="assignments.assignment_id")
    status: str = Field(sa_type=String)
    completed_on: dt.date | None = Field(default=None, sa_type=Date, nullable=True)
    quality: str | None = Field(default=None, sa_type=String, nullable=True)
    reminders: int = Field(sa_type=Integer)
    reported_at: dt.datetime = Field(sa_type=UtcDateTime)
    reporting_system: str = Field(sa_type=String)
    note: str = Field(sa_type=Text)
    recorded_by: str = Field(sa_column=_recorded_by())

class AssignmentStateRow(SQLModel, table=True):
    """Each assignment's current state, kept in step with `assignments` and `outcomes` by the store.

    One row per assignment, written in the same transaction as the assignment
    (`unit_code`, `due_on` copied from it) and as every outcome batch (the
    state columns). The state is the outcome with the greatest
    (`reported_at`, `seq`), the definition of DEFAULT-RULES.md "Inputs"; all
    state columns are NULL while an assignment has no outcome. It exists so
    that the evaluation aggregates read one table range instead of ranking
    every outcome of the quarter (see `aggregates`).

    The primary key starts with `unit_code` (migration 0016) so that on SQLite
    (WITHOUT ROWID, rows stored in key order) a unit's rows are contiguous: a
    batch of one unit's outcomes rewrites few pages, the aggregates count per
    unit in key order without sorting, and the evaluation reads a range of units
    as one range of the table; `assignment_id` is unique on its own and is how
    outcome batches find the row. Indexed columns never change when an outcome
    arrives, so a state update rewrites one row and no index entry (on
    PostgreSQL as a HOT update, for which each page keeps 40% free: fillfactor
    60, migration 0017).
    """

    __tablename__ = "assignment_states"
    __table_args__ = (
        UniqueConstraint("assignment_id", name="uq_assignment_states_assignment_id"),
        {"sqlite_with_rowid": False, "postgresql_with": {"fillfactor": 60}},
    )

    unit_code: str = Field(sa_type=String, primary_key=True)
    due_on: dt.date = Field(sa_type=Date, primary_key=True)
    assignment_id: str = Field(sa_type=String, primary_key=True, foreign_key="assignments.assignment_id")
    status: str | None = Field(default=None, sa_type=String, nullable=True)
    completed_on: dt.date | None = Field(default=None, sa_type=Date, nullable=True)
    quality: str | None = Field(default=None, sa_type=String, nullable=True)
    reminders: int | None = Field(default=None, sa_type=Integer, nullable=True)
    reported_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)
    # The state's outcome (no foreign key: outcomes are append-only and written in the same
    # transaction; a parent lookup per state update would cost more than it could ever catch).
    outcome_seq: int | None = Field(default=None, sa_type=SerialKey, nullable=True)


class MeasurementRow(SQLModel, table=True):
    """The current value of an indicator for a unit and period (latest `reported_at` wins)."""

    __tablename__ = "measurements"
    __table_args__ = (Index("ix_measurements_unit_code", "unit_code"),)

    period: str = Field(sa_type=String, primary_key=True)
    unit_code: str = Field(sa_type=String, primary_key=True, foreign_key="units.code")
    indicator: str = Field(sa_type=String, primary_key=True)
    numerator: float = Field(sa_type=Float)
    denominator: float = Field(sa_type=Float)
    reported_at: dt.datetime = Field(sa_type=UtcDateTime)
    reporting_system: str = Field(sa_type=String)
    recorded_by: str = Field(sa_column=_recorded_by())

class TargetRow(SQLModel, table=True):
    """A target for one unit (`scope_type` 'unit') or one unit kind ('kind')."""

    __tablename__ = "targets"

    period: str = Field(sa_type=String, primary_key=True)
    indicator: str = Field(sa_type=String, primary_key=True)
    scope_type: str = Field(sa_type=String, primary_key=True)
    scope_code: str = Field(sa_type=String, primary_key=True)
    value: float = Field(sa_type=Float)
    recorded_by: str = Field(sa_column=_recorded_by())

class EvaluationRow(SQLModel, table=True):
    """One revision of a unit's evaluation for a period; listing columns are denormalised."""

    __tablename__ = "evaluations"
    __table_args__ = (
        Index("ix_evaluations_unit_code", "unit_code"),
    )

    period: str = Field(sa_type=String, primary_key=True)
    unit_code: str = Field(sa_type=String, primary_key=True, foreign_key="units.code")
    revision: int = Field(sa_type=Integer, primary_key=True, sa_column_kwargs={"autoincrement": False})
    result_json: str = Field(sa_type=Text)
    result_digest: str = Field(sa_type=String)
    ruleset_version: str = Field(sa_type=String)
    ruleset_digest: str = Field(sa_type=String)
    inputs_digest: str = Field(sa_type=String)
    created_at: dt.datetime = Field(sa_type=UtcDateTime)
    block: str = Field(sa_type=String)
    unit_name_vi: str = Field(sa_type=Text)
    assessable: bool = Field(sa_type=Boolean)
    score: float | None = Field(default=None, sa_type=Float, nullable=True)
    grade: str = Field(sa_type=String)
    timeliness: float = Field(sa_type=Float)
    flags_json: str = Field(sa_type=Text)
    recorded_by: str = Field(sa_column=_recorded_by())
    # The reply's body, encoded once by the engine worker (api.evaluation_wire); 0 and NULL when none is stored.
    # `reply_of` is the result_digest it was made from: a result rewritten in place is not served a stale body.
    reply_format: int = Field(sa_column=Column("reply_format", Integer, nullable=False, server_default="0"))
    reply_pb: bytes | None = Field(default=None, sa_type=LargeBinary, nullable=True)
    reply_of: str = Field(sa_column=Column("reply_of", String, nullable=False, server_default=""))

class RecommendationRow(SQLModel, table=True):
    """A flag raised by an evaluation revision; `superseded_by` points at its successor, if any.

    Its reasons live in `recommendation_reasons`: they are large (kilobytes of
    JSON) and never change, while `status` and `superseded_by` do, and SQLite
    rewrites a whole row, overflow pages included, on every update.
    """

    __tablename__ = "recommendations"
    __table_args__ = (
        Index("ix_recommendations_period_unit", "period", "unit_code", "id"),
        Index("ix_recommendations_period_status", "period", "status"),
        Index("ix_recommendations_period_official", "period", "official_id"),
    )

    id: int | None = Field(default=None, sa_type=SerialKey, primary_key=True)
    period: str = Field(sa_type=String)
    unit_code: str = Field(sa_type=String)
    flag: str = Field(sa_type=String)
    kind: str = Field(sa_type=String)
    level: int = Field(sa_type=Integer)
    label_vi: str = Field(sa_type=Text)
    label_en: str = Field(sa_type=Text)
    evaluation_revision: int = Field(sa_type=Integer)
    status: str = Field(sa_type=String)
    created_at: dt.datetime = Field(sa_type=UtcDateTime)
    superseded_by: int | None = Field(
        default=None,
        sa_type=SerialKey,
        foreign_key="recommendations.id",
        nullable=True,
    )
    # '' for a recommendation about a unit (raised by `evaluations` row period, unit_code,
    # evaluation_revision); else the official it is about (raised by their `official_evaluations` row
    # period, official_id, evaluation_revision; `unit_code` is the unit through which they are reached).
    official_id: str = Field(sa_column=Column("official_id", String, nullable=False, server_default=""))


class RecommendationReasonRow(SQLModel, table=True):
    """The fired rules behind one recommendation (canonical JSON list of FiredRule), written once."""

    __tablename__ = "recommendation_reasons"

    recommendation_id: int = Field(
        sa_type=SerialKey, primary_key=True, foreign_key="recommendations.id",
        sa_column_kwargs={"autoincrement": False},
    )
    reasons_json: str = Field(sa_type=Text)


class IdempotencyKeyRow(SQLModel, table=True):
    """A claimed idempotency key and the canonical JSON of the write's result."""

    __tablename__ = "idempotency_keys"

    key: str = Field(sa_type=String, primary_key=True)
    method: str = Field(sa_type=String)
    request_digest: str = Field(sa_type=String)
    result_json: str = Field(sa_type=Text)
    created_at: dt.datetime = Field(sa_type=UtcDateTime)


class RulesetRow(SQLModel, table=True):
    """The content of a ruleset ever activated, by digest; written once, never changed."""

    __tablename__ = "rulesets"

    digest: str = Field(sa_type=String, primary_key=True)
    ruleset_id: str = Field(sa_type=String)
    version: str = Field(sa_type=String)
    in_force_from: str = Field(sa_type=String)
    files_json: str = Field(sa_type=Text)  # canonical JSON object {path: content}
    stored_at: dt.datetime = Field(sa_type=UtcDateTime)


class RulesetActivationRow(SQLModel, table=True):
    """One activation of a stored ruleset; a rollback marks it, nothing is ever deleted."""

    __tablename__ = "ruleset_activations"

    seq: int | None = Field(default=None, sa_type=SerialKey, primary_key=True)
    digest: str = Field(sa_type=String, foreign_key="rulesets.digest")
    version: str = Field(sa_type=String)
    in_force_from: str = Field(sa_type=String)
    actor: str = Field(sa_type=Text)
    source: str = Field(sa_type=String)
    reason: str = Field(sa_type=Text)
    activated_at: dt.datetime = Field(sa_type=UtcDateTime)
    rolled_back_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)
    rolled_back_by: str | None = Field(default=None, sa_type=Text, nullable=True)
    rollback_reason: str | None = Field(default=None, sa_type=Text, nullable=True)


class IdentityRow(SQLModel, table=True):
    """A calling system or person; roles and scope are JSON lists. Revoked, never deleted."""

    __tablename__ = "identities"

    identity_id: str = Field(sa_type=String, primary_key=True)
    display_name: str = Field(sa_type=Text)
    roles_json: str = Field(sa_type=Text)
    scope_units_json: str = Field(sa_type=Text)
    created_at: dt.datetime = Field(sa_type=UtcDateTime)
    created_by: str = Field(sa_type=Text)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)
    revoked_by: str | None = Field(default=None, sa_type=Text, nullable=True)


class CredentialRow(SQLModel, table=True):
    """A token (only the SHA-256 of its secret) or a certificate subject of an identity."""

    __tablename__ = "credentials"
    __table_args__ = (
        Index("ix_credentials_identity_id", "identity_id"),
        Index("ix_credentials_certificate_subject", "certificate_subject"),
    )

    credential_id: str = Field(sa_type=String, primary_key=True)
    identity_id: str = Field(sa_type=String, foreign_key="identities.identity_id")
    kind: str = Field(sa_type=String)  # token | certificate
    secret_sha256: str | None = Field(default=None, sa_type=String, nullable=True)
    certificate_subject: str | None = Field(default=None, sa_type=Text, nullable=True)
    expires_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)
    created_at: dt.datetime = Field(sa_type=UtcDateTime)
    created_by: str = Field(sa_type=Text)
    revoked_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)
    revoked_by: str | None = Field(default=None, sa_type=Text, nullable=True)
    # A person's sign-in session (a short-lived token from SignIn), 0009.
    sign_in: bool = Field(default=False, sa_column=Column("sign_in", Boolean, nullable=False,
                                                          server_default=false()))
    # A sign-in session's last use, written at most about once a minute (idle expiry), 0010.
    last_used_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)


class IdentityPasswordRow(SQLModel, table=True):
    """An identity's password, as its argon2id hash only, and the throttle of failed sign-ins (0009).

    The throttle is here, in the database, so that every replica sees the same count."""

    __tablename__ = "identity_passwords"

    identity_id: str = Field(sa_type=String, primary_key=True, foreign_key="identities.identity_id")
    password_hash: str = Field(sa_type=Text)  # `$argon2id$…`, never the password
    set_at: dt.datetime = Field(sa_type=UtcDateTime)
    set_by: str = Field(sa_type=Text)
    failed_attempts: int = Field(sa_type=Integer)  # consecutive failures since the last success or lock-out
    lockouts: int = Field(sa_type=Integer)  # lock-outs since the last success: each doubles the next one
    locked_until: dt.datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)
    # The last failure (0014): one a day later starts the count again (as for `sign_in_misses`).
    last_failed_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)


class SignInMissRow(SQLModel, table=True):
    """The sign-in throttle of an id that cannot sign in (unknown, without a password, or revoked; 0014): the
    same counts as `identity_passwords`, so that failures lock it as they lock an identity that exists."""

    __tablename__ = "sign_in_misses"
    __table_args__ = (Index("ix_sign_in_misses_last_failed_at", "last_failed_at"),)

    identity_id: str = Field(sa_type=String, primary_key=True)
    failed_attempts: int = Field(sa_type=Integer)
    lockouts: int = Field(sa_type=Integer)
    locked_until: dt.datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)
    last_failed_at: dt.datetime = Field(sa_type=UtcDateTime)


class AuditEventRow(SQLModel, table=True):
    """One entry of the append-only audit log; `entry_hash` chains it to the entry before.

    `seq` is numbered by the writer from the chain (the last entry's + 1, under the audit lock),
    not by a database sequence, which would leave a gap for every transaction that died (0008)."""

    __tablename__ = "audit_events"

    seq: int | None = Field(default=None, sa_type=SerialKey, primary_key=True,
                            sa_column_kwargs={"autoincrement": False})
    at: dt.datetime = Field(sa_type=UtcDateTime)
    actor: str = Field(sa_type=Text)
    action: str = Field(sa_type=String)
    target: str = Field(sa_type=Text)
    outcome: str = Field(sa_type=String)  # done | refused
    detail_json: str = Field(sa_type=Text)
    prev_hash: str = Field(sa_type=String)
    entry_hash: str = Field(sa_type=String)


class RecommendationReviewRow(SQLModel, table=True):
    """One committee decision on a recommendation; append-only, so superseding never erases it."""

    __tablename__ = "recommendation_reviews"
    __table_args__ = (Index("ix_recommendation_reviews_recommendation_id", "recommendation_id", "seq"),)

    seq: int | None = Field(default=None, sa_type=SerialKey, primary_key=True)
    recommendation_id: int = Field(sa_type=SerialKey, foreign_key="recommendations.id",
                                   sa_column_kwargs={"autoincrement": False})
    decision: str = Field(sa_type=String)  # approved | rejected | deferred
    previous_status: str = Field(sa_type=String)
    reason: str = Field(sa_type=Text)
    reviewer: str = Field(sa_type=Text)
    decided_at: dt.datetime = Field(sa_type=UtcDateTime)


class RecommendationContestRow(SQLModel, table=True):
    """A unit's reply to a recommendation: its text, corrections, and the evaluation before and after."""

    __tablename__ = "recommendation_contests"
    __table_args__ = (Index("ix_recommendation_contests_period", "period", "id"),)

    id: int | None = Field(default=None, sa_type=SerialKey, primary_key=True)
    recommendation_id: int = Field(sa_type=SerialKey, foreign_key="recommendations.id",
                                   sa_column_kwargs={"autoincrement": False})
    period: str = Field(sa_type=String)
    unit_code: str = Field(sa_type=String)
    text: str = Field(sa_type=Text)
    corrections_json: str = Field(sa_type=Text)
    accepted: int = Field(sa_type=Integer)
    duplicates: int = Field(sa_type=Integer)
    before_json: str = Field(sa_type=Text)
    after_json: str = Field(sa_type=Text)
    contested_by: str = Field(sa_type=Text)
    created_at: dt.datetime = Field(sa_type=UtcDateTime)


class RecommendationChangeRow(SQLModel, table=True):
    """Append-only log of recommendation changes; `seq` is the watchers' cursor, in commit order."""

    __tablename__ = "recommendation_changes"

    seq: int | None = Field(default=None, sa_type=SerialKey, primary_key=True)
    recommendation_id: int = Field(sa_type=SerialKey, foreign_key="recommendations.id",
                                   sa_column_kwargs={"autoincrement": False})
    change: str = Field(sa_type=String)  # raised | superseded | reviewed | contested
    changed_at: dt.datetime = Field(sa_type=UtcDateTime)


class AssignmentExtensionRow(SQLModel, table=True):
    """A unit's request for more time on an assignment and the committee's decision on it (0011).

    Rows are never deleted: a decision fills `status` and the `decided_*` columns once, a newer request
    made while this one is pending sets `superseded_by`. The approved rows decided before an instant
    give each assignment's effective due date at that instant (see `aggregates`)."""

    __tablename__ = "assignment_extensions"
    __table_args__ = (
        Index("ix_assignment_extensions_assignment_id", "assignment_id", "id"),
        Index("ix_assignment_extensions_status", "status", "decided_at"),
    )

    id: int | None = Field(default=None, sa_type=SerialKey, primary_key=True)
    assignment_id: str = Field(sa_type=String, foreign_key="assignments.assignment_id")
    requested_due_on: dt.date = Field(sa_type=Date)
    due_on_at_request: dt.date = Field(sa_type=Date)  # the due date in force when it was requested
    reason: str = Field(sa_type=Text)
    requested_by: str = Field(sa_type=Text)
    requested_at: dt.datetime = Field(sa_type=UtcDateTime)
    status: str = Field(sa_type=String)  # pending | approved | refused | superseded
    decision_reason: str | None = Field(default=None, sa_type=Text, nullable=True)
    decided_by: str | None = Field(default=None, sa_type=Text, nullable=True)
    decided_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)
    superseded_by: int | None = Field(
        default=None, sa_type=SerialKey, foreign_key="assignment_extensions.id", nullable=True,
    )



class AssignmentObstacleRow(SQLModel, table=True):
    """An obstacle a unit reported on an assignment, its resolver and its resolution (0012).

    Rows are never deleted: assigning fills `resolver_*` and `assigned_*` (again on a reassignment),
    resolving fills `resolution` and `resolved_*` once; `status` is open | assigned | resolved."""

    __tablename__ = "assignment_obstacles"
    __table_args__ = (
        Index("ix_assignment_obstacles_assignment_id", "assignment_id", "id"),
        Index("ix_assignment_obstacles_status", "status", "reported_at"),
    )

    id: int | None = Field(default=None, sa_type=SerialKey, primary_key=True)
    assignment_id: str = Field(sa_type=String, foreign_key="assignments.assignment_id")
    description: str = Field(sa_type=Text)  # what blocks the assignment
    request: str = Field(sa_type=Text)  # what the unit asks for
    requested_of: str = Field(sa_type=Text)  # from whom ("" when not said)
    reported_by: str = Field(sa_type=Text)
    reported_at: dt.datetime = Field(sa_type=UtcDateTime)
    status: str = Field(sa_type=String)  # open | assigned | resolved
    resolver_unit: str | None = Field(default=None, sa_type=String, foreign_key="units.code", nullable=True)
    resolver_official: str | None = Field(default=None, sa_type=Text, nullable=True)
    assigned_by: str | None = Field(default=None, sa_type=Text, nullable=True)
    assigned_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)
    resolution: str | None = Field(default=None, sa_type=Text, nullable=True)
    resolved_by: str | None = Field(default=None, sa_type=Text, nullable=True)
    resolved_at: dt.datetime | None = Field(default=None, sa_type=UtcDateTime, nullable=True)

class OfficialRow(SQLModel, table=True):
    """A person the committee may commend or criticise (0013): only what the evaluation needs.

    `appointments_json` is the canonical JSON of the positions as sent; `official_appointments` holds
    the same positions as rows (the reference to units, the lookup by unit). Rows are never deleted once
    the person was evaluated or leads an assignment: `active` false instead."""

    __tablename__ = "officials"

    official_id: str = Field(sa_type=String, primary_key=True)
    display_name: str = Field(sa_type=Text)
    appointments_json: str = Field(sa_type=Text)
    active: bool = Field(sa_type=Boolean)
    under_review_json: str = Field(sa_type=Text)
    recorded_by: str = Field(sa_column=_recorded_by())


class OfficialAppointmentRow(SQLModel, table=True):
    """One position of an official (0013), `ordinal` its place in the official's list."""

    __tablename__ = "official_appointments"
    __table_args__ = (Index("ix_official_appointments_unit_code", "unit_code"),)

    official_id: str = Field(sa_type=String, primary_key=True, foreign_key="officials.official_id")
    ordinal: int = Field(sa_type=Integer, primary_key=True, sa_column_kwargs={"autoincrement": False})
    unit_code: str = Field(sa_type=String, foreign_key="units.code")
    position: str = Field(sa_type=String)  # head | deputy | officer
    start_on: dt.date = Field(sa_type=Date)
    end_on: dt.date | None = Field(default=None, sa_type=Date, nullable=True)


class OfficialEvaluationRow(SQLModel, table=True):
    """An official's result for a quarter (0013); a new revision when it changes, as for units."""

    __tablename__ = "official_evaluations"
    __table_args__ = (Index("ix_official_evaluations_official_id", "official_id"),)

    period: str = Field(sa_type=String, primary_key=True)
    official_id: str = Field(sa_type=String, primary_key=True, foreign_key="officials.official_id")
    revision: int = Field(sa_type=Integer, primary_key=True, sa_column_kwargs={"autoincrement": False})
    unit_code: str = Field(sa_type=String)
    result_json: str = Field(sa_type=Text)
    result_digest: str = Field(sa_type=String)
    ruleset_version: str = Field(sa_type=String)
    ruleset_digest: str = Field(sa_type=String)
    inputs_digest: str = Field(sa_type=String)
    flags_json: str = Field(sa_type=Text)
    created_at: dt.datetime = Field(sa_type=UtcDateTime)
    recorded_by: str = Field(sa_column=_recorded_by())


def _table(model: type[SQLModel]) -> Table:
    table = model.__table__  # type: ignore[attr-defined]
    assert isinstance(table, Table)
    return table


units = _table(UnitRow)
assignments = _table(AssignmentRow)
outcomes = _table(OutcomeRow)
assignment_states = _table(AssignmentStateRow)
measurements = _table(MeasurementRow)
targets = _table(TargetRow)
evaluations = _table(EvaluationRow)
recommendations = _table(RecommendationRow)
recommendation_reasons = _table(RecommendationReasonRow)
idempotency_keys = _table(IdempotencyKeyRow)
rulesets = _table(RulesetRow)
ruleset_activations = _table(RulesetActivationRow)
identities = _table(IdentityRow)
credentials = _table(CredentialRow)
identity_passwords = _table(IdentityPasswordRow)
audit_events = _table(AuditEventRow)
recommendation_reviews = _table(RecommendationReviewRow)
recommendation_contests = _table(RecommendationContestRow)
recommendation_changes = _table(RecommendationChangeRow)
assignment_extensions = _table(AssignmentExtensionRow)
assignment_obstacles = _table(AssignmentObstacleRow)
officials = _table(OfficialRow)
official_appointments = _table(OfficialAppointmentRow)
official_evaluations = _table(OfficialEvaluationRow)
sign_in_misses = _table(SignInMissRow)
