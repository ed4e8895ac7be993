"""The figures of every monitor run, per signal and feature: ``mlops_monitor_figures``.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlops_monitor_figures",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("monitor", sa.String(255), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("signal", sa.String(64), nullable=False),
        sa.Column("feature", sa.String(255), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("alert", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_mlops_monitor_figures_monitor_time", "mlops_monitor_figures", ["monitor", "time"])


def downgrade() -> None:
    op.drop_index("ix_mlops_monitor_figures_monitor_time", "mlops_monitor_figures")
    op.drop_table("mlops_monitor_figures")
