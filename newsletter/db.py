"""The database: engines, sessions and migrations.

SQLite is the embedded default (a file in the working folder, WAL so that
readers never block the sender, foreign keys on, a busy timeout so that two
processes wait for each other instead of failing). PostgreSQL is for
production and for several workers on several hosts.

Several processes share one SQLite file (a send, the pages, the CLI), and
SQLite has one writer at a time. A transaction that starts as a read
(a plain, deferred BEGIN) and then writes must upgrade its lock; when another
process committed in between, SQLite refuses the upgrade at once with
"database is locked", without waiting for the busy timeout (waiting could not
help: the transaction's snapshot is already stale). So on SQLite every
transaction begins with BEGIN IMMEDIATE: it takes the write lock first, the
busy timeout really waits for it, and nothing read in it can go stale. Only
work that is known to read and never write asks for a deferred BEGIN
(`read_only`), so that pages and status reports never queue behind a send.
What still fails after the busy timeout (a writer holding the lock for longer
than that) is retried as a whole by `retrying`, never half-applied.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    CursorResult,
    DateTime,
    Engine,
    Result,
    Table,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    DBAPIError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.orm import Session, sessionmaker

from newsletter.errors import ConfigError, OperationFailed
from newsletter.models.base import UTCDateTime

log = logging.getLogger(__name__)
T = TypeVar("T")

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision. Checking it with one SELECT keeps Alembic (slow to
# import) out of every command's start-up; tests/test_db.py checks it is still the head.
SCHEMA_HEAD = "0012_transport_hours"
# Any 64-bit number; it keeps two processes from migrating one PostgreSQL at once.
MIGRATION_LOCK_ID = 7_011_942_019
# The execution option that says how an SQLite transaction begins (see the docstring).
SQLITE_BEGIN = "sqlite_begin"
# SQLite errors that another try may not meet: contention, a file briefly unreachable.
_SQLITE_TRANSIENT = re.compile(r"locked|busy|unable to open|disk I/O", re.IGNORECASE)
# How long an SQLite connection waits for another process's write lock, in seconds.
BUSY_TIMEOUT_SECONDS = 30


def normalise_url(url: str) -> str:
    """Accept postgresql:// and postgres:// and use psycopg 3 for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def make_engine(url: str, *, where: str = "database.url") -> Engine:
    url = normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"{where}: not a database URL: {url!r}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            folder = Path(database).expanduser().resolve().parent
            if not folder.is_dir():
                raise ConfigError(f"{where}: folder {folder} does not exist")
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN (SQLAlchemy's documented
        # recipe: isolation_level=None on connect, then emit BEGIN ourselves), so that
        # every transaction is a real one and begins as the docstring says.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True)
    raise ConfigError(f"{where}: unsupported database {backend!r}; use sqlite or postgresql")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself (see the "begin" listener above).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
    conn.exec_driver_sql("BEGIN DEFERRED" if mode == "DEFERRED" else "BEGIN IMMEDIATE")


def read_only(engine: Engine) -> Engine:
    """The same engine, for work that only reads: on SQLite its transactions are deferred,
    so that they never wait for a writer (WAL readers see the last commit). A write in
    such a transaction may fail at once under contention: use it for reads only."""
    return engine.execution_options(**{SQLITE_BEGIN: "DEFERRED"})


def is_transient(exc: BaseException) -> bool:
    """Whether a database error may go away when the whole transaction is tried again:
    a lock held too long, a deadlock or serialization failure, a dropped connection."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError):
        return False
    if type(exc.orig).__module__.startswith("sqlite3"):
        # SQLite files its mistakes ("no such table", a syntax error) under the same
        # class as its contention; only the latter passes.
        return bool(_SQLITE_TRANSIENT.search(str(exc.orig)))
    return True


def retrying(
    work: Callable[[], T],
    *,
    attempts: int = 3,
    first_wait: float = 0.2,
    what: str = "a database transaction",
) -> T:
    """Run `work` (one whole transaction) again after a transient database error.

    The work must be a complete transaction that commits or rolls back as a
    whole, so that running it again cannot apply half of it twice. The last
    error is raised when every attempt failed.
    """
    for attempt in range(attempts):
        try:
            return work()
        except DBAPIError as exc:
            if not is_transient(exc) or attempt == attempts - 1:
                raise
            log.warning("%s failed (%s); trying again", what, type(exc.orig).__name__)
            time.sleep(first_wait * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Bring the schema to the newest migration; returns (before, after)."""
    try:
        before = current_revision(engine)
        head = head_revision(engine)
        if before != head:
            from alembic import command

            command.upgrade(alembic_config(engine), "head")
        return before, head
    except OperationalError as exc:
        raise OperationFailed(f"cannot open the database: {exc.orig}") from None


def ensure_schema(engine: Engine) -> None:
    """Upgrade a new or old database on first use, cheaply when it is current."""
    try:
        with read_only(engine).connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError):
        version = None  # a new, empty database
    except DatabaseError as exc:
        # SQLite opened a file that is not a database (a config file, a CSV…).
        name = engine.url.database or engine.url.render_as_string(hide_password=True)
        raise ConfigError(f"database.url: {name} is not a database ({exc.orig})") from None
    if version != SCHEMA_HEAD:
        upgrade(engine)


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def lock_for_migration(connection: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})


