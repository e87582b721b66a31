"""Obstacles (khó khăn, vướng mắc): what a unit reports blocks an assignment, and how it was resolved.

`assignment_obstacles` keeps every obstacle (never deleted): open when reported, assigned once the
committee office names who resolves it (a unit, or an official: free text until officials exist),
resolved (final) with a resolution. `ix_assignment_obstacles_status` serves the evaluation's lookup of
the obstacles open at a quarter's end.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "assignment_obstacles",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("assignment_id", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("requested_of", sa.Text(), nullable=False),
        sa.Column("reported_by", sa.Text(), nullable=False),
        sa.Column("reported_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("resolver_unit", sa.String(), nullable=True),
        sa.Column("resolver_official", sa.Text(), nullable=True),
        sa.Column("assigned_by", sa.Text(), nullable=True),
        sa.Column("assigned_at", sa.DateTime(), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_assignment_obstacles"),
        sa.ForeignKeyConstraint(["assignment_id"], ["assignments.assignment_id"],
                                name="fk_assignment_obstacles_assignment_id"),
        sa.ForeignKeyConstraint(["resolver_unit"], ["units.code"], name="fk_assignment_obstacles_resolver_unit"),
    )
    op.create_index("ix_assignment_obstacles_assignment_id", "assignment_obstacles", ["assignment_id", "id"])
    op.create_index("ix_assignment_obstacles_status", "assignment_obstacles", ["status", "reported_at"])


def downgrade() -> None:
    op.drop_index("ix_assignment_obstacles_status", "assignment_obstacles")
    op.drop_index("ix_assignment_obstacles_assignment_id", "assignment_obstacles")
    op.drop_table("assignment_obstacles")
