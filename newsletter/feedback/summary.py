"""Feedback as staff read it: a campaign's bounce and complaint rates, events per delivery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select

from newsletter.app import Newsletter
from newsletter.models import Delivery, Event

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
        sent = (
            conn.scalar(
                select(func.count()).where(
                    Delivery.campaign_id == campaign_id, Delivery.status == "sent"
                )
            )
            or 0
        )
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


def events_by_delivery(app: Newsletter, campaign_id: int) -> dict[int, list[str]]:
    """{delivery id: ["hard_bounce (mailgun)", …]} for a campaign's deliveries.

    An event belongs to a delivery by its id, or (an unsubscribe recorded by the
    person's own path) by the same subscriber and campaign.
    """
    query = (
        select(Delivery.id, Event.type, Event.source)
        .join(
            Event,
            or_(
                Event.delivery_id == Delivery.id,
                and_(
                    Event.delivery_id.is_(None),
                    Event.campaign_id == Delivery.campaign_id,
                    Event.subscriber_id == Delivery.subscriber_id,
                ),
            ),
        )
        .where(Delivery.campaign_id == campaign_id)
        .order_by(Event.id)
    )
    found: dict[int, list[str]] = {}
    with app.read_engine.connect() as conn:
        for delivery_id, kind, source in conn.execute(query):
            found.setdefault(delivery_id, []).append(f"{kind} ({source})" if source else kind)
    return found


# What makes a delivery that was sent count as not delivered after all.
CAME_BACK_FAILED = ("hard_bounce", "soft_bounce", "complaint")
# The detail keys sources use for the reason, best first (bounce mailbox, providers).
_REASON_KEYS = ("diagnostic", "message", "reason", "description", "feedback_type", "status")


def _reason(kind: str, source: str, detail: dict[str, Any] | None) -> str:
    detail = detail or {}
    text = next((str(detail[k]) for k in _REASON_KEYS if detail.get(k)), "")
    label = f"{kind} ({source})" if source else kind
    return f"{label}: {' '.join(text.split())}" if text else label


def came_back_reasons(app: Newsletter, campaign_id: int) -> dict[int, str]:
    """{delivery id: "hard_bounce (mailbox): 550 5.1.1 no such user"} for the deliveries
    of a campaign that bounced or were complained about after sending; the latest wins.

    Matched as in `events_by_delivery`; only the failure types are read, so the
    scan is over the campaign's few bounces, not its deliveries.
    """
    query = (
        select(Delivery.id, Event.type, Event.source, Event.detail)
        .join(
            Event,
            or_(
                Event.delivery_id == Delivery.id,
                and_(
                    Event.delivery_id.is_(None),
                    Event.campaign_id == Delivery.campaign_id,
                    Event.subscriber_id == Delivery.subscriber_id,
                ),
            ),
        )
        .where(Delivery.campaign_id == campaign_id, Event.type.in_(CAME_BACK_FAILED))
        .order_by(Event.id)
    )
    found: dict[int, str] = {}
    with app.engine.connect() as conn:
        for delivery_id, kind, source, detail in conn.execute(query):
            found[delivery_id] = _reason(kind, source, detail)
    return found
