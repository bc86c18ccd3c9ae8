"""Requests a stranger can send: never a 500, never an echo of what they control, log
lines of bounded size; and the smaller hardening (CSV formulas, maildir leftovers)."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_webhooks import PASSWORD, TOPIC
from webkit import make_lists
from werkzeug.test import Client

from newsletter.app import Newsletter
from newsletter.audience.csvfile import CsvFile, from_spreadsheet_cell, spreadsheet_cell
from newsletter.audience.exports import export_subscribers
from newsletter.audience.joining import subscribe
from newsletter.models import Event
from newsletter.service import HealthRoute, Service
from newsletter.transports.maildir import MaildirTransport
from newsletter.web import WebApp, make_wsgi_app
from newsletter.web.server import redact_path

DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.fixture
def web(make_app) -> Iterator[WebApp]:
    app = make_app(
        {"feedback": {"ses_topic_arns": [TOPIC]}},
        env={
            "NEWSLETTER_WEBHOOK_PASSWORD": PASSWORD,
            "NEWSLETTER_MAILGUN_SIGNING_KEY": "mailgun-signing-key",
        },
    )
    make_lists(app)
    pages = make_wsgi_app(app)
    yield pages
    pages.close()


@pytest.fixture
def client(web: WebApp) -> Client:
    return Client(web)


@pytest.mark.parametrize("provider", ["ses", "mailgun", "postmark", "sendgrid"])
def test_deeply_nested_json_to_a_webhook_is_a_4xx(client: Client, provider: str) -> None:
    assert 400 <= client.post(f"/webhooks/{provider}", data=DEEP).status_code < 500
    auth = ("newsletter", PASSWORD)
    assert 400 <= client.post(f"/webhooks/{provider}", data=DEEP, auth=auth).status_code < 500


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"RecordType": "Bounce", "Type": "HardBounce", "Metadata": [1, 2]},
        {"RecordType": "Bounce", "Type": "HardBounce", "Metadata": {"delivery_id": 2**80}},
        {"RecordType": "SpamComplaint", "Email": {"a": 1}, "ID": [1]},
        {"RecordType": "SubscriptionChange", "SuppressSending": True, "Metadata": "x"},
        {"RecordType": ["Bounce"]},
    ],
)
def test_odd_authenticated_postmark_payloads_are_never_a_500(client: Client, payload) -> None:
    response = client.post(
        "/webhooks/postmark", data=json.dumps(payload), auth=("newsletter", PASSWORD)
    )
    assert response.status_code in (200, 400)


@pytest.mark.parametrize(
    "items",
    [
        [{"event": "bounce", "email": ["x"], "delivery_id": {"a": 1}}],
        [{"event": "dropped", "reason": None, "sg_event_id": {"x": 1}}],
        [1, 2, 3],
        {"event": "bounce"},
    ],
)
def test_odd_authenticated_sendgrid_payloads_are_never_a_500(client: Client, items) -> None:
    response = client.post(
        "/webhooks/sendgrid", data=json.dumps(items), auth=("newsletter", PASSWORD)
    )
    assert response.status_code in (200, 400)


def test_postmark_events_without_an_id_are_keyed_on_their_content(web: WebApp) -> None:
    app = web.app
    subscribe(app, "p1@example.org", "", "en", ["news"])
    subscribe(app, "p2@example.org", "", "en", ["news"])
    client = Client(web)
    auth = ("newsletter", PASSWORD)

    def complaint(address: str) -> str:
        return json.dumps({"RecordType": "SpamComplaint", "Email": address})

    for body in (
        complaint("p1@example.org"),
        complaint("p2@example.org"),
        complaint("p1@example.org"),
    ):
        assert client.post("/webhooks/postmark", data=body, auth=auth).status_code == 200
    with app.reading() as session:
        complaints = session.scalar(
            select(func.count()).select_from(Event).where(Event.type == "complaint")
        )
    assert complaints == 2, "two distinct events taken, the repeat once"


@pytest.mark.parametrize(
    "path",
    [
        "/static/%00",
        "/static/a%00b.css",
        "/static/" + "a" * 5000,
        "/archive/members/99999999999999999999999",
        "/archive/members/18446744073709551616",
        "/u/" + "A" * 5000,
        "/p/%00",
        "/c/..%2F..%2Fetc",
    ],
)
def test_odd_addresses_are_4xx_never_500(client: Client, path: str) -> None:
    status = client.get(path).status_code
    assert 400 <= status < 500, (path, status)


def test_the_slash_merging_redirect_does_not_echo_the_host(client: Client) -> None:
    response = client.get("/archive//members", headers={"Host": "attacker.example"})
    assert 300 <= response.status_code < 400
    assert "attacker.example" not in response.headers["Location"]
    assert response.headers["Location"] == "/archive/members"


def test_request_log_lines_are_bounded() -> None:
    assert len(redact_path("/" + "x" * 60_000)) < 60
    assert redact_path("/u/token?lang=ru") == "/u/…?…"


def test_health_has_the_security_headers_and_says_only_whether_it_is_up(make_app) -> None:
    app = make_app()
    service = Service(app, port=0, workers=1)
    route = HealthRoute(make_wsgi_app(app), service)
    response = Client(route).get("/health")
    body = json.loads(response.get_data(as_text=True))
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Content-Security-Policy" in response.headers
    assert set(body) == {"status", "services", "this"}
    assert set(body["this"]) == {"status", "scheduler_running", "workers", "workers_alive"}


def test_csv_exports_neutralise_formulas_and_import_back_as_they_were(
    app: Newsletter, tmp_path: Path
) -> None:
    make_lists(app)
    subscribe(app, "-minus@example.org", '=HYPERLINK("http://x")', "en", ["news"])
    subscribe(app, "plain@example.org", "@SUM(1+1)", "en", ["news"])
    out = io.StringIO()
    export_subscribers(app, out, list_name="news")
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    cells = [cell for row in rows[1:] for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in cells), cells
    assert '\'=HYPERLINK("http://x")' in cells and "'-minus@example.org" in cells
    exported = tmp_path / "news.csv"
    exported.write_text(out.getvalue())
    with CsvFile(exported) as reader:
        fields = [record.fields for record in reader.records()]
    assert fields[0][:2] == ["-minus@example.org", '=HYPERLINK("http://x")']


def test_spreadsheet_cells_round_trip() -> None:
    for value in ("=1+1", "+1", "-1", "@x", "\tx", "plain", "'quoted", "'=kept", ""):
        assert from_spreadsheet_cell(spreadsheet_cell(value)) == value


def test_maildir_leftovers_of_a_killed_writer_are_removed_on_the_next_run(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    MaildirTransport("outbox", outbox).close()
    # A writer that is gone: a process that ran and exited, leaving a partial file.
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    pid = int(gone.stdout)
    host = socket.gethostname()
    partial = outbox / "tmp" / f"{int(time.time())}.M1P{pid}Q1.{host}"
    partial.write_bytes(b"From: half a mess")
    alive = outbox / "tmp" / f"{int(time.time())}.M2P{os.getppid()}Q1.{host}"
    alive.write_bytes(b"being written")
    old = outbox / "tmp" / "unknown-name"
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 40 * 3600, time.time() - 40 * 3600))
    transport = MaildirTransport("outbox", outbox)
    transport.close()
    assert transport.cleaned == 2
    assert not partial.exists() and not old.exists()
    assert alive.exists(), "a file a running process writes is left alone"


def test_a_webhook_refusal_logs_a_bounded_line(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    long_topic = "arn:" + "x" * 50_000
    message = {"Type": "Notification", "TopicArn": long_topic, "Message": "{}"}
    client.post("/webhooks/ses", data=json.dumps(message))
    assert caplog.records and all(len(r.getMessage()) < 600 for r in caplog.records)
