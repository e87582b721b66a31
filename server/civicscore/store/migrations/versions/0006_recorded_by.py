"""Who wrote each row: the authenticated identity of the call that last created or changed it.

Rows written before identities existed keep an empty `recorded_by`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("units", "assignments", "outcomes", "measurements", "targets", "evaluations")


def upgrade() -> None:
    for table in TABLES:
        # A plain ALTER TABLE ... ADD COLUMN on both backends (a constant default needs no table copy).
        op.add_column(table, sa.Column("recorded_by", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    for table in TABLES:
        op.drop_column(table, "recorded_by")
