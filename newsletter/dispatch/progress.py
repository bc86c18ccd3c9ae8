"""How far a campaign's send has got: counts by state, the current rate, an ETA.

Read from the ledger, so that it is true whatever the number of workers and
wherever they run; `newsletter status` and the progress shown during `send`
both come from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from newsletter.dispatch import ledger
from newsletter.errors import NotFound
from newsletter.models import DELIVERY_STATUSES, Campaign, utcnow

# The window over which the current rate is measured.
RATE_WINDOW = timedelta(seconds=60)


@dataclass(frozen=True)
class Progress:
    campaign_id: int
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    # Messages per second: over the last minute while sending, the average when done.
    rate: float = 0.0
    eta_seconds: float | None = None
    next_retry_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # Why the campaign paused itself, was cancelled or missed.
    note: str = ""
    # What a sender waits for when it has nothing to send right now.
    waiting: str = ""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def done(self) -> int:
        """Deliveries in a final state (sent, failed or cancelled)."""
        return sum(self.counts.get(status, 0) for status in ledger.FINAL_STATUSES)

    @property
    def remaining(self) -> int:
        return self.total - self.done

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(total=self.total, done=self.done, remaining=self.remaining)
        data["rate"] = round(self.rate, 2)
        if self.eta_seconds is not None:
            data["eta_seconds"] = round(self.eta_seconds, 1)
        return data


def campaign_progress(
    conn: Connection,
    campaign_id: int,
    *,
    rate: float | None = None,
    waiting: str = "",
    now: datetime | None = None,
) -> Progress:
    """The campaign's progress; `rate` may be given by a sender that measures its own."""
    now = now or utcnow()
    row = conn.execute(
        select(Campaign.status, Campaign.status_note, Campaign.started_at, Campaign.finished_at)
        .where(Campaign.id == campaign_id)
    ).one_or_none()  # fmt: skip
    if row is None:
        raise NotFound(f"no campaign with id {campaign_id} (see `newsletter campaigns list`)")
    status, note, started_at, finished_at = row
    found = ledger.counts(conn, campaign_id)
    counts = {state: found.get(state, 0) for state in DELIVERY_STATUSES}
    if rate is None:
        rate = _measured_rate(conn, campaign_id, counts["sent"], started_at, finished_at, now)
    remaining = sum(counts[state] for state in ledger.OPEN_STATUSES)
    eta = remaining / rate if rate > 0 and remaining else None
    next_retry = ledger.next_retry_at(conn, campaign_id) if counts["retry"] else None
    return Progress(
        campaign_id=campaign_id,
        status=status,
        counts=counts,
        rate=rate,
        eta_seconds=eta,
        next_retry_at=next_retry,
        started_at=started_at,
        finished_at=finished_at,
        note=note,
        waiting=waiting,
    )


def _measured_rate(
    conn: Connection,
    campaign_id: int,
    sent: int,
    started_at: datetime | None,
    finished_at: datetime | None,
    now: datetime,
) -> float:
    if not sent or started_at is None:
        return 0.0
    if finished_at is not None:
        last = ledger.last_sent_at(conn, campaign_id) or finished_at
        seconds = (last - started_at).total_seconds()
        return sent / seconds if seconds > 0 else 0.0
    since = max(now - RATE_WINDOW, started_at)
    seconds = (now - since).total_seconds()
    if seconds <= 0:
        return 0.0
    return ledger.sent_since(conn, campaign_id, since) / seconds
