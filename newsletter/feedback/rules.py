"""What feedback does: the rules, applied to each event as it is recorded.

- A hard bounce suppresses the address at once (the subscriber becomes `bounced`).
- A soft bounce is counted; `feedback.soft_bounce_limit` of them within
  `feedback.soft_bounce_days` (one per delivery, however often a provider
  reports the same message) suppress the address like a hard bounce.
- A complaint (a spam report) suppresses the address as `complained` and
  unsubscribes the person from every list, at once.
- A provider's unsubscribe event unsubscribes the person from the lists of the
  campaign it came from, as our own unsubscribe link does (from everything
  when the campaign is not known).

Every event is stored (an `Event` row with its delivery, subscriber,
campaign, type, source and detail) whether or not a rule acted on it, so
`newsletter deliveries` and `newsletter person export` show it. An event
that matches nobody is stored with the address in its detail (erasure finds
it there). Each event is its own transaction, together with its receipt
key: a provider sending it again finds the key and nothing happens twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.app import Newsletter
from newsletter.audience import suppress, unsubscribe
from newsletter.feedback import receipts
from newsletter.feedback.events import FEEDBACK_TYPES, FeedbackEvent
from newsletter.feedback.matching import Match, find_match
from newsletter.models import Event, utcnow

log = logging.getLogger(__name__)


@dataclass
class FeedbackReport:
    """What recording a group of events did, for the webhook's log and the CLI."""

    recorded: int = 0
    duplicates: int = 0
    unmatched: int = 0
    suppressed: int = 0
    unsubscribed: int = 0
    by_type: dict[str, int] = field(default_factory=dict)

    def add(self, other: FeedbackReport) -> None:
        self.recorded += other.recorded
        self.duplicates += other.duplicates
        self.unmatched += other.unmatched
        self.suppressed += other.suppressed
        self.unsubscribed += other.unsubscribed
        for kind, count in other.by_type.items():
            self.by_type[kind] = self.by_type.get(kind, 0) + count


def record_feedback(
    app: Newsletter, events: Iterable[FeedbackEvent], *, now: datetime | None = None
) -> FeedbackReport:
    """Store each event and apply the rules; returns what happened."""
    report = FeedbackReport()
    for event in events:
        if event.type not in FEEDBACK_TYPES:
            raise ValueError(f"unknown feedback type {event.type!r}")
        report.add(_record_one(app, event, now or utcnow()))
    return report


def _record_one(app: Newsletter, event: FeedbackEvent, now: datetime) -> FeedbackReport:
    report = FeedbackReport()
    with app.session() as session:
        if event.key and not receipts.remember(session, event.key, now):
            report.duplicates = 1
            return report
        match = find_match(session, event)
        detail = dict(event.detail)
        if match is None:
            detail["address"] = event.address
            report.unmatched = 1
        session.add(
            Event(
                delivery_id=match.delivery_id if match else None,
                subscriber_id=match.subscriber_id if match else None,
                campaign_id=match.campaign_id if match else None,
                type=event.type,
                source=event.source[:50],
                detail=detail,
                created_at=now,
            )
        )
        report.recorded = 1
        report.by_type[event.type] = 1
        if match is not None:
            report.suppressed = int(_suppress_if_due(app, session, event, match, now))
    if match is not None and event.type in ("complaint", "unsubscribe"):
        # The person's own unsubscribe path (newsletter.audience.leaving), in its own
        # transaction: it ends the subscriptions, cancels waiting deliveries and keeps
        # its own event. Doing it twice is harmless, so a crash between the two
        # transactions loses nothing that matters: the address is already suppressed
        # for a complaint, and a repeated unsubscribe event finds its receipt.
        everything = event.type == "complaint" or match.campaign_id is None
        outcome = unsubscribe(
            app,
            match.subscriber_id,
            match.campaign_id,
            everything=everything,
            source=f"{event.type} via {event.source}"[:50],
        )
        report.unsubscribed = int(not outcome.already)
    return report


def _suppress_if_due(
    app: Newsletter, session: Session, event: FeedbackEvent, match: Match, now: datetime
) -> bool:
    key = app.suppression_key
    if event.type == "hard_bounce":
        return suppress(session, key, match.email, "hard_bounce", f"hard bounce ({event.source})")
    if event.type == "complaint":
        return suppress(session, key, match.email, "complaint", f"complaint ({event.source})")
    if event.type != "soft_bounce":
        return False
    config = app.config.feedback
    session.flush()
    since = now - timedelta(days=config.soft_bounce_days)
    count = soft_bounces(session, match.subscriber_id, since)
    if count < max(1, config.soft_bounce_limit):
        return False
    note = f"{count} soft bounces within {config.soft_bounce_days} days ({event.source})"
    log.info("subscriber %s suppressed: %s", match.subscriber_id, note)
    return suppress(session, key, match.email, "hard_bounce", note)


def soft_bounces(session: Session, subscriber_id: int, since: datetime) -> int:
    """Soft bounces of a subscriber since a moment, one per delivery at most."""
    per_delivery = func.coalesce(Event.delivery_id, -Event.id)
    return (
        session.scalar(
            select(func.count(func.distinct(per_delivery))).where(
                Event.subscriber_id == subscriber_id,
                Event.type == "soft_bounce",
                Event.created_at >= since,
            )
        )
        or 0
    )
