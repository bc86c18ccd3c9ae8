"""The database: engines, sessions and migrations.

SQLite is the embedded default (a file in the working folder, WAL so that
readers never block the sender, foreign keys on, a busy timeout so that two
processes wait for each other instead of failing). PostgreSQL is for
production and for several workers on several hosts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from newsletter.errors import ConfigError, OperationFailed

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration's revision. Checking it with one SELECT keeps Alembic (slow to
# import) out of every command's start-up; tests/test_db.py checks it is still the head.
SCHEMA_HEAD = "0006_languages"
# Any 64-bit number; it keeps two processes from migrating one PostgreSQL at once.
MIGRATION_LOCK_ID = 7_011_942_019


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
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take control so that
        # a conditional UPDATE and its SELECT happen in one real transaction.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    if backend == "postgresql":
        return create_engine(url, pool_pre_ping=True)
    raise ConfigError(f"{where}: unsupported database {backend!r}; use sqlite or postgresql")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself (see the "begin" listener above).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


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
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError):
        version = None  # a new, empty database
    if version != SCHEMA_HEAD:
        upgrade(engine)


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def lock_for_migration(connection: Any) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})


def rows_changed(result: Result[Any]) -> int:
    """How many rows an UPDATE, DELETE or INSERT changed.

    `Session.execute` is typed as returning a plain `Result`; for those statements it is
    a `CursorResult`, which has the count.
    """
    return cast(CursorResult[Any], result).rowcount
