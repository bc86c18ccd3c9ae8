"""Which delivery (and so which subscriber and campaign) a piece of feedback is about.

Tried in order, each an indexed lookup: the delivery id the provider echoed
from our request (checked against the address it reports), our Message-ID
quoted in a bounce, the provider's message id (with the address, since some
providers give a whole batch one id), and last the address alone, when the
source may be trusted with it (see FeedbackEvent.match_by_address).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.audience.suppression import address_key
from newsletter.feedback.events import FeedbackEvent
from newsletter.models import Delivery, Subscriber


@dataclass(frozen=True)
class Match:
    subscriber_id: int
    email: str
    delivery_id: int | None = None
    campaign_id: int | None = None


def find_match(session: Session, event: FeedbackEvent) -> Match | None:
    wanted = address_key(event.address) if event.address else None
    base = select(Delivery.id, Delivery.subscriber_id, Delivery.campaign_id, Subscriber.email).join(
        Subscriber, Subscriber.id == Delivery.subscriber_id
    )
    lookups = []
    if event.delivery_id is not None:
        lookups.append(base.where(Delivery.id == event.delivery_id))
    if event.message_id:
        lookups.append(base.where(Delivery.message_id == event.message_id.strip("<> ")))
    if event.provider_message_id and wanted:
        lookups.append(
            base.where(
                Delivery.provider_message_id == event.provider_message_id,
                Subscriber.email_key == wanted,
            )
        )
    for query in lookups:
        row = session.execute(query.limit(1)).first()
        if row is None:
            continue
        delivery_id, subscriber_id, campaign_id, email = row
        # A forwarded address may bounce under another name, so only an address that
        # is given and differs on an echoed id rules the row out.
        if event.delivery_id == delivery_id and wanted and address_key(email) != wanted:
            continue
        return Match(subscriber_id, email, delivery_id, campaign_id)
    if wanted and event.match_by_address:
        person = session.execute(
            select(Subscriber.id, Subscriber.email).where(Subscriber.email_key == wanted)
        ).first()
        if person is not None:
            return Match(person[0], person[1])
    return None
