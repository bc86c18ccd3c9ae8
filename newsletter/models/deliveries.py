"""The deliveries ledger and the events that come back from sending."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.models.base import Base, utcnow

# pending: waiting to be claimed; sending: claimed by a worker until lease_until;
# retry: a temporary failure, due again at next_attempt_at; sent and failed are final.
DELIVERY_STATUSES = ("pending", "sending", "retry", "sent", "failed", "cancelled")


class Delivery(Base):
    """One recipient of one campaign: written before sending, updated with the outcome."""

    __tablename__ = "deliveries"
    __table_args__ = (
        # "Exactly once" starts here: a campaign has one row per subscriber.
        UniqueConstraint("campaign_id", "subscriber_id"),
        # Workers look for claimable rows of a campaign by status and due time.
        Index("ix_deliveries_claim", "campaign_id", "status", "next_attempt_at"),
        Index("ix_deliveries_provider_message_id", "provider_message_id"),
        Index("ix_deliveries_message_id", "message_id"),
        # One person's deliveries: cancelling them on unsubscribe, and the foreign-key
        # cascade when a person is erased, would otherwise scan the whole ledger.
        Index("ix_deliveries_subscriber", "subscriber_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    # The worker that holds the row, and until when (see dispatch.lease_seconds).
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    # The server's reply or the failure's reason.
    last_response: Mapped[str] = mapped_column(Text, default="")
    message_id: Mapped[str | None] = mapped_column(String(300))
    provider_message_id: Mapped[str | None] = mapped_column(String(300))


class Event(Base):
    """Something that came back: a bounce, a complaint, an unsubscribe."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_subscriber", "subscriber_id"),
        # A campaign's feedback is read by campaign and type (status, the console), and
        # erasure cascades from deliveries to events (migration 0011 says more).
        Index("ix_events_campaign_type", "campaign_id", "type"),
        Index("ix_events_delivery", "delivery_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE")
    )
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    # hard_bounce | soft_bounce | complaint | unsubscribe | delivered | ...
    type: Mapped[str] = mapped_column(String(30))
    source: Mapped[str] = mapped_column(String(50), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Meta(Base):
    """Small key/value facts about the installation, e.g. a generated signing key."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TransportRate(Base):
    """A transport's shared send rate: what every worker that sends through it agrees on.

    A rate limit belongs to the provider account, not to a process: workers on
    several hosts take their turns ("slots") from this one row, so that together
    they stay within `rate_per_second` (see newsletter/dispatch/rates.py). Times
    are seconds on the database's clock, the one clock all workers share.
    """

    __tablename__ = "transport_rates"

    transport: Mapped[str] = mapped_column(String(100), primary_key=True)
    # The first slot nobody has taken yet (epoch seconds, database clock).
    next_slot: Mapped[float] = mapped_column(Float, default=0.0)
    # Throttling replies (421/451/454) seen by every worker: a counter for /metrics.
    throttled: Mapped[int] = mapped_column(BigInteger, default=0)


class TransportHour(Base):
    """Messages a transport was allowed to send in one minute, by every worker together.

    The hourly limit (`rate_per_hour`) is the provider account's, like the
    per-second one: workers take their allowance from these rows, one per minute
    of the database's clock, so that all of them together keep to it (see
    newsletter/dispatch/rates.py). Rows older than the window are deleted as
    new ones are written: a transport has 61 of them at most.
    """

    __tablename__ = "transport_hours"

    transport: Mapped[str] = mapped_column(String(100), primary_key=True)
    # Whole minutes since the epoch, on the database's clock.
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    sent: Mapped[int] = mapped_column(BigInteger, default=0)


class SendCounters(Base):
    """A campaign's deliveries counted by state, kept by whoever moves a delivery.

    Counting the ledger by state is a pass over the campaign's whole range of it
    (312 ms at 100,000 recipients on PostgreSQL, seconds at a million), and
    `newsletter status`, the console and /metrics ask for it all through a send.
    Every statement that changes a delivery's state changes these in the same
    transaction, by the rows it changed (newsletter/dispatch/counters.py), so they
    always equal a recount; tests/test_send_counters.py checks that they do.
    """

    __tablename__ = "send_counters"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    pending: Mapped[int] = mapped_column(BigInteger, default=0)
    sending: Mapped[int] = mapped_column(BigInteger, default=0)
    retry: Mapped[int] = mapped_column(BigInteger, default=0)
    sent: Mapped[int] = mapped_column(BigInteger, default=0)
    failed: Mapped[int] = mapped_column(BigInteger, default=0)
    cancelled: Mapped[int] = mapped_column(BigInteger, default=0)
    # Temporary failures recorded (moves from sending to retry), ever: only ever grows,
    # for /metrics. Filled by migration 0010 with the deliveries tried more than once.
    retries: Mapped[int] = mapped_column(BigInteger, default=0)
    # The current rate is measured between two samples of `sent`, kept here instead of
    # counting the ledger's last minute: `mark` is the newer sample, `window` the older,
    # and the outcome writer moves mark to window once mark is RATE_SAMPLE seconds old.
    # Times are Unix seconds. `last_sent_at` is when the latest message was recorded sent.
    window_at: Mapped[float | None] = mapped_column(Float)
    window_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    mark_at: Mapped[float | None] = mapped_column(Float)
    mark_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    last_sent_at: Mapped[float | None] = mapped_column(Float)
