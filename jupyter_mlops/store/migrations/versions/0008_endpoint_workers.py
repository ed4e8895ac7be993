"""An endpoint runs several worker processes: one row per worker, with the configuration it has applied.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlops_endpoint_workers",
        sa.Column("endpoint", sa.String(255), primary_key=True),
        sa.Column("slot", sa.Integer(), primary_key=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("applied_version", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("mlops_endpoints") as batch:
        batch.add_column(sa.Column("instances", sa.Integer(), nullable=False, server_default="1"))
        batch.drop_column("pid")
        batch.drop_column("applied_version")


def downgrade() -> None:
    with op.batch_alter_table("mlops_endpoints") as batch:
        batch.add_column(sa.Column("applied_version", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("pid", sa.Integer(), nullable=True))
        batch.drop_column("instances")
    op.drop_table("mlops_endpoint_workers")
