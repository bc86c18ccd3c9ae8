"""The deliveries ledger's queries, all in one place, each with why it is shaped so.

The ledger is one row per recipient of a campaign. A row moves:

    pending ──claim──► sending ──outcome──► sent | failed
       ▲                  │  └──outcome──► retry ──(due)──claim──► sending …
       └────release───────┘  (a worker stopped, died, or let its lease lapse)

and pending/retry rows become `cancelled` when the campaign is cancelled.
`sent`, `failed` and `cancelled` are final: a row never leaves them, which is
what lets a restart skip everyone already done.

Set-based work (writing the ledger, claiming a batch, releasing claims) is one
statement per source state; per-delivery outcomes are UPDATEs by primary key,
a group of them per transaction: `executemany` on SQLite, one statement over
arrays on PostgreSQL (RECORD_OUTCOME_GROUP). Nothing here builds ORM objects per
delivery: a million of them would cost more than the sending.

Every statement here that moves rows between states also moves the campaign's
counters (dispatch/counters.py) by its row count, in the same transaction. That
is why a statement that could move rows out of several states is split into one
per source state: its row count then says exactly what moved where.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Table,
    bindparam,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import BindParameter

from newsletter import db, lifecycle
from newsletter.actors import WORKER
from newsletter.audience.resolve import recipients_query
from newsletter.audience.suppression import suppress
from newsletter.dispatch import counters
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
    added = db.rows_changed(session.execute(statement.execution_options(preserve_rowcount=True)))
    counters.ensure(session.connection(), campaign.id)
    counters.move(session.connection(), campaign.id, {"pending": added})
    return added


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
    moved: dict[str, int] = {}
    for state, due in (("retry", retry_due), ("pending", pending)):
        room = limit - len(ids)
        if room <= 0:
            break
        picked = select(D.c.id).where(D.c.campaign_id == campaign_id, due).limit(room)
        if postgres:
            chosen = picked.with_for_update(skip_locked=True).cte("picked")
            statement = update(D).where(D.c.id == chosen.c.id).values(**values)
        else:
            statement = update(D).where(D.c.id.in_(picked.scalar_subquery()), due).values(**values)
        taken = list(conn.execute(statement.returning(D.c.id)).scalars())
        moved[state] = -len(taken)
        ids.extend(taken)
    if not ids:
        return []
    counters.move(conn, campaign_id, {**moved, "sending": len(ids)}, now=now)
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


def _unclaim(conn: Connection, campaign_id: int, which: Any) -> int:
    """Give back the claims `which` picks among the campaign's 'sending' rows; returns how many.

    A released row goes back to where it came from, retry rows keeping their due
    time: one UPDATE per destination, so each one's row count moves the counters.
    """
    moved: dict[str, int] = {}
    for state, came_from in (
        ("pending", D.c.next_attempt_at.is_(None)),
        ("retry", D.c.next_attempt_at.is_not(None)),
    ):
        moved[state] = _update_unlocked(
            conn,
            (D.c.campaign_id == campaign_id) & (D.c.status == "sending") & which & came_from,
            {"status": state, "claimed_by": None, "lease_until": None},
        )
    freed = sum(moved.values())
    counters.move(conn, campaign_id, {**moved, "sending": -freed})
    return freed


def reclaim(conn: Connection, campaign_id: int, now: datetime, dead: Sequence[str]) -> int:
    """Free the claims of dead workers and of lapsed leases; returns the rows freed.

    A conditional UPDATE (status still 'sending', and the lease lapsed or the
    holder dead), so that a live worker that records its outcome at the same
    moment wins or loses cleanly: exactly one of the two statements changes the row.
    """
    stale = D.c.lease_until < now
    if dead:
        stale = or_(stale, D.c.claimed_by.in_(list(dead)))
    return _unclaim(conn, campaign_id, stale)


def _update_unlocked(conn: Connection, where: Any, values: dict[str, Any]) -> int:
    """UPDATE the deliveries `where` picks, leaving alone rows another transaction holds.

    For the statements that sweep many 'sending' rows (renewing a lease, taking
    over lapsed ones) while the recorder may be writing outcomes to some of them:
    on PostgreSQL both would lock rows one by one in different orders and could
    deadlock (a 200,000-recipient send died of it, renewing its lease). A row
    being recorded right now is leaving 'sending' anyway: skipping it loses
    nothing. The rows are locked in a CTE, evaluated once (see `claim`). On
    SQLite one writer holds the whole database, so nothing is ever skipped.
    """
    if conn.dialect.name == "postgresql":
        picked = select(D.c.id).where(where).with_for_update(skip_locked=True).cte("picked")
        return db.rows_changed(conn.execute(update(D).where(D.c.id == picked.c.id).values(values)))
    return db.rows_changed(conn.execute(update(D).where(where).values(values)))


def renew_lease(conn: Connection, campaign_id: int, worker_id: str, lease_until: datetime) -> int:
    """Keep our claims while a slow send (a low rate) works through them."""
    ours = (D.c.campaign_id == campaign_id) & (D.c.claimed_by == worker_id)
    return _update_unlocked(conn, ours & (D.c.status == "sending"), {"lease_until": lease_until})


def release(conn: Connection, campaign_id: int, worker_id: str, *, cancelled: bool) -> int:
    """Give back what a stopping worker claimed and did not send.

    Every outcome has been recorded before this runs, so a row still 'sending'
    under our name was never handed to the transport: releasing it cannot cause
    a duplicate. In a cancelled campaign it becomes 'cancelled' instead.
    """
    ours = D.c.claimed_by == worker_id
    if not cancelled:
        return _unclaim(conn, campaign_id, ours)
    result = conn.execute(
        update(D)
        .where(D.c.campaign_id == campaign_id, ours, D.c.status == "sending")
        .values(status="cancelled", claimed_by=None, lease_until=None)
    )
    changed = db.rows_changed(result)
    counters.move(conn, campaign_id, {"sending": -changed, "cancelled": changed})
    return changed


# --- outcomes ------------------------------------------------------------------

# What recording each kind of outcome sets. A `b_…` parameter is the outcome's
# own value; the rest is the same for every row of the kind.
_RECORDS: dict[str, dict[str, Any]] = {
    "sent": {
        "status": "sent",
        "attempts": D.c.attempts + 1,
        "sent_at": bindparam("b_at"),
        "last_response": bindparam("b_response"),
        "message_id": bindparam("b_message_id"),
        "provider_message_id": bindparam("b_provider_id"),
        "lease_until": None,
        "next_attempt_at": None,
    },
    "retry": {
        "status": "retry",
        "attempts": bindparam("b_attempts"),
        "next_attempt_at": bindparam("b_next"),
        "last_response": bindparam("b_response"),
        "message_id": bindparam("b_message_id"),
        "claimed_by": None,
        "lease_until": None,
    },
    "failed": {
        "status": "failed",
        "attempts": bindparam("b_attempts"),
        "last_response": bindparam("b_response"),
        "message_id": bindparam("b_message_id"),
        "lease_until": None,
        "next_attempt_at": None,
    },
}

# Each outcome's UPDATE is by primary key and conditional on the row still being
# ours: if our lease lapsed and another worker took the row, we must not
# overwrite its outcome. The claimed_by column is kept on final rows: it says
# which worker sent the message.
_OURS = (
    (D.c.id == bindparam("b_id"))
    & (D.c.claimed_by == bindparam("b_worker"))
    & (D.c.status == "sending")
)

# One statement per kind of outcome, executed with many parameter sets at once
# (executemany): SQLite's way, where a statement costs no round trip.
RECORD_SENT = update(D).where(_OURS).values(**_RECORDS["sent"])
RECORD_RETRY = update(D).where(_OURS).values(**_RECORDS["retry"])
RECORD_FAILED = update(D).where(_OURS).values(**_RECORDS["failed"])


def _array_types(kind: str) -> dict[str, Any]:
    """The outcome values of `kind` by name (`b_<name>` in a row), each with its column's type."""
    given = {"id": D.c.id.type, "worker": D.c.claimed_by.type}
    for column, value in _RECORDS[kind].items():
        if isinstance(value, BindParameter):
            given[value.key.removeprefix("b_")] = D.c[column].type
    return given


