"""DKIM signing and VERP return paths, end to end: keys made by the real command,
messages sent over a real SMTP server (aiosmtpd on loopback) and verified with dkimpy
against the TXT record the command printed; bounces read from a real Maildir."""

from __future__ import annotations

import json
import mailbox
import re
from collections.abc import Iterator
from pathlib import Path

import dkim as dkimpy
import pytest
from sqlalchemy import select
from test_dispatch_support import SMTPSink, seed_campaign, start_sink
from webkit import make_lists

from newsletter import dispatch, notices
from newsletter.app import Newsletter
from newsletter.audience import is_suppressed
from newsletter.audience.joining import subscribe
from newsletter.dispatch import EngineOptions
from newsletter.dispatch.retry import RetryPolicy
from newsletter.dkim import generate_key
from newsletter.feedback import fetch_bounces, open_mailbox
from newsletter.models import Campaign, CampaignItem, Delivery, Event, Subscriber
from newsletter.return_path import delivery_from_addresses, verp_address
from newsletter.transports import SendLimits
from newsletter.transports.smtp import SMTPSettings, SMTPTransport

SAMPLES = Path(__file__).parent / "data" / "bounces"
OPTIONS = EngineOptions(
    batch_size=20,
    pause_after_consecutive_failures=1000,
    retry=RetryPolicy(initial_seconds=0.05, max_seconds=0.2, max_attempts=3),
)


@pytest.fixture
def sink() -> Iterator[tuple[SMTPSink, int]]:
    handler = SMTPSink(pipelining=True)
    controller = start_sink(handler)
    yield handler, controller.port
    controller.stop()


def smtp(port: int) -> SMTPTransport:
    settings = SMTPSettings(host="127.0.0.1", port=port, tls="none", helo="client.test", timeout=5)
    return SMTPTransport("sink", settings, SendLimits(connections=2))


def keygen(run_cli, tmp_path: Path, key_type: str) -> tuple[Path, str, str]:
    """A key made by the real command: (file, record name, record value as printed)."""
    out = tmp_path / f"dkim-{key_type}.pem"
    result = run_cli(
        "dkim", "keygen", "--domain", "example.org", "--selector", "news2026",
        "--out", str(out), "--type", key_type,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    name = re.search(r"name:\s+(\S+)", result.stdout).group(1)  # type: ignore[union-attr]
    value = re.search(r"value:\s+(.+)", result.stdout).group(1)  # type: ignore[union-attr]
    assert out.stat().st_mode & 0o777 == 0o600
    return out, name, value


def dns(records: dict[str, str]):
    """dkimpy's dnsfunc: the TXT record published under a name, as bytes."""

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        value = records.get(name.decode().rstrip("."))
        return value.encode() if value is not None else None

    return lookup


def add_dotted_item(app: Newsletter, campaign_id: int) -> None:
    """An item whose text has lines that start with a dot, which SMTP must dot-stuff."""
    with app.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        first = campaign.entries[0].item
        item = type(first)(
            source="tests", source_id=f"dots-{campaign_id}", kind="news",
            title="Dots", date=first.date, summary=".\n.. two dots\n. one dot",
            body_text=".\n.. two dots", body_html="<p>.</p>",
        )  # fmt: skip
        campaign.entries.append(CampaignItem(item=item, position=1))


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_messages_sent_over_smtp_verify_against_the_record_keygen_printed(
    make_app, run_cli, tmp_path: Path, sink: tuple[SMTPSink, int], key_type: str
) -> None:
    key, name, value = keygen(run_cli, tmp_path, key_type)
    assert name == "news2026._domainkey.example.org"
    app = make_app(
        {"dkim": {"domain": "example.org", "selector": "news2026", "private_key_file": key.name}}
    )
    handler, port = sink
    campaign_id = seed_campaign(app, 12)
    add_dotted_item(app, campaign_id)
    outcome = dispatch.send_campaign(
        app, campaign_id, transport=smtp(port), options=OPTIONS, actor="worker"
    )
    assert outcome.status == "sent", outcome.note
    assert len(handler.messages) == 12
    lookup = dns({name: value})
    for _, _, data in handler.messages:
        # What the server kept went through dot-stuffing on the wire and back.
        assert b"\r\n.." in data or b"\r\n. " in data or b"\r\n.\r\n" in data
        algorithm = b"rsa-sha256" if key_type == "rsa" else b"ed25519-sha256"
        assert data.startswith(b"DKIM-Signature: v=1; a=" + algorithm)
        assert dkimpy.verify(data, dnsfunc=lookup), data[:600]
        signature = data.split(b"\r\n\r\n", 1)[0].decode()
        for header in ("from", "to", "subject", "date", "message-id", "list-id",
                       "list-unsubscribe", "list-unsubscribe-post"):  # fmt: skip
            assert re.search(rf"[:=\s]{header}[:;]", signature), header

    # A relay that refolds headers keeps the signature valid (relaxed header form)…
    data = handler.messages[0][2]
    refolded = data.replace(b"\r\nSubject: ", b"\r\nSubject:\r\n\t  ", 1)
    assert refolded != data and dkimpy.verify(refolded, dnsfunc=lookup)
    # …but stripping the one-click header, adding a second one or a second From breaks it,
    assert not dkimpy.verify(
        data.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b""),
        dnsfunc=lookup,
    )
    head, body = data.split(b"\r\n\r\n", 1)
    for forged in (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"From: x@evil.test"):
        assert not dkimpy.verify(head + b"\r\n" + forged + b"\r\n\r\n" + body, dnsfunc=lookup)
    # and so does a changed body, or the record of another key.
    assert not dkimpy.verify(data.replace(b"Dots", b"Dote"), dnsfunc=lookup)
    other = generate_key("example.org", "news2026", tmp_path / "other.pem", key_type)
    assert not dkimpy.verify(data, dnsfunc=dns({name: other.record_value}))


