"""Fake API providers on loopback, for the provider tests (this module holds no tests).

Each fake is a real HTTP server (werkzeug's, on 127.0.0.1, a free port, in a
thread) that checks requests the way the provider documents them (its auth
header, the body's shape, the batch limit) and answers the way the provider
does. It "delivers" what it accepts the way the provider would: a SendGrid
batch by applying each personalization's substitutions and headers, a
Mailgun batch by replacing `%recipient.…%`, so that a test can read what each
recipient would get. `script` makes chosen requests fail: {request number:
(status, headers, body)}.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.parser import BytesParser
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from newsletter.transports.providers import sigv4

Answer = tuple[int, dict[str, str], Any]


@dataclass
class Delivered:
    to: str
    text: str
    html: str
    headers: dict[str, str]
    meta: dict[str, str] = field(default_factory=dict)
    subject: str = ""


class FakeProvider:
    """The common part: a server, its requests, what it delivered, a script of failures."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.delivered: list[Delivered] = []
        self.problems: list[str] = []
        self.script: dict[int, Answer] = {}
        # Addresses refused one by one (how depends on the provider).
        self.reject: set[str] = set()
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self) -> Counter[str]:
        return Counter(d.to for d in self.delivered)

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        request.get_data(cache=True)
        with self._lock:
            self.requests.append(request)
            number = len(self.requests)
        scripted = self.script.get(number)
        if scripted is not None:
            status, headers, body = scripted
        else:
            try:
                status, headers, body = self.handle(request)
            except Exception as exc:  # a bug in the fake shows as a problem, not a hang
                self.problems.append(f"fake failed: {exc!r}")
                status, headers, body = 500, {}, {"message": "fake failed"}
        text = body if isinstance(body, str) else json.dumps(body)
        response = Response(text, status=status, headers=headers)
        if not isinstance(body, str):
            response.mimetype = "application/json"
        return response(environ, start_response)

    def handle(self, request: Request) -> Answer:
        raise NotImplementedError

    def problem(self, text: str) -> None:
        with self._lock:
            self.problems.append(text)


class FakeSendGrid(FakeProvider):
    def __init__(self, key: str = "SG.test-key") -> None:
        self.key = key
        super().__init__()

    def handle(self, request: Request) -> Answer:
        if request.method != "POST" or request.path != "/v3/mail/send":
            return 404, {}, {"errors": [{"message": "not found"}]}
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            revoked = "The provided authorization grant is invalid, expired, or revoked"
            return 401, {}, {"errors": [{"message": revoked, "field": None}]}
        body = request.get_json(force=True)
        personalizations = body.get("personalizations") or []
        self.batch_sizes.append(len(personalizations))
        if not 1 <= len(personalizations) <= 1000:
            self.problem(f"{len(personalizations)} personalizations")
            return 400, {}, {"errors": [{"message": "personalizations: 1 to 1000"}]}
        content = body.get("content") or []
        if [c.get("type") for c in content][:1] != ["text/plain"]:
            self.problem("text/plain must come first in content")
        if not body.get("from", {}).get("email") or not body.get("subject"):
            self.problem("from and subject are required")
        tracking = body.get("tracking_settings", {})
        if tracking.get("open_tracking", {}).get("enable") is not False:
            self.problem("open tracking was not switched off")
        errors = [
            {"message": "Does not contain a valid address.",
             "field": f"personalizations.{i}.to.0.email"}
            for i, p in enumerate(personalizations)
            if p["to"][0]["email"] in self.reject
        ]  # fmt: skip
        if errors:
            return 400, {}, {"errors": errors}
        bodies = {c["type"]: c["value"] for c in content}
        for p in personalizations:
            subs = p.get("substitutions", {})
            if sum(len(k.encode()) + len(v.encode()) for k, v in subs.items()) > 10_000:
                self.problem("substitutions over 10,000 bytes")
            text, html = bodies.get("text/plain", ""), bodies.get("text/html", "")
            for tag, value in subs.items():
                text, html = text.replace(tag, value), html.replace(tag, value)
            with self._lock:
                self.delivered.append(
                    Delivered(
                        to=p["to"][0]["email"],
                        text=text,
                        html=html,
                        headers={**body.get("headers", {}), **p.get("headers", {})},
                        meta=p.get("custom_args", {}),
                        subject=body["subject"],
                    )
                )
        return 202, {"X-Message-Id": uuid.uuid4().hex[:22]}, ""