def _recorded_from_arrays(kind: str) -> Any:
    """The UPDATE of `kind` for a whole group: each outcome value an array, joined by unnest.

    Parameters are named `<kind>_<name>` for the outcomes' `b_<name>` values, one
    array each, in the rows' order. The same conditions as `_OURS`, row by row.
    """
    given = _array_types(kind)
    rows = (
        func.unnest(*(bindparam(f"{kind}_{name}", type_=ARRAY(t)) for name, t in given.items()))
        .table_valued(*given)
        .render_derived(name=f"{kind}_rows")
    )
    values = {
        column: rows.c[value.key.removeprefix("b_")] if isinstance(value, BindParameter) else value
        for column, value in _RECORDS[kind].items()
    }
    return (
        update(D)
        .where(D.c.id == rows.c.id, D.c.claimed_by == rows.c.worker, D.c.status == "sending")
        .values(**values)
        .returning(D.c.id)
        .cte(f"{kind}_done")
    )


def _record_group() -> Any:
    """A whole group of outcomes and the counters' move in one statement (PostgreSQL).

    Through executemany, a group was four round trips to the server (BEGIN, the
    pipelined UPDATEs, the counters, COMMIT) and psycopg's Python for every row:
    half of a PostgreSQL send's time in the interpreter went to the outcome
    writer. As one statement, run in autocommit (one statement is one
    transaction), it is one round trip whatever the group's size. The counters
    move by the rows each kind's UPDATE changed, as in the executemany form.
    """
    done = {kind: _recorded_from_arrays(kind) for kind in _RECORDS}
    # The rows each kind's UPDATE changed: what the counters move by.
    tally = select(
        *(select(func.count()).select_from(c).scalar_subquery().label(k) for k, c in done.items())
    ).cte("tally")
    moved = counters.record_outcomes(
        tally.c.sent, tally.c.retry, tally.c.failed, bindparam("c_now")
    ).where(tally.c.sent + tally.c.retry + tally.c.failed > 0)
    return moved.add_cte(*done.values(), tally)


