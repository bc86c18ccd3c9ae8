"""DKIM: the signature receiving servers check, and the keys that make it.

Messages we hand on as bytes (SMTP, the maildir outbox) are signed here, once
per message at compose time, as the last step of stage 2 (see
`newsletter.message.finishing_steps`); API providers sign what they send
themselves. The signature covers From, To, Subject, Date, Message-ID, the
List-* headers and the MIME headers. From, Subject and the List-* headers are
named once more than they occur ("over-signed"), so that a relay or a forger
who adds a second one, or strips List-Unsubscribe-Post, breaks the signature.

Canonicalisation is relaxed for headers (a relay may refold them) and simple
for the body: every body line we write is quoted-printable or base64, short
and without trailing white space, so no relay has a reason to touch it, and
the simple form costs nothing to compute. The message itself is never
re-parsed: its header block is split on CRLF, which is how we wrote it.

Why the signature is computed with `cryptography` (OpenSSL) and not with
dkimpy's `sign()`: dkimpy does the RSA operation in pure Python, 6-7 ms per
message while holding the interpreter lock, which would cap a send at about
150 messages a second however many connections it has. dkimpy stays the
reference: the tests verify every kind of signed message with it (against the
TXT record `newsletter dkim keygen` prints), and `newsletter check --domain`
reads published keys with it.

Keys are RSA-2048 or Ed25519 (RFC 8463) in PEM files; `generate_key` writes
one with mode 0600 and gives the DNS TXT record to publish.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa, utils

from newsletter.errors import ConfigError, InputError
from newsletter.transports.base import OutgoingMessage

if TYPE_CHECKING:
    from newsletter.config import Config

KEY_TYPES = ("rsa", "ed25519")
RSA_BITS = 2048

# Signed when present, in this order. Names in OVERSIGNED are listed once more
# than they occur, which signs their absence beyond the ones we wrote.
SIGNED_HEADERS = (
    b"from",
    b"reply-to",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-language",
    b"content-type",
)
OVERSIGNED = frozenset(
    {b"from", b"subject", b"list-id", b"list-unsubscribe", b"list-unsubscribe-post"}
)

_FOLDING = re.compile(rb"\r\n(?=[ \t])")
_WSP = re.compile(rb"[ \t]+")

PrivateKey = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey


@dataclass(frozen=True)
class DnsRecord:
    """The TXT record that publishes a DKIM public key."""

    name: str  # <selector>._domainkey.<domain>
    value: str  # v=DKIM1; k=…; p=…


@dataclass(frozen=True)
class GeneratedKey:
    """What `newsletter dkim keygen` made: the key file and the record to publish."""

    id: str  # the record's name: what identifies this key in DNS
    key_file: str
    key_type: str
    domain: str
    selector: str
    record_name: str
    record_value: str


@dataclass(frozen=True)
class DkimStatus:
    """How signing is set up, for people: what the console's settings page shows."""

    enabled: bool
    domain: str
    selector: str
    key_file: str
    algorithm: str  # rsa-sha256 | ed25519-sha256, or "" when the key cannot be read
    key_readable: bool
    problem: str  # why the key cannot be used, or ""
    record: DnsRecord | None  # the TXT record to publish for this key


def signing_status(config: Config) -> DkimStatus:
    """Whether messages are signed, with which key, and the DNS record to publish.

    The key file is read again, so the page tells whether it is readable now
    (start-up checked it once; a file can be moved or its mode changed since).
    """
    settings = config.dkim
    if not settings.domain:
        return DkimStatus(False, "", "", "", "", False, "", None)
    path = config.resolve_path(settings.private_key_file)
    try:
        key = read_private_key(path)
    except ConfigError as exc:
        return DkimStatus(True, settings.domain, settings.selector, str(path), "", False,
                          str(exc), None)  # fmt: skip
    algorithm = "rsa-sha256" if isinstance(key, rsa.RSAPrivateKey) else "ed25519-sha256"
    return DkimStatus(True, settings.domain, settings.selector, str(path), algorithm, True, "",
                      dns_record(settings.domain, settings.selector, key))  # fmt: skip


def read_private_key(path: Path) -> PrivateKey:
    """The key in a PEM file; ConfigError naming the file when it cannot be used."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"dkim.private_key_file {path}: cannot read it: {reason}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(
            f"dkim.private_key_file {path}: not an unencrypted PEM private key "
            "(make one with `newsletter dkim keygen`)"
        ) from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 1024:
            raise ConfigError(
                f"dkim.private_key_file {path}: an RSA key of {key.key_size} bits is refused "
                f"by receivers; use {RSA_BITS} bits"
            )
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise ConfigError(f"dkim.private_key_file {path}: use an RSA or Ed25519 key")


def dns_record(domain: str, selector: str, key: PrivateKey) -> DnsRecord:
    """The TXT record for `key`'s public half (RFC 6376 section 3.6.1, RFC 8463)."""
    if isinstance(key, rsa.RSAPrivateKey):
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        value = f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"
    else:
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        value = f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode('ascii')}"
    return DnsRecord(name=f"{selector}._domainkey.{domain}", value=value)