class FakeMailgun(FakeProvider):
    def __init__(self, key: str = "key-test", domain: str = "mg.example.org") -> None:
        self.key = key
        self.domain = domain
        super().__init__()

    def handle(self, request: Request) -> Answer:
        auth = request.authorization
        if auth is None or (auth.username, auth.password) != ("api", self.key):
            return 401, {}, "Forbidden"
        if request.path == f"/v3/{self.domain}/messages":
            return self._batch(request)
        if request.path == f"/v3/{self.domain}/messages.mime":
            return self._mime(request)
        return 404, {}, {"message": "Domain not found"}

    def _answer(self) -> Answer:
        return (
            200,
            {},
            {"id": f"<{uuid.uuid4().hex}@{self.domain}>", "message": "Queued. Thank you."},
        )

    def _batch(self, request: Request) -> Answer:
        form = request.form
        tos = form.getlist("to")
        self.batch_sizes.append(len(tos))
        if not 1 <= len(tos) <= 1000:
            self.problem(f"{len(tos)} recipients")
            return 400, {}, {"message": "too many recipients"}
        if form.get("o:tracking") != "no":
            self.problem("tracking was not switched off")
        variables = json.loads(form.get("recipient-variables", "{}"))
        addresses = [re.sub(r"^.*<(.+)>$", r"\1", to) for to in tos]
        if any(a in self.reject for a in addresses):
            return (
                400,
                {},
                {"message": "'to' parameter is not a valid address. please check documentation"},
            )
        for address in addresses:
            if address not in variables:
                self.problem(f"no recipient variables for {address}")
                continue
            mine = variables[address]

            def fill(value: str, mine: dict[str, str] = mine) -> str:
                return re.sub(r"%recipient\.([\w:-]+)%", lambda m: mine.get(m.group(1), ""), value)

            headers = {k[2:]: fill(v) for k, v in form.items() if k.startswith("h:")}
            meta = {k[2:]: fill(v) for k, v in form.items() if k.startswith("v:")}
            with self._lock:
                self.delivered.append(
                    Delivered(
                        to=address,
                        text=fill(form["text"]),
                        html=fill(form["html"]),
                        headers=headers,
                        meta=meta,
                        subject=fill(form["subject"]),
                    )
                )
        return self._answer()

    def _mime(self, request: Request) -> Answer:
        upload = request.files.get("message")
        if upload is None:
            self.problem("messages.mime without a message file")
            return 400, {}, {"message": "message is missing"}
        to = request.form.get("to", "")
        if to in self.reject:
            return 400, {}, {"message": "'to' parameter is not a valid address"}
        self.batch_sizes.append(1)
        message = BytesParser(policy=policy.default).parsebytes(upload.read())
        with self._lock:
            self.delivered.append(
                _from_mime(to, message, {"delivery_id": request.form.get("v:delivery_id", "")})
            )
        return self._answer()


