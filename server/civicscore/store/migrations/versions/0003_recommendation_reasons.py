"""Recommendation reasons in their own table.

Moves `recommendations.reasons_json` (kilobytes of JSON, never changed) into
`recommendation_reasons`, so that superseding a recommendation (an update of
`status` and `superseded_by`) rewrites a small row: SQLite rewrites a whole
row, overflow pages included, on every update.

Revision ID: 0003
Revises: 0002
Create Date: 2026-07-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "recommendation_reasons",
        sa.Column("recommendation_id", _SERIAL, autoincrement=False, nullable=False),
        sa.Column("reasons_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("recommendation_id", name="pk_recommendation_reasons"),
        sa.ForeignKeyConstraint(
            ["recommendation_id"], ["recommendations.id"], name="fk_recommendation_reasons_recommendation_id"
        ),
    )
    op.execute(
        "INSERT INTO recommendation_reasons (recommendation_id, reasons_json) "
        "SELECT id, reasons_json FROM recommendations"
    )
    # A plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch copy of the table.
    op.drop_column("recommendations", "reasons_json")


def downgrade() -> None:
    # SQLite adds a NOT NULL column only with a default; PostgreSQL drops it again below.
    op.add_column(
        "recommendations", sa.Column("reasons_json", sa.Text(), nullable=False, server_default="")
    )
    op.execute(
        "UPDATE recommendations SET reasons_json = (SELECT r.reasons_json FROM recommendation_reasons r "
        "WHERE r.recommendation_id = recommendations.id)"
    )
    if op.get_context().dialect.name == "postgresql":
        op.alter_column("recommendations", "reasons_json", server_default=None)
    op.drop_table("recommendation_reasons")
