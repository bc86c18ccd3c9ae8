"""Items: what the organisation published, collected from sources."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.models.base import Base, utcnow

ITEM_KINDS = ("report", "statement", "tribute", "news")


class Item(Base):
    """One published piece: a report, a statement, a tribute or a news item."""

    __tablename__ = "items"
    __table_args__ = (
        # Where an item was last read from; a re-import finds its items by their
        # identities (ItemIdentity), not by this.
        Index("ix_items_source", "source"),
        Index("ix_items_date", "date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The source it was last read from and its place there ("2019-06/…", a feed entry's
    # id, a file's relative path): for people, not for finding it again.
    source: Mapped[str] = mapped_column(String(1000))
    source_id: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(20))
    # Where the kind came from: "source", "inferred" (by the rule in items.classify) or "edited".
    kind_origin: Mapped[str] = mapped_column(String(20), default="source")
    title: Mapped[str] = mapped_column(String(500))
    date: Mapped[date]
    # The source named only the month ("June 2019"): `date` is its first day, and
    # editions show the month rather than an invented day.
    date_is_month: Mapped[bool] = mapped_column(default=False)
    summary: Mapped[str] = mapped_column(Text, default="")
    # Sanitised HTML; body_text is the same content as plain text.
    body_html: Mapped[str] = mapped_column(Text, default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str] = mapped_column(String(2000), default="")
    # The call to action shown with the link ("Read the full report").
    link_text: Mapped[str] = mapped_column(String(500), default="")
    language: Mapped[str] = mapped_column(String(10), default="en")
    # Set on a language version of another item (its original): the version is not an
    # item of its own in an edition, it replaces the original for readers of its
    # language. See newsletter.items.translations.
    original_id: Mapped[int | None] = mapped_column(
        ForeignKey("items.id", ondelete="SET NULL"), index=True
    )
    # The key a source gives the versions of one piece (Markdown front matter `key`), so
    # that a version imported later finds its original.
    translation_key: Mapped[str] = mapped_column(String(200), default="")
    # An image shown with the item (Markdown front matter `image`, a feed's enclosure or
    # media content): an absolute URL, its alt text, and its size in pixels when known.
    image: Mapped[str] = mapped_column(String(2000), default="")
    image_alt: Mapped[str] = mapped_column(String(500), default="")
    image_width: Mapped[int | None]
    image_height: Mapped[int | None]
    tags: Mapped[list[str]] = mapped_column(default=list)
    excluded: Mapped[bool] = mapped_column(default=False)
    # Fields changed by staff with `items edit`; a re-import leaves them alone.
    edited_fields: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ItemIdentity(Base):
    """One way a source names an item (rule in newsletter.items.identity).

    An item has one or more: a tolerated edit of its title adds the new
    wording, a merge moves the dropped item's identities to the kept one.
    """

    __tablename__ = "item_identities"
    __table_args__ = (Index("ix_item_identities_item_id", "item_id"),)

    # "guid:…", "link:…" or "title:YYYY-MM:…"; unique, so one spelling names one item.
    identity: Mapped[str] = mapped_column(String(600), primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
