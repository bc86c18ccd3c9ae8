"""The one object that holds a running program's state.

The CLI, the web app and the scheduler each build one `Newsletter` from the
config and hand it to the service functions; nothing reads global state.
Nothing happens when it is built: the database is opened (and upgraded) on
first use.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from newsletter import db
from newsletter.config import Config, load_config
from newsletter.models import Meta

# The bundled data: inside the package when installed from a wheel, at the top
# of the repository when running from a checkout or an editable install.
_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def bundled_path(name: str) -> Path:
    """The bundled `templates` or `subscribers` folder, wherever the package is installed."""
    for candidate in (_PACKAGE / "_bundled" / name, _CHECKOUT / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"bundled folder {name!r} is missing from the installation")


class Newsletter:
    def __init__(self, config: Config, *, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = dict(os.environ) if env is None else env
        self._stored_signing_key = ""

    @classmethod
    def from_config_file(cls, path: str | None = None) -> Newsletter:
        return cls(load_config(path))

    @cached_property
    def engine(self) -> Engine:
        engine = db.make_engine(self.config.database.url)
        db.ensure_schema(engine)
        # The generated signing key is written now, on first use of the database, and
        # never later: written lazily from inside another write transaction, it would
        # wait on that transaction's own lock (SQLite allows one writer).
        if not self.env.get(self.config.web.secret_key_env):
            self._stored_signing_key = _stored_secret(engine, "signing_key")
        return engine

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return db.make_sessionmaker(self.engine)

    @cached_property
    def read_engine(self) -> Engine:
        """The engine for work that only reads (status, reports, public pages)."""
        return db.read_only(self.engine)

    @cached_property
    def read_sessions(self) -> sessionmaker[Session]:
        return db.make_sessionmaker(self.read_engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose work is committed on success and rolled back on any error.

        On SQLite it begins as a write (BEGIN IMMEDIATE, see newsletter.db), so that
        it waits for another process's write instead of failing half-way.
        """
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for work that only reads: it never waits for a writer on SQLite."""
        with self.read_sessions() as session, session.begin():
            yield session

    @cached_property
    def signing_key(self) -> str:
        """The key that signs links: from the environment, else generated once and kept."""
        name = self.config.web.secret_key_env
        if self.env.get(name):
            return self.env[name]
        self.engine  # noqa: B018 - opening the database loads (or creates) the stored key
        return self._stored_signing_key

    @cached_property
    def suppression_key(self) -> str:
        name = self.config.privacy.suppression_key_env
        return self.env.get(name) or self.signing_key

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()


def _stored_secret(engine: Engine, key: str) -> str:
    """A random secret kept in the `meta` table, created by whichever process asks first."""
    sessions = db.make_sessionmaker(engine)
    with sessions() as session:
        row = session.get(Meta, key)
        if row is not None:
            return row.value
    value = secrets.token_urlsafe(32)
    try:
        with sessions() as session, session.begin():
            session.add(Meta(key=key, value=value))
    except IntegrityError:
        # Another process stored one first; use theirs so that links agree.
        with sessions() as session:
            return session.get_one(Meta, key).value
    return value
