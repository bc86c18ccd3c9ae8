"""The deliveries ledger's queries, all in one place, each with why it is shaped so.

The ledger is one row per recipient of a campaign. A row moves:

    pending ──claim──► sending ──outcome──► sent | failed
       ▲                  │  └──outcome──► retry ──(due)──claim──► sending …
       └────release───────┘  (a worker stopped, died, or let its lease lapse)

and pending/retry rows become `cancelled` when the campaign is cancelled.
`sent`, `failed` and `cancelled` are final: a row never leaves them, which is
what lets a restart skip everyone already done.

Set-based work (writing the ledger, claiming a batch, releasing claims) is one
statement each; per-delivery outcomes are `executemany` UPDATEs by primary key,
many per transaction. Nothing here builds ORM objects per delivery: a million
of them would cost more than the sending.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert

from newsletter import db, lifecycle
from newsletter.actors import WORKER
from newsletter.audience.resolve import recipients_query
from newsletter.audience.suppression import suppress
from newsletter.models import Campaign, Delivery, Event, Subscriber, utcnow

log = logging.getLogger(__name__)

D = cast(Table, Delivery.__table__)
S = cast(Table, Subscriber.__table__)
C = cast(Table, Campaign.__table__)

OPEN_STATUSES = ("pending", "sending", "retry")
FINAL_STATUSES = ("sent", "failed", "cancelled")


class Claim(NamedTuple):
    """A claimed delivery and what its message needs: just the columns, no ORM object."""

    delivery_id: int
    subscriber_id: int
    attempts: int
    email: str
    name: str
    language: str


# --- writing the ledger --------------------------------------------------------


def write_ledger(session: Session, campaign: Campaign) -> int:
    """One row per recipient, in one INSERT … SELECT; returns the rows added.

    Set-based so that a million recipients never pass through Python: the
    database copies ids from the audience query straight into the ledger.
    Duplicates are skipped by the unique (campaign, subscriber) key rather than
    checked first, so writing the ledger twice adds nothing and two processes
    racing to write it cannot both succeed in doubling it.
    """

    audience = recipients_query(session, campaign).subquery()
    rows = select(literal(campaign.id), audience.c.subscriber_id)
    columns = ["campaign_id", "subscriber_id"]
    statement: Insert
    if session.get_bind().dialect.name == "postgresql":
        statement = (
            postgresql.insert(D)
            .from_select(columns, rows)
            .on_conflict_do_nothing(index_elements=["campaign_id", "subscriber_id"])
        )
    else:
        # SQLite's ON CONFLICT clause is ambiguous after INSERT … SELECT; OR IGNORE is not.
        statement = insert(D).from_select(columns, rows).prefix_with("OR IGNORE")
    # Without preserve_rowcount, SQLAlchemy reports -1 for an INSERT on PostgreSQL.
    return db.rows_changed(session.execute(statement.execution_options(preserve_rowcount=True)))


def audience_count(session: Session, campaign: Campaign) -> int:

    audience = recipients_query(session, campaign).subquery()
    return session.scalar(select(func.count()).select_from(audience)) or 0


@dataclass(frozen=True, slots=True)
class SampleRecipient:
    """One of the first few people a send would reach (`send --dry-run` shows them)."""

    id: int
    email: str
    name: str
    language: str


def audience_sample(session: Session, campaign: Campaign, limit: int) -> list[SampleRecipient]:

    audience = recipients_query(session, campaign).subquery()
    query = (
        select(S.c.id, S.c.email, S.c.name, S.c.language)
        .join(audience, audience.c.subscriber_id == S.c.id)
        .order_by(S.c.id)
        .limit(limit)
    )
    return [SampleRecipient(*row) for row in session.execute(query)]


# --- claiming ------------------------------------------------------------------


def claim(
    conn: Connection,
    campaign_id: int,
    worker_id: str,
    limit: int,
    now: datetime,
    lease_until: datetime,
) -> list[Claim]:
    """Atomically take up to `limit` deliveries that are due: due retries first, then pending.

    One UPDATE … RETURNING per kind of row, so that a row is claimed by exactly
    one worker. On PostgreSQL the rows are picked in a CTE that locks them
    FOR UPDATE SKIP LOCKED: concurrent workers take different rows instead of
    queueing behind each other, and a CTE is evaluated exactly once (as
    `id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` it may be re-run for each
    row of a nested loop, and each re-run, skipping the rows the earlier runs
    locked, picks new ones: the "limit" would claim the whole campaign). On
    SQLite the statement runs under the database's single write lock, so
    `id IN (SELECT … LIMIT n)` with the status re-checked is enough.
    The two kinds are claimed by separate statements because each then walks
    one range of the (campaign, status, next_attempt_at) index and stops after
    n rows; one statement with an OR would sort every due row of the campaign
    on every claim. The lease says until when others must leave the rows alone.
    """
    postgres = conn.dialect.name == "postgresql"
    retry_due = (D.c.status == "retry") & (D.c.next_attempt_at <= now)
    pending = D.c.status == "pending"
    values = {"status": "sending", "claimed_by": worker_id, "lease_until": lease_until}
    ids: list[int] = []
    for due in (retry_due, pending):
        room = limit - len(ids)
        if room <= 0:
            break
        picked = select(D.c.id).where(D.c.campaign_id == campaign_id, due).limit(room)
        if postgres:
            chosen = picked.with_for_update(skip_locked=True).cte("picked")
            statement = update(D).where(D.c.id == chosen.c.id).values(**values)
        else:
            statement = update(D).where(D.c.id.in_(picked.scalar_subquery()), due).values(**values)
        ids.extend(conn.execute(statement.returning(D.c.id)).scalars())
    if not ids:
        return []
    # The message needs the subscriber's address, name and language; read them in
    # the same transaction, for exactly the rows just claimed: ours, with this very
    # lease (no other claim of ours has it), found in the campaign's short range of
    # 'sending' rows. Cheaper than binding a list of a batch's ids.
    rows = conn.execute(
        select(D.c.id, D.c.subscriber_id, D.c.attempts, S.c.email, S.c.name, S.c.language)
        .join(S, S.c.id == D.c.subscriber_id)
        .where(
            D.c.campaign_id == campaign_id,
            D.c.status == "sending",
            D.c.claimed_by == worker_id,
            D.c.lease_until == lease_until,
        )
        .order_by(D.c.id)
    )
    return [Claim(*row) for row in rows]


def claim_holders(conn: Connection, campaign_id: int) -> list[str]:
    """The workers that hold claims on a campaign: a few, however large the campaign."""
    return list(
        conn.execute(
            select(D.c.claimed_by)
            .where(D.c.campaign_id == campaign_id, D.c.status == "sending")
            .distinct()
        ).scalars()
    )


def _unclaimed_status() -> Any:
    # A released row goes back to where it came from: retry rows keep their due time.
    return case((D.c.next_attempt_at.is_(None), "pending"), else_="retry")


def reclaim(conn: Connection, campaign_id: int, now: datetime, dead: Sequence[str]) -> int:
    """Free the claims of dead workers and of lapsed leases; returns the rows freed.

    A conditional UPDATE (status still 'sending', and the lease lapsed or the
    holder dead), so that a live worker that records its outcome at the same
    moment wins or loses cleanly: exactly one of the two statements changes the row.
    """
    stale = D.c.lease_until < now
    if dead:
        stale = or_(stale, D.c.claimed_by.in_(list(dead)))
    result = conn.execute(
        update(D)
        .where(D.c.campaign_id == campaign_id, D.c.status == "sending", stale)
        .values(status=_unclaimed_status(), claimed_by=None, lease_until=None)
    )
    return db.rows_changed(result)


def renew_lease(conn: Connection, campaign_id: int, worker_id: str, lease_until: datetime) -> int:
    """Keep our claims while a slow send (a low rate) works through them."""
    result = conn.execute(
        update(D)
        .where(D.c.campaign_id == campaign_id, D.c.claimed_by == worker_id, D.c.status == "sending")
        .values(lease_until=lease_until)
    )
    return db.rows_changed(result)


def release(conn: Connection, campaign_id: int, worker_id: str, *, cancelled: bool) -> int:
    """Give back what a stopping worker claimed and did not send.

    Every outcome has been recorded before this runs, so a row still 'sending'
    under our name was never handed to the transport: releasing it cannot cause
    a duplicate. In a cancelled campaign it becomes 'cancelled' instead.
    """
    status = "cancelled" if cancelled else _unclaimed_status()
    result = conn.execute(
        update(D)
        .where(D.c.campaign_id == campaign_id, D.c.claimed_by == worker_id, D.c.status == "sending")
        .values(status=status, claimed_by=None, lease_until=None)
    )
    return db.rows_changed(result)


# --- outcomes ------------------------------------------------------------------

# One statement per kind of outcome, executed with many parameter sets at once
# (executemany). Each is by primary key and conditional on the row still being
# ours: if our lease lapsed and another worker took the row, we must not
# overwrite its outcome. The claimed_by column is kept on final rows: it says
# which worker sent the message.
_OURS = (
    (D.c.id == bindparam("b_id"))
    & (D.c.claimed_by == bindparam("b_worker"))
    & (D.c.status == "sending")
)

RECORD_SENT = (
    update(D)
    .where(_OURS)
    .values(
        status="sent",
        attempts=D.c.attempts + 1,
        sent_at=bindparam("b_at"),
        last_response=bindparam("b_response"),
        message_id=bindparam("b_message_id"),
        provider_message_id=bindparam("b_provider_id"),
        lease_until=None,
        next_attempt_at=None,
    )
)

RECORD_RETRY = (
    update(D)
    .where(_OURS)
    .values(
        status="retry",
        attempts=bindparam("b_attempts"),
        next_attempt_at=bindparam("b_next"),
        last_response=bindparam("b_response"),
        message_id=bindparam("b_message_id"),
        claimed_by=None,
        lease_until=None,
    )
)

RECORD_FAILED = (
    update(D)
    .where(_OURS)
    .values(
        status="failed",
        attempts=bindparam("b_attempts"),
        last_response=bindparam("b_response"),
        message_id=bindparam("b_message_id"),
        lease_until=None,
        next_attempt_at=None,
    )
)


def record_outcomes(
    conn: Connection,
    sent: list[dict[str, Any]],
    retry: list[dict[str, Any]],
    failed: list[dict[str, Any]],
) -> int:
    """Write a group of outcomes in the caller's transaction; returns the rows changed."""
    changed = 0
    for statement, params in ((RECORD_SENT, sent), (RECORD_RETRY, retry), (RECORD_FAILED, failed)):
        if params:
            result = conn.execute(statement, params)
            changed += max(db.rows_changed(result), 0)
    return changed


