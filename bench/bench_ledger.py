"""Benchmark: writing the deliveries ledger for a million recipients.

    python bench/bench_ledger.py                    # 1,000,000 subscribers, new SQLite file
    python bench/bench_ledger.py --rows 100000
    python bench/bench_ledger.py --database-url postgresql://postgres@127.0.0.1/bench

Fills a fresh database with N confirmed subscribers of one list (written
directly, already normalised: the import has its own benchmark), then times
`dispatch.start_campaign`: the campaign's status change and the one
`INSERT INTO deliveries … SELECT` that writes a row per recipient, in one
transaction, with the ledger's unique key and claim index maintained. Then it
times writing the ledger again (what a restart does: it must add nothing) and
the first claim of a batch, which must not depend on N.

Target: under 60 seconds for 1,000,000 recipients on SQLite. On PostgreSQL about
half of the time goes to checking the ledger's two foreign keys (campaign and
subscriber) row by row, which is the price of ON DELETE CASCADE on erasure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

CHUNK = 20_000


def make_app(url: str | None, folder: Path) -> Any:
    from newsletter.app import Newsletter
    from newsletter.config import build_config

    env = {"NEWSLETTER_SECRET_KEY": "bench-signing-key"}
    url = url or f"sqlite:///{folder / 'ledger.db'}"
    return Newsletter(build_config({"database": {"url": url}}, env, base_dir=folder), env=env)


def populate(app: Any, rows: int) -> int:
    from sqlalchemy import insert

    from newsletter.audience.suppression import KeyHasher
    from newsletter.models import Campaign, MailingList, Subscriber, Subscription, utcnow

    hasher = KeyHasher(app.suppression_key)
    now = utcnow()
    with app.session() as session:
        members = MailingList(name="members", title="Members")
        campaign = Campaign(kind="announcement", status="approved", subject="Statement",
                            lists=[members])  # fmt: skip
        session.add(campaign)
        session.flush()
        campaign_id, list_id = campaign.id, members.id
    for start in range(0, rows, CHUNK):
        people, memberships = [], []
        for i in range(start, min(start + CHUNK, rows)):
            email = f"person{i}@example.org"
            people.append({"id": i + 1, "email": email, "email_key": email,
                           "email_hash": hasher(email), "name": f"Person {i}", "language": "en",
                           "attributes": {}, "status": "active", "created_at": now,
                           "updated_at": now})  # fmt: skip
            memberships.append({"subscriber_id": i + 1, "list_id": list_id,
                                "status": "confirmed", "consent_method": "import",
                                "created_at": now, "updated_at": now})  # fmt: skip
        with app.session() as session:
            session.execute(insert(Subscriber.__table__), people)
            session.execute(insert(Subscription.__table__), memberships)
    return campaign_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="an empty database (default: a new SQLite file)")
    args = parser.parse_args()

    from newsletter import dispatch
    from newsletter.dispatch import ledger
    from newsletter.models import utcnow

    folder = Path(tempfile.mkdtemp(prefix="bench-ledger-"))
    try:
        app = make_app(args.database_url, folder)
        started = time.perf_counter()
        campaign_id = populate(app, args.rows)
        if app.engine.dialect.name == "postgresql":
            # Fresh tables have no statistics yet; autovacuum would gather them soon after
            # an import this size. Without them the planner takes a million index lookups.
            with app.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        print(f"{args.rows:,} subscribers written in {time.perf_counter() - started:.1f} s "
              f"({app.engine.dialect.name})")  # fmt: skip

        started = time.perf_counter()
        written = dispatch.start_campaign(app, campaign_id, actor="tester")
        seconds = time.perf_counter() - started
        print(f"ledger: {written:,} deliveries written in {seconds:.1f} s "
              f"({written / seconds:,.0f} rows/s; target < 60 s for 1,000,000)")  # fmt: skip

        started = time.perf_counter()
        with app.session() as session:
            from newsletter.models import Campaign

            again = ledger.write_ledger(session, session.get_one(Campaign, campaign_id))
        print(f"ledger written again: {again} rows added in {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        with app.engine.begin() as conn:
            claimed = ledger.claim(conn, campaign_id, "bench:1:x", 200, utcnow(), utcnow())
        print(f"first claim of {len(claimed)}: {(time.perf_counter() - started) * 1000:.1f} ms")
        if app.engine.dialect.name == "sqlite":
            size = os.path.getsize(folder / "ledger.db")
            print(f"database file: {size / 2**20:.0f} MB")
        app.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
