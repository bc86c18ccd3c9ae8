"""Migration 0010_send_counters on a database whose ledger was written before it.

The database is built at revision 0004_integrity with campaigns and deliveries
in every state, then upgraded: each campaign with deliveries gets counters equal
to a recount, and the counters go on moving with the ledger; SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter

import sqlalchemy as sa
from alembic import command
from test_migration_integrity import _filled

from newsletter import db
from newsletter.dispatch import counters, ledger
from newsletter.models import utcnow

STATES = ["pending", "sending", "retry", "sent", "failed", "cancelled"]


def test_upgrade_fills_every_campaigns_counters_from_its_ledger(database_url: str) -> None:
    engine = db.make_engine(database_url)
    command.upgrade(db.alembic_config(engine), "0004_integrity")
    meta = sa.MetaData()
    with engine.begin() as conn:
        campaigns, subscribers, deliveries = (
            sa.Table(name, meta, autoload_with=conn)
            for name in ("campaigns", "subscribers", "deliveries")
        )
        conn.execute(
            sa.insert(campaigns),
            [
                _filled(campaigns, id=i, kind="bulletin", status=status, month="2019-06",
                        subject=f"June {i}", language="en")
                for i, status in ((1, "sending"), (2, "sent"), (3, "draft"))
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(subscribers),
            [
                _filled(subscribers, id=i, email=f"p{i}@example.org",
                        email_key=f"p{i}@example.org", status="active", attributes={})
                for i in range(1, 31)
            ],
        )  # fmt: skip
        # Campaign 1 is half-way through: every state, two deliveries tried twice.
        rows = [
            _filled(deliveries, campaign_id=1, subscriber_id=i, status=STATES[i % 6],
                    attempts=2 if i in (4, 10) else 1, last_response="")
            for i in range(1, 31)
        ] + [
            _filled(deliveries, campaign_id=2, subscriber_id=i, status="sent", attempts=1,
                    last_response="")
            for i in range(1, 11)
        ]  # fmt: skip
        conn.execute(sa.insert(deliveries), rows)
    expected = Counter(STATES[i % 6] for i in range(1, 31))

    command.upgrade(db.alembic_config(engine), "head")
    assert db.current_revision(engine) == db.SCHEMA_HEAD
    with engine.begin() as conn:
        assert counters.read(conn, 1).counts == dict(expected) == counters.recount(conn, 1)
        assert counters.read(conn, 1).retries == 2
        assert counters.read(conn, 2).counts == {"sent": 10}
        assert counters.read(conn, 3).counts == {}
        # And from here on the ledger moves them: the pending ones are claimed.
        now = utcnow()
        ledger.claim(conn, 1, "w:1:a", 100, now, now)
        assert counters.read(conn, 1).counts == counters.recount(conn, 1)
        assert counters.read(conn, 1).counts.get("pending", 0) == 0
    engine.dispose()
