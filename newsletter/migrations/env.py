"""Alembic environment: runs with the engine the program hands it, never a URL in a file."""

from alembic import context

from newsletter.db import lock_for_migration
from newsletter.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        lock_for_migration(connection)
        context.run_migrations()
