"""Benchmark: every console page with a million subscribers (target: each under 300 ms).

    python bench/bench_console.py                   # 1,000,000 subscribers, new SQLite file
    python bench/bench_console.py --rows 100000     # smaller
    python bench/bench_console.py --database-url postgresql://postgres@127.0.0.1/bench

Fills the database the way bench_audience.py does, adds a month of items, a
sent bulletin whose ledger holds a delivery for every recipient (2% of them
failed), a draft, and staff accounts; then signs in as an admin and requests
each page in-process through the same WSGI stack `newsletter serve` runs,
timing the first request (cold caches) and the median of several per page.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

# Sibling scripts; importable because Python puts a script's folder on the path.
from bench_audience import populate
from bench_import import scratch_database

TARGET_MS = 300.0
REQUESTS = 5
PASSWORD = "bench password 1"


def prepare(app: Any) -> dict[str, int]:
    from datetime import date, timedelta

    from sqlalchemy import insert, select, update

    from newsletter import editions, staff
    from newsletter.dispatch.service import start_campaign
    from newsletter.lifecycle import try_apply
    from newsletter.models import Delivery, Event, Item, utcnow

    with app.session() as session:
        for day in range(1, 21):
            session.add(
                Item(source="bench", source_id=f"item-{day}", kind=("report", "news")[day % 2],
                     title=f"Item {day} of the month", summary="A summary. " * 10,
                     date=date(2019, 6, day), language="en")
            )  # fmt: skip
    staff.add_user(app, "admin@example.org", role="admin", password=PASSWORD, actor="bench")
    staff.add_user(app, "second@example.org", role="publisher", password=PASSWORD, actor="bench")
    sent = editions.new_bulletin(app, "2019-06", lists=["members"], actor="bench").id
    editions.approve(app, sent, actor="user:second@example.org")
    started = time.perf_counter()
    written = start_campaign(app, sent, actor="bench")
    print(f"ledger of {written:,} deliveries written in {time.perf_counter() - started:.1f} s")
    now = utcnow()
    with app.session() as session:
        session.execute(
            update(Delivery)
            .where(Delivery.campaign_id == sent)
            .values(status="sent", attempts=1, sent_at=now, last_response="250 ok")
        )
        session.execute(
            update(Delivery)
            .where(Delivery.campaign_id == sent, Delivery.subscriber_id % 50 == 0)
            .values(status="failed", last_response="550 5.1.1 no such user", sent_at=None)
        )
        try_apply(session, sent, "finish", "bench", finished_at=now)
        # Feedback over the last year: a bounce for each failed delivery, a complaint
        # for one in ten, at times spread over the year (the feedback page's chart).
        failed = session.execute(
            select(Delivery.id, Delivery.subscriber_id)
            .where(Delivery.campaign_id == sent, Delivery.status == "failed")
        ).all()  # fmt: skip
        session.execute(insert(Event), [
            {"delivery_id": delivery_id, "subscriber_id": subscriber_id, "campaign_id": sent,
             "type": "hard_bounce" if n % 10 else "complaint", "source": "bench",
             "detail": {"diagnostic": "550 5.1.1 no such user"},
             "created_at": now - timedelta(days=n % 365, seconds=n)}
            for n, (delivery_id, subscriber_id) in enumerate(failed)
        ])  # fmt: skip
    draft = editions.new_bulletin(app, "2019-06", lists=["members", "partners"], actor="bench")
    with app.engine.connect() as conn:
        # What autovacuum (PostgreSQL) would do within a minute of a bulk load; without
        # it the planner takes the million-row ledger for an empty table.
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    return {"sent": sent, "draft": draft.id}


def pages(ids: dict[str, int], rows: int) -> list[str]:
    sent, draft = ids["sent"], ids["draft"]
    return [
        "/admin/",
        "/admin/items/",
        "/admin/items/?month=2019-06",
        "/admin/items/1/edit",
        "/admin/campaigns/",
        "/admin/campaigns/new",
        f"/admin/campaigns/{draft}",
        f"/admin/campaigns/{draft}/edit",
        f"/admin/campaigns/{draft}/preview",
        f"/admin/campaigns/{draft}/preview.html",
        f"/admin/campaigns/{sent}",
        f"/admin/campaigns/{sent}/progress",
        f"/admin/campaigns/{sent}/deliveries",
        f"/admin/campaigns/{sent}/deliveries?failed=1",
        f"/admin/campaigns/{sent}/deliveries?after={rows // 2}",
        f"/admin/campaigns/{draft}/audience",
        f"/admin/campaigns/{sent}/audience",
        "/admin/audience/",
        "/admin/audience/subscribers",
        "/admin/audience/subscribers?q=person99999",
        "/admin/audience/subscribers?after=person5",
        f"/admin/audience/subscribers/{rows // 2}",
        "/admin/audience/suppression",
        "/admin/audience/segments/new",
        "/admin/audience/segments/count?field-0=language&op-0=eq&value-0=ru",
        "/admin/audience/import",
        "/admin/feedback/",
        "/admin/audit",
        "/admin/users/",
        "/admin/settings/",
    ]


def background_counts(app: Any, ids: dict[str, int]) -> None:
    """The exact counts the pages above started in the background: how long they took.
    (The pages showed a stored count with its time, or a labelled estimate, meanwhile.)"""
    from newsletter.audience.counting import campaign_subject, rules_subject, stored_count

    rules = {"all": [{"field": "language", "op": "eq", "value": "ru"}]}
    for label, subject in (("campaign recipients", campaign_subject(ids["draft"])),
                           ("segment builder's rules", rules_subject(rules))):  # fmt: skip
        deadline = time.monotonic() + 600
        while (found := stored_count(app, subject)) is None and time.monotonic() < deadline:
            time.sleep(1)
        if found is None:
            print(f"background count of the {label}: not done in 10 minutes")
        else:
            print(f"background count of the {label}: {found.reachable:,} reachable, "
                  f"counted in {found.seconds:.1f} s")  # fmt: skip


def sign_in(client: Any) -> None:
    page = client.get("/admin/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    response = client.post(
        "/admin/login",
        data={"csrf_token": token.group(1), "email": "admin@example.org", "password": PASSWORD},
    )
    assert response.status_code == 302, response.status_code


def run(url: str, folder: Path, rows: int) -> bool:
    from werkzeug.test import Client

    from newsletter.admin import mount
    from newsletter.app import Newsletter
    from newsletter.config import build_config
    from newsletter.web import make_wsgi_app

    env = {"NEWSLETTER_SECRET_KEY": "bench"}
    config = build_config(
        {"database": {"url": url}, "transports": {"outbox": {"dsn": f"maildir:{folder}/out"}}},
        env,
        base_dir=folder,
    )
    app = Newsletter(config, env=env)
    started = time.perf_counter()
    populate(app, rows)
    print(f"{rows:,} subscribers in {time.perf_counter() - started:.1f} s")
    ids = prepare(app)
    client = Client(mount(app, make_wsgi_app(app)))
    sign_in(client)
    slow = []
    print(f"{'page':<60} {'status':>6} {'first ms':>9} {'median ms':>10}")
    for path in pages(ids, rows):
        times = []
        status = 0
        for _ in range(REQUESTS):
            started = time.perf_counter()
            response = client.get(path)
            response.get_data()
            times.append((time.perf_counter() - started) * 1000)
            status = response.status_code
        median = statistics.median(times)
        mark = "" if median < TARGET_MS and status == 200 else "  <-- over"
        if mark:
            slow.append(path)
        print(f"{path:<60} {status:>6} {times[0]:>9.1f} {median:>10.1f}{mark}")
    print(f"{len(slow)} page(s) over {TARGET_MS:.0f} ms or not 200" if slow else "every page OK")
    background_counts(app, ids)
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    app.close()
    return not slow


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="default: a new SQLite file in a temporary folder")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-console-"))
    try:
        with scratch_database(args.database_url, folder) as url:
            ok = run(url, folder, args.rows)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
