"""Several processes on one database: nothing accepted is lost.

A real `newsletter send` of tens of thousands of messages in one process, the
pages (`newsletter web`) answering hundreds of one-click unsubscribes and
sign-ups in another, and `newsletter subscribers add` in a third, all at once,
on SQLite (where one writer at a time is the rule) and on PostgreSQL. Every
request must be answered correctly and every answer must be true: an
unsubscribe answered 200 is recorded, a sign-up answered 202 is done.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import newsletter_command
from sqlalchemy import func, select, update
from test_dispatch_support import seed_campaign

from newsletter import links
from newsletter.app import Newsletter
from newsletter.dispatch import counters, ledger
from newsletter.models import Campaign, MailingList, Subscriber, Subscription

# Under a minute on an idle machine; the generous timeout is for a busy one.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]

RECIPIENTS = 20_000
UNSUBSCRIBES = 300
SIGNUPS = 200
CLI_ADDS = 12


def post(url: str, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def start(cli_env: dict[str, str], cwd: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*newsletter_command(), *args],
        cwd=cwd,
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_send_the_pages_and_the_cli_at_once_lose_nothing(
    make_app, cli_env: dict[str, str], tmp_path: Path
) -> None:
    app: Newsletter = make_app()
    cid = seed_campaign(app, RECIPIENTS)
    with app.session() as session:
        campaign = session.get_one(Campaign, cid)
        list_name = campaign.lists[0].name
        session.execute(
            update(MailingList)
            .where(MailingList.name == list_name)
            .values(visibility="public", optin="single")
        )
        ids = session.scalars(
            select(Subscription.subscriber_id)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(MailingList.name == list_name)
            .order_by(Subscription.subscriber_id.desc())
            .limit(UNSUBSCRIBES)
        ).all()
    tokens = [links.unsubscribe_token(app.signing_key, sid, cid) for sid in ids]
    config = tmp_path / "newsletter.toml"
    # One client sends every sign-up here: the per-address rate limit is not under test.
    config.write_text("[web]\nsubscribe_burst = 100000\nsubscribe_per_hour = 100000\n")

    web = start(cli_env, tmp_path, "--config", str(config), "web", "--port", "0")
    try:
        line = web.stderr.readline() if web.stderr else ""
        port = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert port, line
        base = f"http://127.0.0.1:{port.group(1)}"
        sending = start(cli_env, tmp_path, "send", str(cid))
        # Let the send get going: its ledger written and its first batches recorded.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with app.read_engine.connect() as conn:
                if ledger.counts(conn, cid).get("sent", 0) >= 500:
                    break
            time.sleep(0.05)
        started = time.monotonic()

        def unsubscribe(token: str) -> int:
            return post(
                f"{base}/u/{token}",
                b"List-Unsubscribe=One-Click",
                "application/x-www-form-urlencoded",
            )

        def sign_up(number: int) -> int:
            body = json.dumps({"email": f"new{number}@example.net", "lists": [list_name]})
            return post(f"{base}/api/subscribe", body.encode(), "application/json")

        adds = subprocess.Popen(
            [
                "sh",
                "-c",
                " && ".join(
                    f"{' '.join(newsletter_command())} subscribers add cli{n}@example.net "
                    f"--list {list_name}"
                    for n in range(CLI_ADDS)
                ),
            ],
            cwd=tmp_path,
            env=cli_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        with ThreadPoolExecutor(8) as pool:
            unsubscribed = list(pool.map(unsubscribe, tokens))
            signed_up = list(pool.map(sign_up, range(SIGNUPS)))
        during_send = sending.poll() is None
        _, err = adds.communicate(timeout=120)
        assert adds.returncode == 0, err
        assert "Traceback" not in err
        _, send_err = sending.communicate(timeout=120)
        assert sending.returncode == 0, send_err
        assert "Traceback" not in send_err
    finally:
        web.send_signal(signal.SIGTERM)
        try:
            _, web_err = web.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            web.kill()
            _, web_err = web.communicate()
    print(f"requests took {time.monotonic() - started:.1f}s; still sending: {during_send}")
    assert during_send, "the requests must overlap the send"
    assert unsubscribed == [200] * UNSUBSCRIBES
    assert signed_up == [202] * SIGNUPS
    assert "Traceback" not in web_err, web_err[-2000:]
    assert web.returncode == 0, web_err[-2000:]

    with app.reading() as session:
        left = session.scalars(
            select(Subscription.status).where(Subscription.subscriber_id.in_(ids))
        ).all()
        assert left == ["unsubscribed"] * UNSUBSCRIBES, "every 200 was recorded"
        joined = session.scalar(
            select(func.count()).where(Subscriber.email.like("new%@example.net"))
        )
        assert joined == SIGNUPS, "every 202 was carried out"
        added = session.scalar(
            select(func.count()).where(Subscriber.email.like("cli%@example.net"))
        )
        assert added == CLI_ADDS
    with app.read_engine.connect() as conn:
        counts = ledger.counts(conn, cid)
        # The counters the send and the unsubscribes kept say what the ledger says.
        assert counts == counters.recount(conn, cid)
    # Everyone got the message or, having left before their turn, was spared it.
    assert set(counts) <= {"sent", "cancelled"}, counts
    assert counts["sent"] + counts.get("cancelled", 0) == RECIPIENTS
    assert os.path.isdir(tmp_path / "outbox" / "new")
