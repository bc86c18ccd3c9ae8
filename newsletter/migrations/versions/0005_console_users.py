"""Console users: the staff accounts that sign in at /admin/.

Revision ID: 0005_console_users
Revises: 0003_reliability
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import newsletter.models.base

revision: str = "0005_console_users"
down_revision: str | None = "0003_reliability"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", newsletter.models.base.UTCDateTime(), nullable=False),
        sa.Column("last_login_at", newsletter.models.base.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("email_key", name=op.f("uq_staff_users_email_key")),
    )


def downgrade() -> None:
    op.drop_table("staff_users")
