"""What `newsletter schedule list` shows: upcoming sends, and rules with their next runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from newsletter.app import Newsletter
from newsletter.models import utcnow
from newsletter.schedule.campaigns import ScheduledCampaign, list_scheduled
from newsletter.schedule.recurring import last_runs, next_run
from newsletter.schedule.times import format_local


@dataclass(frozen=True)
class RuleOverview:
    """A recurring rule with its next run and its last outcome.

    Times are UTC datetimes under `*_at` keys, and shown in the rule's own zone under
    the short keys.
    """

    name: str
    cron: str
    timezone: str
    build: str
    action: str
    lists: list[str]
    segment: str | None
    next: str
    next_run_at: datetime | None
    last: str | None
    last_outcome: str | None
    last_period: str | None
    last_due_at: datetime | None
    last_campaign: int | None
    last_note: str | None


@dataclass(frozen=True)
class ScheduleOverview:
    """`schedule list`: scheduled (and missed) campaigns and the recurring rules."""

    timezone: str
    now: datetime
    sends: list[ScheduledCampaign]
    rules: list[RuleOverview]


def schedule_overview(app: Newsletter, now: datetime | None = None) -> ScheduleOverview:
    """Scheduled (and missed) campaigns, and each recurring rule with its next run and last outcome.

    Times are UTC datetimes under `*_at` keys, and shown in the configured zone
    (a rule's own zone for its next run) under the short keys.
    """
    now = now or utcnow()
    runs = last_runs(app)
    rules = []
    for rule in app.config.schedules:
        upcoming = next_run(rule, now)
        last = runs.get(rule.name)
        rules.append(
            RuleOverview(
                name=rule.name,
                cron=rule.cron,
                timezone=rule.timezone,
                build=rule.build,
                action=rule.action,
                lists=list(rule.lists),
                segment=rule.segment or None,
                next=format_local(upcoming, rule.timezone),
                next_run_at=upcoming,
                last=f"{last.outcome} ({last.period})" if last else None,
                last_outcome=last.outcome if last else None,
                last_period=last.period if last else None,
                last_due_at=last.due_at if last else None,
                last_campaign=last.campaign_id if last else None,
                last_note=last.note or None if last else None,
            )
        )
    return ScheduleOverview(
        timezone=app.config.schedule.timezone,
        now=now,
        sends=list_scheduled(app),
        rules=rules,
    )
