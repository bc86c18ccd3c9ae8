"""SendGrid v3 mail send: `sendgrid://KEY@default`, one request per template for up to 1,000.

Why substitutions: SendGrid takes no raw MIME, and one request has one body
for all of its (at most 1,000) personalizations. So the campaign's text and
HTML go once per request with a substitution tag in place of each personal
field, and each personalization carries its recipient, the values of the
tags (escaped for the HTML ones, as the composer escapes them), its own
headers (List-Unsubscribe, the one header that differs per recipient) and a
`delivery_id` custom argument, which the event webhook echoes so that a
bounce finds its delivery. What the recipient gets is exactly the message the
composer built. Tags hold a random part chosen per request, so no text of the
edition can be taken for a tag. A message without a template (not from a
campaign), or whose values pass SendGrid's 10,000-byte limit on a
personalization's substitutions, goes in a request of its own with its bodies
in full.

Answers: 202 with `X-Message-Id`, one for the request (the webhook's
`sg_message_id` starts with it); 400 whose errors name `personalizations.N`:
those recipients fail and the others are sent again at once; any other 400
or a 413: the batch is halved to find the culprit (http.send_in_halves);
401/403 fatal; 429 (X-RateLimit-Reset) and 5xx retried.

Open, click and subscription tracking are switched off in every request: the
project adds no tracking of its own unless an admin turns it on, and
SendGrid's would rewrite the unsubscribe links.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from email.utils import parseaddr
from functools import partial
from html import escape
from typing import TYPE_CHECKING, Any

from newsletter.transports.base import OutgoingMessage, SendLimits, SendResult, Transport
from newsletter.transports.providers.http import (
    PROVIDER_PARAMS,
    ApiSettings,
    ApiTransport,
    RequestRefused,
    Unreachable,
    answer_for_request,
    api_settings,
    chunks,
    detail,
    secret_from,
    send_in_halves,
    with_batch,
)
from newsletter.transports.providers.parts import (
    MessageParts,
    PersonalisedGroup,
    literal_text,
    message_parts,
    personalised_groups,
    tagged,
)

if TYPE_CHECKING:
    from newsletter.transports.factory import TransportSetup

DEFAULT_BASE = "https://api.sendgrid.com"
MAX_BATCH = 1000
SUBSTITUTIONS_LIMIT = 10_000
PARAMS = PROVIDER_PARAMS
PERSONALIZATION_FIELD = re.compile(r"^personalizations\.(\d+)\b")
NO_TRACKING = {
    "click_tracking": {"enable": False, "enable_text": False},
    "open_tracking": {"enable": False},
    "subscription_tracking": {"enable": False},
}


class SendGridTransport(ApiTransport):
    provider = "sendgrid"

    def __init__(
        self, name: str, key: str, settings: ApiSettings, limits: SendLimits | None = None
    ) -> None:
        super().__init__(name, settings, limits)
        self._key = key

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        items = [message_parts(message) for message in messages]
        results: list[SendResult | None] = [None] * len(items)
        groups, alone = personalised_groups(items)
        for group in groups:
            for positions in chunks(range(len(group.parts)), self.settings.batch_size):
                for position, result in self._send_group(group, positions):
                    results[group.positions[position]] = result
        for position in alone:
            results[position] = self._send_whole([items[position]])[0]
        return [result for result in results if result is not None]

    def _send_group(
        self, group: PersonalisedGroup, positions: Sequence[int]
    ) -> list[tuple[int, SendResult]]:
        template = group.template.template
        literals = literal_text(template.text) + literal_text(template.html)
        nonce = secrets.token_hex(6)
        while nonce in literals:  # pragma: no cover - twelve random hex digits
            nonce = secrets.token_hex(6)

        def text_tag(field: str) -> str:
            return f"-{nonce}-{field}-"

        def html_tag(field: str) -> str:
            return f"-{nonce}-{field}-h-"

        first = group.parts[0]
        base = self._envelope(first)
        base["headers"] = dict(group.shared)
        base["content"] = [
            {"type": "text/plain", "value": tagged(template.text, text_tag)},
            {"type": "text/html", "value": tagged(template.html, html_tag)},
        ]
        own = group.own or [()] * len(group.parts)
        entries: list[tuple[int, dict[str, Any]]] = []
        done: list[tuple[int, SendResult]] = []
        for position in positions:
            parts = group.parts[position]
            values = group.parts[position].personal.values  # type: ignore[union-attr]
            substitutions = {text_tag(f): values[f] for f in template.text.fields}
            substitutions.update({html_tag(f): escape(values[f]) for f in template.html.fields})
            size = sum(len(k.encode()) + len(v.encode()) for k, v in substitutions.items())
            if size > SUBSTITUTIONS_LIMIT:
                done.append((position, self._send_whole([parts])[0]))
                continue
            entry = self._personalization(parts, dict(own[position]))
            entry["substitutions"] = substitutions
            entries.append((position, entry))
        if entries:
            results = send_in_halves(
                [entry for _, entry in entries],
                lambda subset: self._post(base, list(subset)),
            )
            done += [(p, r) for (p, _), r in zip(entries, results, strict=True)]
        return done

    def _send_whole(self, items: Sequence[MessageParts]) -> list[SendResult]:
        """Messages with their bodies in full, one request each (they share no body)."""
        results = []
        for parts in items:
            text, html = parts.bodies()
            base = self._envelope(parts)
            base["headers"] = {}
            base["content"] = [
                {"type": "text/plain", "value": text or " "},
                {"type": "text/html", "value": html or escape(text)},
            ]
            entry = self._personalization(parts, dict(parts.headers))
            results += send_in_halves([entry], partial(self._post, base))
        return results

    def _envelope(self, parts: MessageParts) -> dict[str, Any]:
        body: dict[str, Any] = {
            "from": _address(parts.from_address, parts.from_name),
            "subject": parts.subject or " ",
            "tracking_settings": NO_TRACKING,
        }
        if parts.reply_to:
            name, address = parseaddr(parts.reply_to)
            body["reply_to"] = _address(address, name)
        return body

    @staticmethod
    def _personalization(parts: MessageParts, headers: dict[str, str]) -> dict[str, Any]:
        entry: dict[str, Any] = {"to": [_address(parts.to_address, parts.to_name)]}
        if headers:
            entry["headers"] = headers
        if parts.message.delivery_id is not None:
            entry["custom_args"] = {"delivery_id": str(parts.message.delivery_id)}
        return entry

    def _post(self, base: dict[str, Any], given: Sequence[dict[str, Any]]) -> list[SendResult]:
        """One request; recipients SendGrid names as invalid fail, the others go again."""
        entries = list(given)
        results: list[SendResult | None] = [None] * len(entries)
        pending = list(range(len(entries)))
        while pending:
            body = {**base, "personalizations": [entries[i] for i in pending]}
            try:
                response = self.client.request(
                    "POST",
                    "/v3/mail/send",
                    json=body,
                    headers={"Authorization": f"Bearer {self._key}"},
                )
            except Unreachable as exc:
                for i in pending:
                    results[i] = exc.result()
                break
            status = response.status_code
            if status in (200, 202):
                message_id = response.headers.get("X-Message-Id") or None
                accepted = SendResult(
                    "sent", f"{status} accepted by sendgrid", provider_message_id=message_id
                )
                for i in pending:
                    results[i] = accepted
                break
            answer = answer_for_request("sendgrid", response)
            if answer is not None:
                for i in pending:
                    results[i] = answer
                break
            named = _named_personalizations(response) if status == 400 else None
            if named:
                for index, text in named.items():
                    results[pending[index]] = SendResult(
                        "failed", f"sendgrid refused this recipient: {text}"
                    )
                pending = [p for n, p in enumerate(pending) if n not in named]
                continue
            if status in (400, 413):
                raise RequestRefused(f"sendgrid refused the request: {detail(response)}")
            fatal = SendResult("retry", f"sendgrid answered {detail(response)}", fatal=True)
            for i in pending:
                results[i] = fatal
            break
        return [result for result in results if result is not None]


def _address(email: str, name: str = "") -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


def _named_personalizations(response: Any) -> dict[int, str] | None:
    """{index: error} when every error of a 400 names one personalization; else None."""
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return None
    named: dict[int, str] = {}
    for error in errors:
        match = PERSONALIZATION_FIELD.match(str(error.get("field") or ""))
        if match is None:
            return None
        named[int(match.group(1))] = str(error.get("message", "invalid"))
    return named or None


def build_sendgrid(setup: TransportSetup) -> Transport:
    dsn, table = setup.dsn, setup.table
    key = secret_from(
        dsn, setup.app.env, table.password_env, "SendGrid API key", "sendgrid://KEY@default"
    )
    settings = api_settings(
        setup,
        provider="sendgrid",
        base_url=DEFAULT_BASE,
        max_batch=MAX_BATCH,
    )
    return SendGridTransport(setup.name, key, settings, with_batch(setup.limits, settings))