def generate_key(domain: str, selector: str, out: Path, key_type: str = "rsa") -> GeneratedKey:
    """Write a new private key to `out` (mode 0600, never over an existing file)."""
    _check_name(domain, "--domain")
    _check_name(selector, "--selector")
    if key_type not in KEY_TYPES:
        raise InputError(f"--type must be one of {', '.join(KEY_TYPES)}, not {key_type!r}")
    key: PrivateKey
    if key_type == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        # O_EXCL: an existing key (perhaps the one in DNS today) is never overwritten;
        # 0600 from the start, so the key is never readable by others, even briefly.
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputError(f"--out {out}: the file exists; choose another name") from None
    except OSError as exc:
        raise InputError(f"--out {out}: cannot create it: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    record = dns_record(domain, selector, key)
    return GeneratedKey(
        id=record.name,
        key_file=str(out),
        key_type=key_type,
        domain=domain,
        selector=selector,
        record_name=record.name,
        record_value=record.value,
    )


class Signer:
    """Signs whole messages (CRLF line ends, as stage 2 writes them) for one domain."""

    def __init__(self, domain: str, selector: str, key: PrivateKey) -> None:
        self.domain = domain
        self.selector = selector
        self.key = key
        self.algorithm = b"rsa-sha256" if isinstance(key, rsa.RSAPrivateKey) else b"ed25519-sha256"
        self._fixed = (
            b"v=1; a=" + self.algorithm + b"; c=relaxed/simple; d=" + domain.encode("idna")
            + b"; s=" + selector.encode("ascii") + b";\r\n t="
        )  # fmt: skip

    def signature_header(self, data: bytes) -> bytes:
        """The DKIM-Signature header (with its CRLF) for the message `data`."""
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            raise ValueError("a message needs a blank line between its headers and body")
        headers = _headers(data[: head_end + 2])
        body = data[head_end + 4 :]
        # Simple body canonicalisation: trailing empty lines go, one CRLF ends the body.
        body = body.rstrip(b"\r\n") + b"\r\n" if body.strip(b"\r\n") else b"\r\n"
        body_hash = base64.b64encode(hashlib.sha256(body).digest())

        by_name: dict[bytes, list[bytes]] = {}
        for name, field in headers:
            by_name.setdefault(name, []).append(field)
        names: list[bytes] = []
        digest = hashlib.sha256()
        for name in SIGNED_HEADERS:
            fields = by_name.get(name, [])
            # The verifier takes instances from the bottom up; an over-signed name
            # past the last instance hashes nothing.
            for field in reversed(fields):
                names.append(name)
                digest.update(_relaxed(name, field))
            if name in OVERSIGNED:
                names.append(name)
        value = (
            self._fixed + str(int(time.time())).encode("ascii")
            + b"; h=" + b":".join(names) + b";\r\n bh=" + body_hash + b";\r\n b="
        )  # fmt: skip
        # The signature header itself, with b= empty and no CRLF, is hashed last.
        digest.update(_relaxed(b"dkim-signature", b" " + value)[:-2])
        signature = self._sign(digest.digest())
        return b"DKIM-Signature: " + value + _fold_base64(signature) + b"\r\n"

    def sign(self, data: bytes) -> bytes:
        """`data` with its DKIM-Signature header first."""
        return self.signature_header(data) + data

    def __call__(self, message: OutgoingMessage) -> OutgoingMessage:
        """The stage-2 step: the message, signed."""
        signature = self.signature_header(message.data)
        data = signature + message.data
        made = message.stuffed
        # The signature's lines start with its name or a space: stuffed, it is the same.
        stuffed = (data, signature + made[1]) if made and made[0] is message.data else None
        return replace(message, data=data, stuffed=stuffed)

    def _sign(self, digest: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        # RFC 8463: Ed25519 signs the SHA-256 hash of the canonical headers.
        return self.key.sign(digest)


def _headers(block: bytes) -> list[tuple[bytes, bytes]]:
    """(lower-case name, raw value after the colon) for each header of a header block."""
    result = []
    for line in _FOLDING.sub(b"\0", block).split(b"\r\n"):
        if not line:
            continue
        name, colon, value = line.partition(b":")
        if colon:
            result.append((name.strip().lower(), value.replace(b"\0", b"\r\n")))
    return result


def _relaxed(name: bytes, value: bytes) -> bytes:
    """One header in relaxed canonical form (RFC 6376 section 3.4.2), with its CRLF."""
    value = _WSP.sub(b" ", value.replace(b"\r\n", b"")).strip(b" ")
    return name + b":" + value + b"\r\n"


def _fold_base64(signature: bytes) -> bytes:
    encoded = base64.b64encode(signature)
    return b"\r\n ".join(encoded[i : i + 72] for i in range(0, len(encoded), 72))


def _check_name(value: str, option: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*", value):
        raise InputError(f"{option} {value!r} is not a DNS name")
