"""Taking in a provider's webhook: verify, then parse, then record. Never the other way.

`WebhookReceiver.receive(provider, request)` is the front door the web view
calls. A request that cannot be verified raises `Refused` (the view answers
401 or 403 and logs the reason) before a byte of its body is interpreted;
a verified body that is not what the provider sends raises `Malformed` (400).

How each provider is verified:

- sendgrid: the signed event webhook's ECDSA signature when a verification
  key is configured, else HTTP basic auth; with neither, refused.
- mailgun: the HMAC signature in the payload, a recent timestamp, and a
  token never seen before (kept as a receipt).
- postmark: HTTP basic auth.
- ses: the SNS message signature and a configured topic; subscription
  confirmations are confirmed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from newsletter.app import Newsletter
from newsletter.feedback import parsers, receipts
from newsletter.feedback.events import FeedbackEvent
from newsletter.feedback.parsers import PayloadError
from newsletter.feedback.rules import FeedbackReport, record_feedback
from newsletter.feedback.signatures import (
    Unverified,
    check_fresh,
    verify_basic,
    verify_mailgun,
    verify_sendgrid,
)
from newsletter.feedback.sns import SNSVerifier

log = logging.getLogger(__name__)

PROVIDERS = ("sendgrid", "mailgun", "postmark", "ses")
SENDGRID_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


class Refused(Exception):
    """The request is not shown to come from the provider: 401 (no proof) or 403 (bad proof)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Malformed(Exception):
    """A verified request whose body cannot be read."""


@dataclass(frozen=True)
class WebhookRequest:
    body: bytes
    headers: dict[str, str]
    # (user, password) of HTTP basic auth, when given.
    basic_auth: tuple[str, str] | None = None


@dataclass
class WebhookOutcome:
    report: FeedbackReport = field(default_factory=FeedbackReport)
    note: str = ""


class WebhookReceiver:
    def __init__(self, app: Newsletter) -> None:
        self.app = app
        self.config = app.config.feedback
        self.sns = SNSVerifier(self.config.sns_certificate_url_pattern)

    def secret(self, env_name: str) -> str:
        return self.app.env.get(env_name, "")

    def receive(self, provider: str, request: WebhookRequest) -> WebhookOutcome:
        handler = getattr(self, f"_{provider}", None) if provider in PROVIDERS else None
        if handler is None:
            raise LookupError(provider)
        try:
            events, note = handler(request)
        except Unverified as exc:
            raise Refused(exc.status, str(exc)) from None
        except PayloadError as exc:
            raise Malformed(str(exc)) from None
        except (KeyError, IndexError, TypeError, AttributeError, ValueError, RecursionError) as exc:
            # Well-formed JSON of an unexpected shape (a list where an object belongs, a
            # number for a string): the provider's request is unreadable, not our failure.
            raise Malformed(f"unexpected {type(exc).__name__} reading the payload") from None
        return WebhookOutcome(record_feedback(self.app, events), note)

    # -- one method per provider: verify first, then parse --------------------------------

    def _sendgrid(self, request: WebhookRequest) -> tuple[list[FeedbackEvent], str]:
        key = self.secret(self.config.sendgrid_public_key_env)
        if key:
            signature = request.headers.get(SENDGRID_SIGNATURE.lower(), "")
            timestamp = request.headers.get(SENDGRID_TIMESTAMP.lower(), "")
            if not signature or not timestamp:
                raise Unverified("no SendGrid signature headers", 401)
            check_fresh(timestamp, self.config.webhook_max_age_seconds)
            verify_sendgrid(key, timestamp, request.body, signature)
        else:
            self._basic(request)
        return parsers.sendgrid_events(request.body), ""

    def _mailgun(self, request: WebhookRequest) -> tuple[list[FeedbackEvent], str]:
        key = self.secret(self.config.mailgun_signing_key_env)
        if not key:
            raise Unverified("not configured: no Mailgun signing key is set")
        try:
            payload = parsers.load_json(request.body)
            signed = payload["signature"]
            timestamp, token, signature = (
                str(signed["timestamp"]),
                str(signed["token"]),
                str(signed["signature"]),
            )
        except (ValueError, KeyError, TypeError):
            raise Unverified("no Mailgun signature in the payload", 401) from None
        check_fresh(timestamp, self.config.webhook_max_age_seconds)
        verify_mailgun(key, timestamp, token, signature)
        with self.app.session() as session:
            if not receipts.remember(session, f"mailgun-token:{token}"):
                raise Unverified("the Mailgun token was used before (a replay)")
        return parsers.mailgun_events(payload), ""

    def _postmark(self, request: WebhookRequest) -> tuple[list[FeedbackEvent], str]:
        self._basic(request)
        return parsers.postmark_events(request.body), ""

    def _ses(self, request: WebhookRequest) -> tuple[list[FeedbackEvent], str]:
        try:
            message: dict[str, Any] = parsers.load_json(request.body)
            if not isinstance(message, dict):
                raise ValueError
        except ValueError:
            raise Unverified("no SNS message in the body") from None
        self.sns.verify(message)
        topics = self.config.ses_topic_arns
        if message.get("TopicArn") not in topics:
            raise Unverified(f"the SNS topic {message.get('TopicArn')!r} is not in ses_topic_arns")
        check_fresh(_epoch(message.get("Timestamp")), self.config.webhook_max_age_seconds)
        kind = message.get("Type")
        if kind == "SubscriptionConfirmation":
            self.sns.confirm(message)
            return [], "subscription confirmed"
        if kind != "Notification":
            return [], f"{kind} ignored"
        return parsers.ses_events(str(message.get("MessageId", "")), str(message["Message"])), ""

    def _basic(self, request: WebhookRequest) -> None:
        verify_basic(
            request.basic_auth,
            self.config.webhook_user,
            self.secret(self.config.webhook_password_env),
        )


def _epoch(value: Any) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise Unverified(f"SNS Timestamp {value!r} is not a time") from None
