"""Every parser of outside input, fed what hypothesis can think of.

Listings, Markdown files with front matter, feeds, CSV files, the config,
signed tokens and webhook payloads (and the pages a stranger can reach). For
each, whatever the input: it finishes within a bound, it ends in a result or
in the project's own error (exit 2 at the command line, a 4xx on the web),
never a traceback or a 500, and nothing is left half-written.

The examples are few and small on purpose (the suite runs in a few tens of
seconds); shapes known to be costly (deep nesting, many brackets, aliases) are
mixed into the strategies so that they come up every run.
"""

from __future__ import annotations

import contextlib
import json
import string
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from newsletter import links
from newsletter.app import Newsletter
from newsletter.audience.csvfile import CsvFile
from newsletter.audience.imports import import_subscribers
from newsletter.audience.lists import create_list
from newsletter.config import build_config, load_config
from newsletter.errors import ConfigError, InputError, UserError
from newsletter.items.feed import parse_feed_bytes
from newsletter.items.listing import parse_listing_bytes
from newsletter.items.markdown_folder import parse_markdown_folder
from newsletter.web import WebApp, make_wsgi_app

T = TypeVar("T")
# Wall-clock bound of one example, whatever the input (generous: the machine is shared).
BOUND = 5.0
FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Pieces that make parsers work hard or trip: nesting, brackets, aliases, controls.
NASTY = st.sampled_from(
    [
        "[" * 3000,
        "    " * 300 + "- x",
        ">" * 2000,
        "*" * 5000,
        "&a [1,2]\n*a",
        "\x00",
        "\r\n",
        "\u2028",
        "<![CDATA[",
        "<!DOCTYPE x [<!ENTITY a 'aaaa'>]>",
        "&a;" * 100,
        "---",
        "{" * 2000,
        "=cmd|' /C calc'!A0",
        "\ufeff",
        "June 2019",
        "Read the full report",
    ]
)
TEXT = st.lists(st.one_of(st.text(max_size=80), NASTY), max_size=8).map("\n".join)


def timed(work: Callable[[], T]) -> T:
    started = time.monotonic()
    result = work()
    elapsed = time.monotonic() - started
    assert elapsed < BOUND, f"took {elapsed:.1f}s"
    return result


@FUZZ
@given(text=TEXT)
def test_listings(text: str) -> None:
    try:
        result = timed(lambda: parse_listing_bytes(text.encode("utf-8"), label="news.txt"))
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    for problem in result.problems:
        assert "\n" not in str(problem)


@FUZZ
@given(front=st.one_of(st.none(), TEXT), body=TEXT)
def test_markdown_files(tmp_path_factory: pytest.TempPathFactory, front: str | None, body: str):
    folder = tmp_path_factory.mktemp("md")
    text = body if front is None else f"---\ndate: 2019-06-03\n{front}\n---\n{body}"
    (folder / "item.md").write_text(text, encoding="utf-8", errors="surrogatepass")
    result = timed(lambda: parse_markdown_folder(folder, label="posts"))
    assert len(result.items) + len([p for p in result.problems if p.severity == "error"]) >= 1
    for problem in result.problems:
        assert "\n" not in str(problem) and len(str(problem)) < 2000


FEED_PARTS = st.sampled_from(
    [
        '<?xml version="1.0"?>',
        '<rss version="2.0"><channel>',
        "<title>t</title>",
        "<item>",
        "<title>A report</title>",
        "<guid>x</guid>",
        "<pubDate>Mon, 03 Jun 2019 10:00:00 GMT</pubDate>",
        "<description>&lt;p&gt;Hi&lt;/p&gt;</description>",
        "</item>",
        "</channel></rss>",
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        "<entry><title>E</title><updated>2019-06-03T00:00:00Z</updated></entry>",
        "</feed>",
        "<category>report</category>",
    ]
)


@FUZZ
@given(parts=st.lists(st.one_of(FEED_PARTS, st.text(max_size=40), NASTY), max_size=14))
def test_feeds(parts: list[str]) -> None:
    data = "".join(parts).encode("utf-8", "surrogatepass")
    try:
        result = timed(lambda: parse_feed_bytes(data, label="feed.xml"))
    except InputError as exc:
        assert "\n" not in str(exc).strip()
        return
    for item in result.items:
        assert "<script" not in item.body_html


