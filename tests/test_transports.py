"""Transports: DSNs and the factory, the maildir outbox, reply meanings, rate limits."""

from __future__ import annotations

import email
import mailbox
import threading
from pathlib import Path

import pytest

from newsletter.app import Newsletter
from newsletter.config import build_config
from newsletter.errors import ConfigError
from newsletter.transports import OutgoingMessage, open_transport
from newsletter.transports.maildir import MaildirTransport
from newsletter.transports.rate import RateLimiter
from newsletter.transports.replies import classify
from newsletter.transports.smtp import SMTPTransport


def app_with(tmp_path: Path, transports: dict | None = None, env: dict | None = None) -> Newsletter:
    data: dict = {"database": {"url": f"sqlite:///{tmp_path / 'n.db'}"}}
    if transports is not None:
        data["transports"] = transports
    env = env or {}
    return Newsletter(build_config(data, env, source="test.toml", base_dir=tmp_path), env=env)


def message(recipient: str = "ana@example.org", body: str = "Hello") -> OutgoingMessage:
    data = (
        f"From: bulletin@example.org\r\nTo: {recipient}\r\nSubject: Hi\r\n"
        f"Message-ID: <m1@example.org>\r\n\r\n{body}\r\n"
    ).encode()
    return OutgoingMessage("bulletin@example.org", recipient, data, "m1@example.org")


# --- DSNs and the factory ----------------------------------------------------------


def test_default_transport_is_the_outbox_maildir_next_to_the_config(tmp_path: Path) -> None:
    transport = open_transport(app_with(tmp_path))
    assert isinstance(transport, MaildirTransport)
    assert transport.path == tmp_path / "outbox"
    assert (tmp_path / "outbox" / "new").is_dir()


@pytest.mark.parametrize(
    ("dsn", "where"),
    [("maildir://{tmp}/abs", "{tmp}/abs"), ("maildir:rel/box", "{base}/rel/box")],
)
def test_maildir_dsn_paths(tmp_path: Path, dsn: str, where: str) -> None:
    app = app_with(tmp_path, {"box": {"dsn": dsn.format(tmp=tmp_path)}})
    transport = open_transport(app, "box")
    assert transport.path == Path(where.format(tmp=tmp_path, base=tmp_path))


def test_smtp_dsn_parameters_override_the_table(tmp_path: Path) -> None:
    app = app_with(
        tmp_path,
        {
            "relay": {
                "dsn": "smtp://news%40example.org@mail.example.org:2525"
                "?tls=ssl&connections=8&rate=50&verify=0&max_messages=10&rate_per_hour=900",
                "connections": 2,
                "password_env": "RELAY_PASSWORD",
                "timeout_seconds": 7,
            }
        },
        env={"RELAY_PASSWORD": "s3cret"},
    )
    transport = open_transport(app, "relay")
    assert isinstance(transport, SMTPTransport)
    s = transport.settings
    assert (s.host, s.port, s.tls, s.username, s.password) == (
        "mail.example.org",
        2525,
        "ssl",
        "news@example.org",
        "s3cret",
    )
    assert (s.verify, s.max_messages_per_connection, s.timeout) == (False, 10, 7.0)
    assert transport.limits.connections == 8
    assert transport.limits.rate_per_second == 50.0
    assert transport.limits.rate_per_hour == 900
    assert "mail.example.org:2525" in transport.describe()


def test_smtp_defaults_are_starttls_on_587_with_verification(tmp_path: Path) -> None:
    app = app_with(tmp_path, {"relay": {"dsn": "smtp://mail.example.org"}})
    s = open_transport(app).settings
    assert (s.port, s.tls, s.verify, s.username) == (587, "starttls", True, None)


def test_environment_dsn_becomes_the_default_transport(tmp_path: Path) -> None:
    env = {
        "NEWSLETTER_TRANSPORT": "smtp://u@127.0.0.1:2525?tls=none",
        "NEWSLETTER_SMTP_PASSWORD": "pw",
    }
    app = app_with(tmp_path, env=env)
    transport = open_transport(app)
    assert isinstance(transport, SMTPTransport)
    assert transport.settings.password == "pw"
    assert transport.settings.tls == "none"


@pytest.mark.parametrize(
    ("dsn", "message_part"),
    [
        ("ftp://example.org", "unknown transport scheme 'ftp'"),
        ("smtp://mail.example.org?conections=8", "unknown parameter 'conections'"),
        ("smtp://mail.example.org?tls=maybe", "tls='maybe' is not one of starttls, ssl, none"),
        ("smtp://mail.example.org?connections=many", "connections='many' is not a whole number"),
        ("smtp://mail.example.org?connections=0", "connections must be at least 1"),
        ("smtp://mail.example.org?rate=-1", "rate must not be negative"),
        ("smtp://mail.example.org?verify=perhaps", "verify='perhaps' must be 1 or 0"),
        ("smtp://mail.example.org:99999", "port"),
        ("smtp://?tls=none", "needs a host"),
        ("maildir:", "needs a path"),
        ("nonsense", "is not a transport DSN"),
        ("maildir:box?tls=none", "unknown parameter 'tls' for a maildir: transport"),
        ("smtp://user@mail.example.org", "needs a password: set $NEWSLETTER_SMTP_PASSWORD"),
    ],
)
def test_bad_dsn_is_a_config_error_naming_the_key(
    tmp_path: Path, dsn: str, message_part: str
) -> None:
    app = app_with(tmp_path, {"relay": {"dsn": dsn}})
    with pytest.raises(ConfigError) as caught:
        open_transport(app, "relay")
    assert message_part in str(caught.value)
    assert str(caught.value).startswith("test.toml: transports.relay.dsn")


