"""Postmark's batch endpoint: `postmark://TOKEN@default?stream=broadcast`, 500 messages a request.

Why whole messages: Postmark's `/email/batch` takes up to 500 complete
messages in one request, each with its own bodies and headers, so every
recipient's message goes as the composer built it (bodies from the template
and values, or from the MIME parts; List-Unsubscribe and the other list
headers as headers). The stream defaults to `broadcast`: Postmark wants bulk
mail kept apart from transactional mail. `Metadata.delivery_id` comes back in
bounce and subscription-change webhooks, so feedback finds the delivery.

Answers: 200 with one result per message, in order: `ErrorCode` 0 is sent
(with its `MessageID`), anything else fails that message only (406: the
recipient is inactive at Postmark after a bounce or a complaint; 300: an
invalid message). 401 and 422 (a wrong token, an unconfirmed sender
signature, an account not yet approved) are fatal; 429 and 5xx are retried.
Open and link tracking are switched off in every message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from newsletter.transports.base import OutgoingMessage, SendLimits, SendResult, Transport
from newsletter.transports.providers.http import (
    PROVIDER_PARAMS,
    ApiSettings,
    ApiTransport,
    Unreachable,
    answer_for_request,
    api_settings,
    chunks,
    detail,
    secret_from,
    with_batch,
)
from newsletter.transports.providers.parts import MessageParts, message_parts

if TYPE_CHECKING:
    from newsletter.transports.factory import TransportSetup

DEFAULT_BASE = "https://api.postmarkapp.com"
MAX_BATCH = 500
PARAMS = PROVIDER_PARAMS | {"stream"}


class PostmarkTransport(ApiTransport):
    provider = "postmark"

    def __init__(
        self,
        name: str,
        token: str,
        stream: str,
        settings: ApiSettings,
        limits: SendLimits | None = None,
    ) -> None:
        super().__init__(name, settings, limits)
        self.stream = stream
        self._token = token

    @property
    def account(self) -> str:
        return f"stream {self.stream}"

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        for chunk in chunks(messages, self.settings.batch_size):
            results += self._post([self._message(message_parts(m)) for m in chunk])
        return results

    def _message(self, parts: MessageParts) -> dict[str, Any]:
        text, html = parts.bodies()
        body: dict[str, Any] = {
            "From": parts.formatted_from(),
            "To": parts.formatted_to(),
            "Subject": parts.subject,
            "TextBody": text,
            "HtmlBody": html,
            "Headers": [{"Name": name, "Value": value} for name, value in parts.headers],
            "MessageStream": self.stream,
            "TrackOpens": False,
            "TrackLinks": "None",
        }
        if parts.reply_to:
            body["ReplyTo"] = parts.reply_to
        if parts.message.delivery_id is not None:
            body["Metadata"] = {"delivery_id": str(parts.message.delivery_id)}
        return body

    def _post(self, batch: list[dict[str, Any]]) -> list[SendResult]:
        try:
            response = self.client.request(
                "POST",
                "/email/batch",
                json=batch,
                headers={"X-Postmark-Server-Token": self._token, "Accept": "application/json"},
            )
        except Unreachable as exc:
            return [exc.result()] * len(batch)
        answer = answer_for_request("postmark", response)
        if answer is not None:
            return [answer] * len(batch)
        if response.status_code != 200:
            fatal = SendResult(
                "retry", f"postmark refused the batch: {detail(response)}", fatal=True
            )
            return [fatal] * len(batch)
        try:
            answers = response.json()
            if not isinstance(answers, list):
                raise ValueError("not a list")
        except ValueError:
            # Postmark said 200 but the result is unreadable: it may have taken the batch,
            # so nothing is sent again; the failure is recorded for a person to look at.
            unreadable = SendResult("failed", f"postmark answered 200 with {detail(response)}")
            return [unreadable] * len(batch)
        results = [_result(item) for item in answers[: len(batch)]]
        if len(results) < len(batch):
            missing = SendResult("failed", "postmark gave no result for this message")
            results += [missing] * (len(batch) - len(results))
        return results


def _result(item: Any) -> SendResult:
    if not isinstance(item, dict):
        return SendResult("failed", f"postmark gave an unreadable result: {item!r}"[:300])
    code = item.get("ErrorCode", -1)
    words = " ".join(str(item.get("Message", "")).split())
    if code == 0:
        return SendResult(
            "sent",
            f"accepted by postmark: {words}",
            provider_message_id=str(item.get("MessageID") or "") or None,
        )
    return SendResult("failed", f"postmark refused this message (ErrorCode {code}): {words}")


def build_postmark(setup: TransportSetup) -> Transport:
    dsn, table = setup.dsn, setup.table
    token = secret_from(
        dsn, setup.app.env, table.password_env, "Postmark server token", "postmark://TOKEN@default"
    )
    settings = api_settings(
        setup,
        provider="postmark",
        base_url=DEFAULT_BASE,
        max_batch=MAX_BATCH,
    )
    stream = dsn.params.get("stream", "broadcast") or "broadcast"
    return PostmarkTransport(
        setup.name, token, stream, settings, with_batch(setup.limits, settings)
    )
