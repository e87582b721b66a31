"""Extensions (gia hạn): a unit's request for more time on an assignment and the committee's decision.

`assignment_extensions` keeps every request (never deleted): pending until decided (approved or
refused, once), or superseded by a newer request for the same assignment. The approved rows decided
before an instant give each assignment's effective due date at that instant, which the evaluation
inputs use as of each quarter's end; `ix_assignment_extensions_status` serves that lookup.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "assignment_extensions",
        sa.Column("id", _SERIAL, autoincrement=True, nullable=False),
        sa.Column("assignment_id", sa.String(), nullable=False),
        sa.Column("requested_due_on", sa.Date(), nullable=False),
        sa.Column("due_on_at_request", sa.Date(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("superseded_by", _SERIAL, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_assignment_extensions"),
        sa.ForeignKeyConstraint(["assignment_id"], ["assignments.assignment_id"],
                                name="fk_assignment_extensions_assignment_id"),
        sa.ForeignKeyConstraint(["superseded_by"], ["assignment_extensions.id"],
                                name="fk_assignment_extensions_superseded_by"),
    )
    op.create_index("ix_assignment_extensions_assignment_id", "assignment_extensions", ["assignment_id", "id"])
    op.create_index("ix_assignment_extensions_status", "assignment_extensions", ["status", "decided_at"])


def downgrade() -> None:
    op.drop_index("ix_assignment_extensions_status", "assignment_extensions")
    op.drop_index("ix_assignment_extensions_assignment_id", "assignment_extensions")
    op.drop_table("assignment_extensions")
