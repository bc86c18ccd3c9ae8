"""The seam between the dispatcher and the outside world.

A transport takes finished messages and reports, for each one, what happened.
The dispatcher knows nothing about SMTP, HTTP or files; it only reads the
outcome: sent, retry later, or failed for good. An in-memory transport stands
in for the real ones in the engine's fast tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Outcome = Literal["sent", "retry", "failed"]


class FieldTemplate(Protocol):
    """Text with personal fields left open: literals[0], fields[0], literals[1], …"""

    @property
    def literals(self) -> tuple[str, ...]: ...

    @property
    def fields(self) -> tuple[str, ...]: ...


class BodyTemplate(Protocol):
    """The text and HTML parts of a campaign's messages before personalisation."""

    @property
    def text(self) -> FieldTemplate: ...

    @property
    def html(self) -> FieldTemplate: ...


@dataclass(frozen=True, slots=True)
class Personalisation:
    """How a message's body was made: a template shared by a whole send, and this
    recipient's values (raw; the HTML part holds them HTML-escaped).

    API providers that personalise a batch themselves (SendGrid substitutions,
    Mailgun recipient variables) send the template once per request and the
    values per recipient; `data` holds exactly what they assemble.
    """

    template: BodyTemplate
    values: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A complete message for one recipient."""

    sender: str  # the envelope sender (return path)
    recipient: str  # the envelope recipient
    data: bytes  # the whole RFC 5322 message, CRLF line endings
    message_id: str  # the Message-ID header's value, without angle brackets
    delivery_id: int | None = None  # the ledger row, None for test sends and previews
    # Set by the campaign composer; None for messages built otherwise (confirmations).
    personal: Personalisation | None = None
    # (data, the bytes SMTP's DATA sends for it), made by the composer from parts
    # stuffed once per edition: see `dot_stuffed`, which trusts it only while `data`
    # is the very object it was made with.
    stuffed: tuple[bytes, bytes] | None = None


# What ends the data of SMTP's DATA command, after a CRLF.
END_OF_DATA = b".\r\n"


def stuff_dots(data: bytes) -> bytes:
    """`data` with every line that starts with "." given one more (RFC 5321 4.5.2).

    Exact for a piece of a message that starts at a line's start and does not end
    between CR and LF; a message stuffed piece by piece is then the message stuffed.
    """
    if data.startswith(b"."):
        data = b"." + data
    return data.replace(b"\r\n.", b"\r\n..")


def dot_stuffed(message: OutgoingMessage) -> bytes:
    """The message as DATA sends it: lines starting with "." doubled, ended by CRLF.CRLF.

    Scanning 30 KB for lines that start with a dot costs a third as much as
    composing the message (bench/README.md), so the composer stuffs what is the
    same for every recipient once and hands these bytes on in `stuffed`. A step
    that replaced `data` (dataclasses.replace) without saying how to stuff it
    left `stuffed` with the old data: the message is then scanned here.
    """
    made = message.stuffed
    if made is not None and made[0] is message.data:
        return made[1]
    data = stuff_dots(message.data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + END_OF_DATA


@dataclass(frozen=True, slots=True)
class SendLimits:
    """How hard a transport may be pushed; the dispatcher enforces these."""

    # Threads that may call send() at once, each with its own connection.
    connections: int = 1
    # Messages per second at most; 0 for no limit.
    rate_per_second: float = 0.0
    # Messages in any sliding hour at most; 0 for no limit.
    rate_per_hour: int = 0
    # Messages one send() call takes at most: an API's batch limit; 1 for SMTP.
    batch_size: int = 1


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    # The server's reply or the provider's answer, kept on the delivery.
    response: str = ""
    provider_message_id: str | None = None
    # A permanent failure that says the address does not exist (SMTP 5.1.x and the like):
    # the address is suppressed.
    hard_bounce: bool = False
    # For "retry": seconds the server asked us to wait, when it said (Retry-After).
    retry_after: float | None = None
    # For "retry": the whole transport is throttled or down, not just this recipient;
    # the dispatcher slows down instead of moving on to the next recipient at full speed.
    throttled: bool = False
    # The transport cannot send anything until someone fixes its setup (a bad API key,
    # an unverified sender): the dispatcher pauses the campaign with this response as
    # the reason, and the message is tried again on resume, not failed.
    fatal: bool = False


class Transport(Protocol):
    """What every transport offers.

    The dispatcher calls `send` from up to `limits.connections` threads at once.
    An implementation keeps one connection per calling thread (never shares one
    between threads) and reuses it for many messages.
    """

    name: str
    limits: SendLimits
    # True when the transport hands our bytes and envelope on as they are (SMTP, the
    # maildir outbox): DKIM signing and the VERP return path are then ours to add.
    # False for API providers, which build, sign and return-path their own messages.
    relays_raw: bool

    def describe(self) -> str:
        """Where messages go, for people: "maildir /srv/outbox", "smtp mail.example.org:587"."""
        ...

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send a batch, returning one result per message in the same order.

        A transport that raises has failed the whole batch in an unknown way;
        the dispatcher treats that as a temporary failure of every message.
        """
        ...

    def close(self) -> None:
        """Release connections. Safe to call twice."""
        ...