CSV_CELL = st.one_of(
    st.text(alphabet=string.printable + "éжß;,\"'\t", max_size=30),
    st.sampled_from(["ana@example.org", "E-mail", "email", "name", "=1+1", '"', "sep=;"]),
)


@FUZZ
@given(
    rows=st.lists(st.lists(CSV_CELL, max_size=5), max_size=8),
    encoding=st.sampled_from(["utf-8", "utf-16", "cp1252", "utf-8-sig"]),
    header=st.booleans(),
)
def test_csv_files(
    tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]], encoding: str, header: bool
) -> None:
    folder = tmp_path_factory.mktemp("csv")
    lines = ([["email", "name"]] if header else []) + rows
    text = "\n".join(",".join(row) for row in lines)
    path = folder / "people.csv"
    path.write_bytes(text.encode(encoding, "replace"))
    try:
        with CsvFile(path) as reader:
            timed(lambda: list(reader.records()))
    except InputError as exc:
        assert "\n" not in str(exc)


@pytest.fixture(scope="module")
def import_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Newsletter]:
    folder = tmp_path_factory.mktemp("import")
    env = {"NEWSLETTER_SECRET_KEY": "fuzz"}
    data = {"database": {"url": f"sqlite:///{folder / 'n.db'}"}}
    app = Newsletter(build_config(data, env, base_dir=folder), env=env)
    create_list(app, "members", title="Members", actor="tester")
    yield app
    app.close()


@FUZZ
@given(rows=st.lists(st.lists(CSV_CELL, min_size=1, max_size=4), max_size=6))
def test_csv_imports_end_in_a_report_or_one_error_and_leave_no_partial_file(
    import_app: Newsletter, tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]]
) -> None:
    folder = tmp_path_factory.mktemp("people")
    path = folder / "people.csv"
    path.write_text("\n".join(",".join(row) for row in [["email", "name"], *rows]))
    reject = folder / "rejected.csv"
    try:
        timed(
            lambda: import_subscribers(
                import_app,
                path,
                list_name="members",
                reject_path=reject,
                dry_run=True,
                actor="tester",
            )
        )
    except UserError as exc:
        assert "\n" not in str(exc)
    assert not [p for p in folder.iterdir() if p.name.endswith(".partial")]


TOML_VALUE = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=30),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)
SECTION_KEYS = st.sampled_from(
    [
        *("org", "mail", "web", "database", "editions", "dispatch", "privacy", "schedule"),
        *("service", "feedback", "transports", "transport", "schedules", "other"),
    ]
)
FIELD_KEYS = st.sampled_from(
    [
        *("name", "base_url", "from_address", "message_id_domain", "unsubscribe_mailto", "url"),
        *("languages", "topics", "batch_size", "timezone", "cron", "dsn", "workers", "x"),
    ]
)


@FUZZ
@given(
    data=st.dictionaries(
        SECTION_KEYS,
        st.one_of(st.dictionaries(FIELD_KEYS, TOML_VALUE, max_size=3), TOML_VALUE),
        max_size=3,
    )
)
def test_config_tables(data: dict) -> None:
    try:
        timed(lambda: build_config(data, {}, base_dir=Path.cwd()))
    except ConfigError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 2000


