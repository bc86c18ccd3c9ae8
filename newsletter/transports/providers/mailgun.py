"""Mailgun messages API: `mailgun://KEY@example.org?region=eu`, up to 1,000 recipients a request.

Why recipient variables: Mailgun's `messages` endpoint takes up to 1,000 `to`
addresses in one request and, given `recipient-variables`, sends each
recipient a message of their own, replacing `%recipient.NAME%` anywhere in it,
headers included. So a batch is one request per template: the campaign's text
and HTML with `%recipient.t_FIELD%` (raw value) and `%recipient.h_FIELD%`
(HTML-escaped value) in place of each personal field, the headers that differ
per recipient (List-Unsubscribe) as `h:NAME: %recipient.hdrN%`, and
`v:delivery_id` (which webhooks return among the user variables, so a bounce
finds its delivery). Each recipient gets exactly the message the composer
built. The raw-MIME endpoint, `messages.mime`, takes one message a request:
it is used for messages without a template, for an edition whose own text
contains `%recipient.` (Mailgun would replace it), and for an address that
appears twice in a batch (its variables are keyed by address).

Mailgun answers one id for the whole request (the `message-id` its webhooks
report). Answers: 200 "Queued"; 400 names no recipient, so a refused batch is
halved to find the culprit (http.send_in_halves); 401/403 fatal (a wrong key
or region); 404 (an unknown sending domain) fatal; 429 and 5xx retried.
Tracking is switched off (o:tracking=no) in every request.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import partial
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from newsletter.errors import ConfigError
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

REGIONS = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}
MAX_BATCH = 1000
PARAMS = PROVIDER_PARAMS | {"region"}
NO_TRACKING = [("o:tracking", "no"), ("o:tracking-clicks", "no"), ("o:tracking-opens", "no")]
VARIABLE = "%recipient."


class MailgunTransport(ApiTransport):
    provider = "mailgun"

    def __init__(
        self,
        name: str,
        key: str,
        domain: str,
        settings: ApiSettings,
        limits: SendLimits | None = None,
    ) -> None:
        super().__init__(name, settings, limits)
        self.domain = domain
        self._auth = ("api", key)

    @property
    def account(self) -> str:
        return self.domain

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        items = [message_parts(message) for message in messages]
        results: list[SendResult | None] = [None] * len(items)
        groups, alone = personalised_groups(items)
        for group in groups:
            template = group.template.template
            if VARIABLE in literal_text(template.text) + literal_text(template.html):
                alone += group.positions
                continue
            batch: list[int] = []
            seen: set[str] = set()
            for position, parts in enumerate(group.parts):
                address = parts.to_address.casefold()
                if address in seen:
                    alone.append(group.positions[position])
                else:
                    seen.add(address)
                    batch.append(position)
            for positions in chunks(batch, self.settings.batch_size):
                answers = send_in_halves(list(positions), partial(self._post_batch, group))
                for position, answer in zip(positions, answers, strict=True):
                    results[group.positions[position]] = answer
        for position in sorted(alone):
            results[position] = self._post_mime(items[position])
        return [result for result in results if result is not None]

    # -- one template for many recipients -------------------------------------------

    def _post_batch(self, group: PersonalisedGroup, positions: Sequence[int]) -> list[SendResult]:
        template = group.template.template

        def text_tag(field: str) -> str:
            return f"{VARIABLE}t_{field}%"

        def html_tag(field: str) -> str:
            return f"{VARIABLE}h_{field}%"

        first = group.parts[0]
        own = group.own or [()] * len(group.parts)
        data: list[tuple[str, str]] = [("from", first.formatted_from())]
        variables: dict[str, dict[str, str]] = {}
        for position in positions:
            parts = group.parts[position]
            data.append(("to", parts.formatted_to()))
            values = parts.personal.values  # type: ignore[union-attr]
            entry = {f"t_{f}": values[f] for f in template.text.fields}
            entry.update({f"h_{f}": escape(values[f]) for f in template.html.fields})
            entry.update({f"hdr{i}": value for i, (_, value) in enumerate(own[position])})
            entry["delivery_id"] = str(parts.message.delivery_id or "")
            variables[parts.to_address] = entry
        data += [
            ("subject", first.subject),
            ("text", tagged(template.text, text_tag)),
            ("html", tagged(template.html, html_tag)),
        ]
        if first.reply_to:
            data.append(("h:Reply-To", first.reply_to))
        data += [(f"h:{name}", value) for name, value in group.shared]
        data += [(f"h:{name}", f"{VARIABLE}hdr{i}%") for i, (name, _) in enumerate(own[0])]
        data += [("v:delivery_id", f"{VARIABLE}delivery_id%"), *NO_TRACKING]
        data.append(("recipient-variables", json.dumps(variables, ensure_ascii=False)))
        return self._post("/messages", len(positions), data=data)

    # -- one raw message ---------------------------------------------------------------

    def _post_mime(self, parts: MessageParts) -> SendResult:
        message = parts.message
        data = [("to", message.recipient), *NO_TRACKING]
        if message.delivery_id is not None:
            data.append(("v:delivery_id", str(message.delivery_id)))
        files = {"message": ("message.mime", message.data, "message/rfc822")}
        return send_in_halves(
            [message], lambda _: self._post("/messages.mime", 1, data=data, files=files)
        )[0]

    def _post(self, path: str, count: int, **kwargs: Any) -> list[SendResult]:
        url = f"/v3/{quote(self.domain, safe='')}{path}"
        try:
            response = self.client.request("POST", url, auth=self._auth, **kwargs)
        except Unreachable as exc:
            return [exc.result()] * count
        status = response.status_code
        if status == 200:
            try:
                provider_id = str(response.json().get("id", "")).strip("<>") or None
            except ValueError:
                provider_id = None
            return [
                SendResult("sent", "200 queued by mailgun", provider_message_id=provider_id)
            ] * count
        answer = answer_for_request("mailgun", response)
        if answer is not None:
            return [answer] * count
        if status in (400, 413):
            raise RequestRefused(f"mailgun refused the request: {detail(response)}")
        hint = " (is the sending domain right, and in this region?)" if status == 404 else ""
        return [
            SendResult("retry", f"mailgun answered {detail(response)}{hint}", fatal=True)
        ] * count


def build_mailgun(setup: TransportSetup) -> Transport:
    dsn, table = setup.dsn, setup.table
    if not dsn.host:
        raise ConfigError(
            f"{dsn.where}: a mailgun DSN names the sending domain, e.g. "
            "mailgun://KEY@mg.example.org?region=eu"
        )
    region = dsn.choice("region", "us", tuple(REGIONS))
    key = secret_from(
        dsn, setup.app.env, table.password_env, "Mailgun API key", "mailgun://KEY@mg.example.org"
    )
    settings = api_settings(
        setup,
        provider="mailgun",
        base_url=REGIONS[region],
        max_batch=MAX_BATCH,
    )
    return MailgunTransport(setup.name, key, dsn.host, settings, with_batch(setup.limits, settings))
