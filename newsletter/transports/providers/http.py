"""What the API providers share: sessions, timeouts, and what an HTTP answer means.

- One `requests.Session` per sending thread (a Session is not safe to share
  between threads), kept for the life of the transport so that its TLS
  connection is reused; `close()` closes every thread's session.
- A request that never reached the provider, or whose answer never came
  (refused connection, TLS failure, timeout), is a temporary failure of the
  whole transport: retried, and the send slows down. After a timeout it is
  unknown whether the provider took the batch, so those messages may go twice:
  the same window SMTP has after the final ".".
- 429 and 5xx: temporary, nothing was accepted; the wait the provider asked
  for (Retry-After, in seconds or as an HTTP date, or a rate-limit reset
  header, as an epoch time or in seconds) goes with the result, and the
  dispatcher waits at least that long before trying these messages again.
- 401 and 403: the key or the sender is wrong, and no message will get
  through: fatal, the campaign pauses with the provider's words.
- Other 4xx on a batch that a provider does not pin on single messages are
  resolved by `send_in_halves`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar

import requests

from newsletter.errors import ConfigError
from newsletter.transports.base import SendLimits, SendResult
from newsletter.transports.dsn import DSN

if TYPE_CHECKING:
    from newsletter.transports.factory import TransportSetup

# DSN parameters every provider takes besides the common ones.
PROVIDER_PARAMS = frozenset({"endpoint", "batch", "verify"})
# Reset headers larger than this are epoch times, smaller ones are seconds from now.
EPOCH_THRESHOLD = 1_000_000_000
# The longest answer text kept on a delivery.
DETAIL_CHARS = 300

M = TypeVar("M")


@dataclass(frozen=True)
class ApiSettings:
    provider: str
    base_url: str
    timeout: float = 30.0
    verify: bool = True
    batch_size: int = 1


def api_settings(
    setup: TransportSetup, *, provider: str, base_url: str, max_batch: int
) -> ApiSettings:
    """The settings every provider reads from its DSN (endpoint=, batch=, verify=,
    timeout=), with the transport's table giving the timeout and verification."""
    dsn, timeout, verify = setup.dsn, setup.table.timeout_seconds, setup.table.verify_tls
    endpoint = dsn.params.get("endpoint", base_url).rstrip("/")
    if not endpoint.startswith(("https://", "http://")):
        raise ConfigError(f"{dsn.where}: endpoint={endpoint!r} must start with https://")
    batch = dsn.integer("batch", max_batch, minimum=1)
    if batch > max_batch:
        raise ConfigError(
            f"{dsn.where}: batch={batch} is more than {provider} takes in one request ({max_batch})"
        )
    return ApiSettings(
        provider=provider,
        base_url=endpoint,
        timeout=dsn.number("timeout", timeout) or timeout,
        verify=dsn.boolean("verify", verify),
        batch_size=batch,
    )


def secret_from(dsn: DSN, env: dict[str, str], env_name: str, what: str, example: str) -> str:
    """The key written in the DSN's user part, else the one in the environment variable."""
    if dsn.username:
        return dsn.username
    value = env.get(env_name, "")
    if not value:
        raise ConfigError(
            f"{dsn.where}: no {what}: set ${env_name} (the transport's password_env), "
            f"or write it into the DSN ({example})"
        )
    return value


class ApiClient:
    """HTTP for one transport: a session per sending thread, closed together at the end."""

    def __init__(self, settings: ApiSettings, user_agent: str = "newsletter") -> None:
        self.settings = settings
        self.user_agent = user_agent
        self._local = threading.local()
        self._lock = threading.Lock()
        self._sessions: list[requests.Session] = []

    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.verify = self.settings.verify
            session.headers["User-Agent"] = self.user_agent
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send a request; raises `Unreachable` when no answer came back."""
        url = self.settings.base_url + path
        try:
            return self.session().request(method, url, timeout=self.settings.timeout, **kwargs)
        except requests.Timeout as exc:
            raise Unreachable(f"{self.settings.provider} did not answer in time ({exc})") from None
        except requests.RequestException as exc:
            raise Unreachable(f"cannot reach {self.settings.provider} at {url}: {exc}") from None

    def close(self) -> None:
        with self._lock:
            sessions, self._sessions = self._sessions, []
        for session in sessions:
            session.close()


class ApiTransport:
    """What every API provider's transport shares: its settings, limits and HTTP client.

    A subclass names its `provider`, says with `account` what tells one account
    from another for people (a domain, a stream, a region; empty for none), and
    whether the API takes batches.
    """

    provider = "api"
    # The provider signs and sets the return path of what it builds.
    relays_raw = False
    takes_batches = True

    def __init__(self, name: str, settings: ApiSettings, limits: SendLimits | None) -> None:
        self.name = name
        self.settings = settings
        batch = settings.batch_size if self.takes_batches else 1
        self.limits = limits or SendLimits(batch_size=batch)
        self.client = ApiClient(settings)

    @property
    def account(self) -> str:
        return ""

    def describe(self) -> str:
        where = (
            f"{self.account} via {self.settings.base_url}"
            if self.account
            else (self.settings.base_url)
        )
        batches = f"batches of {self.settings.batch_size}, " if self.takes_batches else ""
        return f"{self.provider} {where} ({batches}{self.limits.connections} connections)"

    def close(self) -> None:
        self.client.close()


class Unreachable(Exception):
    """No answer from the provider: a temporary failure of every message in the request."""

    def result(self) -> SendResult:
        return SendResult("retry", str(self), throttled=True)


class RequestRefused(Exception):
    """A 4xx answer about a batch that may be one message's fault (see `send_in_halves`)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def failed(self) -> SendResult:
        return SendResult("failed", self.text)

    def fatal(self) -> SendResult:
        return SendResult("retry", self.text, fatal=True)


