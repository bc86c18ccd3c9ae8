"""Counts too costly for a page: a campaign's recipients, what a segment's rules select.

With a million subscribers, resolving an audience takes seconds
(bench/bench_console.py), and the rules are arbitrary (lists, segment, suppression),
so no counter can be kept for them. Instead:

- an exact count is made off the request (the console runs it in the background)
  and stored with when it was made (`audience_counts`); pages show it as
  "counted at …", never as a count of now;
- the segment builder answers at once with an exact count when the subscribers
  are few enough to count within the request (at most SAMPLE), and otherwise
  with an estimate from SAMPLE subscribers, labelled as one, until the exact
  count is stored.

A number is never presented as exact unless it was counted exactly; `Estimate`
and `StoredCount` are different types so that pages cannot confuse them.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError

from newsletter.app import Newsletter
from newsletter.audience.resolve import count_query, count_recipients, segment_condition
from newsletter.audience.segment_rules import validate_rules
from newsletter.audience.segments import count_rules
from newsletter.models import (
    AudienceCount,
    Campaign,
    MailingList,
    Subscriber,
    Subscription,
    Suppression,
    utcnow,
)

# Subscribers an estimate is made from; also the most the builder counts exactly at once.
SAMPLE = 50_000


@dataclass(frozen=True)
class StoredCount:
    """An exact count, true at `counted_at`."""

    subject: str
    matching: int | None
    reachable: int
    counted_at: datetime
    seconds: float

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or utcnow()) - self.counted_at).total_seconds()


@dataclass(frozen=True)
class Estimate:
    """Counts scaled up from `sample` of about `population` subscribers: not exact."""

    matching: int
    reachable: int
    sample: int
    population: int


def campaign_subject(campaign_id: int) -> str:
    return f"campaign:{campaign_id}"


def rules_subject(rules: dict[str, Any]) -> str:
    """The same rules, however their keys were ordered, name the same stored count."""
    canonical = json.dumps(rules, sort_keys=True, separators=(",", ":"))
    return "rules:" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def stored_count(app: Newsletter, subject: str) -> StoredCount | None:
    with app.session() as session:
        row = session.get(AudienceCount, subject)
        return _record(row) if row is not None else None


def count_campaign(app: Newsletter, campaign_id: int) -> StoredCount:
    """Count a campaign's recipients now (seconds at a million) and store the count."""
    started = time.perf_counter()
    with app.session() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise LookupError(f"no campaign {campaign_id}")
        reachable = count_recipients(session, campaign)
    return _store(app, campaign_subject(campaign_id), None, reachable, started)


def count_rules_exactly(app: Newsletter, rules: dict[str, Any]) -> StoredCount:
    """Count what rules select over every subscriber and store the count."""
    started = time.perf_counter()
    counts = count_rules(app, rules)
    return _store(app, rules_subject(rules), counts.matching, counts.reachable, started)


def quick_rules_count(app: Newsletter, rules: dict[str, Any]) -> StoredCount | Estimate:
    """Within a request: exact when there are at most SAMPLE subscribers, else an estimate.

    The sample is the subscribers whose ids fall in a window of SAMPLE ids at a
    random place: a range scan of the primary key, where a sample spread over the
    whole table would read it all. Ids follow the order people came in, so a window
    can over-represent one import; the page says the number is an estimate.
    """
    with app.session() as session:
        list_names = set(session.scalars(select(MailingList.name)))
        checked = validate_rules(rules, list_names=list_names, where="segment definition")
        low, high = session.execute(select(func.min(Subscriber.id), func.max(Subscriber.id))).one()
        small = low is None or high - low < SAMPLE
    if small:
        return count_rules_exactly(app, checked)
    start = random.randint(low, high - SAMPLE + 1)
    window = Subscriber.id.between(start, start + SAMPLE - 1)
    with app.session() as session:
        condition = segment_condition(session, checked)
        sample = session.scalar(select(func.count()).where(window)) or 0
        matching = count_query(session, select(Subscriber.id).where(window, condition))
        reachable = count_query(session, _reachable_in(window, condition))
    # Scaled by the id range, not by a count of every subscriber: counting reads the
    # whole of the smallest index (seconds with cold caches at a million), and the
    # window's share of the range is the sample's share of the subscribers as nearly
    # as the sample itself is representative.
    scale = (high - low + 1) / SAMPLE
    return Estimate(
        matching=round(matching * scale),
        reachable=round(reachable * scale),
        sample=sample,
        population=round(sample * scale),
    )


def _reachable_in(window: Any, condition: Any) -> Any:
    """newsletter.audience.resolve's reachable subscribers (active, confirmed on an open
    list, not suppressed), written for a few thousand rows: the membership test is a
    probe per subscriber into the (subscriber_id, list_id) index, where resolve's IN
    over every confirmed membership would read a million rows for a sample."""
    member = exists(
        select(Subscription.id)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(
            Subscription.subscriber_id == Subscriber.id,
            Subscription.status == "confirmed",
            MailingList.archived.is_(False),
        )
    )
    suppressed = exists(
        select(Suppression.id).where(Suppression.email_hash == Subscriber.email_hash)
    )
    return select(Subscriber.id).where(
        window, condition, Subscriber.status == "active", member, ~suppressed
    )


def _store(
    app: Newsletter, subject: str, matching: int | None, reachable: int, started: float
) -> StoredCount:
    seconds = time.perf_counter() - started
    try:
        return _write(app, subject, matching, reachable, seconds)
    except IntegrityError:
        # Another process stored the first count of this subject at the same moment.
        return _write(app, subject, matching, reachable, seconds)


def _write(
    app: Newsletter, subject: str, matching: int | None, reachable: int, seconds: float
) -> StoredCount:
    with app.session() as session:
        row = session.get(AudienceCount, subject)
        if row is None:
            row = AudienceCount(subject=subject)
            session.add(row)
        row.matching, row.reachable = matching, reachable
        row.counted_at, row.seconds = utcnow(), seconds
        session.flush()
        return _record(row)


def _record(row: AudienceCount) -> StoredCount:
    return StoredCount(
        subject=row.subject,
        matching=row.matching,
        reachable=row.reachable,
        counted_at=row.counted_at,
        seconds=row.seconds,
    )
