"""Migration 0004_integrity on a database holding what the old rules stored.

The database is built at revision 0002 with the rows the old importer wrote
(the same listing from two paths, the same feed from a file and its URL,
topics stored as labels), then upgraded; runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command

from newsletter import db


def _filled(table: sa.Table, **values: Any) -> dict[str, Any]:
    """The values, plus a plain value for every other required column."""
    row = dict(values)
    for column in table.columns:
        if column.name in row or column.nullable or column.primary_key:
            continue
        kind = column.type
        if isinstance(kind, sa.Boolean):
            row[column.name] = False
        elif isinstance(kind, sa.Integer):
            row[column.name] = 0
        elif isinstance(kind, sa.DateTime):
            row[column.name] = datetime.now(UTC).replace(tzinfo=None)
        elif isinstance(kind, sa.JSON) or "JSON" in type(kind).__name__:
            row[column.name] = {} if column.name == "attributes" else []
        else:
            row[column.name] = ""
    return row


def test_upgrade_rekeys_items_merges_copies_freezes_approvals_and_slugs_topics(
    database_url: str,
) -> None:
    engine = db.make_engine(database_url)
    cfg = db.alembic_config(engine)
    command.upgrade(cfg, "0002")
    meta = sa.MetaData()
    with engine.begin() as conn:
        items, campaigns, entries, subscribers = (
            sa.Table(name, meta, autoload_with=conn)
            for name in ("items", "campaigns", "campaign_items", "subscribers")
        )
        listing = {
            "source_id": "2019-06/our-new-report-on-prisons-and-health-is",
            "kind": "report",
            "title": "Our new report on prisons and health is out today",
            "date": date(2019, 6, 1),
            "language": "en",
        }
        feed = {
            "source_id": "example-2019-06-hrc",
            "kind": "statement",
            "title": "Statement to the Human Rights Council",
            "date": date(2019, 6, 18),
            "link": "https://example.org/news/hrc-statement",
            "language": "en",
        }
        rows = [
            {"id": 1, "source": "/home/comms/news.txt", **listing},
            {"id": 2, "source": "/tmp/copy/news.txt", **listing},
            {"id": 3, "source": "/home/comms/feed.xml", **feed},
            {"id": 4, "source": "https://example.org/feed.xml", **feed},
        ]
        conn.execute(sa.insert(items), [_filled(items, **row) for row in rows])
        conn.execute(
            sa.insert(campaigns),
            [
                _filled(campaigns, id=1, kind="bulletin", status="sent", month="2019-06",
                        subject="June news", language="en"),
                _filled(campaigns, id=2, kind="bulletin", status="draft", month="2019-06",
                        subject="June draft", language="en"),
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(entries),
            [
                {"campaign_id": 1, "item_id": 2, "position": 0},
                {"campaign_id": 1, "item_id": 4, "position": 1},
                {"campaign_id": 2, "item_id": 1, "position": 0},
                {"campaign_id": 2, "item_id": 2, "position": 1},
            ],
        )
        conn.execute(
            sa.insert(subscribers),
            [
                _filled(subscribers, id=1, email="ana@example.org", email_key="ana@example.org",
                        name="Ana", language="en", status="active",
                        attributes={"topics": ["harm reduction", "HIV", "harm-reduction"]}),
            ],
        )  # fmt: skip

    command.upgrade(cfg, "head")

    meta = sa.MetaData()
    with engine.connect() as conn:
        items, entries, identities, campaigns, subscribers = (
            sa.Table(name, meta, autoload_with=conn)
            for name in ("items", "campaign_items", "item_identities", "campaigns", "subscribers")
        )
        # The copies are gone, merged into the oldest of each.
        assert list(conn.scalars(sa.select(items.c.id).order_by(items.c.id))) == [1, 3]
        held = conn.execute(
            sa.select(entries.c.campaign_id, entries.c.item_id).order_by(
                entries.c.campaign_id, entries.c.position
            )
        ).all()
        assert [tuple(row) for row in held] == [(1, 1), (1, 3), (2, 1)]
        keys = dict(conn.execute(sa.select(identities.c.identity, identities.c.item_id)).all())
        assert keys == {
            "title:2019-06:our new report on prisons and health is out today": 1,
            "guid:example-2019-06-hrc": 3,
            "link:example.org/news/hrc-statement": 3,
        }
        assert conn.scalar(sa.select(items.c.date_is_month).where(items.c.id == 1)) is True
        assert conn.scalar(sa.select(items.c.date_is_month).where(items.c.id == 3)) is False
        # The sent campaign keeps what it held, frozen; the draft has no snapshot.
        snapshots = dict(conn.execute(sa.select(campaigns.c.id, campaigns.c.snapshot)).all())
        assert snapshots[2] is None
        assert [i["title"] for i in snapshots[1]["items"]] == [
            listing["title"],
            feed["title"],
        ]
        attributes = conn.scalar(sa.select(subscribers.c.attributes))
        assert attributes == {"topics": ["harm-reduction", "hiv"]}
    engine.dispose()