class LedgerWriteError(Exception):
    """The database refused a group of outcomes (locked for too long, connection lost)."""


class OutcomeWriter:
    """The three outcome UPDATEs above, compiled once, run on one raw DBAPI connection.

    This is the hottest path of a send: one transaction per group of outcomes,
    thousands a minute. Through SQLAlchemy's Connection each transaction costs
    about 270 µs of Python on this machine (events, compiled-cache lookups,
    result objects); on the DBAPI cursor, the same SQL costs under 100 µs. The
    SQL itself still comes from the Core statements above, for whichever
    database the engine speaks; only the parameter conversion SQLAlchemy would
    do (aware datetimes to the stored form) is done here, in `_value`.
    """

    def __init__(self, engine: Engine, *, wait_for_disk: bool = False) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self.wait_for_disk = wait_for_disk
        self._raw: Any = None
        self._prepared = {
            kind: self._prepare(statement)
            for kind, statement in (
                ("sent", RECORD_SENT),
                ("retry", RECORD_RETRY),
                ("failed", RECORD_FAILED),
            )
        }

    def _prepare(self, statement: Any) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        compiled = statement.compile(dialect=self.engine.dialect)
        # Values fixed in the statement (status='sent', attempts + 1, …) are parameters too.
        constants = {k: v for k, v in compiled.params.items() if not k.startswith("b_")}
        order = tuple(compiled.positiontup) if compiled.positional else None
        return compiled.string, order, constants

    def _value(self, value: Any) -> Any:
        if isinstance(value, datetime):
            naive = value.astimezone(UTC).replace(tzinfo=None)
            # SQLite keeps datetimes as text in SQLAlchemy's format; psycopg takes them as is.
            return f"{naive:%Y-%m-%d %H:%M:%S.%f}" if self.sqlite else naive
        return value

    def write(self, groups: dict[str, list[dict[str, Any]]]) -> None:
        """Record the outcomes of one group in one transaction."""
        if self._raw is None:
            self._raw = self.engine.raw_connection()
        dbapi = self._raw.driver_connection
        try:
            cursor = dbapi.cursor()
            if self.sqlite:
                # The connection runs in autocommit mode (see db.py): open the transaction,
                # as a write from the start, like every writing transaction on SQLite.
                cursor.execute("BEGIN IMMEDIATE")
            elif not self.wait_for_disk:
                # The outcome is committed and visible at once; PostgreSQL writes it to
                # disk within 3 × wal_writer_delay. Waiting for that disk write on every
                # group put a disk flush in every connection's path from one message to
                # the next: 260 instead of 875 messages/s on a busy database server.
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
            for kind, rows in groups.items():
                if not rows:
                    continue
                sql, order, constants = self._prepared[kind]
                if order is None:
                    params: list[Any] = [
                        {**constants, **{k: self._value(v) for k, v in row.items()}} for row in rows
                    ]
                else:
                    params = [
                        tuple(self._value(row[k]) if k in row else constants[k] for k in order)
                        for row in rows
                    ]
                cursor.executemany(sql, params)
            dbapi.commit()
            cursor.close()
        except Exception as exc:
            self.close(broken=True)
            raise LedgerWriteError(str(exc)) from exc

    def close(self, *, broken: bool = False) -> None:
        """Give the connection back to the pool, or throw it away after an error."""
        if self._raw is None:
            return
        raw, self._raw = self._raw, None
        try:
            if broken:
                raw.invalidate()
            else:
                raw.close()
        except Exception:  # closing a broken connection may fail too; it is gone anyway
            log.debug("closing the outcome writer's connection failed", exc_info=True)


