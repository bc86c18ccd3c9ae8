"""Benchmark: resolve a campaign's audience among a million subscribers.

    python bench/bench_audience.py                  # 1,000,000 subscribers, new SQLite file
    python bench/bench_audience.py --rows 100000    # smaller
    python bench/bench_audience.py --database-url postgresql://postgres@127.0.0.1/bench

Fills the database directly (addresses generated already normalised; the
import has its own benchmark), then times `count_recipients` for three
campaigns (two lists; a list narrowed by a segment; a segment alone) and the
`INSERT INTO deliveries … SELECT` the dispatcher writes the ledger with.

The population: every subscriber on `members` (5% unconfirmed), 30% also on
`partners`, 2% bounced, 1% of addresses suppressed; languages, regions and
topics at random.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The sibling script; importable because Python puts a script's folder on the path.
from bench_import import scratch_database

LANGUAGES = ("en", "ru", "fr", "es")
REGIONS = ("Africa", "Asia", "Eurasia", "Europe", "Latin America")
TOPICS = ("drug policy", "HIV", "harm reduction", "human rights", "hepatitis C", "gender")
CHUNK = 10_000


def populate(app: Any, rows: int, seed: int = 2019) -> None:
    from sqlalchemy import insert

    from newsletter.audience.suppression import KeyHasher
    from newsletter.models import MailingList, Subscriber, Subscription, Suppression, utcnow

    rng = random.Random(seed)
    hasher = KeyHasher(app.suppression_key)
    now = utcnow()
    with app.session() as session:
        members = MailingList(name="members", title="Members")
        partners = MailingList(name="partners", title="Partners")
        session.add_all([members, partners])
        session.flush()
        for start in range(0, rows, CHUNK):
            people, subscriptions, suppressed = [], [], []
            for i in range(start, min(start + CHUNK, rows)):
                email = f"person{i}@example.org"
                digest = hasher(email)
                people.append(
                    {
                        "id": i + 1,
                        "email": email,
                        "email_key": email,
                        "email_hash": digest,
                        "name": f"Person {i}",
                        "language": rng.choice(LANGUAGES),
                        "attributes": {
                            "region": rng.choice(REGIONS),
                            "topics": rng.sample(TOPICS, rng.randint(0, 3)),
                        },
                        "status": "bounced" if rng.random() < 0.02 else "active",
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                subscriptions.append(
                    {
                        "subscriber_id": i + 1,
                        "list_id": members.id,
                        "status": "unconfirmed" if rng.random() < 0.05 else "confirmed",
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                if rng.random() < 0.30:
                    subscriptions.append(
                        {
                            "subscriber_id": i + 1,
                            "list_id": partners.id,
                            "status": "confirmed",
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
                if rng.random() < 0.01:
                    suppressed.append({"email_hash": digest, "reason": "manual", "created_at": now})
            session.execute(insert(Subscriber.__table__), people)
            session.execute(insert(Subscription.__table__), subscriptions)
            if suppressed:
                session.execute(insert(Suppression.__table__), suppressed)


def make_campaigns(app: Any) -> dict[str, int]:
    from sqlalchemy import select

    from newsletter.models import Campaign, MailingList, Segment

    with app.session() as session:
        lists = {lst.name: lst for lst in session.scalars(select(MailingList))}
        ru_eurasia = Segment(
            name="ru-eurasia",
            definition={
                "all": [
                    {"field": "language", "op": "eq", "value": "ru"},
                    {"field": "region", "op": "eq", "value": "Eurasia"},
                ]
            },
        )
        drug_policy = Segment(
            name="drug-policy",
            definition={"field": "topics", "op": "contains", "value": "drug policy"},
        )
        campaigns = {
            "members + partners": Campaign(
                kind="bulletin", subject="A", lists=[lists["members"], lists["partners"]]
            ),
            "members, ru in Eurasia": Campaign(
                kind="bulletin", subject="B", lists=[lists["members"]], segment=ru_eurasia
            ),
            "segment alone: drug policy": Campaign(
                kind="bulletin", subject="C", segment=drug_policy
            ),
        }
        session.add_all(campaigns.values())
        session.flush()
        return {label: campaign.id for label, campaign in campaigns.items()}


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="default: a new SQLite file in a temporary folder")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-audience-"))
    try:
        with scratch_database(args.database_url, folder) as url:
            run(url, folder, args.rows)
    finally:
        shutil.rmtree(folder)


def run(url: str, folder: Path, rows: int) -> None:
    from sqlalchemy import delete, insert, literal, select

    from newsletter import audience
    from newsletter.app import Newsletter
    from newsletter.config import build_config
    from newsletter.models import Campaign, Delivery

    env = {"NEWSLETTER_SECRET_KEY": "bench"}
    app = Newsletter(build_config({"database": {"url": url}}, env, base_dir=folder), env=env)

    took, _ = timed(lambda: populate(app, rows))
    print(f"filled {rows:,} subscribers in {took:.1f} s ({url.split('?')[0]})")
    if app.engine.dialect.name == "sqlite":
        with app.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")

    campaigns = make_campaigns(app)
    for label, campaign_id in campaigns.items():
        with app.session() as session:
            campaign = session.get_one(Campaign, campaign_id)
            first, count = timed(lambda c=campaign: audience.count_recipients(session, c))
            again, _ = timed(lambda c=campaign: audience.count_recipients(session, c))
        print(f"count {label:28} {count:>9,} recipients  {first:6.2f} s  (again {again:.2f} s)")

    campaign_id = campaigns["members + partners"]
    with app.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        audience_rows = audience.recipients_query(session, campaign).subquery()
        took, result = timed(
            lambda: session.execute(
                insert(Delivery.__table__)
                .from_select(
                    ["campaign_id", "subscriber_id"],
                    select(literal(campaign_id), audience_rows.c.subscriber_id),
                )
                .execution_options(preserve_rowcount=True)
            )
        )
        print(f"INSERT INTO deliveries … SELECT: {result.rowcount:,} rows in {took:.2f} s")
        session.execute(delete(Delivery))
    app.close()


if __name__ == "__main__":
    main()
