"""The suppression list: addresses never to be mailed, kept only as keyed hashes.

PLACEHOLDER interface; the audience work completes it.
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.models import Suppression


def suppression_hash(key: str, email: str) -> str:
    """HMAC-SHA256 of the case-folded address: matchable, but not readable."""
    return hmac.new(key.encode(), email.strip().casefold().encode(), hashlib.sha256).hexdigest()


def suppress(session: Session, key: str, email: str, reason: str, note: str = "") -> bool:
    """Add an address to the suppression list; False when it was there already."""
    digest = suppression_hash(key, email)
    if session.scalar(select(Suppression.id).where(Suppression.email_hash == digest)):
        return False
    session.add(Suppression(email_hash=digest, reason=reason, note=note))
    session.flush()
    return True


def is_suppressed(session: Session, key: str, email: str) -> bool:
    digest = suppression_hash(key, email)
    return (
        session.scalar(select(Suppression.id).where(Suppression.email_hash == digest)) is not None
    )
