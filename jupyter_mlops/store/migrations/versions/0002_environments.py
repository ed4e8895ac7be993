"""Environment records: spec versions (content hashes), their venv build state, lock and kernelspec.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mlops_environments",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("spec", sa.String(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("venv_path", sa.String(), nullable=True),
        sa.Column("kernel_name", sa.String(255), nullable=True),
        sa.Column("lock", sa.String(), nullable=True),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("built_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("name", "version", name="uq_mlops_environments_name_version"),
    )
    op.create_index("ix_mlops_environments_name", "mlops_environments", ["name"])


def downgrade() -> None:
    op.drop_index("ix_mlops_environments_name", table_name="mlops_environments")
    op.drop_table("mlops_environments")
