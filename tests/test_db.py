"""The database: migrations on first use, SQLite settings, the schema head."""

from __future__ import annotations

from sqlalchemy import inspect, text

from newsletter import db
from newsletter.models import Base


def test_schema_head_constant_is_the_newest_migration(app) -> None:
    assert db.head_revision(app.engine) == db.SCHEMA_HEAD


def test_a_new_database_is_upgraded_on_first_use(app) -> None:
    tables = set(inspect(app.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert db.current_revision(app.engine) == db.SCHEMA_HEAD


def test_upgrade_twice_changes_nothing(app) -> None:
    app.engine  # noqa: B018 - opens and upgrades
    before, after = db.upgrade(app.engine)
    assert before == after == db.SCHEMA_HEAD


def test_sqlite_runs_in_wal_mode_with_foreign_keys(make_app, database_url) -> None:
    app = make_app()
    if app.engine.dialect.name != "sqlite":
        return
    with app.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_generated_signing_key_is_kept_and_shared(make_app) -> None:
    first = make_app(env={"NEWSLETTER_SECRET_KEY": ""})
    second = make_app(env={"NEWSLETTER_SECRET_KEY": ""})
    assert len(first.signing_key) >= 32
    assert first.signing_key == second.signing_key
    assert make_app().signing_key == "test-signing-key"


def test_migrations_create_exactly_what_the_models_declare(app) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with app.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
