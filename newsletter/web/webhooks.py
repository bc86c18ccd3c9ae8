"""POST /webhooks/<provider>: bounces, complaints and unsubscribes from sending providers.

A thin shell over newsletter.feedback.WebhookReceiver: read the body (up to
5 MB: SendGrid posts events in batches), hand it over with the headers and
the basic-auth credentials, and answer. 200 when the events were taken in
(also when a provider repeats an event: it is recorded once), 401/403 when
the request cannot be verified (the reason goes to the log, never into the
answer, and nothing is acted on), 400 for a verified body that cannot be
read, 404 for an unknown provider. Answers are plain text: providers read
only the status.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from newsletter.feedback import Malformed, Refused, WebhookReceiver, WebhookRequest
from newsletter.feedback.webhooks import PROVIDERS

if TYPE_CHECKING:
    from newsletter.web.app import View, WebApp

log = logging.getLogger(__name__)

WEBHOOK_MAX_BYTES = 5 * 1024 * 1024
# The longest piece of a refusal's reason a log line carries.
LOG_CHARS = 200


def routes() -> list[tuple[Rule, View]]:
    return [(Rule("/webhooks/<provider>", endpoint="webhook", methods=["POST"]), webhook)]


def receiver(web: WebApp) -> WebhookReceiver:
    """The app's one receiver (it keeps fetched SNS certificates), built on first use."""
    found = web.__dict__.get("_webhook_receiver")
    if found is None:
        found = web.__dict__.setdefault("_webhook_receiver", WebhookReceiver(web.app))
    return found


def _plain(status: int, text: str) -> Response:
    return Response(text + "\n", status=status, mimetype="text/plain")


def webhook(web: WebApp, request: Request, provider: str) -> Response:
    if provider not in PROVIDERS:
        return _plain(404, "no such webhook")
    request.max_content_length = WEBHOOK_MAX_BYTES
    body = request.get_data(cache=True)
    auth = request.authorization
    basic = (
        (auth.username or "", auth.password or "")
        if auth is not None and auth.type == "basic"
        else None
    )
    headers = {name.lower(): value for name, value in request.headers.items()}
    try:
        outcome = receiver(web).receive(provider, WebhookRequest(body, headers, basic))
    except Refused as exc:
        # Reasons may quote what the stranger sent: the line is bounded.
        log.warning("webhook %s refused (%s): %s", provider, exc.status, exc.reason[:LOG_CHARS])
        response = _plain(exc.status, "refused")
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="webhooks"'
        return response
    except Malformed as exc:
        log.warning("webhook %s: unreadable body: %s", provider, str(exc)[:LOG_CHARS])
        return _plain(400, "unreadable body")
    report = outcome.report
    log.info(
        "webhook %s: %d recorded, %d repeated, %d unmatched, %d suppressed%s",
        provider,
        report.recorded,
        report.duplicates,
        report.unmatched,
        report.suppressed,
        f" ({outcome.note})" if outcome.note else "",
    )
    return _plain(200, "ok")
