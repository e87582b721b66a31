"""PostgreSQL: assignment states leave 40% of each page free (fillfactor 60), for HOT updates.

Every outcome batch updates its assignments' state rows, and no indexed column
changes, so each update can be a heap-only tuple (HOT): the new row version goes
on the same page and neither index (the key, `assignment_id`) gets an entry.
That needs room on the page. Packed full, as the rows were inserted (with
their state columns empty), nearly every update moved its row to another page
and wrote both indexes: 1,295 of 55,000 updates were HOT in a replay of 60
batches of 1,000 outcomes, about 60% with fillfactor 60.
Measured through the server (SubmitOutcomes, 1,000 units x 200 assignments,
batches of 1,000, runs alternating): 17.8k, 17.8k and 18.3k outcomes/s before,
20.1k, 18.6k and 20.7k after.

Pages written before this revision keep their fill until the table is rewritten
(`VACUUM FULL assignment_states`, which locks it; optional). SQLite has no such
setting: nothing changes there.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE assignment_states SET (fillfactor = 60)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE assignment_states RESET (fillfactor)")
