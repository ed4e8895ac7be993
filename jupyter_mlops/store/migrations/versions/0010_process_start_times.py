"""Endpoint workers and deployment launches record their process's start time next to its pid.

A pid alone is not an identity: after a crash the system may give it to another process. Rows written before
this revision have no start time and are checked by their pid alone.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("mlops_endpoint_workers", "mlops_deployment_launches")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("pid_start", sa.String(64), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("pid_start")
