"""Subscribers and their subscriptions, as admins manage them: add, look up, remove.

The rule that matters most lives here and in the import: an address that
unsubscribed from a list, or is suppressed, is never subscribed again unless
someone explicitly forces it, and then the consent record says so.

`add_to_list` and `end_subscriptions` take a session, so that other stages can
use them inside their own transaction; the functions that take the app are
whole admin operations, one transaction each. What subscribers do themselves
on the web is in `joining`, `leaving` and `preferences`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from newsletter import audit, db
from newsletter.app import Newsletter
from newsletter.audience.addresses import normalise_address
from newsletter.audience.consent import DEFAULT_ADMIN_TEXT, Consent
from newsletter.audience.lists import get_list, get_open_list
from newsletter.audience.suppression import hash_key, suppress
from newsletter.audience.topics import Topics
from newsletter.errors import InvalidState, NotFound
from newsletter.models import (
    Delivery,
    MailingList,
    Subscriber,
    Subscription,
    Suppression,
    utcnow,
)


@dataclass(frozen=True)
class Obstacle:
    """Why an address may not simply be (re-)subscribed."""

    kind: str  # suppressed | inactive | unsubscribed
    text: str


def subscription_obstacle(
    *,
    suppressed_reason: str | None,
    subscriber_status: str | None,
    subscription_status: str | None,
    unsubscribed_at: datetime | None,
    list_name: str,
) -> Obstacle | None:
    """The never-resubscribe rule, in one place for the import and for single additions."""
    if suppressed_reason is not None:
        return Obstacle("suppressed", f"the address is suppressed ({suppressed_reason})")
    if subscriber_status not in (None, "active"):
        return Obstacle("inactive", f"the subscriber is {subscriber_status}")
    if subscription_status == "unsubscribed":
        when = f" on {unsubscribed_at:%Y-%m-%d}" if unsubscribed_at else ""
        return Obstacle("unsubscribed", f"unsubscribed from list {list_name!r}{when}")
    return None


def forced_note(obstacle: Obstacle, source: str) -> str:
    return f"re-subscribed by {source} with --force-resubscribe over: {obstacle.text}"


@dataclass(frozen=True)
class SubscriberAdded:
    """An address subscribed to a list: `subscribers add` prints it."""

    id: int
    subscription_id: int
    email: str
    list: str
    status: str
    # A new subscriber, not one already known.
    created: bool
    # The obstacle `force` lifted, else None.
    forced: str | None


def add_to_list(
    session: Session,
    key: str,
    email: str,
    list_name: str,
    *,
    consent: Consent,
    confirmed: bool,
    name: str = "",
    language: str | None = None,
    attributes: dict[str, Any] | None = None,
    keep_ip: bool = False,
    force: bool = False,
    default_language: str = "en",
) -> SubscriberAdded:
    """Subscribe an address to a list (creating the subscriber when new).

    `key` is the suppression key. An address that is suppressed, inactive, or
    unsubscribed from this list raises InvalidState, unless `force`, which
    lifts the obstacle and records it in the consent note. Profile fields that
    are given replace the stored ones; attributes are merged.
    """
    address = normalise_address(email)
    mailing_list = get_open_list(session, list_name)
    digest = hash_key(key, address.key)
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email_key == address.key))
    subscription = None
    if subscriber is not None:
        subscription = session.scalar(
            select(Subscription).where(
                Subscription.subscriber_id == subscriber.id,
                Subscription.list_id == mailing_list.id,
            )
        )
    suppressed_reason = session.scalar(
        select(Suppression.reason).where(Suppression.email_hash == digest)
    )
    obstacle = subscription_obstacle(
        suppressed_reason=suppressed_reason,
        subscriber_status=subscriber.status if subscriber else None,
        subscription_status=subscription.status if subscription else None,
        unsubscribed_at=subscription.unsubscribed_at if subscription else None,
        list_name=mailing_list.name,
    )
    if obstacle and not force:
        raise InvalidState(
            f"{address.email}: {obstacle.text}; not subscribed again "
            "(an admin may override with --force-resubscribe)"
        )
    if obstacle:
        consent = Consent(
            method=consent.method,
            source=consent.source,
            text=consent.text,
            ip=consent.ip,
            note=forced_note(obstacle, consent.source or consent.method),
            at=consent.at,
        )
        if suppressed_reason is not None:
            session.execute(delete(Suppression).where(Suppression.email_hash == digest))

    now = utcnow()
    created = subscriber is None
    if subscriber is None:
        subscriber = Subscriber(
            email=address.email,
            email_key=address.key,
            email_hash=digest,
            name=name or address.display_name,
            language=language or default_language,
            attributes=dict(attributes or {}),
            status="active",
            created_at=now,
            updated_at=now,
        )
        session.add(subscriber)
        session.flush()
    else:
        subscriber.email_hash = digest
        if name:
            subscriber.name = name
        if language:
            subscriber.language = language
        if attributes:
            subscriber.attributes = {**subscriber.attributes, **attributes}
        if obstacle:
            subscriber.status = "active"

    status = "confirmed" if confirmed else "unconfirmed"
    if subscription is None:
        subscription = Subscription(
            subscriber_id=subscriber.id,
            list_id=mailing_list.id,
            status=status,
            created_at=now,
            updated_at=now,
            **consent.columns(keep_ip=keep_ip),
        )
        session.add(subscription)
    else:
        # Confirmed stays confirmed: a new unconfirmed request does not undo it.
        if subscription.status != "confirmed" or obstacle:
            subscription.status = status
        for column, value in consent.columns(keep_ip=keep_ip).items():
            setattr(subscription, column, value)
        subscription.unsubscribed_at = None
        subscription.updated_at = now
    session.flush()
    return SubscriberAdded(
        id=subscriber.id,
        subscription_id=subscription.id,
        email=subscriber.email,
        list=mailing_list.name,
        status=subscription.status,
        created=created,
        forced=obstacle.text if obstacle else None,
    )


def end_subscriptions(
    session: Session,
    key: str,
    subscriber_id: int,
    list_id: int | None = None,
    *,
    note: str = "",
) -> int:
    """End a subscription, or with no list every one and suppress the address.

    Returns how many subscriptions ended. Leaving everything puts the address
    on the suppression list (reason `unsubscribed`), so that no later import
    brings it back.
    """
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        return 0
    now = utcnow()
    query = update(Subscription).where(
        Subscription.subscriber_id == subscriber_id, Subscription.status != "unsubscribed"
    )
    if list_id is not None:
        query = query.where(Subscription.list_id == list_id)
    ended = db.rows_changed(
        session.execute(
            query.values(
                status="unsubscribed", unsubscribed_at=now, updated_at=now
            ).execution_options(synchronize_session=False)
        )
    )
    if list_id is None:
        suppress(session, key, subscriber.email, "unsubscribed", note)
    session.expire(subscriber)
    return ended


# --- admin operations ---------------------------------------------------------


def get_subscriber(session: Session, email: str) -> Subscriber:
    address = normalise_address(email)
    subscriber = session.scalar(select(Subscriber).where(Subscriber.email_key == address.key))
    if subscriber is None:
        raise NotFound(f"no subscriber with the address {address.email}")
    return subscriber


def add_subscriber(
    app: Newsletter,
    email: str,
    list_name: str,
    *,
    name: str = "",
    language: str | None = None,
    attributes: dict[str, Any] | None = None,
    consent_text: str | None = None,
    confirmed: bool = True,
    force: bool = False,
    actor: str,
) -> SubscriberAdded:
    """An admin adds one person to a list (confirmed: the admin vouches for the consent).

    Topics are stored as slugs (`topics`), however they were named.
    """
    if attributes and isinstance(attributes.get("topics"), list | str):
        given = attributes["topics"]
        topics = Topics.from_config(app.config.web)
        slugs = topics.to_slugs([given] if isinstance(given, str) else given)
        attributes = {**attributes, "topics": slugs}
    consent = Consent(method="admin", source=actor, text=consent_text or DEFAULT_ADMIN_TEXT)
    with app.session() as session:
        added = add_to_list(
            session,
            app.suppression_key,
            email,
            list_name,
            consent=consent,
            confirmed=confirmed,
            name=name,
            language=language,
            attributes=attributes,
            force=force,
            keep_ip=app.config.privacy.store_ip_addresses,
            default_language=app.config.editions.default_language,
        )
        audit.record(session, actor, "add", "subscriber", added.id, f"to {list_name!r}")
        return added


@dataclass(frozen=True)
class SubscriberProfile:
    """Who a subscriber is (no subscriptions)."""

    id: int
    email: str
    name: str
    language: str
    status: str
    # What an import or a form said about the person: user data, a mapping by nature.
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SubscriptionRecord:
    """One of a subscriber's subscriptions, with the consent that made it."""

    list: str
    status: str
    consent_at: datetime | None
    consent_method: str
    consent_source: str
    consent_text: str
    consent_ip: str | None
    consent_note: str
    unsubscribed_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SubscriberDetail(SubscriberProfile):
    """`subscribers show`: the profile, its suppression, deliveries and subscriptions."""

    # The suppression's reason, else None.
    suppressed: str | None
    deliveries: int
    subscriptions: list[SubscriptionRecord]


