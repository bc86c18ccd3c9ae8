"""Feedback taken in once: provider event ids and webhook tokens already seen.

Providers send an event again when our answer was slow or lost, and a
Mailgun webhook token must never be accepted twice. `remember` inserts the
key and says whether it was new, in the caller's transaction, so that the key
and what the event did commit together or not at all.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from newsletter.models import FeedbackReceipt, utcnow

# Providers retry a webhook for up to three days (SendGrid), so keys are kept a week.
KEEP = timedelta(days=7)


def remember(session: Session, key: str, now: datetime | None = None) -> bool:
    """Record `key`; False when it was recorded before (a repeat, or a replay)."""
    now = now or utcnow()
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # INSERT … ON CONFLICT DO NOTHING: two processes taking in the same event at once
    # must not both act on it, and neither may fail.
    added = session.execute(
        insert(FeedbackReceipt)
        .values(key=key[:300], created_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(FeedbackReceipt.key)
    ).first()
    # Old keys go as new ones come: an index range, usually empty.
    session.execute(delete(FeedbackReceipt).where(FeedbackReceipt.created_at < now - KEEP))
    return added is not None
