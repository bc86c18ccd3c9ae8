"""Resolving a campaign's audience to subscribers, in one set-based query.

PLACEHOLDER: lists' confirmed members minus inactive subscribers; segments and
suppression come with the audience work.
"""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from newsletter.models import Campaign, Subscriber, Subscription, campaign_lists


def recipients_query(session: Session, campaign: Campaign) -> Select[tuple[int]]:
    """SELECT of the distinct subscriber ids a campaign goes to (one column: subscriber_id).

    The same query gives the count shown before sending and feeds the
    INSERT … SELECT that writes the deliveries ledger.
    """
    list_ids = select(campaign_lists.c.list_id).where(campaign_lists.c.campaign_id == campaign.id)
    return (
        select(Subscriber.id.label("subscriber_id"))
        .join(Subscription, Subscription.subscriber_id == Subscriber.id)
        .where(Subscription.list_id.in_(list_ids))
        .where(Subscription.status == "confirmed")
        .where(Subscriber.status == "active")
        .distinct()
    )
