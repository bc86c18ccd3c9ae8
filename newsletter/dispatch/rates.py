"""A transport's send rate shared by every worker, through the database.

A provider's limit ("100 messages a second") is the account's, not one
process's: three workers that each keep to it send three times too fast. The
workers share nothing but the database, so the rate is kept there, as one row
per transport (`transport_rates`) holding the first free *slot*: the moment
at which the next message may start, on the database's clock.

A worker takes slots in runs (`SharedRate.reserve`): one UPDATE moves the row's
next slot on by `count / rate` seconds and returns where the run starts. Runs
never overlap, and the slots within a run are 1/rate apart, so all workers
together start at most `rate` messages in any second, whatever their number
and wherever they run. A worker alone takes run after run, each starting where
its previous one ended: its rate is what it was without the database. Slots a
worker does not use in time (it stopped, or it was slowed by throttling) are
lost, never spent late in a burst (see `RateLimiter`).

Times come from the database (`clock_timestamp()` on PostgreSQL), so that
workers on hosts whose clocks differ still agree; each worker converts a run's
start to its own monotonic clock with the database's "now" returned by the same
statement. Only the configured `rate_per_second` is shared; the adaptive
slow-down after throttling replies stays each worker's own (each hears its own
replies), and the hourly limit is counted from the ledger when a send starts.
"""

from __future__ import annotations

import time
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql

from newsletter.models import TransportRate

R = cast(Table, TransportRate.__table__)

# How much time one reservation covers: a DB round trip every 0.2 s per worker,
# and at most 0.2 s of slots lost when a worker stops.
RUN_SECONDS = 0.2


def _database_now(dialect: str) -> Any:
    """Seconds since the epoch on the database's clock, as SQL."""
    if dialect == "postgresql":
        # clock_timestamp(), not now(): now() is the transaction's start.
        return func.extract("epoch", func.clock_timestamp())
    # SQLite: all workers share one file, so one host and one clock; julianday('now')
    # has millisecond precision.
    return (func.julianday("now") - 2440587.5) * 86400.0


def ensure_row(conn: Connection, transport: str) -> None:
    """The transport's row, created by whichever worker comes first."""
    values = {"transport": transport, "next_slot": 0.0, "throttled": 0}
    if conn.dialect.name == "postgresql":
        conn.execute(postgresql.insert(R).values(**values).on_conflict_do_nothing())
    else:
        conn.execute(insert(R).values(**values).prefix_with("OR IGNORE"))


def take_slots(conn: Connection, transport: str, seconds: float) -> tuple[float, float]:
    """Move the transport's next free slot on by `seconds`; (run start, database now).

    One conditional UPDATE … RETURNING: the row lock makes concurrent workers
    take consecutive, non-overlapping runs. A run starts at the row's next slot,
    or now when that is past (nobody sent for a while: no credit is saved up).
    """
    now = _database_now(conn.dialect.name)
    greatest = func.greatest if conn.dialect.name == "postgresql" else func.max
    start = greatest(R.c.next_slot, now)
    row = conn.execute(
        update(R)
        .where(R.c.transport == bindparam("b_transport"))
        .values(next_slot=start + bindparam("b_seconds"))
        .returning(R.c.next_slot, now.label("now")),
        {"b_transport": transport, "b_seconds": seconds},
    ).one()
    end, database_now = float(row[0]), float(row[1])
    return end - seconds, database_now


def add_throttled(conn: Connection, transport: str, count: int) -> None:
    """Count throttling replies for /metrics (read by `throttled_counts`)."""
    conn.execute(
        update(R).where(R.c.transport == transport).values(throttled=R.c.throttled + count)
    )


def throttled_counts(conn: Connection) -> dict[str, int]:
    """Throttling replies per transport, every worker's, since the database was made."""
    return {name: count for name, count in conn.execute(select(R.c.transport, R.c.throttled))}


def slot_lag(conn: Connection, transport: str) -> float:
    """How far the transport's next free slot is ahead of now (0 when idle): for tests."""
    now = _database_now(conn.dialect.name)
    value = conn.scalar(select(R.c.next_slot - now).where(R.c.transport == transport))
    return max(float(value or 0.0), 0.0)


class SharedRate:
    """Runs of slots for one transport at `per_second`, taken from the database.

    Called by `RateLimiter` (one thread at a time) when the run it holds is used up.
    """

    def __init__(self, engine: Engine, transport: str, per_second: float) -> None:
        self.engine = engine
        self.transport = transport
        self.interval = 1.0 / per_second
        self.run_length = max(1, round(per_second * RUN_SECONDS))
        self._ready = False

    def reserve(self) -> tuple[float, int]:
        """(start of the run on time.monotonic(), number of slots in it)."""
        seconds = self.run_length * self.interval
        with self.engine.begin() as conn:
            if not self._ready:
                ensure_row(conn, self.transport)
                self._ready = True
            if conn.dialect.name == "postgresql":
                # A lost reservation costs nothing (its slots go unused): no disk wait,
                # which would also blur the clocks' match below.
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            before = time.monotonic()
            start, database_now = take_slots(conn, self.transport, seconds)
            # The database read its clock between `before` and now: take the middle.
            ours = (before + time.monotonic()) / 2
        # The run's start, as far ahead of our clock as it is of the database's.
        return ours + (start - database_now), self.run_length

    def add_throttled(self, count: int) -> None:
        with self.engine.begin() as conn:
            add_throttled(conn, self.transport, count)
