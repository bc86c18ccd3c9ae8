"""A subscriber's history for their profile: each delivery and each feedback event.

Newest first and keyset-paginated (`before` is the id of the last row shown): a
person who has been on the lists for years has one delivery per campaign and
the page must not read them all, nor skip over an OFFSET of them. Both queries
are shaped for the per-subscriber indexes (ix_deliveries_subscriber,
ix_events_subscriber): on SQLite an index holds the row id after its key, so
"this subscriber's rows by id, descending" is a walk of one index range; on
PostgreSQL the few rows of one person are sorted after the index lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from newsletter.app import Newsletter
from newsletter.feedback.events import FEEDBACK_TYPES
from newsletter.feedback.summary import describe_event
from newsletter.models import Campaign, Delivery, Event

PAGE = 20


@dataclass(frozen=True)
class DeliveryLine:
    id: int
    campaign_id: int
    subject: str
    status: str
    # When it was sent, or when its campaign started sending (for one not sent).
    at: datetime | None
    # The server's answer for a failed delivery; "" otherwise.
    reason: str


@dataclass(frozen=True)
class EventLine:
    id: int
    kind: str  # hard_bounce | soft_bounce | complaint | unsubscribe
    campaign_id: int | None
    at: datetime
    description: str


def deliveries_of(
    app: Newsletter, subscriber_id: int, *, before: int | None = None, limit: int = PAGE
) -> list[DeliveryLine]:
    """A subscriber's deliveries, newest first: `limit` of them older than `before`."""
    query = (
        select(Delivery.id, Delivery.campaign_id, Campaign.subject, Delivery.status,
               Delivery.sent_at, Campaign.started_at, Delivery.last_response)
        .join(Campaign, Campaign.id == Delivery.campaign_id)
        .where(Delivery.subscriber_id == subscriber_id)
        .order_by(Delivery.id.desc())
        .limit(limit)
    )  # fmt: skip
    if before is not None:
        query = query.where(Delivery.id < before)
    with app.session() as session:
        return [
            DeliveryLine(id=row.id, campaign_id=row.campaign_id, subject=row.subject,
                         status=row.status, at=row.sent_at or row.started_at,
                         reason=row.last_response if row.status == "failed" else "")
            for row in session.execute(query)
        ]  # fmt: skip


def events_of(
    app: Newsletter, subscriber_id: int, *, before: int | None = None, limit: int = PAGE
) -> list[EventLine]:
    """A subscriber's bounces, complaints and unsubscriptions, newest first."""
    query = (
        select(Event.id, Event.type, Event.source, Event.detail, Event.campaign_id,
               Event.created_at)
        .where(Event.subscriber_id == subscriber_id, Event.type.in_(FEEDBACK_TYPES))
        .order_by(Event.id.desc())
        .limit(limit)
    )  # fmt: skip
    if before is not None:
        query = query.where(Event.id < before)
    with app.session() as session:
        return [
            EventLine(id=row.id, kind=row.type, campaign_id=row.campaign_id,
                      at=row.created_at,
                      description=describe_event(row.type, row.source, row.detail))
            for row in session.execute(query)
        ]  # fmt: skip
