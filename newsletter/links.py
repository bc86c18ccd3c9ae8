"""Signed links: the tokens in every message and the addresses they open.

Every link that acts for a subscriber carries a token signed with the
installation's signing key (`Newsletter.signing_key`), with a salt per purpose
so that a token made for one purpose is refused by every other. Tokens carry
ids only, never an address: a forwarded or leaked link says nothing about who
it was for beyond a number that is useless without the database.

The web pages that serve these addresses, all under ``web.base_url``:

======================  =======================================================
``/u/<token>``          unsubscribe from the campaign's lists; the RFC 8058
                        one-click ``POST`` (``List-Unsubscribe=One-Click``) goes
                        to the same address. Token: (subscriber id, campaign id).
``/p/<token>``          the subscriber's preferences. Token: subscriber id.
``/c/<token>``          confirm a subscription (double opt-in). Token:
                        (subscriber id, list ids), valid for
                        ``web.token_max_age_days``.
``/v/<token>``          a campaign in the browser ("view online"). Token:
                        campaign id, signed so that campaigns of private lists
                        cannot be found by counting ids.
``/l/<token>``          a link of a campaign whose clicks are counted
                        (``privacy.count_clicks``): counts one click and
                        redirects to the link. Token: (campaign id, link id),
                        never a subscriber: the same for every recipient.
``/archive``            the public archive of past campaigns.
======================  =======================================================

Unsubscribe, preferences and view-online tokens do not expire: a link in a
message must keep working for as long as the message is read. Only
confirmation tokens do, because confirming is a consent given now.

A message to someone who is not a subscriber (a test send) carries tokens
whose subscriber id is None; the pages say so instead of changing anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache
from typing import Any

from itsdangerous import BadData, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from newsletter.config import Config
from newsletter.errors import UserError

UNSUBSCRIBE_SALT = "newsletter.unsubscribe"
PREFERENCES_SALT = "newsletter.preferences"
CONFIRM_SALT = "newsletter.confirm"
VIEW_ONLINE_SALT = "newsletter.view-online"
CLICK_SALT = "newsletter.click"


class InvalidToken(UserError):
    """A link whose token was forged, altered, cut short or made for another purpose."""


class ExpiredToken(InvalidToken):
    """A confirmation link older than web.token_max_age_days."""


# Tokens ----------------------------------------------------------------------------------


def unsubscribe_token(key: str, subscriber_id: int | None, campaign_id: int) -> str:
    """The token of a subscriber's unsubscribe link in one campaign."""
    return _sign(key, UNSUBSCRIBE_SALT, f"[{_json_id(subscriber_id)},{_json_id(campaign_id)}]")


def load_unsubscribe_token(key: str, token: str) -> tuple[int | None, int]:
    """(subscriber id, campaign id) from an unsubscribe token; InvalidToken if not genuine."""
    data = _load(URLSafeSerializer(key, salt=UNSUBSCRIBE_SALT), token)
    if (
        isinstance(data, list)
        and len(data) == 2
        and (data[0] is None or _is_id(data[0]))
        and _is_id(data[1])
    ):
        return data[0], data[1]
    raise InvalidToken(_INVALID)


def preferences_token(key: str, subscriber_id: int | None) -> str:
    """The token of a subscriber's preferences link (the same in every campaign)."""
    return _sign(key, PREFERENCES_SALT, _json_id(subscriber_id))


def load_preferences_token(key: str, token: str) -> int | None:
    """The subscriber id from a preferences token; InvalidToken if not genuine."""
    data = _load(URLSafeSerializer(key, salt=PREFERENCES_SALT), token)
    if data is None or _is_id(data):
        return data
    raise InvalidToken(_INVALID)


def confirm_token(key: str, subscriber_id: int, list_ids: list[int]) -> str:
    """The token of a double opt-in confirmation link; it carries the time it was made."""
    if not _is_id(subscriber_id) or not all(_is_id(i) for i in list_ids):
        raise TypeError("confirm_token takes a subscriber id and a list of list ids")
    return URLSafeTimedSerializer(key, salt=CONFIRM_SALT).dumps([subscriber_id, sorted(list_ids)])


def load_confirm_token(key: str, token: str, *, max_age_days: int) -> tuple[int, list[int]]:
    """(subscriber id, list ids) from a confirmation token.

    ExpiredToken when it is older than `max_age_days` (web.token_max_age_days),
    InvalidToken when it is not genuine.
    """
    serializer = URLSafeTimedSerializer(key, salt=CONFIRM_SALT)
    try:
        data = serializer.loads(token, max_age=max_age_days * 86400)
    except SignatureExpired:
        raise ExpiredToken(
            f"this confirmation link has expired (links are valid for {max_age_days} days); "
            "please subscribe again to get a new one"
        ) from None
    except BadData:
        raise InvalidToken(_INVALID) from None
    if (
        isinstance(data, list)
        and len(data) == 2
        and _is_id(data[0])
        and isinstance(data[1], list)
        and all(_is_id(i) for i in data[1])
    ):
        return data[0], data[1]
    raise InvalidToken(_INVALID)


