"""Deployments record the resources they were given and the device they run on.

``mlops_deployments.resources`` is the JSON of what was asked (``{"cpu": 2, "memory": "2Gi", "gpu": 0}``);
``provider`` is where it infers (onnxruntime's ``CUDAExecutionProvider``/``CPUExecutionProvider``, or ``cuda``/``cpu``
for other models). Rows written before this revision have neither: no limits, on the CPU.

Revision ID: 0013
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mlops_deployments") as batch:
        batch.add_column(sa.Column("resources", sa.Text(), nullable=True))
        batch.add_column(sa.Column("provider", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mlops_deployments") as batch:
        batch.drop_column("provider")
        batch.drop_column("resources")
