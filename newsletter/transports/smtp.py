"""SMTP: a pool of connections, one per sending thread, each reused for many messages.

Each thread that calls `send` gets its own `smtplib` connection (smtplib objects
must not be shared between threads), opened on first use, reused for up to
`max_messages_per_connection` messages, then closed politely and reopened;
a connection that drops or times out is thrown away and reopened for the next
message. TLS is either implicit (`tls=ssl`, port 465) or STARTTLS (`tls=starttls`,
the default), and the server's certificate is verified against the system's
trust store (or $SSL_CERT_FILE) unless the transport says `verify=0`. With a
user name, the connection authenticates (AUTH) before the first message.

One message is one transaction (MAIL, RCPT, DATA), so every reply belongs to one
recipient and `replies.classify` can say what it means for that delivery.
Failures to connect, to start TLS or to authenticate are temporary failures of
the message at hand: the dispatcher retries it and, when they go on, pauses the
campaign and says why, instead of failing every recipient.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from newsletter.transports.base import OutgoingMessage, SendLimits, SendResult, dot_stuffed
from newsletter.transports.replies import classify, reply_text

TLS_MODES = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
QUEUE_ID_RE = re.compile(r"queued as ([A-Za-z0-9._-]+)", re.IGNORECASE)


@dataclass(frozen=True)
class SMTPSettings:
    host: str
    port: int
    tls: str = "starttls"
    username: str | None = None
    password: str | None = None
    verify: bool = True
    timeout: float = 30.0
    max_messages_per_connection: int = 1000
    # The name we give in EHLO; empty for this machine's fully qualified name.
    helo: str = ""


class ConnectFailed(Exception):
    """The connection could not be opened, secured or authenticated."""

    def __init__(self, text: str, *, throttled: bool = False) -> None:
        super().__init__(text)
        self.throttled = throttled


class Connection:
    """One open SMTP session and what we know about it."""

    __slots__ = ("eightbit", "pipelining", "smtp", "transactions", "utf8")

    def __init__(self, smtp: smtplib.SMTP) -> None:
        self.smtp = smtp
        self.transactions = 0
        self.eightbit = smtp.has_extn("8bitmime")
        self.utf8 = smtp.has_extn("smtputf8")
        self.pipelining = smtp.has_extn("pipelining")


class SMTPTransport:
    relays_raw = True

    def __init__(self, name: str, settings: SMTPSettings, limits: SendLimits | None = None) -> None:
        self.name = name
        self.settings = settings
        self.limits = limits or SendLimits()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[Connection] = set()
        self._context: ssl.SSLContext | None = None
        self._helo = settings.helo

    def describe(self) -> str:
        s = self.settings
        auth = f"{s.username}@" if s.username else ""
        return f"smtp {auth}{s.host}:{s.port} (tls={s.tls}, {self.limits.connections} connections)"

    # -- sending ----------------------------------------------------------------

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        return [self._send_one(message) for message in messages]

    def _send_one(self, message: OutgoingMessage) -> SendResult:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.transactions >= self.settings.max_messages_per_connection:
            self._drop(conn, polite=True)
            conn = None
        if conn is None:
            try:
                conn = self._connect()
            except ConnectFailed as exc:
                return SendResult("retry", str(exc), throttled=exc.throttled)
        try:
            return self._transaction(conn, message)
        except smtplib.SMTPResponseException as exc:
            # DATA refused (SMTPDataError) or a reply line too long: the server answered.
            result = classify(exc.smtp_code, exc.smtp_error)
            self._after_refusal(conn, exc.smtp_code)
            return result
        except (smtplib.SMTPException, OSError) as exc:
            # Dropped, reset or timed out: whether the server kept the message is unknown,
            # so it is tried again (the one duplicate SMTP itself cannot rule out).
            self._drop(conn)
            return SendResult("retry", f"connection lost: {exc or type(exc).__name__}")

    def _transaction(self, conn: Connection, message: OutgoingMessage) -> SendResult:
        """MAIL, RCPT, DATA and the message, with as few round trips as the server allows.

        Written on smtplib's socket rather than with its mail()/rcpt()/data(): those
        parse every address with the email package and dot-stuff the message with a
        regular expression, which together cost more than the rest of the send. Our
        addresses are already checked addr-specs, and dot-stuffing is one
        bytes.replace, or none when the composer stuffed the message as it made it.
        With PIPELINING (RFC 2920) MAIL, RCPT and DATA go in one packet and their
        three replies are read together.
        """
        smtp = conn.smtp
        options = ""
        encoding = "ascii"
        if not (message.sender.isascii() and message.recipient.isascii()):
            if not conn.utf8:
                return SendResult(
                    "failed", "the server does not accept non-ASCII addresses (no SMTPUTF8)"
                )
            options += " SMTPUTF8"
            encoding = "utf-8"
        if conn.eightbit and not message.data.isascii():
            options += " BODY=8BITMIME"
        conn.transactions += 1
        mail = f"MAIL FROM:<{message.sender}>{options}\r\n".encode(encoding)
        rcpt = f"RCPT TO:<{message.recipient}>\r\n".encode(encoding)
        if conn.pipelining:
            smtp.send(mail + rcpt + b"DATA\r\n")
            replies = [smtp.getreply(), smtp.getreply(), smtp.getreply()]
        else:
            replies = []
            for command, wanted in ((mail, (250,)), (rcpt, (250, 251)), (b"DATA\r\n", (354,))):
                smtp.send(command)
                replies.append(smtp.getreply())
                if replies[-1][0] not in wanted:
                    break
        (mail_code, mail_reply), *rest = replies
        if mail_code != 250:
            return self._refused(conn, mail_code, mail_reply, replies)
        rcpt_code, rcpt_reply = rest[0]
        if rcpt_code not in (250, 251):
            return self._refused(conn, rcpt_code, rcpt_reply, replies)
        data_code, data_reply = rest[1]
        if data_code != 354:
            return self._refused(conn, data_code, data_reply, replies)
        smtp.send(dot_stuffed(message))
        code, reply = smtp.getreply()
        if code != 250:
            return self._refused(conn, code, reply)
        text = reply_text(code, reply)
        queued = QUEUE_ID_RE.search(text)
        return SendResult("sent", text, provider_message_id=queued.group(1) if queued else None)

    def _refused(
        self,
        conn: Connection,
        code: int,
        reply: bytes,
        replies: Sequence[tuple[int, bytes]] = (),
    ) -> SendResult:
        result = classify(code, reply)
        if replies and replies[-1][0] == 354:
            # A server that took DATA although MAIL or RCPT failed: end the empty message.
            conn.smtp.send(b".\r\n")
            conn.smtp.getreply()
        self._after_refusal(conn, code)
        return result

    def _after_refusal(self, conn: Connection, code: int) -> None:
        """Leave the session ready for the next message, or drop it."""
        if code == 421 or code < 0:
            # 421: the server is closing the connection.
            self._drop(conn)
            return
        try:
            conn.smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop(conn)

    # -- connections ------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        # Built once and shared: an SSLContext may be used by several threads.
        with self._lock:
            if self._context is None:
                context = ssl.create_default_context()
                if not self.settings.verify:
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                self._context = context
            return self._context

    def _helo_name(self) -> str:
        if not self._helo:
            self._helo = socket.getfqdn()
        return self._helo

    def _connect(self) -> Connection:
        s = self.settings
        where = f"{s.host}:{s.port}"
        smtp: smtplib.SMTP | None = None
        try:
            if s.tls == "ssl":
                smtp = smtplib.SMTP_SSL(
                    s.host,
                    s.port,
                    local_hostname=self._helo_name(),
                    timeout=s.timeout,
                    context=self._ssl_context(),
                )
            else:
                smtp = smtplib.SMTP(
                    s.host, s.port, local_hostname=self._helo_name(), timeout=s.timeout
                )
            smtp.ehlo_or_helo_if_needed()
            if s.tls == "starttls":
                if not smtp.has_extn("starttls"):
                    raise ConnectFailed(
                        f"{where} does not offer STARTTLS; give tls=none to send unencrypted "
                        "(only to a server on this machine or network) or tls=ssl"
                    )
                smtp.starttls(context=self._ssl_context())
                smtp.ehlo()
            if s.username:
                smtp.login(s.username, s.password or "")
        except ConnectFailed:
            self._close_quietly(smtp)
            raise
        except smtplib.SMTPAuthenticationError as exc:
            self._close_quietly(smtp)
            raise ConnectFailed(
                f"{where}: authentication as {s.username!r} failed: "
                f"{reply_text(exc.smtp_code, exc.smtp_error)}"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            self._close_quietly(smtp)
            raise ConnectFailed(f"{where}: {exc}") from None
        except smtplib.SMTPResponseException as exc:
            # Refused at the greeting (e.g. "421 too many connections") or at EHLO/STARTTLS.
            self._close_quietly(smtp)
            raise ConnectFailed(
                f"{where} refused the connection: {reply_text(exc.smtp_code, exc.smtp_error)}",
                throttled=classify(exc.smtp_code, exc.smtp_error).throttled,
            ) from None
        except ssl.SSLCertVerificationError as exc:
            self._close_quietly(smtp)
            raise ConnectFailed(
                f"{where}: the server's TLS certificate is not trusted ({exc.verify_message}); "
                "install its CA, or give verify=0 to skip the check"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            self._close_quietly(smtp)
            raise ConnectFailed(f"cannot connect to {where}: {exc or type(exc).__name__}") from None
        conn = Connection(smtp)
        self._local.conn = conn
        with self._lock:
            self._open.add(conn)
        return conn

    def _drop(self, conn: Connection, *, polite: bool = False) -> None:
        if getattr(self._local, "conn", None) is conn:
            self._local.conn = None
        with self._lock:
            self._open.discard(conn)
        if polite:
            try:
                conn.smtp.quit()
                return
            except (smtplib.SMTPException, OSError):
                pass
        self._close_quietly(conn.smtp)

    @staticmethod
    def _close_quietly(smtp: smtplib.SMTP | None) -> None:
        if smtp is None:
            return
        with contextlib.suppress(OSError):
            smtp.close()

    def close(self) -> None:
        """Say QUIT on every connection of every thread (the threads have finished)."""
        with self._lock:
            connections = list(self._open)
            self._open.clear()
        for conn in connections:
            try:
                conn.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._close_quietly(conn.smtp)
