"""The release policy: protected aliases and what a version needs to hold one (a passed gate, an approval, an
approver other than the requester). A workspace starts with ``champion`` and ``production`` protected by a gate
and an approval, four-eyes off.

Revision ID: 0012
Revises: 0010
"""

from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None

DEFAULT_PROTECTED = ("champion", "production")


def upgrade() -> None:
    table = op.create_table(
        "mlops_protected_aliases",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alias", sa.String(255), nullable=False, unique=True),
        sa.Column("require_gate", sa.Boolean(), nullable=False),
        sa.Column("require_approval", sa.Boolean(), nullable=False),
        sa.Column("four_eyes", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    now = datetime.now(timezone.utc)
    op.bulk_insert(
        table,
        [
            {
                "alias": alias,
                "require_gate": True,
                "require_approval": True,
                "four_eyes": False,
                "updated_by": None,
                "updated_at": now,
            }
            for alias in DEFAULT_PROTECTED
        ],
    )


def downgrade() -> None:
    op.drop_table("mlops_protected_aliases")
