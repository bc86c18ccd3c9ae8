"""Signed links: tokens round-trip, and anything forged, altered, expired or misused is refused."""

from __future__ import annotations

import base64
import binascii
import contextlib
from pathlib import Path

import pytest
from itsdangerous import URLSafeSerializer
from itsdangerous.timed import TimestampSigner

from newsletter import links
from newsletter.config import Config, build_config
from newsletter.errors import UserError

KEY = "a-signing-key-for-tests"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return build_config(
        {"web": {"base_url": "https://news.example.org/list/"}},
        {},
        base_dir=tmp_path,
    )


def test_unsubscribe_token_round_trip() -> None:
    token = links.unsubscribe_token(KEY, 42, 7)
    assert links.load_unsubscribe_token(KEY, token) == (42, 7)


def test_test_send_tokens_carry_no_subscriber() -> None:
    assert links.load_unsubscribe_token(KEY, links.unsubscribe_token(KEY, None, 7)) == (None, 7)
    assert links.load_preferences_token(KEY, links.preferences_token(KEY, None)) is None


def test_preferences_and_view_online_round_trip() -> None:
    assert links.load_preferences_token(KEY, links.preferences_token(KEY, 42)) == 42
    assert links.load_view_online_token(KEY, links.view_online_token(KEY, 9)) == 9


def test_confirm_token_round_trip() -> None:
    token = links.confirm_token(KEY, 42, [3, 1])
    assert links.load_confirm_token(KEY, token, max_age_days=7) == (42, [1, 3])


def test_fast_tokens_are_exactly_what_itsdangerous_makes() -> None:
    # The hand-rolled signer must stay byte-compatible, or itsdangerous could not verify it.
    ours = links.unsubscribe_token(KEY, 123456, 17)
    theirs = URLSafeSerializer(KEY, salt=links.UNSUBSCRIBE_SALT).dumps([123456, 17])
    assert ours == theirs
    assert links.preferences_token(KEY, 5) == URLSafeSerializer(
        KEY, salt=links.PREFERENCES_SALT
    ).dumps(5)


def test_token_signed_with_another_key_is_refused() -> None:
    forged = links.unsubscribe_token("someone-elses-key", 42, 7)
    with pytest.raises(links.InvalidToken, match="not valid"):
        links.load_unsubscribe_token(KEY, forged)


def test_altered_payload_is_refused() -> None:
    token = links.unsubscribe_token(KEY, 42, 7)
    payload, signature = token.split(".")
    # Another subscriber's id with the original signature: the classic tampering attempt.
    other = base64.urlsafe_b64encode(b"[43,7]").rstrip(b"=").decode()
    with pytest.raises(links.InvalidToken):
        links.load_unsubscribe_token(KEY, f"{other}.{signature}")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    with pytest.raises(links.InvalidToken):
        links.load_unsubscribe_token(KEY, f"{payload}.{flipped}")
    with pytest.raises(links.InvalidToken):
        links.load_unsubscribe_token(KEY, token[:-3])
    with pytest.raises(links.InvalidToken):
        links.load_unsubscribe_token(KEY, "garbage")


def test_token_for_one_purpose_is_refused_for_another() -> None:
    preferences = links.preferences_token(KEY, 42)
    with pytest.raises(links.InvalidToken):
        links.load_unsubscribe_token(KEY, preferences)
    with pytest.raises(links.InvalidToken):
        links.load_view_online_token(KEY, preferences)
    with pytest.raises(links.InvalidToken):
        links.load_confirm_token(KEY, preferences, max_age_days=7)


def test_expired_confirm_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = TimestampSigner.get_timestamp
    eight_days = 8 * 86400
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: real(self) - eight_days)
    token = links.confirm_token(KEY, 42, [1])
    monkeypatch.undo()
    with pytest.raises(links.ExpiredToken, match="expired"):
        links.load_confirm_token(KEY, token, max_age_days=7)
    # Within the allowed age the same token is good.
    assert links.load_confirm_token(KEY, token, max_age_days=9) == (42, [1])


def test_invalid_tokens_are_user_errors() -> None:
    # The web pages and the CLI turn UserError into a 4xx / exit 2, never a traceback.
    assert issubclass(links.InvalidToken, UserError)
    assert issubclass(links.ExpiredToken, links.InvalidToken)


def _decoded_segments(token: str) -> list[bytes]:
    out = []
    for segment in token.lstrip(".").split("."):
        with contextlib.suppress(binascii.Error, ValueError):
            out.append(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    return out


def test_tokens_do_not_contain_the_address() -> None:
    address = "ana.silva@example.org"
    tokens = [
        links.unsubscribe_token(KEY, 42, 7),
        links.preferences_token(KEY, 42),
        links.confirm_token(KEY, 42, [1, 2]),
    ]
    for token in tokens:
        readable = [token.encode(), *_decoded_segments(token)]
        for form in (address, "ana.silva", "example.org"):
            assert not any(form.encode() in text for text in readable), token
        # Nor the address's own base64, in either alphabet.
        for encoded in (base64.b64encode(address.encode()), base64.urlsafe_b64encode(b"ana.si")):
            assert encoded.rstrip(b"=")[:8] not in token.encode()


def test_urls_live_under_the_base_url(config: Config) -> None:
    token = links.unsubscribe_token(KEY, 1, 2)
    assert links.unsubscribe_url(config, token) == f"https://news.example.org/list/u/{token}"
    assert links.preferences_url(config, "T") == "https://news.example.org/list/p/T"
    assert links.confirm_url(config, "T") == "https://news.example.org/list/c/T"
    assert links.view_online_url(config, "T") == "https://news.example.org/list/v/T"
    assert links.archive_url(config) == "https://news.example.org/list/archive"


def test_list_unsubscribe_mailto_defaults_to_the_senders_domain(
    config: Config, tmp_path: Path
) -> None:
    token = links.unsubscribe_token(KEY, 1, 2)
    assert (
        links.list_unsubscribe_mailto(config, token)
        == f"mailto:unsubscribe@example.org?subject=unsubscribe%20{token}"
    )
    custom = build_config(
        {"mail": {"unsubscribe_mailto": "leave@lists.example.net"}}, {}, base_dir=tmp_path
    )
    assert links.list_unsubscribe_mailto(custom, "T") == (
        "mailto:leave@lists.example.net?subject=unsubscribe%20T"
    )
