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
statement. The throttling replies every worker heard are counted in the same
row: a worker that sees the count grow by more than its own slows down as if it
had heard them (the provider throttles the account, not one connection).

The hourly limit (`rate_per_hour`) is shared too, by allowance: a worker takes
a run of messages it may send (`SharedHour.take`), and the run is added to the
current minute's row of `transport_hours` in the same transaction that checks
the window's total, under the transport's row lock. A minute's messages count
for 61 minutes, not 60: a message sent at any moment of a minute is still
counted a whole hour later, so no sliding hour ever holds more than the limit
(the price: up to a minute's wait more than strictly needed). What a worker
took and did not send goes back when it stops. The first worker to send
through a transport fills the last hour in from the ledger (`seed_hours`), so
an upgrade or a first start does not begin with a fresh hour.
"""

from __future__ import annotations

import time
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql

from newsletter.models import TransportHour, TransportRate

R = cast(Table, TransportRate.__table__)
H = cast(Table, TransportHour.__table__)

# Minutes a minute's messages count towards the hourly limit (see the docstring).
HOUR_MINUTES = 61

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


def _greatest(conn: Connection) -> Any:
    """SQL's larger-of function: GREATEST on PostgreSQL, the two-argument MAX on SQLite."""
    return func.greatest if conn.dialect.name == "postgresql" else func.max


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
    start = _greatest(conn)(R.c.next_slot, now)
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


def throttled_total(conn: Connection, transport: str) -> int:
    """Throttling replies every worker heard through one transport, so far."""
    return int(conn.scalar(select(R.c.throttled).where(R.c.transport == transport)) or 0)


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


# --- the hourly limit ------------------------------------------------------------------


def _hour_window(conn: Connection) -> tuple[float, int]:
    """(now on the database's clock, the oldest minute still counted towards the hour)."""
    now = float(conn.scalar(select(_database_now(conn.dialect.name))) or 0.0)
    return now, int(now // 60) - HOUR_MINUTES + 1


def _lock_row(conn: Connection, transport: str) -> None:
    """Serialise the workers of one transport (SQLite's BEGIN IMMEDIATE already does)."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(R.c.transport).where(R.c.transport == transport).with_for_update())


def take_hourly(
    conn: Connection, transport: str, per_hour: int, want: int
) -> tuple[int, int, float]:
    """Take up to `want` of the hour's allowance: (granted, minute, seconds to wait).

    `minute` is the row the grant was added to (for `give_back_hourly`); with
    nothing granted, `seconds` says when the oldest minute in the window leaves
    it. One transaction, under the transport's row lock: two workers never
    both take the last of the allowance.
    """
    _lock_row(conn, transport)
    now, first = _hour_window(conn)
    minute = int(now // 60)
    conn.execute(delete(H).where(H.c.transport == transport, H.c.minute < first))
    used, oldest = conn.execute(
        select(func.coalesce(func.sum(H.c.sent), 0), func.min(H.c.minute)).where(
            H.c.transport == transport, H.c.minute >= first
        )
    ).one()
    granted = max(0, min(want, per_hour - int(used)))
    if granted == 0:
        frees_at = ((oldest if oldest is not None else minute) + HOUR_MINUTES) * 60
        return 0, minute, max(frees_at - now, 1.0)
    _add_to_minute(conn, transport, minute, granted)
    return granted, minute, 0.0


def _add_to_minute(conn: Connection, transport: str, minute: int, count: int) -> None:
    changed = conn.execute(
        update(H)
        .where(H.c.transport == transport, H.c.minute == minute)
        .values(sent=H.c.sent + count)
    )
    if not changed.rowcount:
        conn.execute(insert(H).values(transport=transport, minute=minute, sent=count))


def give_back_hourly(conn: Connection, transport: str, minute: int, count: int) -> None:
    """Return allowance taken in `minute` and not used (a worker stopping)."""
    conn.execute(
        update(H)
        .where(H.c.transport == transport, H.c.minute == minute)
        .values(sent=_greatest(conn)(H.c.sent - count, 0))
    )


def seed_hours(conn: Connection, transport: str, sent_at: list[float]) -> None:
    """The last hour's sends from the ledger (epoch seconds), when nobody counted them.

    Only when the transport has no row in the window yet: once workers count, their
    rows are the truth (they include allowance taken and not yet sent).
    """
    _lock_row(conn, transport)
    _now, first = _hour_window(conn)
    counted = conn.scalar(
        select(func.count()).where(H.c.transport == transport, H.c.minute >= first)
    )
    if counted:
        return
    per_minute: dict[int, int] = {}
    for moment in sent_at:
        if int(moment // 60) >= first:
            per_minute[int(moment // 60)] = per_minute.get(int(moment // 60), 0) + 1
    for minute, count in sorted(per_minute.items()):
        _add_to_minute(conn, transport, minute, count)


def hourly_used(conn: Connection, transport: str) -> int:
    """Messages counted against the transport's hourly limit now (the tests read it)."""
    _now, first = _hour_window(conn)
    total = conn.scalar(
        select(func.coalesce(func.sum(H.c.sent), 0)).where(
            H.c.transport == transport, H.c.minute >= first
        )
    )
    return int(total or 0)


class SharedHour:
    """The hourly allowance of one transport, taken from the database in runs.

    Called by `RateLimiter` (one thread at a time) when its run is used up.
    A run is half a minute's share of the limit (at least one message), so that
    several workers take turns and a worker that stops holds little.
    """

    def __init__(self, engine: Engine, transport: str, per_hour: int) -> None:
        self.engine = engine
        self.transport = transport
        self.per_hour = per_hour
        self.run_length = max(1, per_hour // 120)
        self._ready = False
        # The minute the last run was added to: where what is left of it goes back.
        self._minute = 0

    def take(self) -> tuple[int, float]:
        """(messages granted, seconds until more may be free when none was)."""
        with self.engine.begin() as conn:
            if not self._ready:
                ensure_row(conn, self.transport)
                self._ready = True
            granted, minute, wait = take_hourly(
                conn, self.transport, self.per_hour, self.run_length
            )
        if granted:
            self._minute = minute
        return granted, wait

    def give_back(self, count: int) -> None:
        """Return `count` messages of the last run, taken and not sent."""
        if count > 0:
            with self.engine.begin() as conn:
                give_back_hourly(conn, self.transport, self._minute, count)
