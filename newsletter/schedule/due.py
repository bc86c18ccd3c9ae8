"""Scheduled campaigns that fell due: start them, or mark them missed.

`start_due_campaign` makes the decision for one campaign and `due_campaigns`
finds them; `sweep` (newsletter/schedule/sweeper.py) calls both, and recurring
rules (recurring.py) use the same decision for the editions they schedule.
Both moves are lifecycle actions from `scheduled` only (`fire` and `miss` in
newsletter/lifecycle.py), one conditional UPDATE: of two processes (or a sweep
and a staff member's `unschedule`) one wins, and only the winner writes the
ledger and logs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from newsletter import lifecycle
from newsletter.actors import SCHEDULE
from newsletter.app import Newsletter
from newsletter.dispatch import ledger
from newsletter.logs import log_event
from newsletter.models import Campaign, utcnow
from newsletter.schedule.times import format_local

log = logging.getLogger(__name__)

T = TypeVar("T")
# SQLite refuses at once (no waiting) a transaction that read, then wants to write
# after another process wrote: such work is simply done again, a few times.
RETRIES = 5


class _Moved(Exception):
    """Raised inside a transaction to undo it: the campaign was rescheduled meanwhile."""


def grace(app: Newsletter) -> timedelta:
    return timedelta(minutes=app.config.schedule.misfire_grace_minutes)


def retrying(work: Callable[[], T]) -> T:
    """Run `work`, again when SQLite says the database was written under our feet."""
    for attempt in range(RETRIES):
        try:
            return work()
        except OperationalError as exc:
            if attempt == RETRIES - 1 or "locked" not in str(exc.orig).lower():
                raise
            log.debug("the database was busy (%s); trying again", exc.orig)
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def due_campaigns(app: Newsletter, now: datetime) -> list[int]:
    """Scheduled campaigns whose time has come, oldest first (the status index)."""
    with app.engine.connect() as conn:
        return list(
            conn.scalars(
                select(Campaign.id)
                .where(Campaign.status == "scheduled", Campaign.scheduled_at <= now)
                .order_by(Campaign.scheduled_at, Campaign.id)
            )
        )


def start_due_campaign(app: Newsletter, campaign_id: int, now: datetime | None = None) -> str:
    """Start one campaign if it is due and within grace, or mark it missed.

    Returns what happened: started, missed, not-due, or taken (another process,
    or a person, changed it first).
    """

    now = now or utcnow()
    with app.engine.connect() as conn:
        row = conn.execute(
            select(Campaign.status, Campaign.scheduled_at).where(Campaign.id == campaign_id)
        ).one_or_none()
    if row is None or row.status != "scheduled" or row.scheduled_at is None:
        return "taken"
    due_at: datetime = row.scheduled_at
    if due_at > now:
        return "not-due"
    late = now - due_at
    allowed = grace(app)
    tz = app.config.schedule.timezone

    def start() -> int | None:
        with app.session() as session:
            if not lifecycle.try_apply(session, campaign_id, "fire", SCHEDULE,
                                       started_at=now, note=""):  # fmt: skip
                return None
            campaign = session.get_one(Campaign, campaign_id, populate_existing=True)
            # Read after our UPDATE, under its lock: the time we judged is still the time.
            if campaign.scheduled_at != due_at:
                raise _Moved
            # The ledger in the same transaction: a campaign is never sending without it.
            return ledger.write_ledger(session, campaign)

    def miss() -> bool:
        note = (
            f"missed: due {format_local(due_at, tz)}, but no service was running until "
            f"{format_local(now, tz)} ({_minutes(late)} min late; the grace is "
            f"{_minutes(allowed)} min). Put it back on the clock with "
            f"`newsletter schedule {campaign_id} --at TIME`."
        )
        with app.session() as session:
            if not lifecycle.try_apply(session, campaign_id, "miss", SCHEDULE, note=note):
                return False
            campaign = session.get_one(Campaign, campaign_id, populate_existing=True)
            if campaign.scheduled_at != due_at:
                raise _Moved
            return True

    try:
        if late <= allowed:
            written = retrying(start)
            if written is None:
                return "taken"
            log_event(
                "campaign.started",
                campaign=campaign_id,
                scheduled_at=due_at,
                late_seconds=round(late.total_seconds(), 1),
                deliveries=written,
            )
            return "started"
        if not retrying(miss):
            return "taken"
    except _Moved:
        return "taken"
    log_event(
        "schedule.missed",
        level=logging.WARNING,
        campaign=campaign_id,
        due_at=due_at,
        late_minutes=_minutes(late),
        grace_minutes=_minutes(allowed),
    )
    return "missed"


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)
