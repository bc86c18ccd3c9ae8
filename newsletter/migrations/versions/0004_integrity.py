"""Integrity: item identities, month-only dates, approval snapshots, greetings, topic slugs.

Revision ID: 0004_integrity
Revises: 0006_languages

- item_identities: how a re-import recognises an item (newsletter/items/identity.py).
  Stored items are re-keyed: a feed entry by its guid and link, a listing item or
  Markdown file by its link (when no differently titled item shares it), else its
  month and normalised title. Items that turn out to be copies of one another
  (the same file imported from two paths, a feed from a file and from its URL)
  are merged into the oldest: the copies' campaign entries move to it.
- items.source/source_id are no longer unique: where an item was read, for people.
- items.date_is_month: listing items under a month line show the month.
- campaigns.greeting and campaigns.snapshot; every campaign past draft gets the
  snapshot of its content as it is now (the best record of what was approved).
- subscribers' topics are stored as slugs ("harm reduction" → "harm-reduction"),
  the one topic identity (newsletter/audience/topics.py).

The rules are imported from the package as they are at this revision, so that the
re-keying matches what the importer does.
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op

import newsletter.models.base
from newsletter.audience.topics import slugify
from newsletter.items import identity as identities
from newsletter.snapshot import freeze

revision: str = "0004_integrity"
down_revision: str | None = "0006_languages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LISTING_ID = r"^(\d{4}-\d{2}|undated)/"


def upgrade() -> None:
    op.create_table(
        "item_identities",
        sa.Column("identity", sa.String(length=600), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["items.id"],
            name=op.f("fk_item_identities_item_id_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("identity", name=op.f("pk_item_identities")),
    )
    with op.batch_alter_table("item_identities", schema=None) as batch_op:
        batch_op.create_index("ix_item_identities_item_id", ["item_id"], unique=False)
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("date_is_month", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.drop_constraint("uq_items_source_source_id", type_="unique")
        batch_op.create_index("ix_items_source", ["source"], unique=False)
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("greeting", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("snapshot", newsletter.models.base.JSONType, nullable=True))
    bind = op.get_bind()
    _rekey_items(bind)
    _freeze_campaigns(bind)
    _slug_topics(bind)


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("snapshot")
        batch_op.drop_column("greeting")
    with op.batch_alter_table("items", schema=None) as batch_op:
        batch_op.drop_index("ix_items_source")
        batch_op.drop_column("date_is_month")
    with op.batch_alter_table("item_identities", schema=None) as batch_op:
        batch_op.drop_index("ix_item_identities_item_id")
    op.drop_table("item_identities")


_items = sa.table(
    "items",
    sa.column("id", sa.Integer),
    sa.column("source_id", sa.String),
    sa.column("title", sa.String),
    sa.column("date", sa.Date),
    sa.column("date_is_month", sa.Boolean),
    sa.column("link", sa.String),
)
_identities = sa.table(
    "item_identities", sa.column("identity", sa.String), sa.column("item_id", sa.Integer)
)
_entries = sa.table(
    "campaign_items",
    sa.column("campaign_id", sa.Integer),
    sa.column("item_id", sa.Integer),
    sa.column("position", sa.Integer),
)


def _month(day: Any) -> str:
    day = day if isinstance(day, date) else date.fromisoformat(str(day)[:10])
    return f"{day.year:04d}-{day.month:02d}"


def _rekey_items(bind: sa.Connection) -> None:
    import re

    rows = list(bind.execute(sa.select(_items).order_by(_items.c.id)))
    listing = re.compile(_LISTING_ID)
    # A link that differently titled items share is a home page, not an item's.
    titles_by_link: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row.link:
            titles_by_link[identities.normalise_link(row.link)].add(
                identities.normalise_title(row.title)
            )
    wanted: dict[int, list[str]] = {}
    for row in rows:
        source_id = row.source_id or ""
        is_feed = not (listing.match(source_id) or source_id.endswith((".md", ".markdown")))
        keys: list[str] = []
        if is_feed and source_id and not source_id.startswith("entry-"):
            keys.append(identities.guid_identity(source_id))
        link = identities.normalise_link(row.link or "")
        if link and len(titles_by_link[link]) == 1:
            keys.append(identities.link_identity(row.link))
        if not keys:
            keys.append(identities.title_identity(_month(row.date), row.title))
        wanted[row.id] = keys
        if listing.match(source_id) and _day_of(row.date) == 1:
            bind.execute(sa.update(_items).where(_items.c.id == row.id).values(date_is_month=True))
    owner: dict[str, int] = {}
    merged: dict[int, int] = {}
    for item_id, keys in wanted.items():
        first = next((owner[k] for k in keys if k in owner), None)
        if first is not None:
            merged[item_id] = first
            for key in keys:
                owner.setdefault(key, first)
            continue
        for key in keys:
            owner[key] = item_id
    if owner:
        bind.execute(
            sa.insert(_identities),
            [{"identity": key, "item_id": item_id} for key, item_id in owner.items()],
        )
    for copy, kept in merged.items():
        _merge(bind, kept, copy)


def _day_of(day: Any) -> int:
    return day.day if isinstance(day, date) else int(str(day)[8:10])


def _merge(bind: sa.Connection, kept: int, copy: int) -> None:
    """The copy's campaign entries move to the kept item; then the copy goes."""
    holding = dict(
        bind.execute(
            sa.select(_entries.c.campaign_id, _entries.c.position).where(_entries.c.item_id == kept)
        ).all()
    )
    for campaign_id, _position in bind.execute(
        sa.select(_entries.c.campaign_id, _entries.c.position).where(_entries.c.item_id == copy)
    ).all():
        entry = (_entries.c.campaign_id == campaign_id) & (_entries.c.item_id == copy)
        if campaign_id in holding:
            bind.execute(sa.delete(_entries).where(entry))
        else:
            bind.execute(sa.update(_entries).where(entry).values(item_id=kept))
    bind.execute(sa.delete(_items).where(_items.c.id == copy))