def test_maildir_messages_are_signed_and_test_sends_too(make_app, run_cli, tmp_path: Path) -> None:
    key, name, value = keygen(run_cli, tmp_path, "rsa")
    app = make_app(
        {"dkim": {"domain": "example.org", "selector": "news2026", "private_key_file": str(key)}}
    )
    campaign_id = seed_campaign(app, 3)
    dispatch.send_test(app, campaign_id, "editor@example.org")
    dispatch.send_campaign(app, campaign_id, options=OPTIONS, actor="worker")
    files = list((tmp_path / "outbox" / "new").iterdir())
    assert len(files) == 4
    for file in files:
        # The outbox holds local line ends, as mail readers expect of files.
        data = file.read_bytes().replace(b"\n", b"\r\n")
        assert dkimpy.verify(data, dnsfunc=dns({name: value})), file


def test_confirmation_emails_are_signed_too(make_app, run_cli, tmp_path: Path) -> None:
    key, name, value = keygen(run_cli, tmp_path, "ed25519")
    app = make_app(
        {"dkim": {"domain": "example.org", "selector": "news2026", "private_key_file": str(key)}}
    )
    make_lists(app)
    outcome = subscribe(app, "new.person@example.org", list_names=["members"])
    assert outcome.action == "confirmation_sent"
    assert notices.send_signup_notice(app, outcome)
    (file,) = (tmp_path / "outbox" / "new").iterdir()
    data = file.read_bytes().replace(b"\n", b"\r\n")
    assert b"To: new.person@example.org" in data
    assert dkimpy.verify(data, dnsfunc=dns({name: value}))


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "dkim-missing.pem: cannot read it"),
        ("garbage", "dkim-garbage.pem: not an unencrypted PEM private key"),
        ("partial", "[dkim] also needs dkim.selector"),
    ],
)
def test_a_missing_or_unreadable_key_stops_at_start_up_with_exit_2(
    run_cli, tmp_path: Path, setup: str, message: str
) -> None:
    (tmp_path / "dkim-garbage.pem").write_text("not a key\n")
    keys = {
        "missing": 'domain = "example.org"\nselector = "s"\nprivate_key_file = "dkim-missing.pem"',
        "garbage": 'domain = "example.org"\nselector = "s"\nprivate_key_file = "dkim-garbage.pem"',
        "partial": 'domain = "example.org"\nprivate_key_file = "dkim-garbage.pem"',
    }
    config = tmp_path / "newsletter.toml"
    config.write_text(f"[dkim]\n{keys[setup]}\n")
    result = run_cli("--config", str(config), "campaigns", "list")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(config) in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_keygen_never_overwrites_a_key_and_says_so(run_cli, tmp_path: Path) -> None:
    key, _, _ = keygen(run_cli, tmp_path, "ed25519")
    before = key.read_bytes()
    again = run_cli("dkim", "keygen", "--domain", "example.org", "--selector", "s",
                    "--out", str(key), "--json")  # fmt: skip
    assert again.returncode == 2 and "the file exists" in again.stderr
    assert key.read_bytes() == before
    made = run_cli("dkim", "keygen", "--domain", "example.org", "--selector", "s",
                   "--out", str(tmp_path / "k2.pem"), "--json")  # fmt: skip
    data = json.loads(made.stdout)
    assert data["id"] == data["record_name"] == "s._domainkey.example.org"
    assert data["record_value"].startswith("v=DKIM1; k=rsa; p=MII")


