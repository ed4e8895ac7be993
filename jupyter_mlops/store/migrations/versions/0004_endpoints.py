"""Online endpoints, and what the router needs to serve a deployment.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlops_endpoints",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("auth", sa.String(16), nullable=False),
        sa.Column("key", sa.String(255), nullable=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("traffic", sa.Text(), nullable=False),
        sa.Column("mirror", sa.Text(), nullable=False),
        sa.Column("config_version", sa.Integer(), nullable=False),
        sa.Column("applied_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("mlops_deployments") as batch:
        batch.add_column(sa.Column("model_uri", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("scoring_script", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("options", sa.Text(), nullable=True))
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mlops_deployments") as batch:
        for column in ("error", "options", "scoring_script", "model_uri"):
            batch.drop_column(column)
    op.drop_table("mlops_endpoints")