def detail(response: requests.Response) -> str:
    """The provider's words from an answer, on one line: its JSON message if it has one."""
    text = response.text or ""
    try:
        body = response.json()
    except ValueError:
        body = None
    words = ""
    if isinstance(body, dict):
        for key in ("message", "Message", "error", "errors"):
            if key in body:
                value = body[key]
                if isinstance(value, list):
                    value = "; ".join(
                        str(v.get("message", v)) if isinstance(v, dict) else str(v) for v in value
                    )
                words = str(value)
                break
    if not words:
        words = text if not isinstance(body, list) else json.dumps(body)
    words = " ".join(words.split())
    if len(words) > DETAIL_CHARS:
        words = words[: DETAIL_CHARS - 1] + "…"
    return f"{response.status_code} {words}".strip()


def wait_asked(response: requests.Response, now: float | None = None) -> float | None:
    """Seconds the provider asked us to wait: Retry-After, else a rate-limit reset header."""
    now = time.time() if now is None else now
    retry_after = response.headers.get("Retry-After", "").strip()
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(retry_after).timestamp() - now)
        except (TypeError, ValueError, IndexError):
            pass
    for name in ("X-RateLimit-Reset", "RateLimit-Reset", "X-Ratelimit-Reset-After"):
        raw = response.headers.get(name, "").strip()
        if not raw:
            continue
        try:
            value = float(raw)
        except ValueError:
            continue
        return max(0.0, value - now) if value >= EPOCH_THRESHOLD else max(0.0, value)
    return None


def answer_for_request(provider: str, response: requests.Response) -> SendResult | None:
    """What a request-level failure means for every message in it; None on success.

    Anything not listed here (400, 404, 413, 422 …) is for the provider to read.
    """
    status = response.status_code
    if 200 <= status < 300:
        return None
    if status == 429 or status >= 500:
        return SendResult(
            "retry",
            f"{provider} answered {detail(response)}",
            throttled=True,
            retry_after=wait_asked(response),
        )
    if status in (401, 403):
        return SendResult(
            "retry",
            f"{provider} refused the request ({detail(response)}): check the API key, its "
            "permissions and that the sender is verified",
            fatal=True,
        )
    return None


def send_in_halves(
    messages: Sequence[M], request: Callable[[Sequence[M]], list[SendResult]]
) -> list[SendResult]:
    """Send a batch; when it is refused whole (`RequestRefused`), find out whose fault it is.

    A provider that refuses a batch because of one message does not always say
    which (Mailgun's 400s name no recipient). The batch is split in two: when
    both halves are refused alike, the fault is the request's (an unverified
    domain, a malformed field), and every message gets a fatal result, so the
    campaign pauses instead of failing everyone; otherwise the refused half is
    split again until the refused messages stand alone, and those fail. One
    bad message in a thousand costs about twenty requests.
    """
    try:
        return request(messages)
    except RequestRefused as refused:
        if len(messages) == 1:
            # One message alone: the request may still be at fault; the dispatcher's
            # failures-in-a-row count catches a provider that refuses everything.
            return [refused.failed()]
        half = len(messages) // 2
        outcomes = [_attempt(messages[:half], request), _attempt(messages[half:], request)]
        if all(isinstance(o, RequestRefused) and o.text == refused.text for o in outcomes):
            return [refused.fatal()] * len(messages)
        results: list[SendResult] = []
        for part, outcome in zip((messages[:half], messages[half:]), outcomes, strict=True):
            if isinstance(outcome, RequestRefused):
                results += _split_refused(part, outcome, request)
            else:
                results += outcome
        return results


def _attempt(
    messages: Sequence[M], request: Callable[[Sequence[M]], list[SendResult]]
) -> list[SendResult] | RequestRefused:
    try:
        return request(messages)
    except RequestRefused as refused:
        return refused


def _split_refused(
    messages: Sequence[M],
    refused: RequestRefused,
    request: Callable[[Sequence[M]], list[SendResult]],
) -> list[SendResult]:
    """A refused part of a batch whose other part went through: the fault is in here."""
    if len(messages) == 1:
        return [refused.failed()]
    half = len(messages) // 2
    results: list[SendResult] = []
    for part in (messages[:half], messages[half:]):
        outcome = _attempt(part, request)
        if isinstance(outcome, RequestRefused):
            results += _split_refused(part, outcome, request)
        else:
            results += outcome
    return results


def chunks(items: Sequence[M], size: int) -> list[Sequence[M]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def with_batch(limits: SendLimits, settings: ApiSettings) -> SendLimits:
    """The dispatcher's limits for a provider: the configured ones and its batch size."""
    return dataclasses.replace(limits, batch_size=settings.batch_size)
