"""Rollouts of a deployment through traffic steps: ``mlops_rollouts``.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlops_rollouts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(255), nullable=False),
        sa.Column("active_endpoint", sa.String(255), nullable=True),
        sa.Column("deployment", sa.String(255), nullable=False),
        sa.Column("model", sa.String(512), nullable=True),
        sa.Column("steps", sa.Text(), nullable=False),
        sa.Column("bake_s", sa.Float(), nullable=False),
        sa.Column("guards", sa.Text(), nullable=False),
        sa.Column("promote_alias", sa.String(255), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("step_applied", sa.Boolean(), nullable=False),
        sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("baseline", sa.Text(), nullable=False),
        sa.Column("window", sa.Text(), nullable=True),
        sa.Column("figures", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("controller", sa.String(255), nullable=True),
        sa.Column("created_by", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("active_endpoint", name="uq_mlops_rollouts_active_endpoint"),
    )
    op.create_index("ix_mlops_rollouts_endpoint", "mlops_rollouts", ["endpoint"])


def downgrade() -> None:
    op.drop_index("ix_mlops_rollouts_endpoint", "mlops_rollouts")
    op.drop_table("mlops_rollouts")
