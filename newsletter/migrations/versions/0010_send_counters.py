"""Send counters: each campaign's deliveries counted by state, kept as the ledger moves.

Revision ID: 0010_send_counters
Revises: 0009_console_counts

`newsletter status`, the console and /metrics read these instead of counting
the ledger (newsletter/dispatch/counters.py). Every campaign that has
deliveries gets its row, filled by one grouped pass over the ledger; its
`retries` (temporary failures recorded, for /metrics) starts as the number of
deliveries tried more than once, the closest the ledger can say. The rate
samples start empty: the rate of a send under way is measured again from its
next claim.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_send_counters"
down_revision: str | None = "0009_console_counts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES = ("pending", "sending", "retry", "sent", "failed", "cancelled")


def upgrade() -> None:
    op.create_table(
        "send_counters",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        *(sa.Column(state, sa.BigInteger(), nullable=False) for state in STATES),
        sa.Column("retries", sa.BigInteger(), nullable=False),
        sa.Column("window_at", sa.Float(), nullable=True),
        sa.Column("window_sent", sa.BigInteger(), nullable=False),
        sa.Column("mark_at", sa.Float(), nullable=True),
        sa.Column("mark_sent", sa.BigInteger(), nullable=False),
        sa.Column("last_sent_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_send_counters_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_send_counters")),
    )
    deliveries = sa.table(
        "deliveries",
        sa.column("campaign_id", sa.Integer()),
        sa.column("status", sa.String()),
        sa.column("attempts", sa.Integer()),
    )
    counters = sa.table(
        "send_counters",
        *(sa.column(name, sa.BigInteger()) for name in ("campaign_id", *STATES, "retries")),
        sa.column("window_sent", sa.BigInteger()),
        sa.column("mark_sent", sa.BigInteger()),
    )
    # One grouped pass over the ledger, in the database: no row passes through Python.
    by_state = [
        sa.func.sum(sa.case((deliveries.c.status == state, 1), else_=0)) for state in STATES
    ]
    tried_again = sa.func.sum(sa.case((deliveries.c.attempts > 1, 1), else_=0))
    op.execute(
        counters.insert().from_select(
            ["campaign_id", *STATES, "retries", "window_sent", "mark_sent"],
            sa.select(
                deliveries.c.campaign_id, *by_state, tried_again, sa.literal(0), sa.literal(0)
            ).group_by(deliveries.c.campaign_id),
        )
    )


def downgrade() -> None:
    op.drop_table("send_counters")
