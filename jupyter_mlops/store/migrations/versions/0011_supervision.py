"""Endpoints are supervised: each records its supervisor process, and every restart is logged.

``mlops_endpoints.supervisor`` holds the supervisor's process identity (host:pid:start time), or a claim while one
is being started; ``mlops_supervision_log`` has one row per process found dead (which, why, what replaced it).

Revision ID: 0011
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mlops_endpoints") as batch:
        batch.add_column(sa.Column("supervisor", sa.String(255), nullable=True))
        batch.add_column(sa.Column("supervisor_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "mlops_supervision_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(255), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("new_pid", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("restarted", sa.Boolean(), nullable=False),
        sa.Column("by", sa.String(64), nullable=False),
        sa.Column("start_failures", sa.Integer(), nullable=False),
        sa.Column("delay_s", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reported", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mlops_supervision_log")
    with op.batch_alter_table("mlops_endpoints") as batch:
        batch.drop_column("supervisor_at")
        batch.drop_column("supervisor")
