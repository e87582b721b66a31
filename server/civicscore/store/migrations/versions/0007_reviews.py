"""The committee's side: review decisions, units' contests, and the recommendation change log.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "recommendation_reviews",
        sa.Column("seq", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("recommendation_id", _SERIAL, nullable=False),
        sa.Column("decision", sa.String(), nullable=False),
        sa.Column("previous_status", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reviewer", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_recommendation_reviews"),
        sa.ForeignKeyConstraint(["recommendation_id"], ["recommendations.id"],
                                name="fk_recommendation_reviews_recommendation_id"),
    )
    op.create_index("ix_recommendation_reviews_recommendation_id", "recommendation_reviews",
                    ["recommendation_id", "seq"])
    op.create_table(
        "recommendation_contests",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("recommendation_id", _SERIAL, nullable=False),
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("unit_code", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("corrections_json", sa.Text(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
        sa.Column("before_json", sa.Text(), nullable=False),
        sa.Column("after_json", sa.Text(), nullable=False),
        sa.Column("contested_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recommendation_contests"),
        sa.ForeignKeyConstraint(["recommendation_id"], ["recommendations.id"],
                                name="fk_recommendation_contests_recommendation_id"),
    )
    op.create_index("ix_recommendation_contests_period", "recommendation_contests", ["period", "id"])
    op.create_table(
        "recommendation_changes",
        sa.Column("seq", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("recommendation_id", _SERIAL, nullable=False),
        sa.Column("change", sa.String(), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_recommendation_changes"),
        sa.ForeignKeyConstraint(["recommendation_id"], ["recommendations.id"],
                                name="fk_recommendation_changes_recommendation_id"),
    )


def downgrade() -> None:
    op.drop_table("recommendation_changes")
    op.drop_index("ix_recommendation_contests_period", "recommendation_contests")
    op.drop_table("recommendation_contests")
    op.drop_index("ix_recommendation_reviews_recommendation_id", "recommendation_reviews")
    op.drop_table("recommendation_reviews")
