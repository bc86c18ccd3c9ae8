"""Shared fixtures.

Every test that touches the database takes `app`, which runs once on a real
SQLite file and once on PostgreSQL when NEWSLETTER_TEST_DATABASE_URL is set
(each PostgreSQL test gets a schema of its own, dropped afterwards).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from newsletter.app import Newsletter
from newsletter.config import build_config
from newsletter.db import normalise_url

PG_URL = os.environ.get("NEWSLETTER_TEST_DATABASE_URL", "")


def _pg_schema_url(schema: str) -> str:
    url = normalise_url(PG_URL)
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'newsletter.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL: NEWSLETTER_TEST_DATABASE_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def make_app(database_url: str, tmp_path: Path):
    """Build a Newsletter on the test database with config overrides (a TOML-shaped dict)."""
    apps: list[Newsletter] = []

    def factory(data: dict | None = None, env: dict[str, str] | None = None) -> Newsletter:
        data = dict(data or {})
        data.setdefault("database", {})["url"] = database_url
        data.setdefault("transports", {}).setdefault(
            "outbox", {"dsn": f"maildir:{tmp_path / 'outbox'}"}
        )
        env = {"NEWSLETTER_SECRET_KEY": "test-signing-key", **(env or {})}
        app = Newsletter(build_config(data, env, base_dir=tmp_path), env=env)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.close()


@pytest.fixture
def app(make_app) -> Newsletter:
    return make_app()


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for running the installed `newsletter` command against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_DATABASE_URL=database_url,
        NEWSLETTER_TRANSPORT=f"maildir:{tmp_path / 'outbox'}",
        NEWSLETTER_SECRET_KEY="test-signing-key",
        NEWSLETTER_BASE_URL="https://news.example.org",
    )
    return env


def newsletter_command() -> list[str]:
    """The installed console script, else `python -m newsletter` from this interpreter."""
    script = shutil.which("newsletter", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "newsletter"]


@pytest.fixture
def run_cli(cli_env: dict[str, str], tmp_path: Path):
    """Run the real command as a subprocess in a scratch folder; returns CompletedProcess."""

    def run(
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        input: str | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*newsletter_command(), *args],
            cwd=cwd or tmp_path,
            env={**cli_env, **(env or {})},
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def make_campaign():
    """Build a campaign straight from the models; returns its id.

    `items` are dicts of Item columns (kind, title, summary, link, … ; sensible
    defaults for the rest), in campaign order; `subscribers` are (email, name)
    pairs made confirmed members of one list that the campaign goes to.
    """
    from datetime import date

    from newsletter.models import (
        Campaign,
        CampaignItem,
        Item,
        MailingList,
        Subscriber,
        Subscription,
    )

    def factory(
        app: Newsletter,
        *,
        kind: str = "bulletin",
        items: list[dict] | None = None,
        subscribers: tuple[tuple[str, str], ...] | list[tuple[str, str]] = (),
        subject: str = "Example Network bulletin — June 2019",
        intro: str = "Welcome to the June bulletin.",
        preheader: str = "",
        language: str = "en",
        month: str = "2019-06",
    ) -> int:
        if items is None:
            items = [{"kind": "report", "title": "A community report"}]
        with app.session() as session:
            campaign = Campaign(
                kind=kind,
                month=month if kind == "bulletin" else "",
                subject=subject,
                intro=intro,
                preheader=preheader,
                language=language,
            )
            for position, fields in enumerate(items):
                values = {
                    "source": "tests",
                    "source_id": uuid.uuid4().hex,
                    "date": date(2019, 6, position % 28 + 1),
                    "summary": "A summary.",
                    "language": language,
                    **fields,
                }
                campaign.entries.append(CampaignItem(item=Item(**values), position=position))
            if subscribers:
                mailing_list = MailingList(name=f"list-{uuid.uuid4().hex[:8]}", title="Members")
                campaign.lists = [mailing_list]
                for email, name in subscribers:
                    subscriber = Subscriber(
                        email=email, email_key=email.casefold(), name=name, language=language
                    )
                    session.add(
                        Subscription(
                            subscriber=subscriber, mailing_list=mailing_list, status="confirmed"
                        )
                    )
            session.add(campaign)
            session.flush()
            return campaign.id

    return factory


def wait_for(
    check: Callable[[], Any], timeout: float = 20.0, what: str = "", *, every: float = 0.01
) -> Any:
    """Poll `check` until it returns something true, and return that; fail after `timeout`
    seconds, saying what was awaited. The one polling helper of the suite."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(every)
