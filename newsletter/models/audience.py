"""Audience: subscribers, lists, subscriptions with their consent, segments, suppression."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from newsletter.models.base import Base, utcnow

SUBSCRIBER_STATUSES = ("active", "unsubscribed", "bounced", "complained", "blocklisted")
SUBSCRIPTION_STATUSES = ("unconfirmed", "confirmed", "unsubscribed")


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The address as normalised by email-validator; email_key is its case-folded form
    # and is what makes an address unique regardless of case.
    email: Mapped[str] = mapped_column(String(320))
    email_key: Mapped[str] = mapped_column(String(320), unique=True)
    # The keyed hash of email_key that the suppression list uses (suppression_hash), stored
    # so that resolving an audience leaves suppressed addresses out with one anti-join.
    # Set by every creation path in newsletter.audience; create subscribers through it.
    email_hash: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300), default="")
    language: Mapped[str] = mapped_column(String(10), default="en")
    # region, country, organisation, role, topics (a list) and any imported column.
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="subscriber", cascade="all, delete-orphan"
    )


class MailingList(Base):
    __tablename__ = "lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)  # a slug
    title: Mapped[str] = mapped_column(String(300), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    optin: Mapped[str] = mapped_column(String(10), default="double")  # single | double
    visibility: Mapped[str] = mapped_column(String(10), default="private")  # public | private
    archived: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ListMemberCount(Base):
    """How many subscriptions of a list have a status, kept by triggers on subscriptions.

    Never written by the package: the triggers of migration 0009_console_counts
    keep it equal to a COUNT over subscriptions after every statement, whatever
    path changed the memberships (newsletter.audience.lists reads it).
    """

    __tablename__ = "list_member_counts"

    list_id: Mapped[int] = mapped_column(
        ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    members: Mapped[int] = mapped_column(BigInteger)


class ListMemberChange(Base):
    """A change to list_member_counts not yet folded in (PostgreSQL only; see
    newsletter.counts): the counts are these rows added to list_member_counts."""

    __tablename__ = "list_member_changes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    list_id: Mapped[int]
    status: Mapped[str] = mapped_column(String(20))
    members: Mapped[int] = mapped_column(BigInteger)


class AudienceCount(Base):
    """A count too costly to make per request, with when it was made.

    `subject` names what was counted: "campaign:<id>" (its recipients) or
    "rules:<digest>" (what a segment builder's rules select); see
    newsletter.audience.counting.
    """

    __tablename__ = "audience_counts"

    subject: Mapped[str] = mapped_column(String(100), primary_key=True)
    matching: Mapped[int | None] = mapped_column(BigInteger)
    reachable: Mapped[int] = mapped_column(BigInteger)
    counted_at: Mapped[datetime]
    # How long the count took: pages say so, and it tells whether counting again is cheap.
    seconds: Mapped[float] = mapped_column(Float)


class Subscription(Base):
    """A subscriber's membership of one list, with the record of their consent."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "list_id"),
        # Audience resolution starts from a list's confirmed members.
        Index("ix_subscriptions_list_status", "list_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    list_id: Mapped[int] = mapped_column(ForeignKey("lists.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="unconfirmed")
    consent_at: Mapped[datetime | None]
    consent_method: Mapped[str] = mapped_column(String(20), default="")  # import | form | admin
    consent_source: Mapped[str] = mapped_column(String(500), default="")
    consent_text: Mapped[str] = mapped_column(Text, default="")
    # Only kept when privacy.store_ip_addresses is on.
    consent_ip: Mapped[str | None] = mapped_column(String(64))
    # Anything unusual about this consent, e.g. a re-subscription forced by an admin over
    # an earlier unsubscription or a suppression, with what it overrode.
    consent_note: Mapped[str] = mapped_column(Text, default="")
    unsubscribed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    subscriber: Mapped[Subscriber] = relationship(back_populates="subscriptions")
    mailing_list: Mapped[MailingList] = relationship()


class Segment(Base):
    """A saved, named filter; `definition` is validated and compiled by newsletter.audience."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Suppression(Base):
    """An address that must never be mailed, kept only as a keyed hash."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(128), unique=True)
    # unsubscribed | hard_bounce | complaint | manual | erased
    reason: Mapped[str] = mapped_column(String(30))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
