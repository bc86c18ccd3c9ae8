"""CSRF tokens for the pages' forms, with no session and no cookie.

A token is a random nonce signed (itsdangerous, HMAC) together with the time
it was issued, under a salt that names the form it was made for: the
subscribe form of one list, or the unsubscribe or preferences form of one
signed link. A token therefore works only on its own form and only for
`CSRF_MAX_AGE` seconds.

Why no cookie: the subscribe form is embeddable in other sites' pages, where
browsers block third-party cookies, and the pages set no cookie at all so that
they cannot track anyone. What the token stops: a form posted from another
site to the unsubscribe or preferences address cannot carry a valid token,
because that token is bound to the secret link, which the other site does not
know; and a bot replaying one captured subscribe post stops working after
`CSRF_MAX_AGE`. Subscribing a stranger's address through a fresh token gets
the attacker nothing, because double opt-in asks the address's owner.
"""

from __future__ import annotations

import secrets

from itsdangerous import BadData, URLSafeTimedSerializer

# A form left open in a tab for longer than this asks to be sent again.
CSRF_MAX_AGE = 12 * 3600
FIELD = "csrf_token"


class CsrfTokens:
    def __init__(self, key: str, *, max_age: int = CSRF_MAX_AGE) -> None:
        self._key = key
        self.max_age = max_age

    def _serializer(self, form: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._key, salt=f"newsletter.web.csrf:{form}")

    def issue(self, form: str) -> str:
        """A fresh token for `form` (e.g. "subscribe:members" or "unsubscribe:<link token>")."""
        return self._serializer(form).dumps(secrets.token_urlsafe(8))

    def check(self, form: str, token: str | None) -> bool:
        """Whether `token` was issued by us, for this form, less than max_age ago."""
        if not token or len(token) > 200:
            return False
        try:
            self._serializer(form).loads(token, max_age=self.max_age)
        except BadData:
            return False
        return True