def _freeze_campaigns(bind: sa.Connection) -> None:
    campaigns = sa.table(
        "campaigns",
        sa.column("id", sa.Integer),
        sa.column("status", sa.String),
        sa.column("subject", sa.String),
        sa.column("preheader", sa.String),
        sa.column("intro", sa.Text),
        sa.column("greeting", sa.String),
        sa.column("snapshot", newsletter.models.base.JSONType),
    )
    item_rows = sa.table(
        "items",
        *(
            sa.column(name)
            for name in (
                "id", "kind", "title", "date", "date_is_month", "summary", "body_html",
                "body_text", "link", "link_text", "language", "tags",
            )
        ),
    )  # fmt: skip
    for campaign in list(bind.execute(sa.select(campaigns).where(campaigns.c.status != "draft"))):
        found = bind.execute(
            sa.select(item_rows)
            .join(_entries, _entries.c.item_id == item_rows.c.id)
            .where(_entries.c.campaign_id == campaign.id)
            .order_by(_entries.c.position)
        ).all()
        frozen = [_Row(row._mapping) for row in found]
        bind.execute(
            sa.update(campaigns)
            .where(campaigns.c.id == campaign.id)
            .values(snapshot=freeze(campaign, frozen))
        )


class _Row:
    """A row whose columns read as attributes, with its date as a date."""

    date: Any
    tags: Any

    def __init__(self, mapping: Any) -> None:
        for key, value in mapping.items():
            setattr(self, key, value)
        if not isinstance(self.date, date):
            self.date = date.fromisoformat(str(self.date)[:10])
        if isinstance(self.tags, str):
            import json

            self.tags = json.loads(self.tags)


def _slug_topics(bind: sa.Connection) -> None:
    subscribers = sa.table(
        "subscribers",
        sa.column("id", sa.Integer),
        sa.column("attributes", newsletter.models.base.JSONType),
    )
    for row in list(bind.execute(sa.select(subscribers.c.id, subscribers.c.attributes))):
        attributes = dict(row.attributes or {})
        topics = attributes.get("topics")
        if not isinstance(topics, list):
            continue
        slugs = list(dict.fromkeys(s for t in topics if (s := slugify(str(t)))))
        if slugs != topics:
            attributes["topics"] = slugs
            bind.execute(
                sa.update(subscribers)
                .where(subscribers.c.id == row.id)
                .values(attributes=attributes)
            )
