"""Ruleset versions: every ruleset ever activated and every activation.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rulesets",
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("ruleset_id", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("in_force_from", sa.String(), nullable=False),
        sa.Column("files_json", sa.Text(), nullable=False),
        sa.Column("stored_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_rulesets"),
    )
    op.create_table(
        "ruleset_activations",
        sa.Column("seq", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("version", sa.String(), nullable=False),
        sa.Column("in_force_from", sa.String(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("activated_at", sa.DateTime(), nullable=False),
        sa.Column("rolled_back_at", sa.DateTime(), nullable=True),
        sa.Column("rolled_back_by", sa.Text(), nullable=True),
        sa.Column("rollback_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_ruleset_activations"),
        sa.ForeignKeyConstraint(["digest"], ["rulesets.digest"], name="fk_ruleset_activations_digest"),
    )


def downgrade() -> None:
    op.drop_table("ruleset_activations")
    op.drop_table("rulesets")