# --- VERP ---------------------------------------------------------------------------------


def test_verp_tokens_name_one_delivery_and_refuse_forgeries() -> None:
    address = verp_address("key", "bounces@example.org", 1234)
    assert re.fullmatch(r"bounces\+d1234-[a-z2-7]{16}@example\.org", address)
    assert len(address.partition("@")[0]) <= 64
    assert delivery_from_addresses("key", [address]) == 1234
    # Some servers upper- or lower-case the local part; a display name around it is fine.
    assert delivery_from_addresses("key", [f"Bounces <{address.upper()}>"]) == 1234
    assert delivery_from_addresses("other key", [address]) is None
    assert delivery_from_addresses("key", [address.replace("d1234", "d1235")]) is None
    assert delivery_from_addresses("key", ["bulletin@example.org", ""]) is None
    assert verp_address("key", "bounces@example.org", None) == "bounces@example.org"


def test_a_dsn_to_the_verp_address_finds_its_delivery_though_a_relay_rewrote_the_message_id(
    make_app, tmp_path: Path, sink: tuple[SMTPSink, int]
) -> None:
    app = make_app({"bounces": {"return_path": "bounces@example.org"}})
    handler, port = sink
    campaign_id = seed_campaign(app, 5)
    dispatch.send_campaign(app, campaign_id, transport=smtp(port), options=OPTIONS, actor="worker")
    senders = {rcpt: mail_from for mail_from, rcpt, _ in handler.messages}
    assert len(set(senders.values())) == 5
    assert all(s.startswith("bounces+d") and s.endswith("@example.org") for s in senders.values())

    # person3's server bounces it; a relay on the way gave the message a new Message-ID,
    # so the quoted one is not ours. The DSN comes back to the VERP address.
    victim = "person3@example.org"
    dsn = (
        (SAMPLES / "hard.eml").read_text()
        .replace("@@RECIPIENT@@", victim)
        .replace("@@MESSAGE_ID@@", "rewritten.by.relay@relay.example.net")
        .replace("To: bulletin@example.org", f"To: {senders[victim]}")
    )  # fmt: skip
    box_path = tmp_path / "bounces"
    box = mailbox.Maildir(box_path, create=True)
    box.add(("Delivered-To: " + senders[victim] + "\n" + dsn).encode())
    box.close()
    report = fetch_bounces(app, open_mailbox(app, maildir=str(box_path)))
    assert (report.hard_bounces, report.unmatched, report.suppressed) == (1, 0, 1)
    with app.session() as session:
        assert is_suppressed(session, app.suppression_key, victim)
        assert not is_suppressed(session, app.suppression_key, "person2@example.org")
        (event,) = session.scalars(select(Event)).all()
        delivery = session.get_one(Delivery, event.delivery_id)
        assert event.type == "hard_bounce" and delivery.campaign_id == campaign_id
        assert session.get_one(Subscriber, delivery.subscriber_id).email == victim


def test_without_verp_the_same_dsn_matches_nothing(
    make_app, tmp_path: Path, sink: tuple[SMTPSink, int]
) -> None:
    app = make_app()
    handler, port = sink
    campaign_id = seed_campaign(app, 2)
    dispatch.send_campaign(app, campaign_id, transport=smtp(port), options=OPTIONS, actor="worker")
    assert {mail_from for mail_from, _, _ in handler.messages} == {"bulletin@example.org"}
    dsn = (
        (SAMPLES / "hard.eml").read_text()
        .replace("@@RECIPIENT@@", "person1@example.org")
        .replace("@@MESSAGE_ID@@", "rewritten.by.relay@relay.example.net")
    )  # fmt: skip
    box = mailbox.Maildir(tmp_path / "bounces", create=True)
    box.add(dsn.encode())
    box.close()
    report = fetch_bounces(app, open_mailbox(app, maildir=str(tmp_path / "bounces")))
    assert (report.hard_bounces, report.unmatched, report.suppressed) == (1, 1, 0)
