"""The demo, end to end, as a subprocess of the installed command."""

from __future__ import annotations

import email
import email.policy
import json
import os
import sqlite3
import subprocess
from pathlib import Path

from conftest import newsletter_command


def run_demo(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*newsletter_command(), "demo", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def bare_env() -> dict[str, str]:
    """The environment of someone who has never configured anything."""
    return {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}


def test_demo_with_no_config_delivers_each_bulletin_once_to_every_subscriber(
    tmp_path: Path,
) -> None:
    first = run_demo(tmp_path, bare_env())
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert (tmp_path / "newsletter.db").is_file()
    messages = sorted((tmp_path / "outbox" / "new").iterdir())
    assert messages, first.stdout

    with sqlite3.connect(tmp_path / "newsletter.db") as db:
        campaigns = db.execute("SELECT id, month, status FROM campaigns ORDER BY month").fetchall()
        sent = db.execute("SELECT count(*) FROM deliveries WHERE status = 'sent'").fetchone()[0]
        recipients = db.execute(
            "SELECT count(DISTINCT s.id) FROM subscribers s JOIN subscriptions m "
            "ON m.subscriber_id = s.id WHERE m.status = 'confirmed' AND s.status = 'active'"
        ).fetchone()[0]
    assert [(month, status) for _, month, status in campaigns] == [
        ("2019-03", "sent"),
        ("2019-06", "sent"),
    ]
    assert recipients > 10
    assert sent == len(messages) == 2 * recipients

    # Every message is a complete, parseable email with both parts.
    by_subject: dict[str, set[str]] = {}
    for path in messages:
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert message.get_content_type() == "multipart/alternative"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        by_subject.setdefault(str(message["Subject"]), set()).add(str(message["To"]))
    # Each subscriber reads the bulletin in their language (the sample lists have four).
    assert {
        "Example Network bulletin — March 2019",
        "Example Network bulletin — June 2019",
        "Бюллетень Example Network — июнь 2019",
        "Bulletin de Example Network — juin 2019",
        "Boletín de Example Network — junio de 2019",
    } <= set(by_subject)
    assert sum(len(to) for to in by_subject.values()) == 2 * recipients
    june_ru = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in messages
        if "июнь 2019"
        in str(email.message_from_bytes(p.read_bytes(), policy=email.policy.default)["Subject"])
    ]
    text = june_ru[0].get_body(("plain",)).get_content()
    assert "Региональная встреча для Евразии 20 июня" in text
    assert "Regional call for Eurasia" not in text

    # The output says what happened and how to look.
    assert "2019-06" in first.stdout and "sent" in first.stdout
    assert "outbox" in first.stdout
    assert "newsletter preview" in first.stdout

    # Run twice: nothing is duplicated, nothing is sent again.
    second = run_demo(tmp_path, bare_env(), "--json")
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["items_added"] == 0
    assert all(counts["added"] == 0 for counts in report["subscribers"].values())
    assert [c["sent_now"] for c in report["campaigns"]] == [0, 0]
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == len(messages)
    with sqlite3.connect(tmp_path / "newsletter.db") as db:
        assert db.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 2
        assert db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == sent


def test_demo_runs_on_the_configured_database(tmp_path: Path, cli_env: dict[str, str]) -> None:
    result = run_demo(tmp_path, cli_env, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [c["status"] for c in report["campaigns"]] == ["sent", "sent"]
    sent = sum(c["deliveries"].get("sent", 0) for c in report["campaigns"])
    assert sent == len(list((tmp_path / "outbox" / "new").iterdir()))