def view_online_token(key: str, campaign_id: int) -> str:
    """The token of a campaign's "view in the browser" link."""
    return _sign(key, VIEW_ONLINE_SALT, _json_id(campaign_id))


def load_view_online_token(key: str, token: str) -> int:
    """The campaign id from a view-online token; InvalidToken if not genuine."""
    data = _load(URLSafeSerializer(key, salt=VIEW_ONLINE_SALT), token)
    if _is_id(data):
        return data
    raise InvalidToken(_INVALID)


def click_token(key: str, campaign_id: int, link_id: int) -> str:
    """The token of a counted link: which campaign and which of its links, nobody's."""
    return _sign(key, CLICK_SALT, f"[{_json_id(campaign_id)},{_json_id(link_id)}]")


def load_click_token(key: str, token: str) -> tuple[int, int]:
    """(campaign id, link id) from a counted link's token; InvalidToken if not genuine."""
    data = _load(URLSafeSerializer(key, salt=CLICK_SALT), token)
    if isinstance(data, list) and len(data) == 2 and _is_id(data[0]) and _is_id(data[1]):
        return data[0], data[1]
    raise InvalidToken(_INVALID)


# Addresses -------------------------------------------------------------------------------


def unsubscribe_url(config: Config, token: str) -> str:
    return f"{_base(config)}/u/{token}"


def preferences_url(config: Config, token: str) -> str:
    return f"{_base(config)}/p/{token}"


def confirm_url(config: Config, token: str) -> str:
    return f"{_base(config)}/c/{token}"


def view_online_url(config: Config, token: str) -> str:
    return f"{_base(config)}/v/{token}"


def click_url(config: Config, token: str) -> str:
    return f"{_base(config)}/l/{token}"


def archive_url(config: Config) -> str:
    return f"{_base(config)}/archive"


def unsubscribe_address(config: Config) -> str:
    """Where mailto: unsubscribe requests go: mail.unsubscribe_mailto, else unsubscribe@<sender's
    domain>."""
    if config.mail.unsubscribe_mailto:
        return config.mail.unsubscribe_mailto
    return "unsubscribe@" + config.mail.from_address.rpartition("@")[2]


def list_unsubscribe_mailto(config: Config, token: str) -> str:
    """The mailto: half of List-Unsubscribe; the token rides in the subject.

    The token's characters (letters, digits, ``-``, ``_`` and ``.``) need no escaping in a
    mailto: URL; the space between the word and the token is written %20.
    """
    return f"mailto:{unsubscribe_address(config)}?subject=unsubscribe%20{token}"


# Internals -------------------------------------------------------------------------------

_INVALID = "this link is not valid: it may have been altered or cut short"


def _base(config: Config) -> str:
    return config.web.base_url.rstrip("/")


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _json_id(value: int | None) -> str:
    """An id as JSON, written by hand: it is all a token carries, and json.dumps is slow."""
    if value is None:
        return "null"
    if not _is_id(value):
        raise TypeError(f"an id must be a non-negative int, not {value!r}")
    return str(int(value))


@lru_cache(maxsize=16)
def _mac(key: str, salt: str) -> hmac.HMAC:
    """The HMAC that itsdangerous's Signer would build for this key and salt, keyed once.

    itsdangerous derives the signing key per call ("django-concat": SHA-1 of salt,
    "signer" and the secret) and signs with HMAC-SHA1. A message needs two tokens and
    itsdangerous spends ~50 µs on each; copying a ready HMAC costs a few. The output is
    byte for byte what URLSafeSerializer.dumps gives (tests/test_links.py checks), so
    itsdangerous alone verifies the tokens.
    """
    derived = hashlib.sha1(salt.encode() + b"signer" + key.encode()).digest()
    return hmac.new(derived, digestmod=hashlib.sha1)


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _sign(key: str, salt: str, json_text: str) -> str:
    # URLSafeSerializer zlib-compresses a payload only when that makes it shorter; a few
    # ids never get shorter, so the payload is always the plain base64 of the JSON.
    payload = _b64(json_text.encode("ascii"))
    mac = _mac(key, salt).copy()
    mac.update(payload)
    return (payload + b"." + _b64(mac.digest())).decode("ascii")


def _load(serializer: URLSafeSerializer, token: str) -> Any:
    try:
        return serializer.loads(token)
    except BadData:
        raise InvalidToken(_INVALID) from None
