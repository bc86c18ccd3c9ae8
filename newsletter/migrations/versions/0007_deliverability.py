"""Counted links, and item images.

Revision ID: 0007_deliverability
Revises: 0008_scale

`campaign_links` holds one row per campaign and link address with how often
it was followed (privacy.count_clicks; never who followed it). Items get an
image: its address, alt text and size.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import newsletter.models.base

revision: str = "0007_deliverability"
down_revision: str | None = "0008_scale"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "campaign_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("created_at", newsletter.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_links_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_links")),
        sa.UniqueConstraint(
            "campaign_id", "url_hash", name=op.f("uq_campaign_links_campaign_id_url_hash")
        ),
    )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("image", sa.String(length=2000), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("image_alt", sa.String(length=500), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("image_width", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("image_height", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_column("image_height")
        batch_op.drop_column("image_width")
        batch_op.drop_column("image_alt")
        batch_op.drop_column("image")
    op.drop_table("campaign_links")
