"""Initial schema.

Units, assignments, outcomes, measurements, targets, evaluations,
recommendations and idempotency keys.

Revision ID: 0001
Revises:
Create Date: 2026-01-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# INTEGER PRIMARY KEY is SQLite's autoincrementing rowid; PostgreSQL gets BIGSERIAL.
_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("name_vi", sa.Text(), nullable=False),
        sa.Column("name_en", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("block", sa.String(), nullable=False),
        sa.Column("parent_code", sa.String(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("under_review_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("code", name="pk_units"),
        sa.ForeignKeyConstraint(
            ["parent_code"], ["units.code"], name="fk_units_parent_code",
            deferrable=True, initially="DEFERRED",
        ),
    )
    op.create_index("ix_units_block", "units", ["block"])
    op.create_index("ix_units_parent_code", "units", ["parent_code"])

    op.create_table(
        "assignments",
        sa.Column("assignment_id", sa.String(), nullable=False),
        sa.Column("unit_code", sa.String(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("area", sa.String(), nullable=False),
        sa.Column("assigned_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("source_document", sa.Text(), nullable=False),
        sa.Column("priority", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("assignment_id", name="pk_assignments"),
        sa.ForeignKeyConstraint(["unit_code"], ["units.code"], name="fk_assignments_unit_code"),
    )
    op.create_index("ix_assignments_unit_due", "assignments", ["unit_code", "due_on"])
    op.create_index("ix_assignments_due_on", "assignments", ["due_on"])

    op.create_table(
        "outcomes",
        sa.Column("seq", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("outcome_id", sa.String(), nullable=False),
        sa.Column("assignment_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("completed_on", sa.Date(), nullable=True),
        sa.Column("quality", sa.String(), nullable=True),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.Column("reporting_system", sa.String(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_outcomes"),
        sa.UniqueConstraint("outcome_id", name="uq_outcomes_outcome_id"),
        sa.ForeignKeyConstraint(
            ["assignment_id"], ["assignments.assignment_id"], name="fk_outcomes_assignment_id"
        ),
    )
    # Serves "latest report per assignment" (reported_at, then arrival order).
    op.create_index(
        "ix_outcomes_assignment_current", "outcomes", ["assignment_id", "reported_at", "seq"]
    )

    op.create_table(
        "measurements",
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("unit_code", sa.String(), nullable=False),
        sa.Column("indicator", sa.String(), nullable=False),
        sa.Column("numerator", sa.Float(), nullable=False),
        sa.Column("denominator", sa.Float(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.Column("reporting_system", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("period", "unit_code", "indicator", name="pk_measurements"),
        sa.ForeignKeyConstraint(["unit_code"], ["units.code"], name="fk_measurements_unit_code"),
    )
    op.create_index("ix_measurements_unit_code", "measurements", ["unit_code"])

    op.create_table(
        "targets",
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("indicator", sa.String(), nullable=False),
        sa.Column("scope_type", sa.String(), nullable=False),
        sa.Column("scope_code", sa.String(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("period", "indicator", "scope_type", "scope_code", name="pk_targets"),
    )

    op.create_table(
        "evaluations",
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("unit_code", sa.String(), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("result_digest", sa.String(), nullable=False),
        sa.Column("ruleset_version", sa.String(), nullable=False),
        sa.Column("ruleset_digest", sa.String(), nullable=False),
        sa.Column("inputs_digest", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("block", sa.String(), nullable=False),
        sa.Column("unit_name_vi", sa.Text(), nullable=False),
        sa.Column("assessable", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("grade", sa.String(), nullable=False),
        sa.Column("timeliness", sa.Float(), nullable=False),
        sa.Column("flags_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("period", "unit_code", "revision", name="pk_evaluations"),
        sa.ForeignKeyConstraint(["unit_code"], ["units.code"], name="fk_evaluations_unit_code"),
    )
    op.create_index("ix_evaluations_unit_code", "evaluations", ["unit_code"])

    op.create_table(
        "recommendations",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("unit_code", sa.String(), nullable=False),
        sa.Column("flag", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("label_vi", sa.Text(), nullable=False),
        sa.Column("label_en", sa.Text(), nullable=False),
        sa.Column("reasons_json", sa.Text(), nullable=False),
        sa.Column("evaluation_revision", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("superseded_by", _SERIAL, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_recommendations"),
        sa.ForeignKeyConstraint(
            ["period", "unit_code", "evaluation_revision"],
            ["evaluations.period", "evaluations.unit_code", "evaluations.revision"],
            name="fk_recommendations_evaluation",
        ),
        sa.ForeignKeyConstraint(
            ["superseded_by"], ["recommendations.id"], name="fk_recommendations_superseded_by"
        ),
    )
    op.create_index("ix_recommendations_period_unit", "recommendations", ["period", "unit_code", "id"])
    op.create_index("ix_recommendations_period_status", "recommendations", ["period", "status"])

    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("method", sa.String(), nullable=False),
        sa.Column("request_digest", sa.String(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_idempotency_keys"),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_table("recommendations")
    op.drop_table("evaluations")
    op.drop_table("targets")
    op.drop_table("measurements")
    op.drop_table("outcomes")
    op.drop_table("assignments")
    op.drop_table("units")
