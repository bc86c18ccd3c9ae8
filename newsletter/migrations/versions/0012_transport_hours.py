"""Transport hours: the hourly send limit shared by every worker, a row per minute.

Revision ID: 0012_transport_hours
Revises: 0011_event_indexes

`rate_per_hour` was counted by each sending process from the ledger when it
started, then by itself, so several workers together could send that many
each. Workers now take their allowance from these rows (dispatch/rates.py).
They start empty: the first send through a transport with an hourly limit
fills in the last hour from the ledger.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_transport_hours"
down_revision: str | None = "0011_event_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transport_hours",
        sa.Column("transport", sa.String(length=100), nullable=False),
        sa.Column("minute", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("sent", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("transport", "minute", name=op.f("pk_transport_hours")),
    )


def downgrade() -> None:
    op.drop_table("transport_hours")
