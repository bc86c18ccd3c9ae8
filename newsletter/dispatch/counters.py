"""Per-campaign counters of deliveries by state: kept as the ledger moves, read instead of it.

Counting a campaign's deliveries by state walks its whole range of the ledger:
312 ms at 100,000 recipients on PostgreSQL, seconds at a million, and
`newsletter status`, the progress bar, the console and /metrics all ask for it
throughout a send. So every statement that moves deliveries between states
(writing the ledger, claiming, releasing, recording outcomes, cancelling,
erasing a person) also moves these counters, by the rows it changed, in the
same transaction: the counters are always what a recount would say, and a
rolled-back move rolls back both. `recount` is the truth they are checked
against (tests/test_send_counters.py) and rebuilt from (migration 0010).

Each move is one UPDATE of one row per statement batch (a claim of 200, a group
of outcomes), never one per message, made after the transaction's changes to
the ledger: a transaction never waits for a delivery row while it holds a
counters row, so on PostgreSQL two senders, or a sender and a cancel, cannot
deadlock over them. Why per-state statements: a statement that
moves rows from one known state to another knows from its row count alone what
to add and subtract; the ledger's statements that could move rows from several
states are split by source state for this reason (see ledger.py).

The same row keeps two samples of the `sent` count for the current rate (see
`SendCounters`), so that the rate too is read without counting the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, case, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.dml import Update

from newsletter.models import DELIVERY_STATUSES, Campaign, Delivery, SendCounters

C = cast(Table, Campaign.__table__)
D = cast(Table, Delivery.__table__)
K = cast(Table, SendCounters.__table__)

# How old the newer sample of `sent` grows before it becomes the older one: the
# current rate is measured over the last RATE_SAMPLE to 2 × RATE_SAMPLE seconds.
RATE_SAMPLE = 30.0


@dataclass(frozen=True)
class Counters:
    """What the row says: counts by state and the rate samples."""

    counts: dict[str, int]
    retries: int = 0
    window_at: float | None = None
    window_sent: int = 0
    last_sent_at: float | None = None

    def rate(self, now: float) -> float:
        """Messages per second since the older sample (30 to 60 seconds ago while sending)."""
        if self.window_at is None or now <= self.window_at:
            return 0.0
        return max(0, self.counts.get("sent", 0) - self.window_sent) / (now - self.window_at)


def ensure(conn: Connection, campaign_id: int) -> None:
    """Create the campaign's row of zeros if it has none; never touch an existing one."""
    statement: Any
    if conn.dialect.name == "postgresql":
        statement = (
            postgresql.insert(K)
            .values(campaign_id=campaign_id)
            .on_conflict_do_nothing(index_elements=["campaign_id"])
        )
    else:
        statement = insert(K).values(campaign_id=campaign_id).prefix_with("OR IGNORE")
    conn.execute(statement)


def move(
    conn: Connection, campaign_id: int, changes: Mapping[str, int], *, now: datetime | None = None
) -> None:
    """Add `changes` ({state: +n or -n}) to the campaign's counters, in the caller's transaction.

    With `now` (a claim), the rate samples start there when the send starts, and
    start again when nothing was recorded for a while (a send resumed after a
    pause or after waiting for retries): the rate is then measured from this claim.
    """
    values: dict[str, Any] = {
        state: K.c[state] + number for state, number in changes.items() if number
    }
    if now is not None:
        at = now.timestamp()
        stale = K.c.mark_at.is_(None) | (K.c.mark_at < at - 2 * RATE_SAMPLE)
        values.update(
            window_at=case((stale, at), else_=K.c.window_at),
            window_sent=case((stale, K.c.sent), else_=K.c.window_sent),
            mark_at=case((stale, at), else_=K.c.mark_at),
            mark_sent=case((stale, K.c.sent), else_=K.c.mark_sent),
        )
    if not values:
        return
    statement = update(K).where(K.c.campaign_id == campaign_id).values(**values)
    if conn.execute(statement).rowcount == 0:
        # A campaign whose ledger was written before its row existed gets it now: the row
        # of zeros plus this move is only right for a campaign with no deliveries so far,
        # which is the only kind without a row (migration 0010 filled the others).
        ensure(conn, campaign_id)
        conn.execute(statement)