RECORD_OUTCOME_GROUP = _record_group()


# PostgreSQL's SQLSTATE for a prepared statement's name already taken.
DUPLICATE_PREPARED_STATEMENT = b"42P05"


class _GroupStatement:
    r"""RECORD_OUTCOME_GROUP prepared on a PostgreSQL connection and run through libpq itself.

    Why not psycopg's `execute`: its Python around each statement (adapting the
    arrays, looking the statement up among the prepared ones, the generators that
    drive libpq) cost 262 µs of CPU a statement on this machine, against 51 µs for
    the same statement through `pgconn.exec_prepared` with its parameters written
    here as text (bench/README.md, "Where a message's time goes"). The values are
    few and simple (integers, text, naive UTC times, NULL), so their text form is
    short to write: an array literal quotes every element and escapes `"` and `\`
    (PostgreSQL's manual, "Array Value Input"). libpq lets go of the interpreter
    while it waits for the server.
    """

    NAME = b"newsletter_record_outcomes"
    _PLACEHOLDER = re.compile(r"%\((\w+)\)s")

    def __init__(self, dialect: Any) -> None:
        compiled = RECORD_OUTCOME_GROUP.compile(dialect=dialect)
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        self.sql = self._PLACEHOLDER.sub(number, compiled.string).replace("%%", "%").encode()
        self.names = names
        slot = {name: position for position, name in enumerate(names)}
        # Every parameter as sent when the group has nothing to say of it: the values
        # fixed in the statement (status='sent', attempts + 1, …), written once (they
        # are ASCII), and an empty array for each outcome value.
        fixed = {k: _text(v) for k, v in compiled.params.items()}
        self.base: list[bytes | None] = [
            b"{}" if name not in fixed else None if (text := fixed[name]) is None else text.encode()
            for name in names
        ]
        # Kind → (an outcome row's key, the position of its array among the parameters).
        self.arrays = {
            kind: [(f"b_{name}", slot[f"{kind}_{name}"]) for name in _array_types(kind)]
            for kind in _RECORDS
        }
        self.slot = slot
        # The client encoding of the connection it is prepared on.
        self.encoding = "utf-8"

    def prepare(self, dbapi: Any) -> None:
        """Prepare the statement on a connection the writer has just taken."""
        from psycopg import pq

        pgconn = dbapi.pgconn
        prepared = pgconn.prepare(self.NAME, self.sql)
        if prepared.error_field(pq.DiagnosticField.SQLSTATE) == DUPLICATE_PREPARED_STATEMENT:
            # Left on this pooled connection by a writer whose `forget` failed.
            self.forget(dbapi)
            prepared = pgconn.prepare(self.NAME, self.sql)
        if prepared.status != pq.ExecStatus.COMMAND_OK:
            raise LedgerWriteError(prepared.get_error_message())
        self.encoding = dbapi.info.encoding

    def run(
        self, dbapi: Any, groups: dict[str, list[dict[str, Any]]], given: dict[str, Any]
    ) -> None:
        """One group's outcomes and the counters' move, on a connection in autocommit."""
        from psycopg import pq

        encoding = self.encoding
        params = self.base.copy()
        for name, value in given.items():
            text = _text(value)
            params[self.slot[name]] = None if text is None else text.encode(encoding)
        for kind, rows in groups.items():
            if rows:
                for key, position in self.arrays[kind]:
                    params[position] = _array([row[key] for row in rows]).encode(encoding)
        result = dbapi.pgconn.exec_prepared(self.NAME, params)
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise LedgerWriteError(result.get_error_message())

    def forget(self, dbapi: Any) -> None:
        """Drop the prepared statement before its connection goes back to the pool."""
        dbapi.pgconn.exec_(b"DEALLOCATE " + self.NAME)