def subscriber_profile(subscriber: Subscriber) -> SubscriberProfile:
    return SubscriberProfile(
        id=subscriber.id,
        email=subscriber.email,
        name=subscriber.name,
        language=subscriber.language,
        status=subscriber.status,
        attributes=subscriber.attributes,
        created_at=subscriber.created_at,
        updated_at=subscriber.updated_at,
    )


def subscription_record(
    subscription: Subscription, mailing_list: MailingList
) -> SubscriptionRecord:
    return SubscriptionRecord(
        list=mailing_list.name,
        status=subscription.status,
        consent_at=subscription.consent_at,
        consent_method=subscription.consent_method,
        consent_source=subscription.consent_source,
        consent_text=subscription.consent_text,
        consent_ip=subscription.consent_ip,
        consent_note=subscription.consent_note,
        unsubscribed_at=subscription.unsubscribed_at,
        created_at=subscription.created_at,
        updated_at=subscription.updated_at,
    )


def show_subscriber(app: Newsletter, email: str) -> SubscriberDetail:
    """A subscriber's profile, subscriptions with consent, suppression and delivery count."""
    with app.session() as session:
        subscriber = get_subscriber(session, email)
        rows = session.execute(
            select(Subscription, MailingList)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(Subscription.subscriber_id == subscriber.id)
            .order_by(MailingList.name)
        )
        suppression = session.scalar(
            select(Suppression.reason).where(
                Suppression.email_hash == hash_key(app.suppression_key, subscriber.email_key)
            )
        )
        deliveries = session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.subscriber_id == subscriber.id)
        )
        return SubscriberDetail(
            **asdict(subscriber_profile(subscriber)),
            suppressed=suppression,
            deliveries=deliveries or 0,
            subscriptions=[subscription_record(sub, lst) for sub, lst in rows],
        )