def record_outcomes(sent: Any, retry: Any, failed: Any, now: Any) -> Update:
    """The outcome writer's move, once per group of outcomes (see ledger.OutcomeWriter).

    The rows it recorded leave `sending` for sent, retry or failed: `sent`, `retry`
    and `failed` are their numbers (parameters, or on PostgreSQL the counts of the
    group's own UPDATEs) and `now` the time as seconds since the epoch. The newer
    rate sample becomes the older once it is RATE_SAMPLE seconds old; right-hand
    sides read the row as it was before this UPDATE, in both databases.
    """
    rotate = K.c.mark_at.is_(None) | (now - K.c.mark_at >= RATE_SAMPLE)
    return (
        update(K)
        .where(K.c.campaign_id == bindparam("c_id"))
        .values(
            sending=K.c.sending - (sent + retry + failed),
            sent=K.c.sent + sent,
            retry=K.c.retry + retry,
            retries=K.c.retries + retry,
            failed=K.c.failed + failed,
            window_at=case((rotate, func.coalesce(K.c.mark_at, now)), else_=K.c.window_at),
            window_sent=case(
                (rotate, case((K.c.mark_at.is_(None), K.c.sent), else_=K.c.mark_sent)),
                else_=K.c.window_sent,
            ),
            mark_at=case((rotate, now), else_=K.c.mark_at),
            mark_sent=case((rotate, K.c.sent), else_=K.c.mark_sent),
            last_sent_at=case((sent > 0, now), else_=K.c.last_sent_at),
        )
    )


# With the group's numbers as parameters, run on the raw DBAPI cursor after the
# outcomes' own UPDATEs (SQLite).
RECORD_OUTCOMES = record_outcomes(
    bindparam("c_sent"), bindparam("c_retry"), bindparam("c_failed"), bindparam("c_now")
)


def read(conn: Connection, campaign_id: int) -> Counters:
    """The campaign's counters: one row by primary key. A campaign with none has none."""
    row = conn.execute(select(K).where(K.c.campaign_id == campaign_id)).one_or_none()
    if row is None:
        return Counters(counts={})
    found = row._mapping
    return Counters(
        counts={state: int(found[state]) for state in DELIVERY_STATUSES if found[state]},
        retries=int(found["retries"]),
        window_at=found["window_at"],
        window_sent=int(found["window_sent"]),
        last_sent_at=found["last_sent_at"],
    )


def read_many(conn: Connection, campaign_ids: list[int]) -> dict[int, Counters]:
    """Several campaigns' counters at once (the metrics' campaigns being sent)."""
    if not campaign_ids:
        return {}
    rows = conn.execute(select(K).where(K.c.campaign_id.in_(campaign_ids)))
    found: dict[int, Counters] = {}
    for row in rows:
        data = row._mapping
        found[data["campaign_id"]] = Counters(
            counts={state: int(data[state]) for state in DELIVERY_STATUSES if data[state]},
            retries=int(data["retries"]),
            window_at=data["window_at"],
            window_sent=int(data["window_sent"]),
            last_sent_at=data["last_sent_at"],
        )
    return found


def queued(conn: Connection) -> tuple[int, int]:
    """(deliveries waiting, deliveries in flight) of every campaign being sent.

    The service's queue depth, from the counters of the campaigns `sending`: a
    row each, where counting the ledger would walk every open delivery.
    """
    waiting, in_flight = conn.execute(
        select(
            func.coalesce(func.sum(K.c.pending + K.c.retry), 0),
            func.coalesce(func.sum(K.c.sending), 0),
        )
        .join(C, C.c.id == K.c.campaign_id)
        .where(C.c.status == "sending")
    ).one()
    return int(waiting), int(in_flight)


def recount(conn: Connection, campaign_id: int) -> dict[str, int]:
    """The ledger's own count by state: the truth the counters must equal.

    A pass over the campaign's whole range of the claim index: for checks and
    repairs, never for reading progress.
    """
    rows = conn.execute(
        select(D.c.status, func.count()).where(D.c.campaign_id == campaign_id).group_by(D.c.status)
    )
    return {status: int(number) for status, number in rows if number}


def rebuild(conn: Connection, campaign_id: int) -> dict[str, int]:
    """Set the campaign's counters to a recount (the rate samples are left alone)."""
    counts = recount(conn, campaign_id)
    ensure(conn, campaign_id)
    conn.execute(
        update(K)
        .where(K.c.campaign_id == campaign_id)
        .values(**{state: literal(counts.get(state, 0)) for state in DELIVERY_STATUSES})
    )
    return counts
