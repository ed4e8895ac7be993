"""Deployment records (the registry's deletion guard reads them).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlops_deployments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("model_name", sa.String(255), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("endpoint", "name", name="uq_mlops_deployments_endpoint_name"),
    )
    op.create_index("ix_mlops_deployments_model_name", "mlops_deployments", ["model_name"])


def downgrade() -> None:
    op.drop_index("ix_mlops_deployments_model_name", table_name="mlops_deployments")
    op.drop_table("mlops_deployments")