@FUZZ
@given(text=TEXT)
def test_config_files(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    path = tmp_path_factory.mktemp("config") / "newsletter.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        timed(lambda: load_config(path, env={}))
    except ConfigError as exc:
        assert "\n" not in str(exc).strip() or "not valid TOML" in str(exc)


KEY = "fuzz-signing-key"
GENUINE = [
    links.unsubscribe_token(KEY, 1, 2),
    links.preferences_token(KEY, 3),
    links.confirm_token(KEY, 4, [5, 6]),
    links.view_online_token(KEY, 7),
]


@FUZZ
@given(
    token=st.one_of(
        st.text(max_size=200),
        st.sampled_from(GENUINE).flatmap(
            lambda t: st.integers(0, len(t) - 1).map(lambda i: t[:i] + "x" + t[i + 1 :])
        ),
        st.sampled_from(GENUINE).map(lambda t: t + "=" * 3),
    )
)
def test_tokens(token: str) -> None:
    loaders = [
        lambda: links.load_unsubscribe_token(KEY, token),
        lambda: links.load_preferences_token(KEY, token),
        lambda: links.load_confirm_token(KEY, token, max_age_days=7),
        lambda: links.load_view_online_token(KEY, token),
    ]
    for load in loaders:
        with contextlib.suppress(links.InvalidToken):
            timed(load)


# --- the web: webhooks and pages ----------------------------------------------------------


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebApp]:
    folder = tmp_path_factory.mktemp("web")
    env = {
        "NEWSLETTER_SECRET_KEY": KEY,
        "NEWSLETTER_WEBHOOK_PASSWORD": "hook",
        "NEWSLETTER_MAILGUN_SIGNING_KEY": "mailgun",
    }
    data = {
        "database": {"url": f"sqlite:///{folder / 'n.db'}"},
        "feedback": {"ses_topic_arns": ["arn:aws:sns:eu-west-1:1:t"]},
        "web": {"subscribe_burst": 100_000, "subscribe_per_hour": 100_000},
    }
    app = Newsletter(build_config(data, env, base_dir=folder), env=env)
    create_list(app, "members", title="Members", public=True, actor="tester")
    pages = make_wsgi_app(app)
    yield pages
    pages.close()
    app.close()


JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.text(max_size=20),
        st.sampled_from(["Bounce", "HardBounce", "SpamComplaint", "SubscriptionChange"]),
        st.sampled_from(["bounce", "dropped", "failed", "complained", "Notification"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.text(max_size=8),
                st.sampled_from(
                    [
                        *("RecordType", "Type", "ID", "Email", "Metadata", "delivery_id"),
                        *("event", "event-data", "signature", "email", "sg_event_id"),
                        *("Message", "TopicArn", "MessageID", "Recipient", "SuppressSending"),
                        "SuppressionReason",
                    ]
                ),
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=12,
)


@FUZZ
@given(
    provider=st.sampled_from(["sendgrid", "mailgun", "postmark", "ses", "other"]),
    payload=st.one_of(JSON.map(json.dumps), st.binary(max_size=100).map(repr), NASTY),
    authenticated=st.booleans(),
)
def test_webhook_payloads(web: WebApp, provider: str, payload: str, authenticated: bool) -> None:
    auth = ("newsletter", "hook") if authenticated else None
    response = timed(lambda: Client(web).post(f"/webhooks/{provider}", data=payload, auth=auth))
    assert response.status_code < 500, response.get_data(as_text=True)


@FUZZ
@given(
    path=st.one_of(
        st.text(alphabet=string.printable + "é\x00", max_size=60).map(lambda p: "/" + p),
        st.sampled_from(["/u/", "/p/", "/c/", "/v/", "/archive/members/", "/static/"]).flatmap(
            lambda head: st.text(max_size=40).map(lambda tail: head + tail)
        ),
    ),
    method=st.sampled_from(["GET", "POST", "HEAD"]),
    form=st.dictionaries(
        st.sampled_from(["email", "name", "lists", "csrf_token", "List-Unsubscribe", "lang"]),
        st.one_of(st.text(max_size=40), NASTY),
        max_size=4,
    ),
)
def test_pages(web: WebApp, path: str, method: str, form: dict[str, str]) -> None:
    client = Client(web)
    try:
        response = timed(lambda: client.open(path, method=method, data=form or None))
    except (ValueError, UnicodeError):
        return  # a path the HTTP client itself cannot send
    assert response.status_code < 500, (path, response.status_code)


@FUZZ
@given(body=st.one_of(JSON.map(json.dumps), NASTY, st.text(max_size=60)))
def test_the_subscribe_api(web: WebApp, body: str) -> None:
    response = timed(
        lambda: Client(web).post("/api/subscribe", data=body, content_type="application/json")
    )
    assert response.status_code in (202, 400, 415, 429), response.status_code
