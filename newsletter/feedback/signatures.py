"""How a webhook request proves it comes from the provider, one function per way.

- Mailgun: HMAC-SHA256 of timestamp + token under the webhook signing key; the
  timestamp must be recent and the token new (the caller remembers tokens).
- SendGrid's signed event webhook: an ECDSA (P-256, SHA-256) signature of
  timestamp + body, checked with the public verification key SendGrid shows.
- Basic auth (Postmark; SendGrid without signing): the user and password set
  in the webhook's URL, compared in constant time.

Each raises `Unverified` with the reason, which is logged, never shown in
full to the caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


class Unverified(Exception):
    """The request could not be shown to come from the provider.

    `status` is what the web answers: 401 when no proof was given, 403 when the
    proof given is wrong (or no way to check it is configured).
    """

    def __init__(self, reason: str, status: int = 403) -> None:
        super().__init__(reason)
        self.status = status


def check_fresh(timestamp: str | float, max_age: float, now: float | None = None) -> None:
    """A signed timestamp must be recent: an old signed request is a replay."""
    now = time.time() if now is None else now
    try:
        moment = float(timestamp)
    except (TypeError, ValueError):
        raise Unverified(f"timestamp {timestamp!r} is not a number") from None
    if abs(now - moment) > max_age:
        raise Unverified(f"timestamp is {int(now - moment)} s old (at most {int(max_age)})")


def verify_mailgun(signing_key: str, timestamp: str, token: str, signature: str) -> None:
    expected = hmac.new(
        signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, str(signature)):
        raise Unverified("the Mailgun signature does not match")


def load_sendgrid_key(text: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key: base64 DER as SendGrid shows it, or PEM."""
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text))
    except (ValueError, binascii.Error) as exc:
        raise Unverified(f"the SendGrid verification key cannot be read: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Unverified("the SendGrid verification key is not an elliptic-curve key")
    return key


def verify_sendgrid(public_key: str, timestamp: str, body: bytes, signature: str) -> None:
    key = load_sendgrid_key(public_key)
    try:
        key.verify(
            base64.b64decode(signature),
            timestamp.encode() + body,
            ec.ECDSA(hashes.SHA256()),
        )
    except (InvalidSignature, ValueError, binascii.Error):
        raise Unverified("the SendGrid signature does not match") from None


def verify_basic(given: tuple[str, str] | None, user: str, password: str) -> None:
    if not password:
        raise Unverified("basic auth is not configured (no webhook password is set)")
    if given is None:
        raise Unverified("no basic auth credentials", 401)
    user_ok = hmac.compare_digest(given[0].encode(), user.encode())
    password_ok = hmac.compare_digest(given[1].encode(), password.encode())
    if not (user_ok and password_ok):
        raise Unverified("wrong basic auth credentials")