def test_bad_environment_dsn_names_the_variable(tmp_path: Path) -> None:
    app = app_with(tmp_path, env={"NEWSLETTER_TRANSPORT": "smtp://h?speed=9"})
    with pytest.raises(ConfigError, match=r"^\$NEWSLETTER_TRANSPORT: unknown parameter 'speed'"):
        open_transport(app)


def test_unknown_transport_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no transport named 'nope' \\(known: outbox\\)"):
        open_transport(app_with(tmp_path), "nope")


# --- the maildir outbox ------------------------------------------------------------


def test_maildir_writes_each_message_into_new_and_answers_its_file_name(tmp_path: Path) -> None:
    transport = MaildirTransport("outbox", tmp_path / "box")
    results = transport.send([message("ana@example.org"), message("ben@example.org")])
    assert [r.outcome for r in results] == ["sent", "sent"]
    names = sorted(p.name for p in (tmp_path / "box" / "new").iterdir())
    assert sorted(r.response for r in results) == names
    assert not list((tmp_path / "box" / "tmp").iterdir())
    # Local line endings in the file, and the standard library reads it back.
    raw = (tmp_path / "box" / "new" / results[0].response).read_bytes()
    assert b"\r\n" not in raw
    parsed = email.message_from_bytes(raw)
    assert parsed["To"] == "ana@example.org"
    assert len(mailbox.Maildir(tmp_path / "box")) == 2


def test_maildir_is_safe_from_several_threads(tmp_path: Path) -> None:
    transport = MaildirTransport("outbox", tmp_path / "box")
    names: list[str] = []

    def send_many() -> None:
        for _ in range(50):
            names.append(transport.send([message()])[0].response)

    threads = [threading.Thread(target=send_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(names)) == 200
    assert len(list((tmp_path / "box" / "new").iterdir())) == 200


# --- what replies mean ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text", "outcome", "hard", "throttled"),
    [
        (250, "2.0.0 Ok: queued as 4F1", "sent", False, False),
        (451, "4.3.0 Try again later", "retry", False, False),
        (451, "4.7.1 Please slow down", "retry", False, True),
        (450, "Too many messages from your address", "retry", False, True),
        (421, "4.7.0 Too many connections", "retry", False, True),
        (454, "4.7.0 Throttling failure: Maximum sending rate exceeded", "retry", False, True),
        (452, "4.2.2 Mailbox full", "retry", False, False),
        (450, "4.2.1 Greylisted", "retry", False, False),
        (
            550,
            "5.1.1 <x@example.org>: Recipient address rejected: User unknown",
            "failed",
            True,
            False,
        ),
        (550, "5.7.1 Relaying denied", "failed", False, False),
        (553, "5.1.3 Bad destination mailbox address syntax", "failed", True, False),
        (550, "Mailbox does not exist", "failed", True, False),
        (550, "Message rejected as spam", "failed", False, False),
        (554, "5.2.1 Mailbox disabled", "failed", True, False),
        (-1, "", "retry", False, False),
    ],
)
def test_reply_classification(
    code: int, text: str, outcome: str, hard: bool, throttled: bool
) -> None:
    result = classify(code, text.encode())
    assert (result.outcome, result.hard_bounce, result.throttled) == (outcome, hard, throttled)
    assert result.response.startswith(str(code))


# --- rate limits ---------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ClockedStop(threading.Event):
    """A stop event whose waits move the fake clock instead of sleeping."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.waited = 0.0

    def wait(self, timeout: float | None = None) -> bool:
        self.clock.now += timeout or 0
        self.waited += timeout or 0
        return False


def test_rate_per_second_spaces_messages() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=10, clock=clock)
    stop = ClockedStop(clock)
    start = clock.now
    for _ in range(21):
        assert limiter.acquire(stop)
    # 21 messages at 10 a second: the last starts 2 seconds after the first.
    assert clock.now - start == pytest.approx(2.0, abs=0.01)


def test_rate_per_hour_is_a_sliding_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_hour=100, clock=clock)
    stop = ClockedStop(clock)
    for _ in range(100):
        assert limiter.acquire(stop)
    assert stop.waited == 0
    clock.now += 1800
    assert limiter.acquire(stop)
    # The 101st waited until the first second of the window left it: one hour after it.
    assert clock.now == pytest.approx(1000.0 + 3600, abs=1.01)


def test_throttling_halves_the_rate_and_it_recovers() -> None:
    clock = FakeClock()
    limiter = RateLimiter(per_second=100, clock=clock)
    stop = ClockedStop(clock)
    for _ in range(200):
        limiter.acquire(stop)
    limiter.throttled()
    limiter.throttled()  # a burst of throttling replies halves once
    slowed = limiter.current_limit
    assert slowed is not None and slowed <= 50
    clock.now += 10  # ten quiet seconds
    assert limiter.current_limit == 100


def test_throttling_without_a_configured_rate_slows_then_lifts() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    stop = ClockedStop(clock)
    assert limiter.current_limit is None
    for _ in range(500):
        limiter.acquire(stop)
        clock.now += 0.01  # 100 a second
    limiter.throttled()
    assert limiter.current_limit == pytest.approx(50, rel=0.01)
    clock.now += 30
    assert limiter.current_limit is None


def test_acquire_returns_false_when_stopped() -> None:
    limiter = RateLimiter(per_hour=1)
    stop = threading.Event()
    assert limiter.acquire(stop)
    stop.set()
    assert limiter.acquire(stop) is False
