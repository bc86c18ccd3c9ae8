"""Email addresses: validated by email-validator, normalised, and keyed regardless of case.

No DNS lookups happen here (`check_deliverability=False`): imports run offline
and must not leak the list's domains to a resolver. An address's *key* is its
normalised form case-folded; it is what makes an address unique, so
Ana@Example.org and ana@example.org are one subscriber.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from newsletter.errors import InputError

# Distinct domains whose verdict is remembered.
DOMAIN_CACHE = 16_384


@dataclass(frozen=True, slots=True)
class Address:
    email: str  # normalised: the domain lower-cased, Unicode normalised
    key: str  # the case-folded form: unique per subscriber
    display_name: str = ""  # from "Name <address>", when the input had one


class InvalidAddress(InputError):
    """An address email-validator refuses; the message says why, in its words."""


@cache
def _validator() -> tuple[Callable[..., Any], type[Exception]]:
    # Imported on first use: email-validator compiles its grammar on import (a fifth of
    # a second), which every command that never reads an address would pay for.
    from email_validator import EmailNotValidError, validate_email

    # The module, not the function of the same name that the package exports.
    steps = sys.modules[validate_email.__module__]

    # Checking the domain is half of email-validator's work, and a pure function of the
    # domain: an import of a million addresses has a few thousand domains. Every address
    # still goes through all of validate_email; a domain's verdict is remembered (an
    # invalid one raises, and is never cached).
    # (An internal step of email-validator 2: without it, nothing is remembered.)
    step_name = "validate_email_domain_name"
    domain_step = getattr(steps, step_name, None)
    if domain_step is not None and not hasattr(domain_step, "cache_info"):
        setattr(steps, step_name, lru_cache(maxsize=DOMAIN_CACHE)(domain_step))
    return validate_email, EmailNotValidError


def email_key(email: str) -> str:
    """The case-folded form of an already normalised address."""
    return email.strip().casefold()


def normalise_address(raw: str, *, allow_display_name: bool = False) -> Address:
    """Validate one address and return its normalised form and key.

    With `allow_display_name`, "Jane Doe <jane@example.org>" (as address books
    export it) is accepted and the name is kept apart.
    """
    text = raw.strip()
    if not text:
        raise InvalidAddress("the address is empty")
    validate_email, EmailNotValidError = _validator()
    try:
        result = validate_email(
            text, check_deliverability=False, allow_display_name=allow_display_name
        )
    except EmailNotValidError as exc:
        raise InvalidAddress(f"{text!r} is not a valid email address: {exc}") from None
    return Address(
        email=result.normalized,
        key=email_key(result.normalized),
        display_name=(result.display_name or "").strip(),
    )
