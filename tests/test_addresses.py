"""Address validation: a domain's verdict is remembered, every address is still checked."""

from __future__ import annotations

import sys

import pytest
from email_validator import validate_email

from newsletter.audience.addresses import InvalidAddress, normalise_address


def domain_step():
    return sys.modules[validate_email.__module__].validate_email_domain_name


def test_a_domains_verdict_is_remembered() -> None:
    normalise_address("first@remembered.example.org")
    before = domain_step().cache_info().hits
    normalise_address("second@remembered.example.org")
    assert domain_step().cache_info().hits == before + 1


@pytest.mark.parametrize(
    "address",
    [
        "two..dots@example.org",
        "x@-bad-.org",
        "x@-bad-.org",
        "no-at-sign.example.org",
        "x@localhost",
    ],
)
def test_every_address_is_still_validated_whole(address: str) -> None:
    normalise_address("someone@example.org")  # a known good domain does not let bad parts in
    with pytest.raises(InvalidAddress):
        normalise_address(address)