def subscriber_address(app: Newsletter, subscriber_id: int) -> str:
    """The address of a subscriber by id (the console's links name ids, never addresses)."""
    with app.session() as session:
        email = session.scalar(select(Subscriber.email).where(Subscriber.id == subscriber_id))
    if email is None:
        raise NotFound(f"no subscriber with id {subscriber_id}")
    return email


@dataclass(frozen=True, slots=True)
class SubscriberLine:
    """A subscriber as `subscribers list` and the console's search show it."""

    id: int
    email: str
    name: str
    language: str
    status: str


def search_subscribers(
    app: Newsletter,
    query: str,
    *,
    list_name: str | None = None,
    limit: int = 50,
    after: str | None = None,
    prefix: bool = False,
) -> list[SubscriberLine]:
    """Subscribers whose address or name holds `query` (case-insensitive), by address.

    `after` (the last address key of the previous page) pages on by keyset: each
    page costs the same however deep it is, where an OFFSET would read every row
    before it. An empty query lists everyone, by address. With `prefix`, only
    addresses that begin with `query`: a range of the address index, where
    "holds" reads every subscriber (seconds with a million of them).
    """
    needle = query.strip().casefold()
    with app.session() as session:
        statement = select(Subscriber).order_by(Subscriber.email_key).limit(limit)
        if needle and prefix:
            # The range lets the index find the rows; LIKE then keeps exactly the prefix
            # (a collation may order a few others inside the range).
            statement = statement.where(
                Subscriber.email_key >= needle,
                Subscriber.email_key < needle + "\U0010ffff",
                Subscriber.email_key.startswith(needle, autoescape=True),
            )
        elif needle:
            statement = statement.where(
                or_(
                    Subscriber.email_key.contains(needle, autoescape=True),
                    func.lower(Subscriber.name).contains(needle, autoescape=True),
                )
            )
        if after:
            statement = statement.where(Subscriber.email_key > after)
        if list_name is not None:
            mailing_list = get_list(session, list_name)
            statement = statement.where(
                Subscriber.id.in_(
                    select(Subscription.subscriber_id).where(
                        Subscription.list_id == mailing_list.id
                    )
                )
            )
        return [
            SubscriberLine(s.id, s.email, s.name, s.language, s.status)
            for s in session.scalars(statement)
        ]


@dataclass(frozen=True)
class SubscriberRemoved:
    email: str
    list: str | None
    # "subscription" (one membership) or "subscriber" (the person and every membership).
    removed: str


def remove_subscriber(
    app: Newsletter, email: str, *, list_name: str | None = None, actor: str
) -> SubscriberRemoved:
    """Delete a membership, or the whole subscriber, as if never added (a mistake undone).

    This is not how a person leaves: `unsubscribe_address` keeps the record that they
    did, so that no import brings them back; `person erase` answers an erasure
    request.
    """
    with app.session() as session:
        subscriber = get_subscriber(session, email)
        if list_name is not None:
            mailing_list = get_list(session, list_name)
            removed = db.rows_changed(
                session.execute(
                    delete(Subscription).where(
                        Subscription.subscriber_id == subscriber.id,
                        Subscription.list_id == mailing_list.id,
                    )
                )
            )
            if not removed:
                raise NotFound(f"{subscriber.email} is not on list {list_name!r}")
            audit.record(session, actor, "remove", "subscriber", subscriber.id,
                         f"from {list_name!r}")  # fmt: skip
            return SubscriberRemoved(subscriber.email, list_name, "subscription")
        session.execute(delete(Subscriber).where(Subscriber.id == subscriber.id))
        audit.record(session, actor, "remove", "subscriber", subscriber.id, "with every list")
        return SubscriberRemoved(subscriber.email, None, "subscriber")
