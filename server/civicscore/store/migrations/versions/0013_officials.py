"""Officials (cá nhân): the people the committee may commend or criticise, and their evaluations.

- `officials`: one row per person (only what the evaluation needs: id, name, positions, review periods,
  whether they are evaluated). `appointments_json` is what was sent; `official_appointments` holds the same
  positions as rows, for the reference to units and for looking officials up by unit.
- `assignments.lead_official`: the official who leads an assignment (người chủ trì), optional.
- `official_evaluations`: an official's result for a quarter, revisioned like a unit's evaluation.
- `recommendations.official_id`: '' for a recommendation about a unit, else the official it is about. A
  recommendation about an official comes from their evaluation, not from a unit's, so the reference of
  recommendations to `evaluations` is dropped (the save writes a recommendation and its evaluation in one
  transaction, and nothing deletes either).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "officials",
        sa.Column("official_id", sa.String(), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("appointments_json", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("under_review_json", sa.Text(), nullable=False),
        sa.Column("recorded_by", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("official_id", name="pk_officials"),
    )
    op.create_table(
        "official_appointments",
        sa.Column("official_id", sa.String(), nullable=False),
        sa.Column("ordinal", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("unit_code", sa.String(), nullable=False),
        sa.Column("position", sa.String(), nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("end_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("official_id", "ordinal", name="pk_official_appointments"),
        sa.ForeignKeyConstraint(["official_id"], ["officials.official_id"],
                                name="fk_official_appointments_official_id"),
        sa.ForeignKeyConstraint(["unit_code"], ["units.code"], name="fk_official_appointments_unit_code"),
    )
    op.create_index("ix_official_appointments_unit_code", "official_appointments", ["unit_code"])
    with op.batch_alter_table("assignments") as batch:
        batch.add_column(sa.Column("lead_official", sa.String(), nullable=True))
        batch.create_foreign_key("fk_assignments_lead_official", "officials", ["lead_official"], ["official_id"])
    op.create_index("ix_assignments_lead_official", "assignments", ["lead_official"])
    op.create_table(
        "official_evaluations",
        sa.Column("period", sa.String(), nullable=False),
        sa.Column("official_id", sa.String(), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("unit_code", sa.String(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("result_digest", sa.String(), nullable=False),
        sa.Column("ruleset_version", sa.String(), nullable=False),
        sa.Column("ruleset_digest", sa.String(), nullable=False),
        sa.Column("inputs_digest", sa.String(), nullable=False),
        sa.Column("flags_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("recorded_by", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("period", "official_id", "revision", name="pk_official_evaluations"),
        sa.ForeignKeyConstraint(["official_id"], ["officials.official_id"],
                                name="fk_official_evaluations_official_id"),
    )
    op.create_index("ix_official_evaluations_official_id", "official_evaluations", ["official_id"])
    with op.batch_alter_table("recommendations") as batch:
        batch.drop_constraint("fk_recommendations_evaluation", type_="foreignkey")
        batch.add_column(sa.Column("official_id", sa.String(), server_default="", nullable=False))
    op.create_index("ix_recommendations_period_official", "recommendations", ["period", "official_id"])


def downgrade() -> None:
    op.drop_index("ix_recommendations_period_official", "recommendations")
    # Recommendations about officials, and what refers to them, cannot exist without this revision.
    for table in ("recommendation_changes", "recommendation_contests", "recommendation_reviews",
                  "recommendation_reasons"):
        op.execute(f"DELETE FROM {table} WHERE recommendation_id IN "
                   "(SELECT id FROM recommendations WHERE official_id <> '')")
    op.execute("UPDATE recommendations SET superseded_by = NULL WHERE superseded_by IN "
               "(SELECT id FROM recommendations WHERE official_id <> '')")
    op.execute("DELETE FROM recommendations WHERE official_id <> ''")
    with op.batch_alter_table("recommendations") as batch:
        batch.drop_column("official_id")
        batch.create_foreign_key("fk_recommendations_evaluation", "evaluations",
                                 ["period", "unit_code", "evaluation_revision"],
                                 ["period", "unit_code", "revision"])
    op.drop_index("ix_official_evaluations_official_id", "official_evaluations")
    op.drop_table("official_evaluations")
    op.drop_index("ix_assignments_lead_official", "assignments")
    with op.batch_alter_table("assignments") as batch:
        batch.drop_constraint("fk_assignments_lead_official", type_="foreignkey")
        batch.drop_column("lead_official")
    op.drop_index("ix_official_appointments_unit_code", "official_appointments")
    op.drop_table("official_appointments")
    op.drop_table("officials")
