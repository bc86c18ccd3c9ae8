"""Campaigns: monthly bulletins and announcements, and what they are made of."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from newsletter.models.audience import MailingList, Segment
from newsletter.models.base import Base, utcnow
from newsletter.models.items import Item

CAMPAIGN_KINDS = ("bulletin", "announcement")

# A campaign's statuses. Which action moves a campaign from one to another, and who
# may take it, is newsletter/lifecycle.py's table; the database refuses any other value.
DRAFT = "draft"
APPROVED = "approved"
SCHEDULED = "scheduled"
SENDING = "sending"
PAUSED = "paused"
SENT = "sent"
CANCELLED = "cancelled"
MISSED = "missed"
CAMPAIGN_STATUSES = (DRAFT, APPROVED, SCHEDULED, SENDING, PAUSED, SENT, CANCELLED, MISSED)

campaign_lists = Table(
    "campaign_lists",
    Base.metadata,
    Column("campaign_id", ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    Column("list_id", ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True),
)


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        Index("ix_campaigns_status_scheduled", "status", "scheduled_at"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in CAMPAIGN_STATUSES) + ")",
            name="status",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="draft")
    # The month a bulletin covers, "YYYY-MM"; empty for announcements.
    month: Mapped[str] = mapped_column(String(7), default="")
    subject: Mapped[str] = mapped_column(String(500))
    intro: Mapped[str] = mapped_column(Text, default="")
    preheader: Mapped[str] = mapped_column(String(500), default="")
    language: Mapped[str] = mapped_column(String(10), default="en")
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id", ondelete="SET NULL"))
    # A named transport from the config; empty means the configured default.
    transport: Mapped[str] = mapped_column(String(100), default="")
    # Set by a recurring rule so that one rule builds one edition per period.
    recurrence_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    approved_by: Mapped[str] = mapped_column(String(200), default="")
    approved_at: Mapped[datetime | None]
    scheduled_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Why a campaign paused itself, or was missed; empty otherwise.
    status_note: Mapped[str] = mapped_column(Text, default="")
    # The greeting above the intro: "" for the language's own ("Dear Ana,") unless the
    # intro already greets; "none" for no greeting; else a line such as "Hi {name},".
    greeting: Mapped[str] = mapped_column(String(200), default="")
    # What was approved, frozen at approval (editions.freeze): subject, preheader, intro,
    # greeting and each item's text and link. Sends and the archive read it; None for a
    # draft. Editing items afterwards does not change it.
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(default=None)

    lists: Mapped[list[MailingList]] = relationship(secondary=campaign_lists)
    segment: Mapped[Segment | None] = relationship()
    entries: Mapped[list[CampaignItem]] = relationship(
        back_populates="campaign",
        cascade="all, delete-orphan",
        order_by="CampaignItem.position",
    )
    texts: Mapped[list[CampaignText]] = relationship(
        cascade="all, delete-orphan", order_by="CampaignText.language"
    )

    @property
    def items(self) -> list[Item]:
        return [entry.item for entry in self.entries]


class CampaignItem(Base):
    """An item's place in a campaign, in reading order."""

    __tablename__ = "campaign_items"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(default=0)

    campaign: Mapped[Campaign] = relationship(back_populates="entries")
    item: Mapped[Item] = relationship()


class CampaignText(Base):
    """A campaign's subject, intro and preheader in one more language.

    The campaign's own columns are its default language's; a language without
    a row here (or with an empty field) reads the default's (newsletter.render).
    """

    __tablename__ = "campaign_texts"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    language: Mapped[str] = mapped_column(String(10), primary_key=True)
    subject: Mapped[str] = mapped_column(String(500), default="")
    intro: Mapped[str] = mapped_column(Text, default="")
    preheader: Mapped[str] = mapped_column(String(500), default="")


class CampaignLink(Base):
    """A link of a campaign whose clicks are counted (privacy.count_clicks).

    One row per campaign and address, and one number: how often the link was
    followed. Nothing here, nor in the link's token, says who followed it.
    """

    __tablename__ = "campaign_links"
    # A campaign's link is found again by its address's digest (an address may be
    # longer than an index allows).
    __table_args__ = (UniqueConstraint("campaign_id", "url_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    url_hash: Mapped[str] = mapped_column(String(64))
    clicks: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
