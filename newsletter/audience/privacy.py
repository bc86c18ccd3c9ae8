"""Data-protection requests: export everything held on a person, or erase it.

Erasure deletes the subscriber, their subscriptions and consent records, the
deliveries addressed to them and every event about them (also events that
name the address without being linked to a subscriber, such as an unmatched
bounce), and leaves one thing behind: the suppression entry, a keyed hash
that lets the program refuse the address later without being able to read it.

Erased means gone from the database file too. SQLite keeps deleted rows in
free pages and old row versions in its write-ahead log, so on SQLite the
erasure runs with `secure_delete` on, then the file is rebuilt (VACUUM) and the
log checkpointed and truncated. On PostgreSQL the touched tables are
vacuumed; old bytes may still sit in data files until reused, and in WAL
archives and backups until they rotate (say so to whoever asks).

Finally every text column of every table is searched for the address, and
anything left is reported by table and column.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from typing import cast as typed

from sqlalchemy import JSON, Engine, String, Table, Text, cast, delete, func, literal, or_, select
from sqlalchemy.orm import Session

from newsletter import audit, db
from newsletter.app import Newsletter
from newsletter.audience.addresses import InvalidAddress, normalise_address
from newsletter.audience.subscribers import (
    SubscriberProfile,
    SubscriptionRecord,
    subscriber_profile,
    subscription_record,
)
from newsletter.audience.suppression import address_key, hash_key
from newsletter.errors import OperationFailed
from newsletter.models import (
    Base,
    Campaign,
    Delivery,
    Event,
    MailingList,
    Subscriber,
    Subscription,
    Suppression,
    utcnow,
)
from newsletter.transports.dsn import parse_dsn
from newsletter.transports.maildir import maildir_folder


def _like_pattern(text: str) -> str:
    return "%" + text.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def _mentions(column: Any, email: str) -> Any:
    """A column's text holds the address, in any case, also as JSON writes non-ASCII.

    Both sides go through the database's own lower(), which on SQLite folds
    only ASCII letters, so that the comparison is the same on either side.
    """
    key = address_key(email)
    forms = {key, email.strip()}
    with contextlib.suppress(InvalidAddress):
        forms.add(normalise_address(email).email)
    forms |= {json.dumps(form)[1:-1] for form in forms}
    text = func.lower(cast(column, Text))
    return or_(
        *(text.like(func.lower(literal(_like_pattern(form))), escape="/") for form in sorted(forms))
    )


def _events_query(subscriber_id: int | None, email: str) -> Any:
    """Events about a person: linked to them or their deliveries, or naming the address."""
    conditions = [Event.subscriber_id.is_(None) & _mentions(Event.detail, email)]
    if subscriber_id is not None:
        conditions += [
            Event.subscriber_id == subscriber_id,
            Event.delivery_id.in_(
                select(Delivery.id).where(Delivery.subscriber_id == subscriber_id)
            ),
        ]
    return or_(*conditions)


@dataclass(frozen=True)
class DeliveryHeld:
    """A message sent (or tried) to the person, as their export shows it."""

    campaign_id: int
    subject: str
    status: str
    attempts: int
    sent_at: datetime | None
    message_id: str | None
    provider_message_id: str | None
    last_response: str


@dataclass(frozen=True)
class EventHeld:
    """A bounce, complaint or unsubscribe recorded about the person."""

    type: str
    source: str
    campaign_id: int | None
    delivery_id: int | None
    # What the provider or the bounce said: its own payload, a mapping by nature.
    detail: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class SuppressionHeld:
    reason: str
    since: datetime


@dataclass(frozen=True)
class PersonExport:
    """Everything held on one person (`person export`), in the order the document lists it."""

    address: str
    exported_at: datetime
    subscriber: SubscriberProfile | None
    subscriptions: list[SubscriptionRecord]
    deliveries: list[DeliveryHeld]
    events: list[EventHeld]
    suppression: SuppressionHeld | None


def export_person(app: Newsletter, email: str) -> PersonExport:
    """Everything held on the person with this address, as one JSON-ready document."""
    key = address_key(email)
    with app.session() as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email_key == key))
        subscriber_id = subscriber.id if subscriber else None
        suppression = session.execute(
            select(Suppression.reason, Suppression.created_at).where(
                Suppression.email_hash == hash_key(app.suppression_key, key)
            )
        ).first()
        subscriptions: list[SubscriptionRecord] = []
        deliveries: list[DeliveryHeld] = []
        if subscriber is not None:
            subscriptions = [
                subscription_record(sub, lst)
                for sub, lst in session.execute(
                    select(Subscription, MailingList)
                    .join(MailingList, MailingList.id == Subscription.list_id)
                    .where(Subscription.subscriber_id == subscriber.id)
                    .order_by(Subscription.id)
                )
            ]
            deliveries = [
                DeliveryHeld(
                    campaign_id=delivery.campaign_id,
                    subject=subject,
                    status=delivery.status,
                    attempts=delivery.attempts,
                    sent_at=delivery.sent_at,
                    message_id=delivery.message_id,
                    provider_message_id=delivery.provider_message_id,
                    last_response=delivery.last_response,
                )
                for delivery, subject in session.execute(
                    select(Delivery, Campaign.subject)
                    .join(Campaign, Campaign.id == Delivery.campaign_id)
                    .where(Delivery.subscriber_id == subscriber.id)
                    .order_by(Delivery.id)
                )
            ]
        events = [
            EventHeld(
                type=event.type,
                source=event.source,
                campaign_id=event.campaign_id,
                delivery_id=event.delivery_id,
                detail=event.detail,
                created_at=event.created_at,
            )
            for event in session.scalars(
                select(Event).where(_events_query(subscriber_id, email)).order_by(Event.id)
            )
        ]
        return PersonExport(
            address=email.strip(),
            exported_at=utcnow(),
            subscriber=subscriber_profile(subscriber) if subscriber else None,
            subscriptions=subscriptions,
            deliveries=deliveries,
            events=events,
            suppression=(
                SuppressionHeld(reason=suppression.reason, since=suppression.created_at)
                if suppression
                else None
            ),
        )


@dataclass
class ErasureReport:
    address: str
    found: bool = False
    removed: dict[str, int] = field(default_factory=dict)
    suppressed: bool = True
    storage: str = ""
    remaining: list[str] = field(default_factory=list)  # "table.column (N rows)"
    # Messages already handed to a maildir outbox: sent mail, outside the database.
    outbox_copies: list[str] = field(default_factory=list)


def erase_person(app: Newsletter, email: str, *, actor: str) -> ErasureReport:
    """Delete a person's data everywhere, keep only their suppression entry; say what went."""
    key = address_key(email)
    report = ErasureReport(address=email.strip())
    with app.session() as session:
        if session.get_bind().dialect.name == "sqlite":
            # Deleted rows are overwritten with zeros instead of lingering in free space.
            session.connection().exec_driver_sql("PRAGMA secure_delete = ON")
        subscriber_id = session.scalar(select(Subscriber.id).where(Subscriber.email_key == key))
        report.found = subscriber_id is not None
        removed = {
            "events": session.execute(delete(Event).where(_events_query(subscriber_id, email)))
        }
        if subscriber_id is not None:
            removed["deliveries"] = session.execute(
                delete(Delivery).where(Delivery.subscriber_id == subscriber_id)
            )
            removed["subscriptions"] = session.execute(
                delete(Subscription).where(Subscription.subscriber_id == subscriber_id)
            )
            removed["subscribers"] = session.execute(
                delete(Subscriber).where(Subscriber.id == subscriber_id)
            )
        report.removed = {table: db.rows_changed(result) for table, result in removed.items()}
        keyed = hash_key(app.suppression_key, key)
        _keep_suppression(session, keyed)
        # The trail names the person by the keyed hash the suppression list keeps: it says an
        # erasure happened without keeping the address it erased.
        counts = ", ".join(f"{n} {table}" for table, n in report.removed.items() if n)
        audit.record(session, actor, "erase", "person", keyed[:64], counts or "nothing held")
    report.storage = scrub_storage(app.engine)
    with app.session() as session:
        report.remaining = [
            f"{table}.{column} ({count} rows)"
            for table, column, count in find_address(session, email)
        ]
    report.outbox_copies = outbox_copies(app, email)
    return report


