"""Passwords for people, their sign-in throttle, and sign-in sessions among the credentials.

`identity_passwords` holds one row per identity that has a password: only its argon2id hash
(never the password), who set it and when, and the throttle of failed sign-ins. The throttle
lives here, in the database, so that replicas sharing it agree: ten failures on one replica
lock the identity on all of them.

`credentials.sign_in` marks the short-lived tokens SignIn issues (a person's session), so that
they are listed and revoked like other credentials and told apart from an administrator's tokens.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identity_passwords",
        sa.Column("identity_id", sa.String(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("set_at", sa.DateTime(), nullable=False),
        sa.Column("set_by", sa.Text(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("lockouts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("identity_id", name="pk_identity_passwords"),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.identity_id"],
                                name="fk_identity_passwords_identity_id"),
    )
    # A plain ALTER TABLE ... ADD COLUMN on both backends (a constant default needs no table copy).
    op.add_column("credentials", sa.Column("sign_in", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("credentials", "sign_in")
    op.drop_table("identity_passwords")
