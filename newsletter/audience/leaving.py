"""Leaving: unsubscribe, at once, from some lists or from everything.

Anything that acts for the person uses `unsubscribe`: the pages' links, a
mailto: unsubscribe, a provider's unsubscribe webhook; `unsubscribe_address`
is the same path for staff.

- An unsubscription takes effect at once: the subscriptions end in the same
  transaction, and the person's deliveries that are still waiting (pending or
  due for a retry) in campaigns whose audience no longer includes them are
  cancelled, so that no later send reaches them. A message a worker has
  already claimed may still go out.
- Leaving the last list is leaving everything: the address is then suppressed
  (reason "unsubscribed"), which also keeps segment-only campaigns away, until
  the owner of the address confirms a new subscription (newsletter.audience.joining).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from newsletter import audit, db
from newsletter.app import Newsletter
from newsletter.audience.lists import get_list
from newsletter.audience.resolve import recipients_query
from newsletter.audience.subscribers import end_subscriptions, get_subscriber
from newsletter.audience.suppression import suppression_reason
from newsletter.models import Campaign, Delivery, Event, MailingList, Subscriber, Subscription

# Deliveries that have not reached a worker yet, and so can still be stopped.
WAITING_DELIVERIES = ("pending", "retry")


@dataclass(frozen=True)
class UnsubscribeOutcome:
    # Titles of the lists left by this call; empty when there was nothing to leave.
    left: tuple[str, ...] = ()
    # Whether the person is now off every list (and their address suppressed).
    everything: bool = False
    # Whether there was nothing left to do: they had left already.
    already: bool = True
    language: str = "en"


def unsubscribe(
    app: Newsletter,
    subscriber_id: int | None,
    campaign_id: int | None = None,
    lists: Sequence[str] | None = None,
    *,
    everything: bool = False,
    source: str = "page",
) -> UnsubscribeOutcome:
    """Take a subscriber off lists, at once.

    Which lists: `lists` by name when given; else the lists `campaign_id` was
    sent to (the unsubscribe link of a message); else, or with `everything`,
    or when the campaign went to a segment rather than lists, every list.
    Calling it twice is harmless. An unknown subscriber (erased since, or a
    test message's link with no subscriber) is a quiet no-op.
    """
    if subscriber_id is None:
        return UnsubscribeOutcome()
    with app.session() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return UnsubscribeOutcome()
        campaign = session.get(Campaign, campaign_id) if campaign_id is not None else None
        if campaign is None:
            # A link of a campaign deleted since still unsubscribes (the person asked to
            # leave); the event then cannot point at the campaign.
            campaign_id = None
        if not everything and lists is None and campaign is not None:
            lists = [lst.name for lst in campaign.lists] or None
        outcome = leave(
            app, session, subscriber, lists if not everything else None, source, campaign_id
        )
        return outcome


def leave(
    app: Newsletter,
    session: Session,
    subscriber: Subscriber,
    list_names: Sequence[str] | None,
    source: str,
    campaign_id: int | None,
) -> UnsubscribeOutcome:
    """End subscriptions (all when `list_names` is None) and stop waiting deliveries.

    The ending itself is the audience's `end_subscriptions`, the same as an
    admin's; what is added here is the event, leaving-the-last-list-is-leaving-
    everything, and the cancelling of waiting deliveries.
    """
    key = app.suppression_key
    query = (
        select(Subscription.list_id, MailingList.name, MailingList.title)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(
            Subscription.subscriber_id == subscriber.id,
            Subscription.status != "unsubscribed",
        )
    )
    active = list(session.execute(query))
    wanted = None if list_names is None else set(list_names)
    leaving = [row for row in active if wanted is None or row.name in wanted]
    everything = len(leaving) == len(active)
    note = f"unsubscribed by the person ({source})"
    newly_suppressed = False
    if everything:
        # Off every list: the address is suppressed too, so that no campaign of any shape
        # (a segment over all subscribers included) reaches it until they come back.
        newly_suppressed = suppression_reason(session, key, subscriber.email) is None
        end_subscriptions(session, key, subscriber.id, None, note=note)
    else:
        for row in leaving:
            end_subscriptions(session, key, subscriber.id, row.list_id, note=note)
    session.flush()
    left = tuple(row.title or row.name for row in leaving)
    if left or newly_suppressed:
        session.add(
            Event(
                subscriber_id=subscriber.id,
                campaign_id=campaign_id,
                type="unsubscribe",
                source=source,
                detail={"lists": [row.name for row in leaving], "everything": everything},
            )
        )
    cancel_waiting_deliveries(session, subscriber.id, everything=everything)
    return UnsubscribeOutcome(
        left=left,
        everything=everything,
        already=not (left or newly_suppressed),
        language=subscriber.language,
    )


def cancel_waiting_deliveries(session: Session, subscriber_id: int, *, everything: bool) -> int:
    """Cancel the subscriber's waiting deliveries that their audience no longer includes.

    A person has few waiting deliveries (one per campaign being sent), so each
    campaign's audience is asked about this one person with the audience's own
    query rather than a rule repeated here. The UPDATE re-checks the status, so
    a row a worker claimed in the meantime is left to that worker.
    """
    waiting = list(
        session.execute(
            select(Delivery.id, Delivery.campaign_id).where(
                Delivery.subscriber_id == subscriber_id,
                Delivery.status.in_(WAITING_DELIVERIES),
            )
        )
    )
    stop: list[int] = []
    for delivery_id, campaign_id in waiting:
        if not everything:
            campaign = session.get(Campaign, campaign_id)
            if campaign is not None:
                audience = recipients_query(session, campaign).subquery()
                still = session.scalar(
                    select(audience.c.subscriber_id).where(
                        audience.c.subscriber_id == subscriber_id
                    )
                )
                if still is not None:
                    continue
        stop.append(delivery_id)
    if not stop:
        return 0
    result = session.execute(
        update(Delivery)
        .where(Delivery.id.in_(stop), Delivery.status.in_(WAITING_DELIVERIES))
        .values(status="cancelled", last_response="unsubscribed before it was sent")
    )
    return db.rows_changed(result) or 0


@dataclass(frozen=True)
class AddressUnsubscribed:
    """`subscribers unsubscribe`: the lists the person left, and whether that was all."""

    email: str
    list: str | None
    # builtins': the field above shadows the name inside this class.
    left: builtins.list[str]
    everything: bool
    # They had left already: nothing changed.
    already: bool


def unsubscribe_address(
    app: Newsletter, email: str, *, list_name: str | None = None, actor: str
) -> AddressUnsubscribed:
    """An admin records that a person left one list, or everything.

    The same path as the person's own unsubscribe link (`unsubscribe`):
    their waiting deliveries are cancelled, an event is kept, and leaving the
    last list is leaving everything, which suppresses the address.
    """
    with app.session() as session:
        subscriber = get_subscriber(session, email)
        if list_name is not None:
            get_list(session, list_name)
        subscriber_id, shown = subscriber.id, subscriber.email
        audit.record(session, actor, "unsubscribe", "subscriber", subscriber_id,
                     f"from {list_name!r}" if list_name else "from every list")  # fmt: skip
    outcome = unsubscribe(
        app,
        subscriber_id,
        lists=[list_name] if list_name else None,
        everything=list_name is None,
        source="admin",
    )
    return AddressUnsubscribed(
        email=shown,
        list=list_name,
        left=list(outcome.left),
        everything=outcome.everything,
        already=outcome.already,
    )
