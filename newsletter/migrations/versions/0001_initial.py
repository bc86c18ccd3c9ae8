"""Initial schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

While the project is unreleased this first migration creates whatever the
models declare; before the first release it is regenerated as explicit
operations (alembic revision --autogenerate) and frozen.
"""

from alembic import op

from newsletter.models import Base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    Base.metadata.create_all(op.get_bind())


def downgrade() -> None:
    Base.metadata.drop_all(op.get_bind())
