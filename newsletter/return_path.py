"""VERP return paths: the envelope sender that tells which delivery bounced.

With ``[bounces] return_path = "bounces@example.org"``, the message of
delivery 1234 goes out with the envelope sender
``bounces+d1234-<mac>@example.org``. A bounce (DSN) comes back to that
address, and the address itself names the delivery, whatever the bounce says
or leaves out: relays that rewrite the Message-ID, bounces that quote no
headers at all, or a final recipient that is a forwarding address.

The mac is a keyed hash of the delivery id (the installation's signing key),
so a forged bounce cannot name a delivery it did not see the address of.
The token is lower-case letters and digits only: some mail servers lower-case
the local part, and it must fit the 64 characters a local part may have.
A message without a delivery (a test send) uses the return path unchanged.

Stage 2 sets it (`newsletter.message.finishing_steps`); the bounce mailbox
reads it back (`newsletter.feedback.bounces`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import replace

from newsletter.transports.base import OutgoingMessage

_SALT = b"newsletter.return-path:"
_TOKEN = re.compile(r"\+d([0-9]{1,18})-([a-z2-7]{16})@", re.IGNORECASE)


def verp_address(key: str, return_path: str, delivery_id: int | None) -> str:
    """The envelope sender of one delivery's message."""
    if delivery_id is None:
        return return_path
    local, _, domain = return_path.rpartition("@")
    return f"{local}+d{delivery_id}-{_mac(key, delivery_id)}@{domain}"


def delivery_from_addresses(key: str, addresses: Iterable[str]) -> int | None:
    """The delivery id named by the first genuine VERP address among `addresses`."""
    for address in addresses:
        for found in _TOKEN.finditer(address or ""):
            delivery_id = int(found.group(1))
            if hmac.compare_digest(found.group(2).lower(), _mac(key, delivery_id)):
                return delivery_id
    return None


class ReturnPath:
    """The stage-2 step that gives a message its VERP envelope sender."""

    def __init__(self, key: str, return_path: str) -> None:
        self.key = key
        self.return_path = return_path

    def __call__(self, message: OutgoingMessage) -> OutgoingMessage:
        sender = verp_address(self.key, self.return_path, message.delivery_id)
        return replace(message, sender=sender)


def _mac(key: str, delivery_id: int) -> str:
    digest = hmac.new(key.encode(), _SALT + str(delivery_id).encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode("ascii").lower()
