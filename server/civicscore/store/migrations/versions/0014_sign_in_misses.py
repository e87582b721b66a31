"""The sign-in throttle of ids that cannot sign in (no such identity, no password, revoked).

Failed sign-ins as such an id are counted and lock it exactly as they lock an identity with a password, so
that the answers (and the lock-out) never tell which ids exist. One row per id tried, forgotten a day after
its last failure once it is not locked. `identity_passwords.last_failed_at` gives an identity's failures the
same memory: a failure a day after the last one starts the count again, for a real identity as for any id.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_misses",
        sa.Column("identity_id", sa.String(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("last_failed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("identity_id", name="pk_sign_in_misses"),
    )
    op.create_index("ix_sign_in_misses_last_failed_at", "sign_in_misses", ["last_failed_at"])
    op.add_column("identity_passwords", sa.Column("last_failed_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("identity_passwords", "last_failed_at")
    op.drop_index("ix_sign_in_misses_last_failed_at", "sign_in_misses")
    op.drop_table("sign_in_misses")
