"""The audit trail, and campaign statuses checked by the database.

Revision ID: 0002
Revises: 0001

`audit_events` records every state-changing action with its actor
(newsletter/audit.py); the CHECK constraint makes newsletter/lifecycle.py's
statuses the only values `campaigns.status` can hold. SQLite cannot add a
constraint to a table, so batch mode rebuilds `campaigns` there.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import newsletter.models.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("draft", "approved", "scheduled", "sending", "paused", "sent", "cancelled", "missed")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", newsletter.models.base.UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("object_type", sa.String(length=30), nullable=False),
        sa.Column("object_id", sa.String(length=100), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_events_object", ["object_type", "object_id", "id"], unique=False
        )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_check_constraint(
            "status", "status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")"
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_campaigns_status"), type_="check")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_events_object")
    op.drop_table("audit_events")
