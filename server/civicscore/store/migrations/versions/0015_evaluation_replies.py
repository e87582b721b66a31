"""Each evaluation revision keeps its reply's body as encoded on the wire, so that GetEvaluation does not
parse and re-encode the result on every read (api/evaluation_wire.py).

`reply_format` says which encoding `reply_pb` holds and `reply_of` the `result_digest` of the result it was
made from; rows written before this revision have 0 and no body, and are read the long way (their canonical
JSON), as is any row whose format the server does not know or whose result is not the one its body was made
from (a result rewritten in place, as a data repair would).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("evaluations", sa.Column("reply_format", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("evaluations", sa.Column("reply_pb", sa.LargeBinary(), nullable=True))
    op.add_column("evaluations", sa.Column("reply_of", sa.String(), nullable=False, server_default=""))


def downgrade() -> None:
    op.drop_column("evaluations", "reply_of")
    op.drop_column("evaluations", "reply_pb")
    op.drop_column("evaluations", "reply_format")
