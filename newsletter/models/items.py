"""Items: what the organisation published, collected from sources."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.models.base import Base, utcnow

ITEM_KINDS = ("report", "statement", "tribute", "news")


class Item(Base):
    """One published piece: a report, a statement, a tribute or a news item."""

    __tablename__ = "items"
    __table_args__ = (
        # Importing a source again finds its items by this pair and updates them.
        UniqueConstraint("source", "source_id"),
        Index("ix_items_date", "date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(1000))
    source_id: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(20))
    # Where the kind came from: "source", "inferred" (by the rule in items.classify) or "edited".
    kind_origin: Mapped[str] = mapped_column(String(20), default="source")
    title: Mapped[str] = mapped_column(String(500))
    date: Mapped[date]
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
