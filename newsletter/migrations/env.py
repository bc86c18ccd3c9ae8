"""Alembic environment: runs with the engine the program hands it, never a URL in a file."""

from alembic import context

from newsletter.db import lock_for_migration
from newsletter.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode rebuilds a table on SQLite (copy, drop, rename); with foreign keys
        # on, dropping the old table would cascade and delete every row that refers to
        # it (a campaign's items, its deliveries). The pragma only takes effect outside
        # a transaction, so it is set on the driver's connection before one begins.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    try:
        with context.begin_transaction():
            lock_for_migration(connection)
            context.run_migrations()
    finally:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
