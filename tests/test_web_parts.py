"""The pages' small parts: CSRF tokens, the rate limiter, the catalogues, the quiet log,
and the `newsletter web` command serving for real."""

from __future__ import annotations

import re
import subprocess
import urllib.request
from pathlib import Path

import pytest
from werkzeug.datastructures import LanguageAccept

from newsletter.audience.joining import one_line
from newsletter.audience.preferences import mask_email
from newsletter.web.csrf import CsrfTokens
from newsletter.web.i18n import choose_language
from newsletter.web.ratelimit import TokenBucket
from newsletter.web.server import redact_path

TEMPLATES = Path(__file__).resolve().parent.parent / "newsletter" / "web" / "templates"
WEB = TEMPLATES.parent


# CSRF ----------------------------------------------------------------------------------


def test_csrf_token_works_only_on_its_own_form_and_key() -> None:
    tokens = CsrfTokens("key")
    token = tokens.issue("subscribe:members")
    assert tokens.check("subscribe:members", token)
    assert not tokens.check("subscribe:news", token)
    assert not CsrfTokens("other-key").check("subscribe:members", token)
    assert not tokens.check("subscribe:members", token[:-2])
    assert not tokens.check("subscribe:members", None)
    assert not tokens.check("subscribe:members", "x" * 500)
    # Every form gets a token of its own.
    assert tokens.issue("subscribe:members") != token


def test_csrf_token_expires() -> None:
    token = CsrfTokens("key").issue("f")
    assert not CsrfTokens("key", max_age=-1).check("f", token)


# Rate limiting -------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_a_burst_then_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(3, 1 / 60, clock=clock)
    assert [bucket.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = bucket.take("a")
    assert 59 < wait <= 60
    assert bucket.take("b") == 0.0
    clock.now += 60
    assert bucket.take("a") == 0.0
    assert bucket.take("a") > 0


def test_token_bucket_forgets_clients_rather_than_grow_without_bound() -> None:
    clock = Clock()
    bucket = TokenBucket(2, 1.0, clock=clock, max_clients=100)
    for i in range(1000):
        bucket.take(f"client-{i}")
        bucket.take(f"client-{i}")
    assert len(bucket) <= 101


# Catalogues ----------------------------------------------------------------------------


def test_language_choice_order() -> None:
    accept = LanguageAccept([("ru-RU", 1), ("en", 0.5)])
    assert choose_language(accept=accept) == "ru"
    assert choose_language(stored="en", accept=accept) == "en"
    assert choose_language(explicit="ru", stored="en", accept=accept) == "ru"
    assert choose_language(explicit="xx", stored="de", accept=LanguageAccept([("pt", 1)])) == "en"


# Privacy of what is shown and logged ---------------------------------------------------


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/u/WzEsMV0.abc?lang=ru", "/u/…?…"),
        ("/p/WzFd.xyz", "/p/…"),
        ("/subscribe", "/subscribe"),
        ("/archive/members/3", "/archive/…"),
        ("/", "/"),
    ],
)
def test_the_request_log_keeps_no_token(path: str, logged: str) -> None:
    assert redact_path(path) == logged


def test_masked_address_and_one_line_name() -> None:
    assert mask_email("ana.lopez@example.org") == "a…@e….org"
    assert mask_email("x@localhost") == "x…@l…"
    assert one_line("Ana\r\nBcc: x@example.org\x00 ") == "Ana Bcc: x@example.org"


# The command ---------------------------------------------------------------------------


@pytest.mark.slow
def test_newsletter_web_serves_the_pages(cli_env: dict[str, str], tmp_path: Path) -> None:
    from conftest import newsletter_command

    process = subprocess.Popen(
        [*newsletter_command(), "web", "--host", "127.0.0.1", "--port", "0"],
        cwd=tmp_path,
        env=cli_env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        base = f"http://127.0.0.1:{match.group(1)}"
        with urllib.request.urlopen(f"{base}/healthz", timeout=30) as response:
            assert response.read() == b'{"status": "ok"}'
        with urllib.request.urlopen(f"{base}/u/forged-token", timeout=30) as response:
            pytest.fail("a forged token must not be accepted")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400
        assert exc.headers["Referrer-Policy"] == "no-referrer"
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=30)
    # The log names the page family and status, never the token or the client's address.
    assert "forged-token" not in errors
    assert "GET /u/… 400" in errors
    assert "127.0.0.1 -" not in errors
