"""Stage 2 of rendering: one complete message per recipient, cheaply.

A `Composer` renders its campaign once (stage 1, newsletter.render) and encodes
everything that is the same for every recipient once too: the From, Reply-To,
Subject and List-* headers, the MIME boundary and part headers, and the body
text between the personal fields, already in its transfer encoding. For each
recipient `compose()` only signs two links, encodes a few short values and
joins bytes; the send engine must not wait for it.

How the bodies stay cheap: quoted-printable allows a soft line break (``=``
CRLF) anywhere, so the literal chunks are encoded once, each ending in a soft
break, and the encoded personal values are slotted between them; decoding
gives back exactly the joined text. Parts mostly in non-Latin scripts (where
quoted-printable would triple the size) are base64-encoded whole, per
recipient, by binascii in C.

Last, `finishing_steps` — an ordered tuple of small functions, each taking
and returning an OutgoingMessage — finish a message handed on as bytes (SMTP,
the maildir outbox): the VERP return path (newsletter.return_path), then the
DKIM signature (newsletter.dkim), always last, since it covers the headers
as they will travel. API providers sign and set return paths themselves.

Every message: multipart/alternative (text, then HTML), UTF-8, RFC 2047
encoded headers, CRLF line endings, no line over 998 octets, a Message-ID on
the sender's domain, Date, List-Id, List-Unsubscribe (https and mailto) and
List-Unsubscribe-Post. Names, addresses and subjects lose their line breaks
and control characters before they reach a header, so none can add one.
Every header line is written by `header()` (or `_fold`, `to_header`, which
clean their values first); `header()` refuses a value with a line break or
any other control character (HeaderInjection) rather than writing it. Values
from the config (the base URL, the Message-ID domain, the unsubscribe
address, the sender) are checked for the same when the config is loaded.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.utils import format_datetime
from html import escape

from newsletter import links
from newsletter.app import Newsletter
from newsletter.config import Config
from newsletter.dkim import Signer, read_private_key
from newsletter.errors import InputError
from newsletter.locale import base_language
from newsletter.render import (
    PersonalTemplate,
    RenderedEdition,
    RenderedEmail,
    greeting,
    render_campaign,
)
from newsletter.return_path import ReturnPath
from newsletter.transports.base import (
    END_OF_DATA,
    OutgoingMessage,
    Personalisation,
    Transport,
    stuff_dots,
)

CRLF = b"\r\n"
# The header folding of the standard library, for the headers built once per campaign.
_POLICY = policy.SMTP
# Line breaks, other control characters and Unicode line/paragraph separators: none may
# reach a header, where a line break would start a new header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
# Characters that make a display name need quoting (RFC 5322 specials).
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')
# Characters an address may not contain here: whitespace, controls, and the delimiters
# of address lists and angle-addr.
_BAD_ADDRESS = re.compile(r"[\s\x00-\x1f\x7f<>()\[\],;\"\\]")
# Base64 output of one encoded word: 45 bytes of UTF-8 make 60 characters, and the
# word with its =?utf-8?b?…?= is then 72, inside the 78-character line.
_WORD_BYTES = 45
# Below this share of non-ASCII bytes quoted-printable is the smaller encoding.
_QP_MAX_NON_ASCII = 1 / 6


@dataclass(frozen=True, slots=True)
class Recipient:
    # None for a message to someone who is not a subscriber (a test send): its links are
    # sample links that change nothing (see newsletter.links).
    subscriber_id: int | None
    email: str
    name: str = ""
    language: str = "en"
    delivery_id: int | None = None


# One step of the per-message pipeline that runs after a message is assembled.
Step = Callable[[OutgoingMessage], OutgoingMessage]


def finishing_steps(app: Newsletter, transport: Transport) -> tuple[Step, ...]:
    """The steps that finish a message for `transport`, in order; signing is last."""
    if not transport.relays_raw:
        return ()
    config = app.config
    steps: list[Step] = []
    if config.bounces.return_path:
        steps.append(ReturnPath(app.signing_key, config.bounces.return_path))
    if config.dkim.domain:
        key = read_private_key(config.resolve_path(config.dkim.private_key_file))
        steps.append(Signer(config.dkim.domain, config.dkim.selector, key))
    return tuple(steps)


class Composer:
    """Renders a campaign once per language (stage 1) and then one message per recipient.

    Built once per campaign by the send engine. A recipient reads the edition in
    their language when the config offers it (`web.languages`), else in the
    campaign's own; each language is rendered the first time a recipient needs
    it, and never again, so a send renders once per language present in its
    audience and never per recipient. `language`, when given, fixes one
    language for every recipient (a preview, a test send). `compose` is safe to
    call from several threads: a lock guards the renders, and nothing else is
    per-message state.
    """

    def __init__(
        self,
        app: Newsletter,
        campaign_id: int,
        language: str | None = None,
        *,
        steps: Sequence[Step] = (),
        test: bool = False,
    ) -> None:
        self.app = app
        self.steps = tuple(steps)
        self.config = app.config
        self.campaign_id = campaign_id
        # `test`: a test send or staff preview, marked as such in its subject and body.
        self._test = test
        self._key = app.signing_key
        self._offered = frozenset(base_language(code) for code in app.config.web.languages)
        self._fixed = base_language(language) or None
        self._lock = threading.Lock()
        self._renders: dict[str, tuple[RenderedEdition, MessageFrame]] = {}
        self._stage_one_runs = 0
        # The campaign's own language, rendered now, so that a template mistake shows at
        # once rather than when the first reader of another language comes along.
        self.edition: RenderedEdition = self.edition_for(self._fixed)
        self.language = self.edition.language
        self.subject = self.edition.subject

    @property
    def renders(self) -> int:
        """How many times stage 1 ran: once per language met so far."""
        return self._stage_one_runs

    def edition_language(self, language: str | None) -> str:
        """The language a reader of `language` gets the edition in."""
        if self._fixed:
            return self._fixed
        code = base_language(language)
        if code and code in self._offered:
            return code
        return self.edition.language

    def edition_for(self, language: str | None) -> RenderedEdition:
        return self._render(language)[0]

    def _render(self, language: str | None) -> tuple[RenderedEdition, MessageFrame]:
        key = language or ""
        found = self._renders.get(key)
        if found is not None:
            return found
        with self._lock:
            found = self._renders.get(key)
            if found is None:
                edition = render_campaign(self.app, self.campaign_id, language, test=self._test)
                self._stage_one_runs += 1
                frame = MessageFrame(
                    self.config,
                    edition,
                    list_headers=True,
                    constant_values=[edition.view_online_url],
                )
                found = (edition, frame)
                self._renders[key] = found
                # The campaign's language under its own code too, so that its readers
                # find it without a second render.
                self._renders.setdefault(edition.language, found)
        return found

    def personal_values(self, recipient: Recipient, language: str | None = None) -> dict[str, str]:
        """The personal fields of one recipient, raw (the frame escapes them for HTML)."""
        edition = self.edition_for(self.edition_language(language or recipient.language))
        return self._personal(recipient, edition)[0]

    def compose(self, recipient: Recipient, language: str | None = None) -> OutgoingMessage:
        edition, frame = self._render(self.edition_language(language or recipient.language))
        values, token = self._personal(recipient, edition)
        # The https link is the footer's; the mailto one carries the same token.
        unsubscribe = header(
            "List-Unsubscribe",
            f"<{values['unsubscribe_url']}>,",
            f"<{links.list_unsubscribe_mailto(self.config, token)}>",
        )
        # The template and values go along for API providers that personalise a batch
        # themselves; `data` is what they must produce.
        personal = Personalisation(edition, values)
        message = frame.message(recipient, values, unsubscribe, personal)
        for step in self.steps:
            message = step(message)
        return message

    def _personal(
        self, recipient: Recipient, edition: RenderedEdition
    ) -> tuple[dict[str, str], str]:
        """The personal fields and the unsubscribe token of one recipient."""
        config = self.config
        name = one_line(recipient.name)
        sid = recipient.subscriber_id
        token = links.unsubscribe_token(self._key, sid, self.campaign_id)
        values = {
            "name": name,
            "greeting": greeting(name, edition.language, edition.greeting_style),
            "email": recipient.email,
            "unsubscribe_url": links.unsubscribe_url(config, token),
            "preferences_url": links.preferences_url(
                config, links.preferences_token(self._key, sid)
            ),
            "view_online_url": edition.view_online_url,
        }
        return values, token


# The message frame: what is encoded once ------------------------------------------------


class MessageFrame:
    """The bytes of a message that are the same for every recipient, and the assembly.

    Order on the wire: From, Reply-To, Subject (built once); To, Date, Message-ID and
    the per-recipient headers; MIME-Version, List-Id, List-Unsubscribe-Post,
    Content-Language and the multipart header (built once); then the text part and
    the HTML part.
    """

    def __init__(
        self,
        config: Config,
        rendered: RenderedEmail,
        *,
        list_headers: bool,
        constant_values: Sequence[str] = (),
    ) -> None:
        mail = config.mail
        self.sender = mail.from_address
        self.id_domain = mail.message_id_domain or mail.from_address.rpartition("@")[2]
        head = [
            _fold("From", str(Address(one_line(mail.from_name), addr_spec=mail.from_address))),
        ]
        if mail.reply_to:
            head.append(_fold("Reply-To", mail.reply_to))
        head.append(_fold("Subject", one_line(rendered.subject)))
        self.head = b"".join(head)

        boundary = "=_" + secrets.token_hex(16)
        tail = [b"MIME-Version: 1.0\r\n"]
        if list_headers:
            tail.append(_fold("List-Id", f"{config.org.name} <{one_line(mail.list_id)}>"))
            tail.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        tail.append(_fold("Content-Language", rendered.language))
        tail.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'.encode())
        tail.append(CRLF)
        self.text = EncodedPart(rendered.text, escape_values=False)
        self.html = EncodedPart(rendered.html, escape_values=True)
        delimiter = f"--{boundary}\r\n".encode()
        tail.append(delimiter + self.text.headers("plain") + CRLF)
        self.tail = b"".join(tail)
        self.between = CRLF + delimiter + self.html.headers("html") + CRLF
        self.end = f"\r\n--{boundary}--\r\n".encode()
        # Values the same in every message (the view-online link) are encoded once here.
        self._constant_memo: dict[str, bytes] = {}
        for value in constant_values:
            for form in (value, _escape_html(value)):
                self._constant_memo[form] = qp_chunk(form, final=False)
        self._date_second = -1
        self._date = b""

    def message(
        self,
        recipient: Recipient,
        values: Mapping[str, str],
        extra_headers: bytes,
        personal: Personalisation | None = None,
    ) -> OutgoingMessage:
        address = _check_address(recipient.email)
        message_id = f"{os.urandom(16).hex()}@{self.id_domain}"
        # Most values are the same in both parts (a URL has nothing to escape): one
        # encoding serves both.
        memo = self._constant_memo.copy()
        head = b"".join(
            (
                self.head,
                to_header(recipient.name, address),
                self._date_header(),
                header("Message-ID", f"<{message_id}>"),
                extra_headers,
                self.tail,
            )
        )
        text, text_stuffed = self.text.encode(values, memo)
        html, html_stuffed = self.html.encode(values, memo)
        data = b"".join((head, text, self.between, html, self.end))
        # As SMTP's DATA sends it, stuffed piece by piece: each piece starts a line (a
        # part's chunks each start one, see EncodedPart); `between` and `end` start with
        # CRLF and hold no dot; `end` ends with CRLF.
        head_stuffed = stuff_dots(head)
        stuffed = b"".join(
            (head_stuffed, text_stuffed, self.between, html_stuffed, self.end, END_OF_DATA)
        )
        return OutgoingMessage(
            sender=self.sender,
            recipient=address,
            data=data,
            message_id=message_id,
            delivery_id=recipient.delivery_id,
            personal=personal,
            stuffed=(data, stuffed),
        )

    def _date_header(self) -> bytes:
        # Formatting a date costs more than the rest of the headers; once a second is enough.
        now = int(time.time())
        if now != self._date_second:
            moment = datetime.fromtimestamp(now, UTC)
            self._date = f"Date: {format_datetime(moment)}\r\n".encode("ascii")
            self._date_second = now
        return self._date


class EncodedPart:
    """One text/* part: its literal chunks encoded once, its fields encoded per recipient."""

    def __init__(self, template: PersonalTemplate, *, escape_values: bool) -> None:
        self.template = template
        self.escape: Callable[[str], str] = _escape_html if escape_values else _same
        static = "".join(template.literals).encode("utf-8")
        non_ascii = len(static) - len(static.decode("ascii", "ignore"))
        self.quoted_printable = non_ascii <= len(static) * _QP_MAX_NON_ASCII
        if self.quoted_printable:
            last = len(template.literals) - 1
            literals = [
                qp_chunk(literal, final=i == last) for i, literal in enumerate(template.literals)
            ]
            # The encoded literals as one bytes format with a %b per field: filling it in
            # is a single pass in C.
            self.format = b"%b".join(literal.replace(b"%", b"%%") for literal in literals)
            # The same with the literals' lines that start with "." stuffed for SMTP, once
            # (a stylesheet's ".class" lines are in every message). Every chunk, literal
            # or value, starts a line and ends on a line boundary (qp_chunk), so chunks
            # stuffed one by one make the part stuffed.
            stuffed = [stuff_dots(literal) for literal in literals]
            self.format_stuffed = (
                self.format
                if stuffed == literals
                else b"%b".join(literal.replace(b"%", b"%%") for literal in stuffed)
            )
            self.unique_fields = tuple(dict.fromkeys(template.fields))

    def headers(self, subtype: str) -> bytes:
        encoding = "quoted-printable" if self.quoted_printable else "base64"
        return (
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: {encoding}\r\n"
        ).encode("ascii")

    def encode(self, values: Mapping[str, str], memo: dict[str, bytes]) -> tuple[bytes, bytes]:
        """The part's body for one recipient, and the same dot-stuffed for SMTP.

        `memo` keeps encoded values between parts. The stuffed body is the same
        object as the body when no line of it starts with ".".
        """
        escape_value = self.escape
        if not self.quoted_printable:
            text = self.template.fill({k: escape_value(v) for k, v in values.items()})
            body = base64_lines(text.replace("\n", "\r\n").encode("utf-8"))
            return body, body  # base64 has no "."
        encoded = {}
        dotted = False
        for field in self.unique_fields:
            value = escape_value(values[field])
            chunk = memo.get(value)
            if chunk is None:
                chunk = memo[value] = qp_chunk(value, final=False)
            encoded[field] = chunk
            dotted = dotted or chunk.startswith(b".") or b"\r\n." in chunk
        chunks = tuple([encoded[field] for field in self.template.fields])
        body = self.format % chunks
        if not dotted:
            return (
                body,
                body if self.format_stuffed is self.format else self.format_stuffed % chunks,
            )
        return body, self.format_stuffed % tuple(stuff_dots(chunk) for chunk in chunks)


def qp_chunk(text: str, *, final: bool) -> bytes:
    """`text` in quoted-printable with CRLF line ends, ending on a line boundary.

    Unless it is the final chunk, a chunk that does not end with a line break ends
    with a soft break, so that the next chunk can start a line of its own.
    """
    if not text:
        return b""
    if (
        not final
        and len(text) <= 75
        and text.isascii()
        and text.isprintable()
        and "=" not in text
        and text[0] != " "
        and text[-1] != " "
    ):
        # Most values (links, plain names) are short printable ASCII: nothing to encode.
        # (String methods rather than a regular expression: this runs ten times a message.)
        return text.encode("ascii") + b"=\r\n"
    encoded = binascii.b2a_qp(text.replace("\r", "").encode("utf-8"), istext=True)
    if not final and not encoded.endswith(b"\n"):
        head, newline, last = encoded.rpartition(b"\n")
        if len(last) > 75:
            # Keep the line with its soft break within 76 characters, without cutting
            # an =XX escape in two.
            cut = next(p for p in (75, 74, 73) if b"=" not in last[p - 2 : p])
            last = last[:cut] + b"=\n" + last[cut:]
        encoded = head + newline + last + b"=\n"
    return encoded.replace(b"\n", b"\r\n")


def base64_lines(data: bytes) -> bytes:
    """Base64 in lines of 76 characters, CRLF between them."""
    encoded = binascii.b2a_base64(data, newline=False)
    return CRLF.join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


# Headers --------------------------------------------------------------------------------


class HeaderInjection(InputError):
    """A header value that would start another header: refused, never written."""


def header(name: str, *parts: str) -> bytes:
    """One header line written as given, its parts folded onto continuation lines.

    For values that need no encoding (links, ids, fixed words). Any line break or
    other control character in a part is refused: written, it would end this
    header and let whatever follows become another (a Bcc, say).
    """
    for part in parts:
        if _CONTROL.search(part) or not part.isascii():
            raise HeaderInjection(f"refusing to write the {name} header: {part[:80]!r}")
    return (f"{name}: " + "\r\n ".join(parts) + "\r\n").encode("ascii")


def one_line(value: str) -> str:
    """A value safe for a header: control characters and line breaks become spaces."""
    return " ".join(_CONTROL.sub(" ", value).split())


def to_header(name: str, address: str) -> bytes:
    """The To header for a display name and an address, built by hand.

    The standard library's header classes parse and refold every value, which
    costs more than all the rest of a message; a name is simple enough to
    write directly: as it is, quoted, or as RFC 2047 encoded words.
    """
    name = one_line(name)
    if not name:
        return b"To: " + address.encode("utf-8") + CRLF
    if name.isascii() and "=?" not in name:
        phrase = name
        if _SPECIALS.search(name):
            phrase = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        line = f"To: {phrase} <{address}>"
        if len(line) <= 78:
            return line.encode("utf-8") + CRLF
    words = "\r\n ".join(encoded_words(name))
    return f"To: {words}\r\n <{address}>\r\n".encode()


def encoded_words(text: str) -> list[str]:
    """RFC 2047 base64 encoded words of at most 72 characters.

    Words are cut after a space where one is near, so that a reader that wrongly
    keeps the white space between encoded words (Python's own address parser
    does) shows at worst a double space, not a name broken in the middle.
    """
    words: list[str] = []
    chunk = b""
    for token in re.findall(r"\S+\s*|\s+", text):
        data = token.encode("utf-8")
        if chunk and len(chunk) + len(data) > _WORD_BYTES:
            words.append(_word(chunk))
            chunk = b""
        while len(data) > _WORD_BYTES:
            # One word longer than an encoded word: cut it between two characters.
            cut = _WORD_BYTES
            while data[cut] & 0xC0 == 0x80:
                cut -= 1
            words.append(_word(data[:cut]))
            data = data[cut:]
        chunk += data
    if chunk:
        words.append(_word(chunk))
    return words


def _word(data: bytes) -> str:
    return "=?utf-8?b?" + base64.b64encode(data).decode("ascii") + "?="


def _fold(name: str, value: str) -> bytes:
    """A header built once per campaign, folded and encoded by the standard library."""
    header = _POLICY.header_factory(name, one_line(value))
    return header.fold(policy=_POLICY).encode("ascii")


def _check_address(email: str) -> str:
    """The address as it goes into To and the envelope; refuses what could break a header."""
    address = email.strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or _BAD_ADDRESS.search(address):
        raise InputError(f"cannot send to {email!r}: not a usable email address")
    if not domain.isascii():
        # An internationalised domain goes on the wire in its ASCII (IDNA) form.
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise InputError(f"cannot send to {email!r}: the domain is not valid") from None
        address = f"{local}@{domain}"
    return address


def _escape_html(value: str) -> str:
    # Most values (links, addresses, plain names) have nothing to escape; looking costs
    # less than html.escape's five replacements.
    if "&" in value or "<" in value or ">" in value or '"' in value or "'" in value:
        return escape(value, quote=True)
    return value


def _same(value: str) -> str:
    return value
