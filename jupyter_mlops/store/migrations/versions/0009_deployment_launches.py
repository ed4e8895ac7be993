"""Deployment processes being started: a row until the deployment records the process (or it is stopped).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlops_deployment_launches",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(255), nullable=False, index=True),
        sa.Column("deployment", sa.String(255), nullable=False),
        sa.Column("launch", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mlops_deployment_launches")
