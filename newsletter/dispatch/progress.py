"""How far a campaign's send has got: counts by state, the current rate, an ETA.

Read from the campaign's counters, which every worker keeps in step with the
ledger (dispatch/counters.py), so that it is true whatever the number of
workers and wherever they run, and costs one row however large the send;
`newsletter status` and the progress shown during `send` both come from here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from newsletter.dispatch import counters, ledger
from newsletter.errors import NotFound
from newsletter.models import DELIVERY_STATUSES, Campaign, utcnow


@dataclass(frozen=True)
class Progress:
    campaign_id: int
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    # Messages per second: over the last 30 to 60 seconds while sending (see
    # counters.RATE_SAMPLE), the average when done.
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
    kept = counters.read(conn, campaign_id)
    counts = {state: kept.counts.get(state, 0) for state in DELIVERY_STATUSES}
    if rate is None:
        rate = _measured_rate(kept, started_at, finished_at, now)
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
    kept: counters.Counters,
    started_at: datetime | None,
    finished_at: datetime | None,
    now: datetime,
) -> float:
    sent = kept.counts.get("sent", 0)
    if not sent or started_at is None:
        return 0.0
    if finished_at is not None:
        # The average of the whole send, up to its last message.
        last = kept.last_sent_at or finished_at.timestamp()
        seconds = last - started_at.timestamp()
        return sent / seconds if seconds > 0 else 0.0
    return kept.rate(now.timestamp())
