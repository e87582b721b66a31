"""When each sign-in session was last used, for their idle expiry.

`credentials.last_used_at` is written by the server that authenticates a sign-in session's call, at
most about once a minute per session, so that every replica sharing the database ends a session
after the same idle time (the state is here, never in one process's memory). Null for tokens
issued by an administrator and certificates, which do not idle out; a session signed in before
this revision counts from its sign-in.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column without a default: a plain ALTER TABLE ... ADD COLUMN on both backends.
    op.add_column("credentials", sa.Column("last_used_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("credentials", "last_used_at")
