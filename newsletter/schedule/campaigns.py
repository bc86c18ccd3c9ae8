"""Scheduling one campaign: put an approved campaign on the clock, or take it off.

The campaign's own row is the schedule: `scheduled_at` (UTC) and the status
`scheduled`. Nothing else needs to be told: every `newsletter serve` reads it
within `schedule.sync_seconds` and sends it at that time (see `sweep`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from newsletter import lifecycle
from newsletter.app import Newsletter
from newsletter.errors import InputError, NotFound
from newsletter.models import Campaign, utcnow
from newsletter.schedule.times import format_local


@dataclass(frozen=True)
class ScheduledCampaign:
    """One campaign as `schedule` and `schedule list` show it."""

    id: int
    kind: str
    status: str
    subject: str
    # When it goes out, in the configured zone; `scheduled_at` is the same time in UTC.
    at: str
    scheduled_at: datetime | None
    lists: list[str]
    segment: str | None
    approved_by: str | None
    approved_at: datetime | None
    # The recurring rule that built it, if one did.
    rule: str | None
    note: str | None


# The statuses `schedule list` shows: what will go out, and what did not.
LISTED = ("scheduled", "missed")


def schedule_campaign(
    app: Newsletter,
    campaign_id: int,
    at: datetime,
    *,
    actor: str,
    now: datetime | None = None,
) -> ScheduledCampaign:
    """approved (or missed, or scheduled) → scheduled to go out at `at` (an aware time)."""
    if at.tzinfo is None:
        raise ValueError("schedule_campaign needs an aware datetime")
    now = now or utcnow()
    tz = app.config.schedule.timezone
    if at <= now:
        raise InputError(
            f"{format_local(at, tz)} is in the past (it is now {format_local(now, tz)}): "
            f"give a later time, or send it now with `newsletter send {campaign_id}`"
        )
    # A missed campaign was approved before it missed its time: it may be put back on
    # the clock (the lifecycle's `schedule` allows it). Rescheduling a scheduled one moves it.
    note = f"scheduled by {actor} at {format_local(now, tz)}"
    with app.session() as session:
        lifecycle.apply(session, campaign_id, "schedule", actor, note=note, scheduled_at=at,
                        detail=f"for {at.isoformat()}")  # fmt: skip
        return scheduled_record(app, _load(session, campaign_id))


def unschedule_campaign(
    app: Newsletter, campaign_id: int, *, actor: str, now: datetime | None = None
) -> ScheduledCampaign:
    """scheduled → approved: it stays approved and goes out only when sent or scheduled again."""
    now = now or utcnow()
    note = f"unscheduled by {actor} at {format_local(now, app.config.schedule.timezone)}"
    with app.session() as session:
        lifecycle.apply(session, campaign_id, "unschedule", actor, note=note, scheduled_at=None)
        return scheduled_record(app, _load(session, campaign_id))


def list_scheduled(app: Newsletter) -> list[ScheduledCampaign]:
    """Campaigns on the clock and those that missed their time, soonest first."""
    with app.session() as session:
        campaigns = session.scalars(
            select(Campaign)
            .options(selectinload(Campaign.lists), selectinload(Campaign.segment))
            .where(Campaign.status.in_(LISTED))
            .order_by(Campaign.scheduled_at, Campaign.id)
        )
        return [scheduled_record(app, campaign) for campaign in campaigns]


def scheduled_record(app: Newsletter, campaign: Campaign) -> ScheduledCampaign:
    tz = app.config.schedule.timezone
    return ScheduledCampaign(
        id=campaign.id,
        kind=campaign.kind,
        status=campaign.status,
        subject=campaign.subject,
        at=format_local(campaign.scheduled_at, tz),
        scheduled_at=campaign.scheduled_at,
        lists=[lst.name for lst in campaign.lists],
        segment=campaign.segment.name if campaign.segment else None,
        approved_by=campaign.approved_by or None,
        approved_at=campaign.approved_at,
        rule=(campaign.recurrence_key or "").split("/", 1)[0] or None,
        note=campaign.status_note or None,
    )


def _load(session: Any, campaign_id: int) -> Campaign:
    campaign = session.get(
        Campaign,
        campaign_id,
        options=[selectinload(Campaign.lists), selectinload(Campaign.segment)],
        populate_existing=True,
    )
    if campaign is None:
        raise NotFound(f"no campaign with id {campaign_id} (see `newsletter campaigns list`)")
    return campaign
