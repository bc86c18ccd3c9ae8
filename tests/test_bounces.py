"""The bounce mailbox: real DSN samples in a real Maildir, matched to real deliveries."""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.app import Newsletter
from newsletter.audience import suppression_reason
from newsletter.dispatch import send_campaign
from newsletter.errors import ConfigError
from newsletter.feedback import fetch_bounces, open_mailbox
from newsletter.models import Delivery, Event, Subscriber
from tests.test_dispatch_support import seed_campaign

SAMPLES = Path(__file__).parent / "data" / "bounces"


def sample(name: str, recipient: str, message_id: str) -> bytes:
    text = (SAMPLES / f"{name}.eml").read_text(encoding="utf-8")
    text = text.replace("@@RECIPIENT@@", recipient).replace("@@MESSAGE_ID@@", message_id)
    return text.replace("\n", "\r\n").encode("utf-8")


def sent_campaign(app: Newsletter, count: int) -> tuple[int, dict[str, str]]:
    """A campaign sent to the outbox; returns its id and {address: Message-ID}."""
    campaign_id = seed_campaign(app, count)
    assert send_campaign(app, campaign_id, actor="tester").status == "sent"
    with app.session() as session:
        rows = session.execute(
            select(Subscriber.email, Delivery.message_id)
            .join(Delivery, Delivery.subscriber_id == Subscriber.id)
            .where(Delivery.campaign_id == campaign_id)
        ).all()
    return campaign_id, {email: message_id for email, message_id in rows}


def bounce_box(tmp_path: Path, messages: dict[str, bytes]) -> tuple[Path, dict[str, str]]:
    """A Maildir holding these messages, unread; returns its path and {name: key}."""
    path = tmp_path / "bounces"
    box = mailbox.Maildir(path, create=True)
    keys = {name: box.add(data) for name, data in messages.items()}
    box.close()
    return path, keys


def state(path: Path, key: str) -> str:
    """'unread', 'read' or 'gone' for one message of a Maildir."""
    box = mailbox.Maildir(path, create=False)
    try:
        message = box.get_message(key)
    except KeyError:
        return "gone"
    return "read" if message.get_subdir() == "cur" and "S" in message.get_flags() else "unread"


def events_of(app: Newsletter, address: str) -> list[Event]:
    with app.session() as session:
        sid = session.scalar(select(Subscriber.id).where(Subscriber.email == address))
        found = list(session.scalars(select(Event).where(Event.subscriber_id == sid)))
        for event in found:
            session.expunge(event)
        return found


def reason(app: Newsletter, address: str) -> str | None:
    with app.session() as session:
        return suppression_reason(session, app.suppression_key, address)


def test_fetch_records_bounces_ignores_auto_replies_and_leaves_the_unreadable(
    app, tmp_path
) -> None:
    campaign_id, ids = sent_campaign(app, 5)
    p = [f"person{i}@example.org" for i in range(5)]
    path, keys = bounce_box(
        tmp_path,
        {
            "hard": sample("hard", p[0], ids[p[0]]),
            "soft": sample("soft", p[1], ids[p[1]]),
            "vacation": sample("vacation", p[2], ids[p[2]]),
            "qmail": sample("qmail", p[3], ids[p[3]]),
            "delayed": sample("delayed", p[4], ids[p[4]]),
            "reply": sample("not_a_bounce", p[4], ids[p[4]]),
        },
    )
    box = open_mailbox(app, maildir=str(path))
    report = fetch_bounces(app, box)
    box.close()

    assert (report.read, report.hard_bounces, report.soft_bounces) == (6, 2, 1)
    assert (report.auto_replies, report.delays, report.unmatched) == (1, 1, 0)
    assert report.left_unread == [keys["reply"]]
    # Hard bounces, standard and qmail's: suppressed, the subscriber marked bounced.
    for address in (p[0], p[3]):
        assert reason(app, address) == "hard_bounce"
        (event,) = events_of(app, address)
        assert event.type == "hard_bounce" and event.source == "mailbox"
        assert event.campaign_id == campaign_id and event.delivery_id is not None
    assert events_of(app, p[3])[0].detail["parser"] == "flufl.bounce"
    assert events_of(app, p[0])[0].detail["status"] == "5.1.1"
    # A soft bounce is counted, not acted on (the limit is 3).
    assert reason(app, p[1]) is None
    assert [e.type for e in events_of(app, p[1])] == ["soft_bounce"]
    # The auto-reply and the delay count for nothing.
    assert events_of(app, p[2]) == [] and reason(app, p[2]) is None
    assert events_of(app, p[4]) == []
    # Read and kept: bounces, the auto-reply, the delay; the person's reply stays unread.
    for name in ("hard", "soft", "vacation", "qmail", "delayed"):
        assert state(path, keys[name]) == "read", name
    assert state(path, keys["reply"]) == "unread"

    again = fetch_bounces(app, open_mailbox(app, maildir=str(path)))
    assert (again.read, again.hard_bounces, again.left_unread) == (1, 0, [keys["reply"]])


