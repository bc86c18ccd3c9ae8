"""A finished message taken apart into the fields a JSON mail API asks for.

The dispatcher hands transports complete RFC 5322 messages. SendGrid and
Postmark want sender, subject, text, HTML and extra headers as separate
fields, so the headers are read back (only the header block is parsed) and
the bodies are taken from the message's personalisation when it has one
(the campaign template filled with the recipient's values: exactly the
decoded parts, without decoding anything), else from the MIME parts.

Headers the API sets itself (From, To, Subject, Date, Message-ID, MIME
structure) are left out of `headers`; everything else (List-Id,
List-Unsubscribe, List-Unsubscribe-Post, Content-Language, …) goes along.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email import policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from html import escape
from typing import cast

from newsletter.transports.base import FieldTemplate, OutgoingMessage, Personalisation

API_SET_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "reply-to",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "sender",
        "return-path",
    }
)


@dataclass(frozen=True)
class MessageParts:
    message: OutgoingMessage
    from_name: str
    from_address: str
    reply_to: str
    subject: str
    to_name: str
    to_address: str
    # (name, value) of every header the API does not set itself, unfolded, in order.
    headers: tuple[tuple[str, str], ...]

    @property
    def personal(self) -> Personalisation | None:
        return self.message.personal

    def bodies(self) -> tuple[str, str]:
        """(text, HTML) as the recipient reads them."""
        personal = self.message.personal
        if personal is not None:
            values = personal.values
            escaped = {k: escape(v, quote=True) for k, v in values.items()}
            return fill(personal.template.text, values), fill(personal.template.html, escaped)
        parsed = cast(
            EmailMessage, BytesParser(policy=policy.default).parsebytes(self.message.data)
        )
        texts = []
        for subtype in ("plain", "html"):
            part = parsed.get_body(preferencelist=(subtype,))
            content = part.get_content() if part is not None else ""
            texts.append(content.replace("\r\n", "\n") if isinstance(content, str) else "")
        return texts[0], texts[1]

    def formatted_from(self) -> str:
        return str(Address(self.from_name, addr_spec=self.from_address))

    def formatted_to(self) -> str:
        return str(Address(self.to_name, addr_spec=self.to_address))


def message_parts(message: OutgoingMessage) -> MessageParts:
    headers = read_headers(message.data)
    first: dict[str, str] = {}
    for name, value in headers:
        first.setdefault(name.lower(), value)
    from_name, from_address = _address(first.get("from", ""))
    to_name, _ = _address(first.get("to", ""))
    return MessageParts(
        message=message,
        from_name=from_name,
        from_address=from_address or message.sender,
        reply_to=decoded(first.get("reply-to", "")),
        subject=decoded(first.get("subject", "")),
        to_name=to_name,
        to_address=message.recipient,
        headers=tuple(
            (name, decoded(value)) for name, value in headers if name.lower() not in API_SET_HEADERS
        ),
    )


def read_headers(data: bytes) -> list[tuple[str, str]]:
    """The header block as (name, unfolded value) pairs, encoded words left as they are.

    Written by hand: the email package's parser with the modern policy costs about
    4 ms a message, more than the rest of a send; the composer's header block is
    plain (CRLF lines, folding by leading white space).
    """
    end = data.find(b"\r\n\r\n")
    block = (data if end < 0 else data[:end]).decode("utf-8", "replace")
    pairs: list[tuple[str, str]] = []
    for line in block.split("\r\n"):
        if line[:1] in (" ", "\t") and pairs:
            name, value = pairs[-1]
            pairs[-1] = (name, f"{value} {line.strip()}")
        elif ":" in line:
            name, _, value = line.partition(":")
            pairs.append((name.strip(), value.strip()))
    return pairs


def decoded(value: str) -> str:
    """A header value with RFC 2047 encoded words decoded."""
    if "=?" not in value:
        return value
    return str(make_header(decode_header(value)))


def _address(value: str) -> tuple[str, str]:
    """(display name, address) of the first address in a From or To value."""
    name, address = parseaddr(value)
    return decoded(name), address


def fill(template: FieldTemplate, values: Mapping[str, str]) -> str:
    parts = [template.literals[0]]
    for field, literal in zip(template.fields, template.literals[1:], strict=True):
        parts.append(values[field])
        parts.append(literal)
    return "".join(parts)


def tagged(template: FieldTemplate, tag: Callable[[str], str]) -> str:
    """The template with each field replaced by the provider's substitution tag for it."""
    return fill(template, {field: tag(field) for field in template.fields})


def literal_text(template: FieldTemplate) -> str:
    return "".join(template.literals)


@dataclass
class PersonalisedGroup:
    """Messages one personalised request can carry: one template, one sender, one subject.

    `shared` are the headers every message has alike (sent once); `own[i]` are the
    headers of message i that differ between recipients (List-Unsubscribe).
    """

    positions: list[int]
    parts: list[MessageParts]
    shared: tuple[tuple[str, str], ...] = ()
    own: list[tuple[tuple[str, str], ...]] | None = None

    @property
    def template(self) -> Personalisation:
        personal = self.parts[0].personal
        assert personal is not None
        return personal


def personalised_groups(
    items: list[MessageParts],
) -> tuple[list[PersonalisedGroup], list[int]]:
    """Split a batch into groups that share a template, and the positions that must go alone."""
    groups: dict[tuple[object, ...], PersonalisedGroup] = {}
    alone: list[int] = []
    for position, parts in enumerate(items):
        if parts.personal is None:
            alone.append(position)
            continue
        key = (
            id(parts.personal.template),
            parts.from_name,
            parts.from_address,
            parts.reply_to,
            parts.subject,
            tuple(name for name, _ in parts.headers),
        )
        group = groups.setdefault(key, PersonalisedGroup(positions=[], parts=[]))
        group.positions.append(position)
        group.parts.append(parts)
    for group in groups.values():
        columns = list(zip(*(p.headers for p in group.parts), strict=True))
        alike = [len({value for _, value in column}) == 1 for column in columns]
        group.shared = tuple(column[0] for column, same in zip(columns, alike, strict=True) if same)
        group.own = [
            tuple(h for h, same in zip(p.headers, alike, strict=True) if not same)
            for p in group.parts
        ]
    return list(groups.values()), alone
