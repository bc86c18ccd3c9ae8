"""What delivery feedback needs besides the events themselves."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.models.base import Base, utcnow


class FeedbackReceipt(Base):
    """One piece of feedback already taken in, so that it is never acted on twice.

    The key names the provider's event (SendGrid's sg_event_id, an SNS MessageId),
    a webhook's one-time token (Mailgun's), or a bounce message's digest; never an
    address. Rows older than the longest time a provider retries are deleted.
    """

    __tablename__ = "feedback_receipts"
    __table_args__ = (Index("ix_feedback_receipts_created_at", "created_at"),)

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class FeedbackWeek(Base):
    """How many events of a type came in a week (its Monday), kept by triggers on events.

    Never written by the package: the triggers of migration 0009_console_counts keep
    it equal to a count over events after every statement, whatever path added or
    removed them (newsletter.feedback.summary.feedback_by_week reads it).
    """

    __tablename__ = "feedback_weeks"

    week: Mapped[date] = mapped_column(primary_key=True)
    type: Mapped[str] = mapped_column(String(30), primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger)


class FeedbackWeekChange(Base):
    """A change to feedback_weeks not yet folded in (PostgreSQL only; see
    newsletter.counts)."""

    __tablename__ = "feedback_week_changes"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    week: Mapped[date]
    type: Mapped[str] = mapped_column(String(30))
    events: Mapped[int] = mapped_column(BigInteger)