def record_hard_bounce(
    session: Session,
    suppression_key: str,
    *,
    campaign_id: int,
    delivery_id: int,
    subscriber_id: int,
    email: str,
    response: str,
) -> None:
    """Never mail this address again: suppress it, mark the subscriber, keep the event."""

    suppress(session, suppression_key, email, "hard_bounce")
    session.execute(
        update(S).where(S.c.id == subscriber_id).values(status="bounced", updated_at=utcnow())
    )
    session.execute(
        insert(cast(Table, Event.__table__)).values(
            delivery_id=delivery_id,
            subscriber_id=subscriber_id,
            campaign_id=campaign_id,
            type="hard_bounce",
            source="smtp",
            detail={"response": response},
            created_at=utcnow(),
        )
    )


# --- the campaign --------------------------------------------------------------


def campaign_state(conn: Connection, campaign_id: int) -> tuple[str, str] | None:
    """(status, note): read every second by a sending worker, so one indexed row."""
    row = conn.execute(
        select(C.c.status, C.c.status_note).where(C.c.id == campaign_id)
    ).one_or_none()
    return (row[0], row[1]) if row else None


def sending_campaigns(conn: Connection, campaign_id: int | None = None) -> list[int]:
    """Campaigns a worker should send, oldest start first."""
    query = select(C.c.id).where(C.c.status == "sending").order_by(C.c.started_at, C.c.id)
    if campaign_id is not None:
        query = query.where(C.c.id == campaign_id)
    return list(conn.execute(query).scalars())