def _text(value: Any) -> str | None:
    """A parameter's text form for PostgreSQL (see _GroupStatement); None is NULL."""
    if value is None:
        return None
    if isinstance(value, datetime):
        # Stored as naive UTC, as SQLAlchemy stores the models' times.
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(sep=" ")
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _array(values: list[Any]) -> str:
    r"""An array literal: every element quoted, with `"` and `\` escaped; NULL for None."""
    elements = []
    for value in values:
        text = _text(value)
        if text is None:
            elements.append("NULL")
        else:
            elements.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(elements) + "}"


class LedgerWriteError(Exception):
    """The database refused a group of outcomes (locked for too long, connection lost)."""


class OutcomeWriter:
    """The outcome UPDATEs above and the counters', compiled once, run on a raw connection.

    This is the hottest path of a send: one transaction per group of outcomes,
    thousands a minute, each moving the campaign's counters by the rows the group
    changed (counters.record_outcomes). Through SQLAlchemy's Connection each
    transaction cost about 270 µs of Python (events, compiled-cache lookups,
    result objects); on the DBAPI cursor, the same SQL costs under 100 µs. On
    SQLite the kinds' UPDATEs go by executemany, then the counters' UPDATE; on
    PostgreSQL the whole group is one statement, RECORD_OUTCOME_GROUP (see
    _GroupStatement). The SQL itself still comes from the Core statements above;
    only the parameter conversion SQLAlchemy would do (aware datetimes to the
    stored form) is done here, in `_value` and `_text`.
    """

    def __init__(self, engine: Engine, campaign_id: int, *, wait_for_disk: bool = False) -> None:
        self.engine = engine
        self.campaign_id = campaign_id
        self.sqlite = engine.dialect.name == "sqlite"
        self.wait_for_disk = wait_for_disk
        self._raw: Any = None
        self._prepared = {
            kind: self._prepare(statement)
            for kind, statement in (
                ("sent", RECORD_SENT),
                ("retry", RECORD_RETRY),
                ("failed", RECORD_FAILED),
                ("counters", counters.RECORD_OUTCOMES),
            )
        }
        self._group = None if self.sqlite else _GroupStatement(engine.dialect)

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

    def _params(self, kind: str, rows: list[dict[str, Any]]) -> list[Any]:
        _, order, constants = self._prepared[kind]
        if order is None:
            return [{**constants, **{k: self._value(v) for k, v in row.items()}} for row in rows]
        return [
            tuple(self._value(row[k]) if k in row else constants[k] for k in order) for row in rows
        ]

    def write(self, groups: dict[str, list[dict[str, Any]]], now: datetime | None = None) -> None:
        """Record the outcomes of one group in one transaction, and count them."""
        fresh = self._raw is None
        if self._raw is None:
            self._raw = self.engine.raw_connection()
        dbapi = self._raw.driver_connection
        stamp = (now or utcnow()).timestamp()
        try:
            if self.sqlite:
                cursor = dbapi.cursor()
                self._write_sqlite(cursor, groups, stamp)
                cursor.close()
            else:
                if fresh:
                    # One statement a group (RECORD_OUTCOME_GROUP), which is its own transaction.
                    dbapi.autocommit = True
                    # Planning the group statement anew for each group took 700 of its
                    # 1,130 µs (bench_outcomes.py); the generic plan, made once, looks
                    # each outcome up by primary key whatever the arrays hold.
                    dbapi.execute("SET plan_cache_mode TO force_generic_plan")
                    assert self._group is not None
                    self._group.prepare(dbapi)
                    if not self.wait_for_disk:
                        # The outcome is committed and visible at once; PostgreSQL writes
                        # it to disk within 3 × wal_writer_delay. Waiting for that disk
                        # write on every group put a disk flush in every connection's path
                        # from one message to the next: 260 instead of 875 messages/s on a
                        # busy database server. Set once for this connection, which only
                        # this writer uses until `close` resets it.
                        dbapi.execute("SET synchronous_commit TO OFF")
                assert self._group is not None
                self._group.run(dbapi, groups, {"c_id": self.campaign_id, "c_now": stamp})
        except Exception as exc:
            self.close(broken=True)
            raise LedgerWriteError(str(exc)) from exc

    def _write_sqlite(
        self, cursor: Any, groups: dict[str, list[dict[str, Any]]], now: float
    ) -> None:
        # The connection runs in autocommit mode (see db.py): open the transaction, as a
        # write from the start, like every writing transaction on SQLite.
        cursor.execute("BEGIN IMMEDIATE")
        changed = {"sent": 0, "retry": 0, "failed": 0}
        for kind, rows in groups.items():
            if not rows:
                continue
            cursor.executemany(self._prepared[kind][0], self._params(kind, rows))
            # The driver adds up the rows changed by every parameter set. A row another
            # worker took over (our lease lapsed) is not changed, nor counted.
            changed[kind] = max(cursor.rowcount, 0)
        if any(changed.values()):
            move = {
                "c_id": self.campaign_id,
                "c_now": now,
                **{f"c_{kind}": number for kind, number in changed.items()},
            }
            cursor.execute(self._prepared["counters"][0], self._params("counters", [move])[0])
        cursor.connection.commit()

    def close(self, *, broken: bool = False) -> None:
        """Give the connection back to the pool, or throw it away after an error."""
        if self._raw is None:
            return
        raw, self._raw = self._raw, None
        try:
            if broken:
                raw.invalidate()
                return
            if not self.sqlite:
                # Back to the pool as it came: others' transactions wait for the disk, are
                # planned as PostgreSQL chooses, and are transactions.
                dbapi = raw.driver_connection
                assert self._group is not None
                self._group.forget(dbapi)
                if not self.wait_for_disk:
                    dbapi.execute("RESET synchronous_commit")
                dbapi.execute("RESET plan_cache_mode")
                dbapi.autocommit = False
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
    moved: dict[str, int] = {}
    for state, which in (
        ("pending", D.c.status == "pending"),
        ("retry", D.c.status == "retry"),
        ("sending", (D.c.status == "sending") & stale),
    ):
        result = conn.execute(
            update(D)
            .where(D.c.campaign_id == campaign_id, which)
            .values(status="cancelled", claimed_by=None, lease_until=None, next_attempt_at=None)
        )
        moved[state] = -db.rows_changed(result)
    cancelled = -sum(moved.values())
    counters.move(conn, campaign_id, {**moved, "cancelled": cancelled})
    return cancelled


