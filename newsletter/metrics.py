"""What /metrics reports: counts read from the database when Prometheus scrapes.

Sending happens in separate processes (`newsletter send`, workers on other
hosts), so counters kept in the memory of the process that serves /metrics
would count nothing, or only its own share. The database is the one place
where the whole truth is kept, so `DatabaseCollector` reads it at scrape
time, in one short read transaction of a handful of grouped queries:

- deliveries by transport and state (`newsletter_deliveries_total`), and the
  temporary failures recorded (`newsletter_deliveries_retried_total`, one per
  delivery sent back to wait for another try): monotonic as long as campaigns
  are not deleted, so `rate()` gives the send rate over any window;
- per campaign that is sending or paused: its queue (`newsletter_queue_depth`)
  and its rate over the last 30 to 60 seconds (`newsletter_send_rate`);
- throttling replies per transport, every worker's (kept in transport_rates);
- each `newsletter serve`'s heartbeat and whether its scheduler runs;
- bounces, complaints and unsubscribes by type (the events table).

Labels are transport names, campaign ids, event types and service ids: never
an address, a name or anything else about a subscriber. The delivery figures
come from the per-campaign counters the senders keep (dispatch/counters.py):
one row per campaign, however large the ledger.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Connection, case, func, select

from newsletter.app import Newsletter
from newsletter.dispatch import counters, rates
from newsletter.models import (
    DELIVERY_STATUSES,
    Campaign,
    Event,
    SendCounters,
    ServiceInstance,
    utcnow,
)

K = SendCounters.__table__
C = Campaign.__table__
E = Event.__table__
I = ServiceInstance.__table__  # noqa: E741 - one letter per table, as in the ledger

OPEN = ("pending", "sending", "retry")
STATES = DELIVERY_STATUSES


class DatabaseCollector(Collector):
    """A prometheus-client collector whose every scrape reads the database."""

    def __init__(self, app: Newsletter) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        with self.app.engine.connect() as conn:
            yield from _deliveries(conn, self.app.config.default_transport)
            yield from _campaigns(conn)
            yield from _throttling(conn)
            yield from _services(conn)
            yield from _events(conn)

    def describe(self) -> list[Metric]:
        # Nothing to describe ahead of a scrape: registering must not touch the database.
        return []


def _deliveries(conn: Connection, default_transport: str) -> Iterator[Metric]:
    """Deliveries by transport and state: the campaigns' counters, summed per transport.

    One row per campaign (dispatch/counters.py), where counting the ledger itself
    was a pass over every delivery ever recorded, at every scrape.
    """
    transport = case((C.c.transport == "", default_transport), else_=C.c.transport)
    rows = conn.execute(
        select(
            transport.label("transport"),
            func.sum(K.c.retries),
            *(func.sum(K.c[state]) for state in STATES),
        )
        .join(C, C.c.id == K.c.campaign_id)
        .group_by(transport)
    ).all()
    states = CounterMetricFamily(
        "newsletter_deliveries",
        "Deliveries by transport and state (sent, failed, retry, pending, sending, cancelled).",
        labels=["transport", "status"],
    )
    retried = CounterMetricFamily(
        "newsletter_deliveries_retried",
        "Temporary failures recorded (a delivery waiting to be tried again), by transport.",
        labels=["transport"],
    )
    for name, retries, *numbers in rows:
        for state, number in zip(STATES, numbers, strict=True):
            if number:
                states.add_metric([name, state], int(number))
        retried.add_metric([name], int(retries or 0))
    yield states
    yield retried


def _campaigns(conn: Connection) -> Iterator[Metric]:
    """Queue and rate of each campaign being sent (or paused): their counters' rows."""
    depth = GaugeMetricFamily(
        "newsletter_queue_depth",
        "Deliveries not yet final (pending, sending or waiting to retry), by campaign.",
        labels=["campaign"],
    )
    rate = GaugeMetricFamily(
        "newsletter_send_rate",
        "Messages sent per second over the last 30 to 60 seconds, by campaign being sent.",
        labels=["campaign"],
    )
    active = list(
        conn.execute(select(C.c.id).where(C.c.status.in_(("sending", "paused")))).scalars()
    )
    kept = counters.read_many(conn, active)
    now = utcnow().timestamp()
    for campaign_id in active:
        found = kept.get(campaign_id) or counters.Counters(counts={})
        depth.add_metric([str(campaign_id)], sum(found.counts.get(s, 0) for s in OPEN))
        rate.add_metric([str(campaign_id)], found.rate(now))
    yield depth
    yield rate


def _throttling(conn: Connection) -> Iterator[Metric]:
    family = CounterMetricFamily(
        "newsletter_throttled",
        "Throttling replies (421, 451, 454 and the like) from the provider, by transport.",
        labels=["transport"],
    )
    for name, count in sorted(rates.throttled_counts(conn).items()):
        family.add_metric([name], count)
    yield family


def _services(conn: Connection) -> Iterator[Metric]:
    heartbeat = GaugeMetricFamily(
        "newsletter_service_heartbeat_timestamp_seconds",
        "When each `newsletter serve` last reported itself (Unix time).",
        labels=["service"],
    )
    scheduler = GaugeMetricFamily(
        "newsletter_scheduler_running",
        "1 when the service's scheduler runs.",
        labels=["service"],
    )
    for service_id, last_seen, running in conn.execute(
        select(I.c.id, I.c.last_seen, I.c.scheduler_running).order_by(I.c.id)
    ):
        stamp: Any = last_seen
        heartbeat.add_metric([service_id], stamp.timestamp() if stamp else 0.0)
        scheduler.add_metric([service_id], 1.0 if running else 0.0)
    yield heartbeat
    yield scheduler


def _events(conn: Connection) -> Iterator[Metric]:
    family = CounterMetricFamily(
        "newsletter_feedback_events",
        "Bounces, complaints and unsubscribes recorded, by type.",
        labels=["type"],
    )
    for kind, count in conn.execute(
        select(E.c.type, func.count()).group_by(E.c.type).order_by(E.c.type)
    ):
        family.add_metric([kind], count)
    yield family