class FakePostmark(FakeProvider):
    def __init__(self, token: str = "pm-token", stream: str = "broadcast") -> None:
        self.token = token
        self.stream = stream
        super().__init__()

    def handle(self, request: Request) -> Answer:
        if request.path != "/email/batch":
            return 404, {}, {"ErrorCode": 404, "Message": "not found"}
        if request.headers.get("X-Postmark-Server-Token") != self.token:
            return (
                401,
                {},
                {
                    "ErrorCode": 10,
                    "Message": "No Account or Server API tokens were supplied in the HTTP headers.",
                },
            )
        if request.headers.get("Accept") != "application/json":
            self.problem("Accept: application/json is required")
        batch = request.get_json(force=True)
        self.batch_sizes.append(len(batch))
        if not isinstance(batch, list) or not 1 <= len(batch) <= 500:
            self.problem("a batch holds 1 to 500 messages")
            return 422, {}, {"ErrorCode": 300, "Message": "Invalid batch"}
        answers = []
        for message in batch:
            if message.get("MessageStream") != self.stream:
                self.problem(f"stream {message.get('MessageStream')!r}")
            if message.get("TrackOpens") is not False:
                self.problem("open tracking was not switched off")
            to = re.sub(r"^.*<(.+)>$", r"\1", message["To"])
            if to in self.reject:
                answers.append(
                    {
                        "ErrorCode": 406,
                        "Message": "You tried to send to recipient(s) marked as inactive.",
                    }
                )
                continue
            headers = {h["Name"]: h["Value"] for h in message.get("Headers", [])}
            with self._lock:
                self.delivered.append(
                    Delivered(to, message["TextBody"], message["HtmlBody"], headers,
                              message.get("Metadata", {}), message["Subject"])
                )  # fmt: skip
            answers.append(
                {
                    "ErrorCode": 0,
                    "Message": "OK",
                    "MessageID": str(uuid.uuid4()),
                    "To": message["To"],
                }
            )
        return 200, {}, answers


class FakeSES(FakeProvider):
    def __init__(
        self, access_key: str = "AKIDEXAMPLE", secret: str = "ses-secret", region: str = "eu-west-1"
    ) -> None:
        self.access_key = access_key
        self.secret = secret
        self.region = region
        super().__init__()

    def _error(self, status: int, kind: str, message: str) -> Answer:
        return (
            status,
            {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/"},
            {"message": message},
        )

    def handle(self, request: Request) -> Answer:
        if request.path != "/v2/email/outbound-emails":
            return self._error(404, "NotFoundException", "unknown operation")
        match = re.fullmatch(
            r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/ses/aws4_request, "
            r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})",
            request.headers.get("Authorization", ""),
        )
        if match is None:
            return self._error(403, "IncompleteSignature", "Authorization header is malformed")
        access_key, _date, region, signed, signature = match.groups()
        if access_key != self.access_key:
            return self._error(
                403,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        names = signed.split(";")
        headers = {name: request.headers.get(name, "") for name in names}
        # Signed again here from what arrived, as AWS does, with the shared secret.
        moment = datetime.strptime(headers.get("x-amz-date", ""), "%Y%m%dT%H%M%SZ")
        expected = sigv4.sign(
            "POST",
            request.url,
            {k: v for k, v in headers.items() if k != "x-amz-date"},
            request.get_data(),
            access_key=self.access_key,
            secret_key=self.secret,
            region=self.region,
            service="ses",
            now=moment.replace(tzinfo=UTC),
        )
        if "host" not in names:
            self.problem("the Host header was not signed")
        if region != self.region or not expected["Authorization"].endswith(signature):
            return self._error(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        body = request.get_json(force=True)
        to = body["Destination"]["ToAddresses"]
        self.batch_sizes.append(len(to))
        if to[0] in self.reject:
            return self._error(400, "MessageRejected", f"Illegal address {to[0]}")
        raw = base64.b64decode(body["Content"]["Raw"]["Data"])
        message = BytesParser(policy=policy.default).parsebytes(raw)
        tags = {t["Name"]: t["Value"] for t in body.get("EmailTags", [])}
        with self._lock:
            self.delivered.append(_from_mime(to[0], message, tags))
        return 200, {}, {"MessageId": uuid.uuid4().hex}


def _from_mime(to: str, message: Any, meta: dict[str, str]) -> Delivered:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    return Delivered(
        to=to,
        text=text.get_content() if text else "",
        html=html.get_content() if html else "",
        headers={k: " ".join(str(v).split()) for k, v in message.items()},
        meta=meta,
        subject=str(message["Subject"]),
    )
