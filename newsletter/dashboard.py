"""What staff see first: what is sending, what goes out next, what waits, how sends went.

    staff_dashboard(app) -> Dashboard

Composed from the service functions of the stages (editions, dispatch,
feedback, schedule), with no query of its own, so that the console's first
page shows exactly what `newsletter status`, `schedule list` and `campaigns
list` would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from newsletter.app import Newsletter
from newsletter.dispatch.progress import Progress
from newsletter.dispatch.service import campaign_status
from newsletter.editions import list_campaigns
from newsletter.feedback.summary import CampaignFeedback, campaign_feedback
from newsletter.schedule.times import format_local

# How many finished sends the dashboard lists.
RECENT_SENDS = 5


@dataclass(frozen=True)
class CampaignLine:
    id: int
    kind: str
    subject: str
    status: str
    scheduled_at: datetime | None = None
    # The scheduled time in schedule.timezone, for people.
    scheduled_local: str = ""


@dataclass(frozen=True)
class SendLine:
    campaign: CampaignLine
    progress: Progress
    feedback: CampaignFeedback | None = None


@dataclass(frozen=True)
class Dashboard:
    sending: list[SendLine]
    scheduled: list[CampaignLine]
    drafts: list[CampaignLine]
    recent: list[SendLine]
    warnings: list[str]
    timezone: str


def _line(app: Newsletter, summary: dict[str, Any]) -> CampaignLine:
    at = summary.get("scheduled_at")
    return CampaignLine(
        id=summary["id"],
        kind=summary["kind"],
        subject=summary["subject"],
        status=summary["status"],
        scheduled_at=at,
        scheduled_local=format_local(at, app.config.schedule.timezone) if at else "",
    )


def staff_dashboard(app: Newsletter) -> Dashboard:
    warnings: list[str] = []
    sending = []
    for status in ("sending", "paused"):
        for summary in list_campaigns(app, status=status):
            progress = campaign_status(app, summary["id"])
            sending.append(SendLine(_line(app, summary), progress))
            if status == "paused":
                why = f": {progress.note}" if progress.note else ""
                warnings.append(f"Campaign {summary['id']} is paused{why}")
    scheduled = sorted(
        (_line(app, s) for s in list_campaigns(app, status="scheduled")),
        key=lambda line: (line.scheduled_at is None, line.scheduled_at, line.id),
    )
    for summary in list_campaigns(app, status="missed"):
        warnings.append(f"Campaign {summary['id']} missed its scheduled time")
    drafts = [_line(app, s) for s in list_campaigns(app, status="draft")]
    finished = list_campaigns(app, status="sent")[-RECENT_SENDS:]
    recent = []
    for summary in reversed(finished):
        feedback = campaign_feedback(app, summary["id"])
        if feedback.warning:
            warnings.append(f"Campaign {summary['id']}: {feedback.warning}")
        recent.append(SendLine(_line(app, summary), campaign_status(app, summary["id"]), feedback))
    return Dashboard(
        sending=sending,
        scheduled=scheduled,
        drafts=drafts,
        recent=recent,
        warnings=warnings,
        timezone=app.config.schedule.timezone,
    )
