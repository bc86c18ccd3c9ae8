"""Helpers shared by the scheduling and service tests (no tests here).

Campaigns are built the way staff build them: items in the database, a list
and its subscribers through the audience functions, `editions.new_bulletin`
and `editions.approve`.
"""

from __future__ import annotations

import logging
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from newsletter import editions
from newsletter.app import Newsletter
from newsletter.audience import add_subscriber, ensure_list
from newsletter.logs import EVENTS_LOGGER, event_fields
from newsletter.models import Delivery, Item


def add_items(app: Newsletter, month: str, count: int = 2) -> None:
    """`count` items dated in `month` ('YYYY-MM')."""
    year, number = (int(part) for part in month.split("-"))
    with app.session() as session:
        for i in range(count):
            session.add(
                Item(
                    source="tests",
                    source_id=uuid.uuid4().hex,
                    kind=("report", "news", "statement")[i % 3],
                    title=f"Item {i + 1} of {month}",
                    date=date(year, number, i % 28 + 1),
                    summary="A summary.",
                )
            )


def add_members(app: Newsletter, count: int, list_name: str = "members") -> list[str]:
    """A list and `count` confirmed subscribers on it; returns their addresses."""
    ensure_list(app, list_name, actor="tester")
    addresses = [f"member{i}@example.org" for i in range(count)]
    for i, address in enumerate(addresses):
        add_subscriber(app, address, list_name, name=f"Member {i}", actor="tester")
    return addresses


def approved_bulletin(
    app: Newsletter, *, month: str = "2019-06", members: int = 3, list_name: str = "members"
) -> int:
    """An approved June bulletin to `members` subscribers of `list_name`."""
    add_items(app, month)
    add_members(app, members, list_name)
    campaign = editions.new_bulletin(app, month, lists=[list_name], actor="tester")
    editions.approve(app, campaign.id, actor="Comms team")
    return int(campaign.id)


def ledger_counts(app: Newsletter, campaign_id: int) -> dict[str, int]:
    with app.session() as session:
        rows = session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.campaign_id == campaign_id)
            .group_by(Delivery.status)
        ).all()
    return {status: number for status, number in rows}


def events(caplog: pytest.LogCaptureFixture, name: str | None = None) -> list[dict[str, Any]]:
    """The events logged so far (see newsletter.logs), optionally of one name."""
    found = [event_fields(r) for r in caplog.records if r.name == EVENTS_LOGGER]
    return [e for e in found if name is None or e["event"] == name]


def capture_events(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=EVENTS_LOGGER)


def maildir_count(folder: Path) -> int:
    """Messages delivered to a maildir outbox."""
    new = folder / "new"
    return len(list(new.iterdir())) if new.is_dir() else 0


def maildir_recipients(folder: Path) -> list[str]:
    """The To: address of every message in a maildir outbox."""
    from email import message_from_bytes
    from email.utils import parseaddr

    new = folder / "new"
    if not new.is_dir():
        return []
    return sorted(parseaddr(message_from_bytes(p.read_bytes())["To"])[1] for p in new.iterdir())
