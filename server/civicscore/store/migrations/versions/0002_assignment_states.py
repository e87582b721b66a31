"""Assignment states: each assignment's current state, maintained on write.

Creates `assignment_states` (one row per assignment: its unit and due date,
and the fields of its latest outcome by reported_at, ties broken by arrival
order `seq`) and fills it from the existing assignments and outcomes, so the
evaluation aggregates stop ranking every outcome on each read.

Revision ID: 0002
Revises: 0001
Create Date: 2026-07-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The definition the window query in 0001's aggregates used: the latest outcome of each
# assignment by (reported_at, seq); assignments without an outcome get NULL state columns.
_BACKFILL = """
INSERT INTO assignment_states
    (due_on, unit_code, assignment_id, status, completed_on, quality, reminders, reported_at, outcome_seq)
SELECT a.due_on, a.unit_code, a.assignment_id,
       latest.status, latest.completed_on, latest.quality, latest.reminders, latest.reported_at, latest.seq
FROM assignments a
LEFT JOIN (
    SELECT o.assignment_id, o.status, o.completed_on, o.quality, o.reminders, o.reported_at, o.seq,
           ROW_NUMBER() OVER (PARTITION BY o.assignment_id ORDER BY o.reported_at DESC, o.seq DESC) AS position
    FROM outcomes o
) latest ON latest.assignment_id = a.assignment_id AND latest.position = 1
"""


def upgrade() -> None:
    op.create_table(
        "assignment_states",
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("unit_code", sa.String(), nullable=False),
        sa.Column("assignment_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=True),
        sa.Column("completed_on", sa.Date(), nullable=True),
        sa.Column("quality", sa.String(), nullable=True),
        sa.Column("reminders", sa.Integer(), nullable=True),
        sa.Column("reported_at", sa.DateTime(), nullable=True),
        sa.Column("outcome_seq", _SERIAL, nullable=True),
        sa.PrimaryKeyConstraint("due_on", "unit_code", "assignment_id", name="pk_assignment_states"),
        sa.UniqueConstraint("assignment_id", name="uq_assignment_states_assignment_id"),
        sa.ForeignKeyConstraint(
            ["assignment_id"], ["assignments.assignment_id"], name="fk_assignment_states_assignment_id"
        ),
        # SQLite stores the rows in primary key order: a quarter is one contiguous range.
        sqlite_with_rowid=False,
    )
    op.execute(_BACKFILL)


def downgrade() -> None:
    op.drop_table("assignment_states")
