"""The SMTP transport against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_dispatch_support import (
    SMTPSink,
    password_authenticator,
    self_signed_certificate,
    start_sink,
)

from newsletter.transports import OutgoingMessage, SendLimits
from newsletter.transports.smtp import SMTPSettings, SMTPTransport


def message(recipient: str, body: str = "Hello") -> OutgoingMessage:
    data = (
        f"From: bulletin@example.org\r\nTo: {recipient}\r\nSubject: Hi\r\n"
        f"Message-ID: <{recipient}@example.org>\r\n\r\n{body}\r\n.starts with a dot\r\n"
    ).encode()
    return OutgoingMessage("bulletin@example.org", recipient, data, f"{recipient}@example.org")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture(params=["pipelining", "one command at a time"])
def sink(request: pytest.FixtureRequest) -> Iterator[tuple[SMTPSink, int]]:
    handler = SMTPSink(pipelining=request.param == "pipelining")
    controller = start_sink(handler)
    yield handler, controller.port
    controller.stop()


def plain(port: int, **settings) -> SMTPTransport:
    return SMTPTransport(
        "test",
        SMTPSettings(host="127.0.0.1", port=port, tls="none", helo="client.test", **settings),
    )


def test_sends_messages_over_one_reused_connection(sink: tuple[SMTPSink, int]) -> None:
    handler, port = sink
    transport = plain(port)
    results = transport.send([message(f"p{i}@example.org") for i in range(5)])
    transport.close()
    assert [r.outcome for r in results] == ["sent"] * 5
    assert results[0].response.startswith("250 2.0.0 Ok: queued as")
    assert results[0].provider_message_id == "Q1"
    assert handler.received() == {f"p{i}@example.org": 1 for i in range(5)}
    # A line starting with a dot arrives intact (dot-stuffing undone by the server).
    assert b"\r\n.starts with a dot" in handler.messages[0][2]
    assert handler.messages[0][0] == "bulletin@example.org"


def test_reconnects_after_max_messages_per_connection(sink: tuple[SMTPSink, int]) -> None:
    handler, port = sink
    transport = plain(port, max_messages_per_connection=2)
    results = transport.send([message(f"p{i}@example.org") for i in range(5)])
    transport.close()
    assert [r.outcome for r in results] == ["sent"] * 5
    assert sum(handler.received().values()) == 5


def test_a_refused_recipient_does_not_spoil_the_connection(sink: tuple[SMTPSink, int]) -> None:
    handler, port = sink
    handler.rcpt_script = lambda address, tries: (
        "550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown"
        if address == "gone@example.org"
        else "451 4.3.0 Try again later"
        if address == "later@example.org"
        else None
    )
    transport = plain(port)
    results = transport.send(
        [message("a@example.org"), message("gone@example.org"), message("later@example.org"),
         message("b@example.org")]
    )  # fmt: skip
    transport.close()
    assert [r.outcome for r in results] == ["sent", "failed", "retry", "sent"]
    assert results[1].hard_bounce and results[1].response.startswith("550 5.1.1")
    assert not results[2].throttled, "one recipient's deferral does not slow everyone"
    assert handler.received() == {"a@example.org": 1, "b@example.org": 1}


def test_a_dropped_connection_is_a_retry_and_the_next_message_reconnects(
    sink: tuple[SMTPSink, int],
) -> None:
    handler, port = sink
    handler.drop_before_data = lambda number: number == 2
    transport = plain(port)
    results = transport.send([message(f"p{i}@example.org") for i in range(3)])
    transport.close()
    assert [r.outcome for r in results] == ["sent", "retry", "sent"]
    assert "connection lost" in results[1].response
    assert handler.received() == {"p0@example.org": 1, "p2@example.org": 1}


def test_a_server_that_is_not_there_is_a_retry_not_a_failure() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now.
    result = plain(port, timeout=2).send([message("a@example.org")])[0]
    assert result.outcome == "retry"
    assert f"cannot connect to 127.0.0.1:{port}" in result.response


def test_starttls_with_a_verified_certificate_and_auth(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = SMTPSink()
    controller = start_sink(
        handler,
        tls_context=server_context(certificate),
        require_starttls=True,
        authenticator=password_authenticator("news", "s3cret", handler),
        auth_required=True,
    )
    # The test's own certificate is the trusted authority for this connection.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    try:
        settings = SMTPSettings(
            host="127.0.0.1", port=controller.port, tls="starttls", username="news",
            password="s3cret", helo="client.test",
        )  # fmt: skip
        transport = SMTPTransport("tls", settings)
        results = transport.send([message("a@example.org"), message("b@example.org")])
        transport.close()
    finally:
        controller.stop()
    assert [r.outcome for r in results] == ["sent", "sent"]
    assert handler.authenticated == ["news"]
    assert handler.received() == {"a@example.org": 1, "b@example.org": 1}


def test_implicit_tls_verifies_the_certificate(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = SMTPSink()
    controller = start_sink(handler, ssl_context=server_context(certificate))
    try:
        settings = SMTPSettings(host="127.0.0.1", port=controller.port, tls="ssl", helo="c.test")
        # Not trusted: the message is not sent, and the reason says what to do.
        refused = SMTPTransport("tls", settings).send([message("a@example.org")])[0]
        assert refused.outcome == "retry"
        assert "certificate is not trusted" in refused.response
        assert "verify=0" in refused.response
        # Trusted: sent.
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
        transport = SMTPTransport("tls", settings)
        assert transport.send([message("b@example.org")])[0].outcome == "sent"
        transport.close()
        # verify=0 skips the check (for a relay on a private network).
        monkeypatch.delenv("SSL_CERT_FILE")
        unverified = SMTPTransport("tls", SMTPSettings(**{**settings.__dict__, "verify": False}))
        assert unverified.send([message("c@example.org")])[0].outcome == "sent"
        unverified.close()
    finally:
        controller.stop()
    assert handler.received() == {"b@example.org": 1, "c@example.org": 1}


def test_wrong_password_is_a_retry_saying_authentication_failed(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = SMTPSink()
    controller = start_sink(
        handler,
        tls_context=server_context(certificate),
        authenticator=password_authenticator("news", "s3cret", handler),
        auth_required=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    try:
        settings = SMTPSettings(
            host="127.0.0.1", port=controller.port, username="news", password="wrong",
            helo="client.test",
        )  # fmt: skip
        result = SMTPTransport("tls", settings).send([message("a@example.org")])[0]
    finally:
        controller.stop()
    assert result.outcome == "retry"
    assert "authentication as 'news' failed: 535" in result.response
    assert not handler.messages


def test_starttls_required_but_not_offered_says_so(sink: tuple[SMTPSink, int]) -> None:
    _handler, port = sink
    transport = SMTPTransport("t", SMTPSettings(host="127.0.0.1", port=port, helo="c.test"))
    result = transport.send([message("a@example.org")])[0]
    assert result.outcome == "retry"
    assert "does not offer STARTTLS" in result.response


def test_each_thread_gets_its_own_connection(sink: tuple[SMTPSink, int]) -> None:
    import threading

    handler, port = sink
    transport = SMTPTransport(
        "pool",
        SMTPSettings(host="127.0.0.1", port=port, tls="none", helo="c.test"),
        SendLimits(connections=3),
    )
    seen: list[int] = []

    def work(n: int) -> None:
        for i in range(4):
            assert transport.send([message(f"t{n}-{i}@example.org")])[0].outcome == "sent"
        seen.append(id(transport._local.conn))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == 3
    assert len(transport._open) == 3
    transport.close()
    assert sum(handler.received().values()) == 12


def test_dot_stuffing_and_the_end_of_data() -> None:
    from newsletter.transports.base import dot_stuffed

    def stuffed(data: bytes) -> bytes:
        return dot_stuffed(OutgoingMessage("a@example.org", "b@example.org", data, "x@y"))

    assert stuffed(b".a\r\nb\r\n.c\r\n..d") == b"..a\r\nb\r\n..c\r\n...d\r\n.\r\n"
    assert stuffed(b"x\r\n") == b"x\r\n.\r\n"


def test_pipelined_commands_really_are_sent_together(sink: tuple[SMTPSink, int]) -> None:
    handler, port = sink
    transport = plain(port)
    transport.send([message("a@example.org")])
    assert transport._local.conn.pipelining is handler.pipelining
    transport.close()
