"""Consent records: when, how and on what wording a person agreed to receive a list.

A subscription carries the record of the consent it stands on. The IP address
is kept only when `privacy.store_ip_addresses` is on; by default it is dropped
here, before anything reaches the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from newsletter.models import utcnow

CONSENT_METHODS = ("import", "form", "admin")

DEFAULT_IMPORT_TEXT = "Consent obtained by the organisation before the import; no wording recorded."
DEFAULT_ADMIN_TEXT = "Added by an administrator; no wording recorded."


@dataclass(frozen=True)
class Consent:
    method: str  # import | form | admin
    source: str = ""  # the file name, the form's page, the admin's user name
    text: str = ""  # the wording the person was shown or agreed to
    ip: str | None = None
    note: str = ""  # what was unusual, e.g. an overridden unsubscription
    at: datetime = field(default_factory=utcnow)

    # A mapping: column name to value, spread into a Subscription or set on one by name.
    def columns(self, *, keep_ip: bool) -> dict[str, Any]:
        """The Subscription columns that record this consent."""
        return {
            "consent_at": self.at,
            "consent_method": self.method,
            "consent_source": self.source[:500],
            "consent_text": self.text,
            "consent_ip": self.ip if keep_ip else None,
            "consent_note": self.note,
        }
