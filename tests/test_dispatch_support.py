"""What the dispatch, transport and SMTP tests share (this module holds no tests).

- `seed_campaign`: an approved campaign with N confirmed subscribers, written
  straight with the models' tables (fast enough for thousands of rows).
- `SMTPSink`: a real SMTP server (aiosmtpd) on 127.0.0.1 on a free port, in a
  thread of the test process, that records every message it accepts and can be
  told to refuse, defer, throttle or drop the connection for chosen recipients.
- `self_signed_certificate`: a certificate for 127.0.0.1/localhost made with
  the openssl command, for TLS tests.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import func, insert, select

from newsletter.app import Newsletter
from newsletter.models import (
    Campaign,
    CampaignItem,
    Item,
    MailingList,
    Subscriber,
    Subscription,
    campaign_lists,
)


def seed_campaign(
    app: Newsletter,
    count: int,
    *,
    status: str = "approved",
    domain: str = "example.org",
    prefix: str = "person",
) -> int:
    """An approved bulletin to `count` confirmed subscribers person0@…, person1@…."""
    tag = uuid.uuid4().hex[:8]
    with app.session() as session:
        item = Item(
            source="tests",
            source_id=tag,
            kind="report",
            title="A community report on harm reduction",
            date=date(2019, 6, 3),
            summary="What members told us this spring.",
            body_text="What members told us this spring.",
            body_html="<p>What members told us this spring.</p>",
            link="https://example.org/report",
            link_text="Read the full report",
        )
        campaign = Campaign(
            kind="bulletin",
            status=status,
            month="2019-06",
            subject="Example Network bulletin — June 2019",
            intro="Welcome to the June bulletin.",
        )
        campaign.entries = [CampaignItem(item=item, position=0)]
        mailing_list = MailingList(name=f"members-{tag}", title="Members")
        session.add_all([campaign, mailing_list])
        session.flush()
        session.execute(
            insert(campaign_lists).values(campaign_id=campaign.id, list_id=mailing_list.id)
        )
        rows = [
            {
                "email": f"{prefix}{i}@{domain}",
                "email_key": f"{prefix}{i}@{domain}".casefold(),
                "name": f"Person {i}",
                "language": "en",
                "attributes": {},
                "status": "active",
            }
            for i in range(count)
        ]
        if rows:
            before = session.scalar(select(func.max(Subscriber.id))) or 0
            session.execute(insert(Subscriber.__table__), rows)
            ids = session.scalars(select(Subscriber.id).where(Subscriber.id > before)).all()
            session.execute(
                insert(Subscription.__table__),
                [
                    {"subscriber_id": sid, "list_id": mailing_list.id, "status": "confirmed"}
                    for sid in ids
                ],
            )
        return campaign.id


def set_status(app: Newsletter, campaign_id: int, status: str) -> None:
    with app.session() as session:
        session.get_one(Campaign, campaign_id).status = status


# --- a real SMTP server ------------------------------------------------------------

# Given a recipient address and how many times it was offered before, a reply to
# RCPT ("451 4.3.0 try later"), or None to accept it.
RcptScript = Callable[[str, int], str | None]


class SMTPSink:
    """aiosmtpd handler that keeps what it accepts and answers as scripted."""

    def __init__(
        self,
        *,
        rcpt_script: RcptScript | None = None,
        drop_before_data: Callable[[int], bool] | None = None,
        delay: float = 0.0,
        pipelining: bool = False,
    ) -> None:
        self.rcpt_script = rcpt_script
        # Announce PIPELINING (aiosmtpd reads pipelined commands one by one anyway).
        self.pipelining = pipelining
        # Given the number of DATA commands so far, whether to hang up instead of answering.
        self.drop_before_data = drop_before_data
        self.delay = delay
        self.messages: list[tuple[str, str, bytes]] = []
        # When each message was accepted (time.monotonic()), in order.
        self.accepted_at: list[float] = []
        self.offered: Counter[str] = Counter()
        self.data_commands = 0
        self.connections = 0
        self.authenticated: list[str] = []
        self.lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            tries = self.offered[address]
            self.offered[address] += 1
        reply = self.rcpt_script(address, tries) if self.rcpt_script else None
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.data_commands += 1
            number = self.data_commands
        if self.drop_before_data is not None and self.drop_before_data(number):
            # Hang up before answering: the message was not kept.
            server.transport.close()
            return "421 4.3.0 closing"
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.messages.append((envelope.mail_from, rcpt, envelope.content))
                self.accepted_at.append(time.monotonic())
            queue_id = f"Q{len(self.messages)}"
        return f"250 2.0.0 Ok: queued as {queue_id}"

    def received(self) -> Counter[str]:
        with self.lock:
            return Counter(rcpt for _, rcpt, _ in self.messages)


class _Controller(Controller):
    """aiosmtpd's controller, listening on a free port chosen by the kernel (port 0)."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def start_sink(sink: SMTPSink, **server_options: Any) -> _Controller:
    controller = _Controller(sink, hostname="127.0.0.1", port=0, **server_options)
    controller.start()
    return controller


def password_authenticator(user: str, password: str, sink: SMTPSink):
    def authenticate(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            ok = auth_data.login.decode() == user and auth_data.password.decode() == password
            if ok:
                sink.authenticated.append(user)
            # handled=False: let the server answer 535 itself on a failure.
            return AuthResult(success=ok, handled=False)
        return AuthResult(success=False, handled=False)

    return authenticate


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) for CN=localhost with 127.0.0.1 and localhost as names."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=localhost",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key
