"""Provider webhooks, driven in-process: correctly signed, badly signed and replayed payloads.

Nothing unverified is ever acted on: after every refusal the database holds
no new event and no new suppression.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import func, select
from werkzeug.serving import make_server
from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from newsletter.app import Newsletter
from newsletter.audience import suppression_reason
from newsletter.dispatch import send_campaign
from newsletter.feedback.sns import string_to_sign
from newsletter.models import Delivery, Event, Subscriber, Subscription
from newsletter.web import make_wsgi_app
from tests.test_dispatch_support import seed_campaign

TOPIC = "arn:aws:sns:eu-west-1:123456789012:newsletter-feedback"
MAILGUN_KEY = "mailgun-signing-key"
PASSWORD = "hook-password"


# --- a self-made SNS signing certificate, served from loopback ----------------------------


class CertificateServer:
    """Serves the SNS signing certificate and records SubscribeURL visits."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test")])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        self.pem = certificate.public_bytes(serialization.Encoding.PEM)
        self.hits: list[str] = []
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        self.hits.append(request.full_path)
        body = self.pem if request.path == "/cert.pem" else b"<ConfirmSubscriptionResponse/>"
        return Response(body)(environ, start_response)

    def sign(self, message: dict[str, Any]) -> dict[str, Any]:
        signed = {**message, "SignatureVersion": "2", "SigningCertURL": f"{self.url}/cert.pem"}
        signature = self.key.sign(string_to_sign(signed), padding.PKCS1v15(), hashes.SHA256())
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def sns_server() -> Iterator[CertificateServer]:
    server = CertificateServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def sendgrid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_key_text(key: ec.EllipticCurvePrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.fixture
def hooks(make_app, sns_server, sendgrid_key) -> Newsletter:
    return make_app(
        {
            "feedback": {
                "ses_topic_arns": [TOPIC],
                "sns_certificate_url_pattern": r"^http://127\.0\.0\.1:\d+/",
            }
        },
        env={
            "NEWSLETTER_SENDGRID_WEBHOOK_KEY": public_key_text(sendgrid_key),
            "NEWSLETTER_MAILGUN_SIGNING_KEY": MAILGUN_KEY,
            "NEWSLETTER_WEBHOOK_PASSWORD": PASSWORD,
        },
    )


@pytest.fixture
def client(hooks) -> Iterator[Client]:
    web = make_wsgi_app(hooks)
    yield Client(web)
    web.close()


def sent(app: Newsletter, count: int = 3) -> dict[str, int]:
    """A campaign sent to the outbox; {address: delivery id}."""
    campaign_id = seed_campaign(app, count)
    send_campaign(app, campaign_id, actor="tester")
    with app.session() as session:
        rows = session.execute(
            select(Subscriber.email, Delivery.id).join(
                Delivery, Delivery.subscriber_id == Subscriber.id
            )
        ).all()
    return dict(rows)


def event_count(app: Newsletter) -> int:
    with app.session() as session:
        return session.scalar(select(func.count()).select_from(Event)) or 0


def reason(app: Newsletter, address: str) -> str | None:
    with app.session() as session:
        return suppression_reason(session, app.suppression_key, address)


def active_lists(app: Newsletter, address: str) -> int:
    with app.session() as session:
        return session.scalar(
            select(func.count())
            .select_from(Subscription)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Subscriber.email == address, Subscription.status != "unsubscribed")
        )


# --- SendGrid ---------------------------------------------------------------------------


def sendgrid_post(
    client: Client, key: ec.EllipticCurvePrivateKey, events: list[dict[str, Any]], **options: Any
) -> Any:
    body = json.dumps(events).encode()
    timestamp = str(options.get("timestamp", int(time.time())))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }
    if options.get("tamper"):
        body = body.replace(b"bounce", b"bouncy")
    return client.post("/webhooks/sendgrid", data=body, headers=headers)