def test_soft_bounces_suppress_after_the_limit_counting_each_delivery_once(
    make_app, tmp_path
) -> None:
    app = make_app({"feedback": {"soft_bounce_limit": 2, "soft_bounce_days": 30}})
    address = "person0@example.org"
    _, first = sent_campaign(app, 1)
    path, _ = bounce_box(tmp_path, {"soft": sample("soft", address, first[address])})
    fetch_bounces(app, open_mailbox(app, maildir=str(path)))
    # The same message bounced again (another DSN for the same delivery) counts once.
    box = mailbox.Maildir(path)
    box.add(sample("soft", address, first[address]).replace(b"09:12:03", b"10:12:03"))
    box.close()
    fetch_bounces(app, open_mailbox(app, maildir=str(path)))
    assert len(events_of(app, address)) == 2
    assert reason(app, address) is None

    # A second campaign to the same person bounces soft too: two deliveries, suppressed.
    from newsletter.models import Campaign, campaign_lists

    with app.session() as session:
        subscriber = session.scalar(select(Subscriber).where(Subscriber.email == address))
        old = session.scalars(select(Campaign)).first()
        new = Campaign(kind="bulletin", status="approved", month="2019-07", subject="July")
        new.entries = []
        session.add(new)
        session.flush()
        list_id = session.scalar(
            select(campaign_lists.c.list_id).where(campaign_lists.c.campaign_id == old.id)
        )
        session.execute(campaign_lists.insert().values(campaign_id=new.id, list_id=list_id))
        second_id = new.id
        assert subscriber is not None
    assert send_campaign(app, second_id, actor="tester").status == "sent"
    with app.session() as session:
        message_id = session.scalar(
            select(Delivery.message_id).where(Delivery.campaign_id == second_id)
        )
    box = mailbox.Maildir(path)
    box.add(sample("soft", address, message_id))
    box.close()
    report = fetch_bounces(app, open_mailbox(app, maildir=str(path)))
    assert report.suppressed == 1
    assert reason(app, address) == "hard_bounce"


def test_a_bounce_quoting_no_message_of_ours_suppresses_nobody(app, tmp_path) -> None:
    sent_campaign(app, 1)
    forged = sample("hard", "person0@example.org", "made-up@example.org")
    path, keys = bounce_box(tmp_path, {"forged": forged})
    report = fetch_bounces(app, open_mailbox(app, maildir=str(path)))
    assert (report.hard_bounces, report.unmatched, report.suppressed) == (1, 1, 0)
    assert reason(app, "person0@example.org") is None
    with app.session() as session:
        (event,) = session.scalars(select(Event)).all()
        assert event.subscriber_id is None and event.detail["address"] == "person0@example.org"
    assert state(path, keys["forged"]) == "read"


def test_processed_bounces_are_deleted_when_configured(make_app, tmp_path) -> None:
    app = make_app({"feedback": {"mailbox_delete_processed": True}})
    _, ids = sent_campaign(app, 1)
    address = "person0@example.org"
    path, keys = bounce_box(
        tmp_path,
        {
            "hard": sample("hard", address, ids[address]),
            "reply": sample("not_a_bounce", address, ids[address]),
            "vacation": sample("vacation", address, ids[address]),
        },
    )
    fetch_bounces(app, open_mailbox(app, maildir=str(path)))
    assert state(path, keys["hard"]) == "gone"
    assert state(path, keys["vacation"]) == "read"
    assert state(path, keys["reply"]) == "unread"


def test_no_mailbox_configured_is_a_clear_error(app) -> None:
    with pytest.raises(ConfigError, match=r"no bounce mailbox: set feedback\.mailbox_maildir"):
        open_mailbox(app)


def test_bounces_fetch_command_then_deliveries_status_and_export_show_it(
    make_app, run_cli, tmp_path
) -> None:
    app = make_app()
    campaign_id, ids = sent_campaign(app, 3)
    address = "person1@example.org"
    path, _ = bounce_box(tmp_path, {"hard": sample("hard", address, ids[address])})

    result = run_cli("bounces", "fetch", "--maildir", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hard_bounces"] == 1

    listing = run_cli("deliveries", str(campaign_id), "--json")
    rows = {row["address"]: row for row in json.loads(listing.stdout)}
    assert rows[address]["events"] == ["hard_bounce (mailbox)"]
    assert rows["person0@example.org"]["events"] == []

    status = run_cli("status", str(campaign_id), "--json")
    came_back = json.loads(status.stdout)["feedback"]
    assert came_back["hard_bounces"] == 1 and came_back["bounce_rate_percent"] == 33.333

    export = json.loads(run_cli("person", "export", address).stdout)
    assert [e["type"] for e in export["events"]] == ["hard_bounce"]

    missing = run_cli("bounces", "fetch", "--maildir", str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert "is not a Maildir folder" in missing.stderr and "Traceback" not in missing.stderr
