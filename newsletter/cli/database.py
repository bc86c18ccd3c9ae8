"""`newsletter db …`: the schema."""

from __future__ import annotations

import click

from newsletter import db
from newsletter.cli.context import AppContext, pass_context


@click.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@pass_context
def upgrade(ctx: AppContext) -> None:
    """Bring the database to the newest schema (done on first use anyway).

    Example: newsletter db upgrade
    """
    engine = db.make_engine(ctx.app.config.database.url)
    try:
        before, after = db.upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        click.echo(f"Database is up to date (revision {after}).")
    else:
        click.echo(f"Database upgraded from {before or 'empty'} to {after}.")
