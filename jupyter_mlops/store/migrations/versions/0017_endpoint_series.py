"""The live figures of endpoints over time: ``mlops_endpoint_series``.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlops_endpoint_series",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(255), nullable=False),
        sa.Column("deployment", sa.String(255), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interval_s", sa.Float(), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("p50_ms", sa.Float(), nullable=True),
        sa.Column("p99_ms", sa.Float(), nullable=True),
        sa.Column("traffic", sa.Integer(), nullable=False),
        sa.Column("mirror", sa.Integer(), nullable=False),
    )
    op.create_index("ix_mlops_endpoint_series_endpoint_at", "mlops_endpoint_series", ["endpoint", "at"])


def downgrade() -> None:
    op.drop_index("ix_mlops_endpoint_series_endpoint_at", "mlops_endpoint_series")
    op.drop_table("mlops_endpoint_series")