def outbox_copies(app: Newsletter, email: str) -> list[str]:
    """Maildir outboxes holding messages to this address: 'PATH (N messages)'.

    These are mail already sent (the demo's and previews' transport, or a
    folder another program collects from), so erasure reports them rather
    than deleting files it does not own.
    """

    needle = address_key(email).encode()
    found = []
    for name, table in app.config.transports.items():
        dsn = parse_dsn(table.dsn, f"transports.{name}.dsn")
        if dsn.scheme != "maildir":
            continue
        folder = maildir_folder(app.config, dsn)
        count = sum(
            1
            for sub in ("new", "cur", "tmp")
            if (folder / sub).is_dir()
            for path in (folder / sub).iterdir()
            if path.is_file() and needle in path.read_bytes().lower()
        )
        if count:
            found.append(f"{folder} ({count} message(s))")
    return found


def _keep_suppression(session: Session, digest: str) -> None:
    """The one thing kept: the hash, with the reason `erased` and no note (notes may name)."""
    entry = session.scalar(select(Suppression).where(Suppression.email_hash == digest))
    if entry is None:
        session.add(Suppression(email_hash=digest, reason="erased", note="", created_at=utcnow()))
    else:
        entry.reason = "erased"
        entry.note = ""
    session.flush()


def scrub_storage(engine: Engine) -> str:
    """Make deleted rows unrecoverable from the database's files, as far as the engine can."""
    if engine.dialect.name == "sqlite":
        # VACUUM must run outside a transaction, and the engine's connections open one;
        # a raw DB-API connection (in autocommit, see newsletter.db) does not.
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("PRAGMA secure_delete = ON")
            cursor.execute("VACUUM")
            busy, _, _ = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            cursor.close()
        except Exception as exc:  # a lock held by another process, a full disk
            raise OperationFailed(
                f"the data was deleted, but the database file could not be rebuilt: {exc}; "
                "run `newsletter person erase` again when nothing else uses the database"
            ) from None
        finally:
            raw.close()
        if busy:
            return "SQLite file rebuilt (VACUUM); the log could not be truncated while in use"
        return "SQLite file rebuilt (VACUUM) and its log truncated"
    if engine.dialect.name == "postgresql":
        touched = (Event, Delivery, Subscription, Subscriber)
        tables = ", ".join(typed(Table, model.__table__).name for model in touched)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"VACUUM {tables}")
        return "PostgreSQL tables vacuumed (old bytes may remain in WAL archives and backups)"
    return ""


def find_address(session: Session, email: str) -> list[tuple[str, str, int]]:
    """Every (table, column, rows) whose text still holds the address: one scan per table."""
    found = []
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
        if not columns:
            continue
        counts = session.execute(
            select(*(func.count().filter(_mentions(c, email)).label(c.name) for c in columns))
        ).one()
        found += [
            (table.name, column.name, count)
            for column, count in zip(columns, counts, strict=True)
            if count
        ]
    return found
