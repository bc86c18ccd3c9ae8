"""What staff see first: what is sending, what goes out next, what waits, how sends went.

    staff_dashboard(app) -> Dashboard

Composed from the service functions of the stages (editions, dispatch,
feedback, schedule), with no query of its own, so that the console's first
page shows exactly what `newsletter status`, `schedule list` and `campaigns
list` would.

Counting a finished send's deliveries reads its whole ledger (a million rows
take most of a second); once a campaign is sent or cancelled its delivery
counts never change, so a `FinishedSends` keeps them, and keeps its feedback
(which still trickles in) for a minute.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from newsletter.app import Newsletter
from newsletter.dispatch.progress import Progress
from newsletter.dispatch.service import campaign_status
from newsletter.editions import CampaignSummary, list_campaigns
from newsletter.feedback.summary import CampaignFeedback, campaign_feedback
from newsletter.schedule.times import format_local

# How many finished sends the dashboard lists.
RECENT_SENDS = 5
# Statuses after which a campaign's delivery counts are final.
FINAL = ("sent", "cancelled")
FEEDBACK_SECONDS = 60.0


class FinishedSends:
    """The final delivery counts of finished campaigns, and their recent feedback."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.clock = clock
        self._progress: dict[int, Progress] = {}
        self._feedback: dict[int, tuple[float, CampaignFeedback]] = {}
        self._lock = threading.Lock()

    def progress(self, app: Newsletter, campaign_id: int) -> Progress:
        with self._lock:
            known = self._progress.get(campaign_id)
        if known is not None:
            return known
        progress = campaign_status(app, campaign_id)
        if progress.status in FINAL:
            with self._lock:
                self._progress[campaign_id] = progress
        return progress

    def feedback(self, app: Newsletter, campaign_id: int) -> CampaignFeedback:
        now = self.clock()
        with self._lock:
            known = self._feedback.get(campaign_id)
        if known is not None and now - known[0] < FEEDBACK_SECONDS:
            return known[1]
        feedback = campaign_feedback(app, campaign_id)
        with self._lock:
            self._feedback[campaign_id] = (now, feedback)
        return feedback


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


def _line(app: Newsletter, summary: CampaignSummary) -> CampaignLine:
    at = summary.scheduled_at
    return CampaignLine(
        id=summary.id,
        kind=summary.kind,
        subject=summary.subject,
        status=summary.status,
        scheduled_at=at,
        scheduled_local=format_local(at, app.config.schedule.timezone) if at else "",
    )


def staff_dashboard(app: Newsletter, finished: FinishedSends | None = None) -> Dashboard:
    finished = finished or FinishedSends()
    warnings: list[str] = []
    sending = []
    for status in ("sending", "paused"):
        for summary in list_campaigns(app, status=status):
            progress = campaign_status(app, summary.id)
            sending.append(SendLine(_line(app, summary), progress))
            if status == "paused":
                why = f": {progress.note}" if progress.note else ""
                warnings.append(f"Campaign {summary.id} is paused{why}")
    scheduled = sorted(
        (_line(app, s) for s in list_campaigns(app, status="scheduled")),
        key=lambda line: (line.scheduled_at is None, line.scheduled_at, line.id),
    )
    for summary in list_campaigns(app, status="missed"):
        warnings.append(f"Campaign {summary.id} missed its scheduled time")
    drafts = [_line(app, s) for s in list_campaigns(app, status="draft")]
    done = list_campaigns(app, status="sent")[-RECENT_SENDS:]
    recent = []
    for summary in reversed(done):
        feedback = finished.feedback(app, summary.id)
        if feedback.warning:
            warnings.append(f"Campaign {summary.id}: {feedback.warning}")
        progress = finished.progress(app, summary.id)
        recent.append(SendLine(_line(app, summary), progress, feedback))
    return Dashboard(
        sending=sending,
        scheduled=scheduled,
        drafts=drafts,
        recent=recent,
        warnings=warnings,
        timezone=app.config.schedule.timezone,
    )
