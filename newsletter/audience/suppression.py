"""The suppression list: addresses never to be mailed, kept only as keyed hashes.

An entry is an HMAC-SHA256 of the address's key (its case-folded normal form)
under `app.suppression_key`, never the address itself: after a person is
erased, the list can still say "never mail this address" when it turns up in
a later import, yet nobody reading the database can learn who it was.

Every subscriber row carries the same hash (`Subscriber.email_hash`), so that
resolving an audience leaves suppressed addresses out with one anti-join. The
key must therefore stay the same for the life of the database: with another
key, old entries match nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from newsletter import audit, db
from newsletter.app import Newsletter
from newsletter.audience.addresses import InvalidAddress, email_key, normalise_address
from newsletter.errors import InputError
from newsletter.models import Subscriber, Subscription, Suppression, utcnow

SUPPRESSION_REASONS = ("unsubscribed", "hard_bounce", "complaint", "manual", "erased")

# The subscriber status that goes with each reason, so that a suppressed person also
# reads as such in `subscribers show` and drops out of the status filter of an audience.
STATUS_FOR_REASON = {
    "unsubscribed": "unsubscribed",
    "hard_bounce": "bounced",
    "complaint": "complained",
    "manual": "blocklisted",
    "erased": "blocklisted",
}


def address_key(email: str) -> str:
    """The key of an address as given: normalised when valid, else just case-folded.

    An invalid address can still be suppressed (a bounce may report one), so
    this never refuses.
    """
    try:
        return normalise_address(email).key
    except InvalidAddress:
        return email_key(email)


def hash_key(secret: str, key: str) -> str:
    """HMAC-SHA256 of an address key (already case-folded): matchable, but not readable."""
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


class KeyHasher:
    """Hashes many keys under one secret cheaply (an import hashes every row).

    The HMAC's keyed state is computed once and copied per address.
    """

    def __init__(self, secret: str) -> None:
        self._base = hmac.new(secret.encode(), digestmod=hashlib.sha256)

    def __call__(self, key: str) -> str:
        mac = self._base.copy()
        mac.update(key.encode())
        return mac.hexdigest()


def suppression_hash(key: str, email: str) -> str:
    """The suppression hash of an address under the suppression key `key`."""
    return hash_key(key, address_key(email))


def suppress(session: Session, key: str, email: str, reason: str, note: str = "") -> bool:
    """Add an address to the suppression list; False when it was there already.

    Also marks the subscriber with that address, if there is one and it is
    still active, with the matching status (a hard bounce makes it `bounced`,
    a complaint `complained`, a manual entry `blocklisted`); an unsubscription
    from everything also ends each of its subscriptions. The dispatcher calls
    this on a hard bounce and needs nothing else.
    """
    if reason not in SUPPRESSION_REASONS:
        raise InputError(
            f"unknown suppression reason {reason!r} (one of: {', '.join(SUPPRESSION_REASONS)})"
        )
    subscriber_key = address_key(email)
    digest = hash_key(key, subscriber_key)
    now = utcnow()
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    # INSERT … ON CONFLICT DO NOTHING rather than look-then-insert: two workers handling
    # bounces for the same address at once must not fail on the unique hash.
    # RETURNING says whether a row went in; rowcount is not reliable across drivers here.
    added = (
        session.execute(
            insert(Suppression)
            .values(email_hash=digest, reason=reason, note=note, created_at=now)
            .on_conflict_do_nothing(index_elements=["email_hash"])
            .returning(Suppression.id)
        ).first()
        is not None
    )

    subscriber_id = session.scalar(
        select(Subscriber.id).where(Subscriber.email_key == subscriber_key)
    )
    if subscriber_id is not None:
        session.execute(
            update(Subscriber)
            .where(Subscriber.id == subscriber_id, Subscriber.email_hash.is_(None))
            .values(email_hash=digest)
        )
        session.execute(
            update(Subscriber)
            .where(Subscriber.id == subscriber_id, Subscriber.status == "active")
            .values(status=STATUS_FOR_REASON[reason], updated_at=now)
        )
        if reason == "unsubscribed":
            session.execute(
                update(Subscription)
                .where(
                    Subscription.subscriber_id == subscriber_id,
                    Subscription.status != "unsubscribed",
                )
                .values(status="unsubscribed", unsubscribed_at=now, updated_at=now)
            )
    return added


def is_suppressed(session: Session, key: str, email: str) -> bool:
    return suppression_reason(session, key, email) is not None


def suppression_reason(session: Session, key: str, email: str) -> str | None:
    """Why an address is suppressed, or None when it is not."""
    digest = suppression_hash(key, email)
    return session.scalar(select(Suppression.reason).where(Suppression.email_hash == digest))


def suppressed_among(session: Session, hashes: Iterable[str]) -> dict[str, str]:
    """Which of these hashes are suppressed, and why: one query for a whole batch."""
    wanted = list(hashes)
    if not wanted:
        return {}
    # An import asks about thousands of hashes at once: one parameter, not one per hash.
    dialect = session.connection().dialect.name
    rows = session.execute(
        select(Suppression.email_hash, Suppression.reason).where(
            db.among(cast(Table, Suppression.__table__).c.email_hash, wanted, dialect)
        )
    )
    return {digest: reason for digest, reason in rows}


def lift_suppression(session: Session, key: str, email: str) -> str | None:
    """Remove an address from the suppression list; returns the reason it had, if any.

    Only an explicit admin action calls this (`newsletter suppress --lift`, or an
    import with --force-resubscribe, which records the override).
    """
    subscriber_key = address_key(email)
    digest = hash_key(key, subscriber_key)
    reason = session.scalar(select(Suppression.reason).where(Suppression.email_hash == digest))
    if reason is None:
        return None
    session.execute(delete(Suppression).where(Suppression.email_hash == digest))
    # The status the suppression gave the subscriber goes with it; the subscriptions it
    # ended stay ended (lifting a block is not a re-subscription).
    session.execute(
        update(Subscriber)
        .where(
            Subscriber.email_key == subscriber_key,
            Subscriber.status == STATUS_FOR_REASON[reason],
        )
        .values(status="active", updated_at=utcnow())
    )
    return reason


# --- admin operations ---------------------------------------------------------


@dataclass(frozen=True)
class AddressSuppressed:
    id: int
    address: str
    reason: str
    # False when the address was suppressed already (its first reason stays).
    added: bool
    since: datetime


@dataclass(frozen=True)
class AddressLifted:
    address: str
    # The reason it had been suppressed for; None when it was not suppressed.
    lifted: str | None


def suppress_address(
    app: Newsletter, email: str, reason: str, note: str = "", *, actor: str
) -> AddressSuppressed:
    """An admin puts an address on the suppression list (it need not be a subscriber)."""
    address = normalise_address(email)
    with app.session() as session:
        added = suppress(session, app.suppression_key, address.email, reason, note)
        entry = session.execute(
            select(Suppression.id, Suppression.reason, Suppression.created_at).where(
                Suppression.email_hash == hash_key(app.suppression_key, address.key)
            )
        ).one()
        if added:
            audit.record(session, actor, "suppress", "suppression", entry.id, reason)
        return AddressSuppressed(
            id=entry.id,
            address=address.email,
            reason=entry.reason,
            added=added,
            since=entry.created_at,
        )


def lift_address(app: Newsletter, email: str, *, actor: str) -> AddressLifted:
    """An admin takes an address off the suppression list (a mistake undone)."""
    address = normalise_address(email)
    with app.session() as session:
        reason = lift_suppression(session, app.suppression_key, address.email)
        if reason:
            keyed = hash_key(app.suppression_key, address.key)
            audit.record(session, actor, "lift", "suppression", keyed[:64], reason)
        return AddressLifted(address=address.email, lifted=reason)