class StillOpen(Exception):
    """Raised inside `finish` to undo the status change: some delivery is not final yet."""


def finish(session: Session, campaign_id: int) -> bool:
    """sending → sent, if and only if every delivery is final.

    Returns False when the campaign was not sending; raises StillOpen (the caller's
    transaction must then roll back) when some delivery is not final. The status
    change comes first and the check second, in one transaction: written the
    other way round, SQLite would have to turn a read transaction into a write
    one, which fails at once when another process wrote meanwhile. A row never
    leaves a final state, so once none is open none will be.
    """
    if not lifecycle.try_apply(
        session, campaign_id, "finish", WORKER, finished_at=utcnow(), note=""
    ):
        return False
    if open_count(session.connection(), campaign_id):
        raise StillOpen(campaign_id)
    return True


def cancel_open(conn: Connection, campaign_id: int, now: datetime, dead: Sequence[str]) -> int:
    """Cancel every delivery not yet sent and not held by a live worker.

    Live workers see the campaign's status within a second and release their own
    claims as cancelled (see `release`).
    """
    stale = D.c.lease_until < now
    if dead:
        stale = or_(stale, D.c.claimed_by.in_(list(dead)))
    movable = or_(D.c.status.in_(("pending", "retry")), (D.c.status == "sending") & stale)
    result = conn.execute(
        update(D)
        .where(D.c.campaign_id == campaign_id, movable)
        .values(status="cancelled", claimed_by=None, lease_until=None, next_attempt_at=None)
    )
    return db.rows_changed(result)


# --- reading progress ----------------------------------------------------------