def test_sendgrid_signed_events_are_recorded_once_and_bad_ones_refused(
    hooks, client, sendgrid_key
) -> None:
    deliveries = sent(hooks)
    bounce = {
        "email": "person0@example.org",
        "event": "bounce",
        "type": "bounce",
        "status": "5.1.1",
        "reason": "550 5.1.1 no such user",
        "sg_event_id": "ev-1",
        "sg_message_id": "abc.filter0001",
        "delivery_id": str(deliveries["person0@example.org"]),
    }
    spam = {
        "email": "person1@example.org",
        "event": "spamreport",
        "sg_event_id": "ev-2",
        "delivery_id": str(deliveries["person1@example.org"]),
    }
    opened = {"email": "person2@example.org", "event": "open", "sg_event_id": "ev-3"}

    assert sendgrid_post(client, sendgrid_key, [bounce], tamper=True).status_code == 403
    stale = sendgrid_post(client, sendgrid_key, [bounce], timestamp=int(time.time()) - 3600)
    assert stale.status_code == 403
    unsigned = client.post("/webhooks/sendgrid", data=json.dumps([bounce]))
    assert unsigned.status_code == 401
    assert event_count(hooks) == 0 and reason(hooks, "person0@example.org") is None

    assert sendgrid_post(client, sendgrid_key, [bounce, spam, opened]).status_code == 200
    assert reason(hooks, "person0@example.org") == "hard_bounce"
    assert reason(hooks, "person1@example.org") == "complaint"
    assert active_lists(hooks, "person1@example.org") == 0
    recorded = event_count(hooks)
    # SendGrid posts the same events again (a slow answer): nothing happens twice.
    assert sendgrid_post(client, sendgrid_key, [bounce, spam]).status_code == 200
    assert event_count(hooks) == recorded
    with hooks.session() as session:
        types = sorted(session.scalars(select(Event.type)))
    # The complaint, and the unsubscribe it caused through the person's own path.
    assert types == ["complaint", "hard_bounce", "unsubscribe"]
    from newsletter.feedback import campaign_feedback

    with hooks.session() as session:
        campaign_id = session.scalars(select(Delivery.campaign_id)).first()
    came_back = campaign_feedback(hooks, campaign_id)
    assert (came_back.hard_bounces, came_back.complaints, came_back.sent) == (1, 1, 3)
    assert came_back.complaint_rate_percent == 33.333
    assert "large mailbox providers start refusing mail at 0.1%" in came_back.warning


def test_sendgrid_without_a_key_takes_basic_auth_or_nothing(make_app) -> None:
    app = make_app(env={"NEWSLETTER_WEBHOOK_PASSWORD": PASSWORD})
    web = make_wsgi_app(app)
    client = Client(web)
    sent(app, 1)
    body = json.dumps([{"email": "person0@example.org", "event": "spamreport", "sg_event_id": "x"}])
    assert client.post("/webhooks/sendgrid", data=body).status_code == 401
    wrong = client.post("/webhooks/sendgrid", data=body, auth=("newsletter", "nope"))
    assert wrong.status_code == 403
    assert event_count(app) == 0
    good = client.post("/webhooks/sendgrid", data=body, auth=("newsletter", PASSWORD))
    assert good.status_code == 200
    assert reason(app, "person0@example.org") == "complaint"
    web.close()


# --- Mailgun ----------------------------------------------------------------------------


