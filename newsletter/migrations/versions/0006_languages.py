"""Languages: item language versions, per-language campaign texts, the notices' log.

Revision ID: 0006_languages
Revises: 0007_deliverability
Create Date: 2026-12-02 02:10:00

- items.original_id and items.translation_key: an item may be a language version
  of another (newsletter.items.translations);
- campaign_texts: a campaign's subject, intro and preheader in more languages;
- notices_sent: the keyed hashes of addresses sent a transactional notice, to limit
  how many reach one address a day (newsletter.notices).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import newsletter.models.base

revision: str = "0006_languages"
down_revision: str | None = "0007_deliverability"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("original_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("translation_key", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.create_index("ix_items_original_id", ["original_id"], unique=False)
        batch_op.create_foreign_key(
            op.f("fk_items_original_id_items"),
            "items",
            ["original_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.alter_column("translation_key", server_default=None)

    op.create_table(
        "campaign_texts",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("intro", sa.Text(), nullable=False),
        sa.Column("preheader", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_texts_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "language", name=op.f("pk_campaign_texts")),
    )

    op.create_table(
        "notices_sent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_hash", sa.String(length=64), nullable=False),
        sa.Column("notice", sa.String(length=50), nullable=False),
        sa.Column("sent_at", newsletter.models.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices_sent")),
    )
    with op.batch_alter_table("notices_sent", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notices_sent_recipient_hash_sent_at", ["recipient_hash", "sent_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notices_sent", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_sent_recipient_hash_sent_at")
    op.drop_table("notices_sent")
    op.drop_table("campaign_texts")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("fk_items_original_id_items"), type_="foreignkey")
        batch_op.drop_index("ix_items_original_id")
        batch_op.drop_column("translation_key")
        batch_op.drop_column("original_id")