def counts(conn: Connection, campaign_id: int) -> dict[str, int]:
    """Deliveries by status: one pass over the campaign's range of the claim index."""
    rows = conn.execute(
        select(D.c.status, func.count()).where(D.c.campaign_id == campaign_id).group_by(D.c.status)
    )
    return {status: number for status, number in rows}


def open_count(conn: Connection, campaign_id: int) -> int:
    return (
        conn.scalar(
            select(func.count()).where(
                D.c.campaign_id == campaign_id, D.c.status.in_(OPEN_STATUSES)
            )
        )
        or 0
    )


def next_retry_at(conn: Connection, campaign_id: int) -> datetime | None:
    """When the earliest waiting retry is due (an index range, min at its start)."""
    return conn.scalar(
        select(func.min(D.c.next_attempt_at)).where(
            D.c.campaign_id == campaign_id, D.c.status == "retry"
        )
    )


def sent_since(conn: Connection, campaign_id: int, since: datetime) -> int:
    return (
        conn.scalar(
            select(func.count()).where(
                D.c.campaign_id == campaign_id, D.c.status == "sent", D.c.sent_at >= since
            )
        )
        or 0
    )


def sent_through_transport(
    conn: Connection, transport: str, *, is_default: bool, since: datetime
) -> list[datetime]:
    """When each message that went through a transport since `since` was sent.

    Read once when a sender starts, and only for a transport with an hourly
    limit: a restarted process must not start a fresh hour. A campaign names its
    transport, or none for the default one. Bounded by the hourly limit itself
    (times several workers at most), however large the ledger.
    """
    uses = C.c.transport == transport
    if is_default:
        uses = or_(uses, C.c.transport == "")
    return list(
        conn.execute(
            select(D.c.sent_at)
            .join(C, C.c.id == D.c.campaign_id)
            .where(D.c.status == "sent", D.c.sent_at >= since, uses)
        ).scalars()
    )


def last_sent_at(conn: Connection, campaign_id: int) -> datetime | None:
    return conn.scalar(
        select(func.max(D.c.sent_at)).where(D.c.campaign_id == campaign_id, D.c.status == "sent")
    )


class DeliveryRow(NamedTuple):
    """One recipient's row of a campaign's ledger, as `deliveries` reads it."""

    id: int
    subscriber_id: int
    address: str
    status: str
    attempts: int
    last_response: str
    sent_at: datetime | None
    next_attempt_at: datetime | None
    message_id: str | None


def deliveries(
    conn: Connection,
    campaign_id: int,
    statuses: Sequence[str] | None = None,
    *,
    or_ids: Sequence[int] = (),
    after_subscriber: int | None = None,
    limit: int | None = None,
) -> list[DeliveryRow]:
    """Who got it and who did not: a campaign's deliveries in subscriber order, after
    `after_subscriber`, at most `limit` of them. The one listing query: the CLI reads it
    whole, the console a page at a time, its CSV export page after page.

    Ordered by subscriber so that the unique (campaign_id, subscriber_id) index
    both finds and orders the rows: a page costs the same at any depth of a
    million-row ledger, where ordering by delivery id sorts the whole campaign
    first (most of a second on SQLite). With `statuses`, the claim index finds
    them and only those are sorted; `or_ids` adds deliveries of other statuses
    by id (sent ones that bounced later).
    """
    query = (
        select(
            D.c.id,
            D.c.subscriber_id,
            S.c.email.label("address"),
            D.c.status,
            D.c.attempts,
            D.c.last_response,
            D.c.sent_at,
            D.c.next_attempt_at,
            D.c.message_id,
        )
        .join(S, S.c.id == D.c.subscriber_id)
        .where(D.c.campaign_id == campaign_id)
        .order_by(D.c.subscriber_id)
    )
    if statuses and or_ids:
        query = query.where(or_(D.c.status.in_(list(statuses)), D.c.id.in_(list(or_ids))))
    elif statuses:
        query = query.where(D.c.status.in_(list(statuses)))
    if after_subscriber is not None:
        # The same bound on the subscribers' side lets PostgreSQL's merge join start its
        # walk of their primary key there, not at the first subscriber.
        query = query.where(D.c.subscriber_id > after_subscriber, S.c.id > after_subscriber)
    if limit:
        query = query.limit(limit)
    return [DeliveryRow(*row) for row in conn.execute(query)]


def later(now: datetime, seconds: float) -> datetime:
    return now + timedelta(seconds=seconds)
