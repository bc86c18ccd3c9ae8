"""What every console view needs: the program's state, the actor, masking, form errors."""

from __future__ import annotations

import re

from flask import current_app, g

from newsletter.app import Newsletter
from newsletter.audience.preferences import mask_email
from newsletter.dashboard import FinishedSends
from newsletter.roles import can_see_addresses


def newsletter() -> Newsletter:
    app: Newsletter = current_app.config["NEWSLETTER"]
    return app


def actor() -> str:
    """The signed-in person as the audit trail names them."""
    return str(g.user.actor)


def shown_address(email: str) -> str:
    """The address whole, or masked for a role that may not see subscribers' addresses."""
    if not email or can_see_addresses(g.user.role):
        return email
    return mask_email(email)


# Addresses inside free text (a server's "550 <ana@example.org>: no such user").
_ADDRESS = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+")


def shown_text(text: str) -> str:
    """Free text with any address in it masked, for a role that may not see addresses."""
    if not text or can_see_addresses(g.user.role):
        return text
    return _ADDRESS.sub(lambda match: mask_email(match.group(0)), text)


def finished() -> FinishedSends:
    """The console's one store of finished sends' counts (see newsletter.dashboard)."""
    store = current_app.extensions.get("finished_sends")
    if store is None:
        store = current_app.extensions["finished_sends"] = FinishedSends()
    assert isinstance(store, FinishedSends)
    return store
