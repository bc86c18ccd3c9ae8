"""Reliability: a record of accepted work that finally failed (task_failures).

Revision ID: 0003_reliability
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import newsletter.models.base

revision: str = "0003_reliability"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "task_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", newsletter.models.base.UTCDateTime(), nullable=False),
        sa.Column("task", sa.String(length=100), nullable=False),
        sa.Column("error", sa.String(length=300), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_failures")),
    )
    with op.batch_alter_table("task_failures", schema=None) as batch_op:
        batch_op.create_index("ix_task_failures_at", ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("task_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_task_failures_at")
    op.drop_table("task_failures")
