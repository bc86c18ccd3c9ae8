"""Shared send rates: one row per transport that every worker takes its turns from.

Revision ID: 0008_scale
Revises: 0005_console_users
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_scale"
down_revision: str | None = "0005_console_users"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transport_rates",
        sa.Column("transport", sa.String(length=100), nullable=False),
        sa.Column("next_slot", sa.Float(), nullable=False),
        sa.Column("throttled", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("transport", name=op.f("pk_transport_rates")),
    )


def downgrade() -> None:
    op.drop_table("transport_rates")
