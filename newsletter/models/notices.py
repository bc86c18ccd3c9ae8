"""Transactional notices sent, kept only to limit how many reach one address."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.models.base import Base, utcnow


class NoticeSent(Base):
    """One notice (confirmation, already subscribed) sent to an address.

    The address is kept only as its keyed hash (the same as the suppression
    list's): enough to count a day's notices to it, not to read it. Rows older
    than a day are deleted as new ones are written (newsletter.notices).
    """

    __tablename__ = "notices_sent"
    __table_args__ = (Index("ix_notices_sent_recipient_hash_sent_at", "recipient_hash", "sent_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_hash: Mapped[str] = mapped_column(String(64))
    notice: Mapped[str] = mapped_column(String(50))
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