def mailgun_payload(event_data: dict[str, Any], **options: Any) -> bytes:
    timestamp = str(options.get("timestamp", int(time.time())))
    token = options.get("token", uuid.uuid4().hex)
    signature = hmac.new(
        options.get("key", MAILGUN_KEY).encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    return json.dumps(
        {
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": event_data,
        }
    ).encode()


def test_mailgun_hmac_is_checked_and_tokens_never_replay(hooks, client) -> None:
    deliveries = sent(hooks)
    failed = {
        "id": "mg-event-1",
        "event": "failed",
        "severity": "permanent",
        "reason": "bounce",
        "recipient": "person2@example.org",
        "delivery-status": {"code": 550, "message": "5.1.1 mailbox unavailable"},
        "message": {"headers": {"message-id": "batch@mg.example.org"}},
        "user-variables": {"delivery_id": str(deliveries["person2@example.org"])},
    }
    forged = mailgun_payload(failed, key="someone-elses-key")
    assert client.post("/webhooks/mailgun", data=forged).status_code == 403
    old = mailgun_payload(failed, timestamp=int(time.time()) - 7200)
    assert client.post("/webhooks/mailgun", data=old).status_code == 403
    assert client.post("/webhooks/mailgun", data=b'{"event-data": {}}').status_code == 401
    assert event_count(hooks) == 0

    good = mailgun_payload(failed, token="token-1")
    assert client.post("/webhooks/mailgun", data=good).status_code == 200
    assert reason(hooks, "person2@example.org") == "hard_bounce"
    with hooks.session() as session:
        event = session.scalars(select(Event)).one()
        assert event.delivery_id == deliveries["person2@example.org"]
        assert event.detail["code"] == "550"
    # The very same signed request again: its token was used.
    assert client.post("/webhooks/mailgun", data=good).status_code == 403
    assert event_count(hooks) == 1

    unsubscribed = {
        "id": "mg-event-2",
        "event": "unsubscribed",
        "recipient": "person0@example.org",
        "user-variables": {"delivery_id": str(deliveries["person0@example.org"])},
    }
    assert client.post("/webhooks/mailgun", data=mailgun_payload(unsubscribed)).status_code == 200
    assert active_lists(hooks, "person0@example.org") == 0


# --- Postmark ---------------------------------------------------------------------------


def test_postmark_hooks_need_basic_auth(hooks, client) -> None:
    deliveries = sent(hooks)
    bounce = json.dumps(
        {
            "RecordType": "Bounce",
            "ID": 4323372036854775807,
            "Type": "HardBounce",
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
            "Email": "person1@example.org",
            "Description": "The server was unable to deliver your message",
            "Metadata": {"delivery_id": str(deliveries["person1@example.org"])},
        }
    )
    missing = client.post("/webhooks/postmark", data=bounce)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Basic")
    wrong = client.post("/webhooks/postmark", data=bounce, auth=("newsletter", "guess"))
    assert wrong.status_code == 403
    assert event_count(hooks) == 0

    auth = ("newsletter", PASSWORD)
    assert client.post("/webhooks/postmark", data=bounce, auth=auth).status_code == 200
    assert client.post("/webhooks/postmark", data=bounce, auth=auth).status_code == 200
    assert event_count(hooks) == 1
    assert reason(hooks, "person1@example.org") == "hard_bounce"

    change = json.dumps(
        {
            "RecordType": "SubscriptionChange",
            "MessageID": "a4909a96-73e2-4f96-9cda-0d6f33e5b7c2",
            "ChangedAt": "2019-06-03T10:00:00Z",
            "Recipient": "person2@example.org",
            "SuppressSending": True,
            "SuppressionReason": "ManualSuppression",
            "Metadata": {"delivery_id": str(deliveries["person2@example.org"])},
        }
    )
    assert client.post("/webhooks/postmark", data=change, auth=auth).status_code == 200
    assert active_lists(hooks, "person2@example.org") == 0
    assert client.post("/webhooks/postmark", data=b"[1, 2", auth=auth).status_code == 400
    assert client.post("/webhooks/elsewhere", data=b"{}").status_code == 404


# --- Amazon SES through SNS -----------------------------------------------------------------


def sns_notification(note: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": fields.get("message_id", str(uuid.uuid4())),
        "TopicArn": fields.get("topic", TOPIC),
        "Message": json.dumps(note),
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }


def test_ses_notifications_need_a_valid_sns_signature_and_our_topic(
    hooks, client, sns_server
) -> None:
    sent(hooks)
    with hooks.session() as session:
        delivery = session.scalars(
            select(Delivery).join(Subscriber).where(Subscriber.email == "person0@example.org")
        ).one()
        delivery.provider_message_id = "0102016b1d2c3e4f-ses"
    bounce = {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {"emailAddress": "person0@example.org", "status": "5.1.1", "diagnosticCode": "x"}
            ],
        },
        "mail": {"messageId": "0102016b1d2c3e4f-ses"},
    }
    message = sns_server.sign(sns_notification(bounce, message_id="sns-1"))

    tampered = {**message, "Message": message["Message"].replace("Permanent", "Transient")}
    assert client.post("/webhooks/ses", data=json.dumps(tampered)).status_code == 403
    elsewhere = {**message, "SigningCertURL": "https://attacker.example/cert.pem"}
    hits = len(sns_server.hits)
    assert client.post("/webhooks/ses", data=json.dumps(elsewhere)).status_code == 403
    assert len(sns_server.hits) == hits  # the certificate was never fetched from there
    other_topic = sns_server.sign(sns_notification(bounce, topic="arn:aws:sns:x:1:other"))
    assert client.post("/webhooks/ses", data=json.dumps(other_topic)).status_code == 403
    assert event_count(hooks) == 0

    assert client.post("/webhooks/ses", data=json.dumps(message)).status_code == 200
    assert reason(hooks, "person0@example.org") == "hard_bounce"
    with hooks.session() as session:
        assert session.scalars(select(Event.delivery_id)).one() == delivery.id
    # SNS delivers a message again when it is not sure we got it: recorded once.
    assert client.post("/webhooks/ses", data=json.dumps(message)).status_code == 200
    assert event_count(hooks) == 1


def test_an_sns_subscription_is_confirmed_by_visiting_its_url(hooks, client, sns_server) -> None:
    confirmation = sns_server.sign(
        {
            "Type": "SubscriptionConfirmation",
            "MessageId": str(uuid.uuid4()),
            "Token": "2336412f37fb687f5d51e6e2425",
            "TopicArn": TOPIC,
            "Message": "You have chosen to subscribe to the topic.",
            "SubscribeURL": f"{sns_server.url}/?Action=ConfirmSubscription&Token=2336412f",
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        }
    )
    assert client.post("/webhooks/ses", data=json.dumps(confirmation)).status_code == 200
    assert any(re.search(r"Action=ConfirmSubscription", hit) for hit in sns_server.hits)
