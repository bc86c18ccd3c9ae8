"""Feedback as staff read it: a campaign's bounce and complaint rates, events per delivery."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select

from newsletter.app import Newsletter
from newsletter.counts import feedback_weeks as kept_weeks
from newsletter.counts import fold_changes
from newsletter.dispatch import ledger
from newsletter.models import Delivery, Event, utcnow

# Large mailbox providers treat a complaint rate of 0.1% as the limit.
COMPLAINT_LIMIT_PERCENT = 0.1


@dataclass(frozen=True)
class CampaignFeedback:
    sent: int
    hard_bounces: int
    soft_bounces: int
    complaints: int
    unsubscribes: int
    bounce_rate_percent: float
    complaint_rate_percent: float
    warning: str = ""


def campaign_feedback(app: Newsletter, campaign_id: int) -> CampaignFeedback:
    """Counts of each kind of feedback (one per recipient) and the rates over those sent."""
    with app.read_engine.connect() as conn:
        # The campaign's counters, not a count of its ledger: `newsletter status` shows
        # this throughout a send, and counting a million sent rows takes seconds.
        sent = ledger.counts(conn, campaign_id).get("sent", 0)
        rows = conn.execute(
            select(Event.type, func.count(func.distinct(Event.subscriber_id)))
            .where(Event.campaign_id == campaign_id, Event.subscriber_id.is_not(None))
            .group_by(Event.type)
        )
        counts = {kind: number for kind, number in rows}
    bounces = counts.get("hard_bounce", 0) + counts.get("soft_bounce", 0)
    complaints = counts.get("complaint", 0)
    bounce_rate = 100.0 * bounces / sent if sent else 0.0
    complaint_rate = 100.0 * complaints / sent if sent else 0.0
    warning = ""
    threshold = app.config.feedback.complaint_warning_percent
    if complaints and complaint_rate >= threshold:
        warning = (
            f"the complaint rate is {complaint_rate:.3f}%: large mailbox providers start "
            f"refusing mail at {COMPLAINT_LIMIT_PERCENT}%; check who this campaign went to "
            "and whether they asked for it"
        )
    return CampaignFeedback(
        sent=sent,
        hard_bounces=counts.get("hard_bounce", 0),
        soft_bounces=counts.get("soft_bounce", 0),
        complaints=complaints,
        unsubscribes=counts.get("unsubscribe", 0),
        bounce_rate_percent=round(bounce_rate, 3),
        complaint_rate_percent=round(complaint_rate, 3),
        warning=warning,
    )


# A campaign's events meet the deliveries they belong to. An event matched to a
# delivery carries that delivery's campaign and subscriber too (feedback.matching sets
# all three from one row), so every event of a campaign is found through
# ix_events_campaign_type and meets its delivery through the ledger's unique (campaign,
# subscriber) index; an unsubscribe recorded by the person's own path has no delivery
# id and belongs to the campaign's delivery to that person. The join used to be an OR
# of those two ways, which no index serves: it read every event ever recorded.
EVENT_TO_DELIVERY = and_(
    Delivery.campaign_id == Event.campaign_id,
    Delivery.subscriber_id == Event.subscriber_id,
    or_(Event.delivery_id.is_(None), Event.delivery_id == Delivery.id),
)


# What makes a delivery that was sent count as not delivered after all.
CAME_BACK_FAILED = ("hard_bounce", "soft_bounce", "complaint")
# The detail keys sources use for the reason, best first (bounce mailbox, providers).
_REASON_KEYS = ("diagnostic", "message", "reason", "description", "feedback_type", "status")


def describe_event(kind: str, source: str, detail: dict[str, Any] | None) -> str:
    """A feedback event in one line: "hard_bounce (mailbox): 550 5.1.1 no such user"."""
    detail = detail or {}
    text = next((str(detail[k]) for k in _REASON_KEYS if detail.get(k)), "")
    label = f"{kind} ({source})" if source else kind
    return f"{label}: {' '.join(text.split())}" if text else label


def came_back_ids(campaign_id: int) -> Select[int]:
    """The ids of a campaign's deliveries that bounced or were complained about after
    sending (matched as in `came_back`): what "failed only" adds to the
    deliveries that were never delivered. A query, not a list: used as `id IN (…)`, both
    databases build a hash of its result once, where a list of a large campaign's
    thousands of ids was searched from its start for each row of the ledger walked
    (most of the failed-deliveries page's time on PostgreSQL at a million)."""
    return (
        select(Delivery.id)
        .select_from(Event)
        .join(Delivery, EVENT_TO_DELIVERY)
        .where(Event.campaign_id == campaign_id, Event.type.in_(CAME_BACK_FAILED))
    )


@dataclass(frozen=True)
class CameBack:
    """What came back for one delivery, as the deliveries list shows it."""

    # Every event, oldest first: ["hard_bounce (mailgun)", "unsubscribe", …].
    events: list[str]
    # The latest bounce or complaint with its diagnostic ("hard_bounce (mailbox): 550 5.1.1
    # no such user"); "" when none came back.
    reason: str


# Up to this many deliveries, `came_back` reads only theirs (an IN list); beyond, the
# whole campaign's events, which costs the same whatever the number of rows asked for.
PAGE_AT_MOST = 1000


def came_back(
    app: Newsletter, campaign_id: int, delivery_ids: Sequence[int] | None = None
) -> dict[int, CameBack]:
    """What came back for a campaign's deliveries, read once: for those in `delivery_ids`
    when given and few (one page of a list), else for all of them.

    A page reads only its own rows: reading every bounce of a large campaign for a page
    of 200 rows cost most of the page's time. An event belongs to a delivery by its id,
    or (an unsubscribe recorded by the person's own path) by the same subscriber and
    campaign.
    """
    query = (
        select(Delivery.id, Event.type, Event.source, Event.detail)
        .select_from(Event)
        .join(Delivery, EVENT_TO_DELIVERY)
        .where(Event.campaign_id == campaign_id)
        .order_by(Event.id)
    )
    if delivery_ids is not None and len(delivery_ids) <= PAGE_AT_MOST:
        query = query.where(Delivery.id.in_(list(delivery_ids)))
    events: dict[int, list[str]] = {}
    reasons: dict[int, str] = {}
    with app.read_engine.connect() as conn:
        for delivery_id, kind, source, detail in conn.execute(query):
            events.setdefault(delivery_id, []).append(f"{kind} ({source})" if source else kind)
            if kind in CAME_BACK_FAILED:
                reasons[delivery_id] = describe_event(kind, source, detail)
    return {
        delivery_id: CameBack(events=listed, reason=reasons.get(delivery_id, ""))
        for delivery_id, listed in events.items()
    }


# Feedback over time: what the weekly chart counts.
BOUNCE_TYPES = ("hard_bounce", "soft_bounce")
WEEKS_SHOWN = 53


@dataclass(frozen=True)
class WeekFeedback:
    week: date  # its Monday
    hard_bounces: int
    soft_bounces: int
    complaints: int

    @property
    def bounces(self) -> int:
        return self.hard_bounces + self.soft_bounces


def feedback_by_week(
    app: Newsletter, *, weeks: int = WEEKS_SHOWN, now: datetime | None = None
) -> list[WeekFeedback]:
    """Bounces and complaints per week over the last `weeks` weeks, oldest first, every
    week present (zeros included).

    Reads the weekly counts the database keeps (newsletter.counts): a few hundred rows
    whatever the number of events. `recount_by_week` counts the events themselves.
    """
    mondays = _mondays(weeks, now)
    fold_changes(app.engine)
    with app.session() as session:
        rows = kept_weeks(session, mondays[0], (*BOUNCE_TYPES, "complaint"))
    return _weeks(mondays, rows)


def recount_by_week(
    app: Newsletter, *, weeks: int = WEEKS_SHOWN, now: datetime | None = None
) -> list[WeekFeedback]:
    """`feedback_by_week` counted over the events themselves: what it must always equal."""
    mondays = _mondays(weeks, now)
    since = datetime(mondays[0].year, mondays[0].month, mondays[0].day, tzinfo=UTC)
    with app.session() as session:
        rows = session.execute(
            select(Event.created_at, Event.type).where(
                Event.created_at >= since, Event.type.in_((*BOUNCE_TYPES, "complaint"))
            )
        ).all()
    counts: dict[tuple[date, str], int] = {}
    for at, kind in rows:
        monday = at.date() - timedelta(days=at.weekday())
        counts[monday, kind] = counts.get((monday, kind), 0) + 1
    return _weeks(mondays, [(week, kind, n) for (week, kind), n in counts.items()])


def _mondays(weeks: int, now: datetime | None) -> list[date]:
    now = now or utcnow()
    first = (now - timedelta(weeks=weeks - 1)).date()
    first -= timedelta(days=first.weekday())
    return [first + timedelta(weeks=n) for n in range(weeks)]


def _weeks(mondays: list[date], rows: Any) -> list[WeekFeedback]:
    found: dict[date, dict[str, int]] = {}
    for week, kind, count in rows:
        found.setdefault(week, {})[kind] = count
    return [
        WeekFeedback(
            week=monday,
            hard_bounces=found.get(monday, {}).get("hard_bounce", 0),
            soft_bounces=found.get(monday, {}).get("soft_bounce", 0),
            complaints=found.get(monday, {}).get("complaint", 0),
        )
        for monday in mondays
    ]
