"""Audit entries are numbered from the chain, not by a database sequence.

A PostgreSQL sequence never gives a value back: a replica killed between inserting an audit
entry and committing left a gap that `audit verify` reported as a deleted entry forever. The
writer now numbers each entry as the last entry's number + 1 under the audit lock (see
`store.identities.append_audit`), so the column loses its sequence default: an insert that
forgets the number fails instead of quietly drawing from a sequence again.

SQLite has nothing to change: its INTEGER PRIMARY KEY takes the number given. Existing entries
keep their numbers (a number noted by an operator must still name the same entry), and gaps
left before this revision are told apart from deletions by the hash links (`auditverify`).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The name PostgreSQL gave the BIGSERIAL's sequence in 0005 (resolved in the schema on the search path).
_SEQUENCE = "audit_events_seq_seq"


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE audit_events ALTER COLUMN seq DROP DEFAULT")
    op.execute(f"DROP SEQUENCE IF EXISTS {_SEQUENCE}")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"CREATE SEQUENCE {_SEQUENCE} OWNED BY audit_events.seq")
    op.execute(f"SELECT setval('{_SEQUENCE}', COALESCE((SELECT max(seq) FROM audit_events), 0) + 1, false)")
    op.execute(f"ALTER TABLE audit_events ALTER COLUMN seq SET DEFAULT nextval('{_SEQUENCE}')")
