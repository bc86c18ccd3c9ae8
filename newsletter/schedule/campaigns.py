"""Scheduling one campaign: put an approved campaign on the clock, or take it off.

The campaign's own row is the schedule: `scheduled_at` (UTC) and the status
`scheduled`. Nothing else needs to be told: every `newsletter serve` reads it
within `schedule.sync_seconds` and sends it at that time (see `sweep`).
"""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from newsletter.app import Newsletter
from newsletter.editions import change_status
from newsletter.errors import InputError, InvalidState, NotFound
from newsletter.models import Campaign, utcnow
from newsletter.schedule.times import format_local

# A missed campaign was approved before it missed its time: it may be put back on the
# clock. Rescheduling a scheduled campaign moves it.
SCHEDULABLE = ("approved", "scheduled", "missed")
# The statuses `schedule list` shows: what will go out, and what did not.
LISTED = ("scheduled", "missed")


def schedule_campaign(
    app: Newsletter,
    campaign_id: int,
    at: datetime,
    *,
    by: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
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
    note = f"scheduled by {by or _user()} at {format_local(now, tz)}"
    with app.session() as session:
        if change_status(
            session, campaign_id, SCHEDULABLE, "scheduled", note=note, scheduled_at=at
        ):
            return scheduled_record(app, _load(session, campaign_id))
    status = _status(app, campaign_id)
    raise InvalidState(_cannot_schedule(campaign_id, status))


def _cannot_schedule(campaign_id: int, status: str) -> str:
    reasons = {
        "draft": f"is a draft; approve it first with `newsletter approve {campaign_id}`",
        "sending": "is already sending",
        "paused": f"is paused while sending; continue it with `newsletter resume {campaign_id}`",
        "sent": "was already sent",
        "cancelled": "was cancelled",
    }
    why = reasons.get(status, f"is {status}")
    return f"campaign {campaign_id} {why} (only an approved campaign can be scheduled)"


def unschedule_campaign(
    app: Newsletter, campaign_id: int, *, by: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """scheduled → approved: it stays approved and goes out only when sent or scheduled again."""
    now = now or utcnow()
    note = f"unscheduled by {by or _user()} at {format_local(now, app.config.schedule.timezone)}"
    with app.session() as session:
        if change_status(session, campaign_id, ["scheduled"], "approved", note=note,
                         scheduled_at=None):  # fmt: skip
            return scheduled_record(app, _load(session, campaign_id))
    status = _status(app, campaign_id)
    raise InvalidState(
        f"campaign {campaign_id} is {status}; only a scheduled campaign can be unscheduled"
    )


def list_scheduled(app: Newsletter) -> list[dict[str, Any]]:
    """Campaigns on the clock and those that missed their time, soonest first."""
    with app.session() as session:
        campaigns = session.scalars(
            select(Campaign)
            .options(selectinload(Campaign.lists), selectinload(Campaign.segment))
            .where(Campaign.status.in_(LISTED))
            .order_by(Campaign.scheduled_at, Campaign.id)
        )
        return [scheduled_record(app, campaign) for campaign in campaigns]


def scheduled_record(app: Newsletter, campaign: Campaign) -> dict[str, Any]:
    """One campaign as `schedule` and `schedule list` show it."""
    tz = app.config.schedule.timezone
    return {
        "id": campaign.id,
        "kind": campaign.kind,
        "status": campaign.status,
        "subject": campaign.subject,
        "at": format_local(campaign.scheduled_at, tz),
        "scheduled_at": campaign.scheduled_at,
        "lists": [lst.name for lst in campaign.lists],
        "segment": campaign.segment.name if campaign.segment else None,
        "approved_by": campaign.approved_by or None,
        "approved_at": campaign.approved_at,
        "rule": (campaign.recurrence_key or "").split("/", 1)[0] or None,
        "note": campaign.status_note or None,
    }


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


def _status(app: Newsletter, campaign_id: int) -> str:
    with app.session() as session:
        status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    if status is None:
        raise NotFound(f"no campaign with id {campaign_id} (see `newsletter campaigns list`)")
    return status


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "unknown"
