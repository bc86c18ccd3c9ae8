"""Amazon SES v2 `SendEmail` with raw content: `ses://ACCESS_KEY@eu-west-1`.

Why raw `SendEmail`, one message a request: SES's batch call, `SendBulkEmail`,
only sends templates stored in SES and cannot give each recipient their own
List-Unsubscribe header; `SendEmail` with `Content.Raw` sends the composer's
message byte for byte, personal links and headers included. Throughput comes
from several connections at once (`connections=`) within the account's
sending rate (`rate=`).

The secret access key comes from the environment variable named by the
transport's `password_env`; the access key id is the DSN's user part, the
region its host. `configuration_set=` names an SES configuration set (its
event destinations feed the SNS webhook). Each message carries the tag
`delivery_id`, which SES event notifications repeat. Requests are signed with
Signature Version 4 (sigv4.py).

Answers: 200 with the `MessageId`. Errors by `x-amzn-ErrorType`: throttling
(429, TooManyRequests, LimitExceeded) and 5xx are retried; a bad signature or
key (403), an account paused or suspended, an unverified sender or
MAIL FROM domain, a missing configuration set are fatal; other 400s
(MessageRejected for one address, BadRequest) fail that message.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from newsletter.errors import ConfigError
from newsletter.transports.base import OutgoingMessage, SendLimits, SendResult, Transport
from newsletter.transports.providers import sigv4
from newsletter.transports.providers.http import (
    PROVIDER_PARAMS,
    ApiSettings,
    ApiTransport,
    Unreachable,
    answer_for_request,
    api_settings,
    detail,
    with_batch,
)

if TYPE_CHECKING:
    from newsletter.transports.factory import TransportSetup

PARAMS = PROVIDER_PARAMS | {"configuration_set"}
PATH = "/v2/email/outbound-emails"
FATAL_ERRORS = frozenset(
    {
        "AccountSuspendedException",
        "SendingPausedException",
        "MailFromDomainNotVerifiedException",
        "NotFoundException",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
    }
)
THROTTLING_ERRORS = frozenset(
    {"TooManyRequestsException", "LimitExceededException", "ThrottlingException"}
)


class SESTransport(ApiTransport):
    provider = "ses"
    takes_batches = False

    def __init__(
        self,
        name: str,
        access_key: str,
        secret_key: str,
        region: str,
        settings: ApiSettings,
        limits: SendLimits | None = None,
        configuration_set: str = "",
    ) -> None:
        super().__init__(name, settings, limits)
        self.region = region
        self.configuration_set = configuration_set
        self._access_key = access_key
        self._secret_key = secret_key

    @property
    def account(self) -> str:
        return self.region

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        return [self._send_one(message) for message in messages]

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        request: dict[str, object] = {
            "FromEmailAddress": message.sender,
            "Destination": {"ToAddresses": [message.recipient]},
            "Content": {"Raw": {"Data": base64.b64encode(message.data).decode("ascii")}},
        }
        if message.delivery_id is not None:
            request["EmailTags"] = [{"Name": "delivery_id", "Value": str(message.delivery_id)}]
        if self.configuration_set:
            request["ConfigurationSetName"] = self.configuration_set
        payload = json.dumps(request).encode("utf-8")
        url = self.settings.base_url + PATH
        host = url.split("://", 1)[1].split("/", 1)[0]
        headers = {"Host": host, "Content-Type": "application/json"}
        headers.update(
            sigv4.sign(
                "POST",
                url,
                headers,
                payload,
                access_key=self._access_key,
                secret_key=self._secret_key,
                region=self.region,
                service="ses",
            )
        )
        try:
            response = self.client.request("POST", PATH, data=payload, headers=headers)
        except Unreachable as exc:
            return exc.result()
        if response.status_code == 200:
            try:
                message_id = str(response.json().get("MessageId") or "") or None
            except ValueError:
                message_id = None
            return SendResult("sent", "200 accepted by ses", provider_message_id=message_id)
        kind = response.headers.get("x-amzn-ErrorType", "").split(":", 1)[0]
        words = f"ses answered {detail(response)}" + (f" ({kind})" if kind else "")
        if kind in THROTTLING_ERRORS:
            return SendResult("retry", words, throttled=True)
        answer = answer_for_request("ses", response)
        if answer is not None:
            return answer
        if kind in FATAL_ERRORS or "not verified" in response.text:
            # An unverified sender, or a sandboxed account and an unverified recipient:
            # nothing will go until the account is set up.
            return SendResult("retry", words, fatal=True)
        return SendResult("failed", words)


def build_ses(setup: TransportSetup) -> Transport:
    dsn, table = setup.dsn, setup.table
    if not dsn.username or not dsn.host:
        raise ConfigError(
            f"{dsn.where}: an SES DSN names the access key id and the region, e.g. "
            "ses://AKIAEXAMPLE@eu-west-1 (the secret key comes from $"
            f"{table.password_env})"
        )
    secret = setup.app.env.get(table.password_env, "")
    if not secret:
        raise ConfigError(
            f"{dsn.where}: no SES secret access key: set ${table.password_env} "
            "(the transport's password_env)"
        )
    region = dsn.host
    settings = api_settings(
        setup,
        provider="ses",
        base_url=f"https://email.{region}.amazonaws.com",
        max_batch=1,
    )
    return SESTransport(
        setup.name,
        dsn.username,
        secret,
        region,
        settings,
        with_batch(setup.limits, settings),
        configuration_set=dsn.params.get("configuration_set", ""),
    )