def cancel_waiting(conn: Connection, delivery_ids: Sequence[int], response: str) -> int:
    """Cancel these deliveries if they are still waiting (pending or retry); returns how many.

    For a person who left before their turn came. One UPDATE per source state, each
    returning the campaigns it touched, so that every campaign's counters move.
    """
    if not delivery_ids:
        return 0
    moved: Counter[tuple[int, str]] = Counter()
    for state in ("pending", "retry"):
        touched = conn.execute(
            update(D)
            .where(D.c.id.in_(list(delivery_ids)), D.c.status == state)
            .values(status="cancelled", last_response=response, next_attempt_at=None)
            .returning(D.c.campaign_id)
        ).scalars()
        for campaign_id in touched:
            moved[campaign_id, state] -= 1
            moved[campaign_id, "cancelled"] += 1
    _move_campaigns(conn, moved)
    return sum(n for (_, state), n in moved.items() if state == "cancelled")


def _move_campaigns(conn: Connection, moved: Counter[tuple[int, str]]) -> None:
    """Move several campaigns' counters, in campaign order.

    Last in the transaction and in one order: on PostgreSQL a transaction that
    locked a counters row and then waited for a delivery row, or two that locked
    two campaigns' rows in opposite orders, could deadlock with a sender.
    """
    by_campaign: dict[int, dict[str, int]] = {}
    for (campaign_id, state), number in moved.items():
        by_campaign.setdefault(campaign_id, {})[state] = number
    for campaign_id in sorted(by_campaign):
        counters.move(conn, campaign_id, by_campaign[campaign_id])


def delete_for_subscriber(conn: Connection, subscriber_id: int) -> int:
    """Delete every delivery of one person (an erasure); returns how many went.

    The deleted rows' campaigns and states come back with them, so that each
    campaign's counters lose exactly what its ledger lost.
    """
    gone = conn.execute(
        delete(D).where(D.c.subscriber_id == subscriber_id).returning(D.c.campaign_id, D.c.status)
    ).all()
    lost: Counter[tuple[int, str]] = Counter()
    for campaign_id, state in gone:
        lost[campaign_id, state] -= 1
    _move_campaigns(conn, lost)
    return len(gone)


# --- reading progress ----------------------------------------------------------


def counts(conn: Connection, campaign_id: int) -> dict[str, int]:
    """Deliveries by status, from the campaign's counters: one row, however large the send."""
    return counters.read(conn, campaign_id).counts


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
    or_ids: Select[int] | None = None,
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
    them and only those are sorted; `or_ids`, a query of delivery ids, adds
    deliveries of other statuses (sent ones that bounced later).
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
    if statuses and or_ids is not None:
        query = query.where(or_(D.c.status.in_(list(statuses)), D.c.id.in_(or_ids)))
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
