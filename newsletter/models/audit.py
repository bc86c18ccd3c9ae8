"""The audit trail: who did what to which object, and when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.models.base import Base, utcnow


class AuditEvent(Base):
    """One state-changing action, with its actor.

    `object_id` is text so that one table serves campaigns, items, lists, users and
    erasures (whose object is a keyed hash, never an address). `detail` is a short,
    non-personal sentence.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_object", "object_type", "object_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50))
    object_type: Mapped[str] = mapped_column(String(30))
    object_id: Mapped[str] = mapped_column(String(100), default="")
    detail: Mapped[str] = mapped_column(String(500), default="")