class BulkInsert:
    """A plain INSERT of many rows, run with executemany on the DBAPI cursor.

    For bulk writes (an import's thousands of rows a second) SQLAlchemy's work
    per row (bind processors for every datetime and JSON value, parameter
    dictionaries) costs more than the database's: twice the CPU of the whole
    write on SQLite. The SQL still comes from SQLAlchemy, compiled once for the
    connection's database; the conversions the column types would make (aware
    datetimes to naive UTC, or to SQLite's text form; dicts and lists to JSON)
    are done here, in `driver_value`. Runs in the connection's transaction.
    """

    def __init__(self, conn: Connection, table: Table, columns: Sequence[str]) -> None:
        statement = insert(table).values({name: bindparam(name) for name in columns})
        compiled = statement.compile(dialect=conn.dialect)
        self.sql = compiled.string
        self.sqlite = conn.dialect.name == "sqlite"
        # Positional parameters (SQLite's "?") in the statement's order; named otherwise.
        self.order = tuple(compiled.positiontup or ()) if compiled.positional else None
        names = self.order or tuple(columns)
        self.copy_sql = ""
        if conn.dialect.name == "postgresql":
            quote = conn.dialect.identifier_preparer.quote
            self.copy_sql = (
                f"COPY {quote(table.name)} ({', '.join(quote(name) for name in names)}) FROM STDIN"
            )
        self._get = itemgetter(*names)
        self._names = names
        # Only datetime and JSON columns need converting: found once, from the types.
        self._convert = [
            position
            for position, name in enumerate(names)
            if isinstance(table.c[name].type, DateTime | UTCDateTime | JSON)
        ]

    def run(self, conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
        sqlite, get, convert = self.sqlite, self._get, self._convert
        # Every row of a batch carries the same few datetimes (now): convert each once.
        seen: dict[Any, Any] = {}
        params: list[Any] = []
        for row in rows:
            values = list(get(row)) if len(self._names) > 1 else [get(row)]
            for position in convert:
                value = values[position]
                if value is None:
                    continue
                if isinstance(value, datetime):
                    done = seen.get(value)
                    if done is None:
                        done = seen[value] = driver_value(value, sqlite)
                    values[position] = done
                else:
                    values[position] = driver_value(value, sqlite)
            if self.order is None and not self.copy_sql:
                params.append(dict(zip(self._names, values, strict=True)))
            else:
                params.append(values)
        if not params:
            return
        dbapi_error = conn.dialect.loaded_dbapi.Error
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            if self.copy_sql:
                # PostgreSQL: COPY takes the rows in one stream, at a fraction of the
                # cost of an executemany's statement per row (same constraints checked).
                with cursor.copy(self.copy_sql) as copy:
                    for values in params:
                        copy.write_row(values)
            else:
                cursor.executemany(self.sql, params)
        except dbapi_error as exc:
            # As SQLAlchemy would raise it (IntegrityError, OperationalError, …).
            raise DBAPIError.instance(self.sql, None, exc, dbapi_error) from exc
        finally:
            cursor.close()


def among(column: ColumnElement[Any], values: Sequence[str], dialect: str) -> ColumnElement[bool]:
    """`column IN values` for thousands of values, sent as one parameter.

    An ordinary IN list renders a placeholder per value at every execution: for
    an import's batches of thousands of addresses that cost more than the
    database's lookups (on PostgreSQL a cast per placeholder, and psycopg parses
    the long statement again each time). With the values as one array
    (PostgreSQL: `= ANY(%s)`) or one JSON text (SQLite: `IN (SELECT value FROM
    json_each(?))`) the statement is the same for every batch, compiled once;
    both still look each value up in the column's index.
    """
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type), unique=True))
    listed = func.json_each(bindparam(None, json.dumps(list(values)), unique=True))
    return column.in_(select(literal_column("value")).select_from(listed))


def driver_value(value: Any, sqlite: bool) -> Any:
    """A value as the database driver takes it for our column types (see models/base.py)."""
    if isinstance(value, datetime):
        naive = value.astimezone(UTC).replace(tzinfo=None)
        # SQLite keeps datetimes as text in SQLAlchemy's format; psycopg takes them as is.
        return f"{naive:%Y-%m-%d %H:%M:%S.%f}" if sqlite else naive
    if isinstance(value, dict | list):
        # JSON on SQLite, JSONB on PostgreSQL: both take the text (psycopg sends a str
        # untyped, and PostgreSQL casts it to the column's type).
        return json.dumps(value)
    return value


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE, DELETE or INSERT changed.

    `Session.execute` is typed as returning a plain `Result`; for those statements it is
    a `CursorResult`, which has the count.
    """
    return cast(CursorResult[Any], result).rowcount
