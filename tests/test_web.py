"""The subscriber pages over HTTP, driven in-process with werkzeug's test client.

Every test runs on a real SQLite file and, when NEWSLETTER_TEST_DATABASE_URL is
set, on PostgreSQL; emails go to a real maildir outbox and are read back from it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select, update
from webkit import (
    csrf_of,
    link_in,
    make_lists,
    outbox,
    post_form,
    state,
    subscriber_id,
    subscription_statuses,
    text_of,
    without_csrf,
)
from werkzeug.test import Client

from newsletter import editions, links
from newsletter.app import Newsletter
from newsletter.audience import recipients_query
from newsletter.audience.joining import confirm, subscribe
from newsletter.models import Campaign, Delivery, Event, Item, Subscriber, Subscription, utcnow
from newsletter.web import WebApp, make_wsgi_app


@pytest.fixture
def web(app: Newsletter) -> Iterator[WebApp]:
    make_lists(app)
    pages = make_wsgi_app(app)
    yield pages
    pages.close()


@pytest.fixture
def client(web: WebApp) -> Client:
    return Client(web)


def subscribed(app: Newsletter, address: str, *lists: str, name: str = "Known") -> int:
    """A confirmed subscriber, made through the service functions."""
    outcome = subscribe(app, address, name, "en", list(lists))
    assert outcome.subscriber_id is not None
    if outcome.action == "confirmation_sent":
        token = links.confirm_token(app.signing_key, outcome.subscriber_id, list(outcome.list_ids))
        assert confirm(app, token).state == "confirmed"
    return outcome.subscriber_id


def sent_campaign(app: Newsletter, *lists: str, status: str = "sent", title: str = "") -> int:
    """An announcement to `lists` with one item, moved to `status`."""
    with app.session() as session:
        item = Item(
            source="test",
            source_id=f"{time.monotonic_ns()}",
            kind="statement",
            title=title or "Statement to the Human Rights Council",
            date=date(2019, 6, 20),
            summary="The network calls for an end to punitive drug policies.",
            link="https://example.org/statement",
        )
        session.add(item)
        session.flush()
        item_id = item.id
    campaign_id = editions.new_announcement(app, item_id, lists=list(lists), actor="tester").id
    if status != "draft":
        # Put the campaign straight into the status under test: the pages read it, and how
        # it got there (tests/test_lifecycle.py) is not what these tests are about.
        with app.session() as session:
            session.execute(
                update(Campaign)
                .where(Campaign.id == campaign_id)
                .values(status=status, finished_at=utcnow())
            )
    return campaign_id


def in_audience(app: Newsletter, campaign_id: int, sid: int) -> bool:
    with app.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        return sid in set(session.scalars(recipients_query(session, campaign)))


# Headers and plumbing ------------------------------------------------------------------


def test_healthz_answers_ok_as_json(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == {"status": "ok"}


@pytest.mark.parametrize(
    "path", ["/subscribe", "/subscribe/members", "/u/forged", "/archive", "/nowhere", "/healthz"]
)
def test_every_response_has_the_security_headers(client: Client, path: str) -> None:
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'none'" in csp
    assert "form-action 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in response.headers


def test_pages_with_forms_or_tokens_are_not_cached(client: Client) -> None:
    assert client.get("/subscribe").headers["Cache-Control"] == "no-store"
    assert client.get("/p/forged").headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/static/site.css").headers.get("Cache-Control", "")


def test_embeddable_form_may_be_framed_by_the_configured_sites_only(make_app) -> None:
    app = make_app({"web": {"embed_frame_ancestors": ["https://partner.example"]}})
    make_lists(app)
    client = Client(make_wsgi_app(app))
    response = client.get("/embed/members")
    assert response.status_code == 200
    assert (
        "frame-ancestors 'self' https://partner.example"
        in (response.headers["Content-Security-Policy"])
    )
    assert "X-Frame-Options" not in response.headers
    # The full page of the same list still refuses every frame.
    assert client.get("/subscribe/members").headers["X-Frame-Options"] == "DENY"


def test_unknown_page_is_a_plain_404_and_wrong_method_a_405(client: Client) -> None:
    response = client.get("/nowhere", headers={"Accept-Language": "ru"})
    assert response.status_code == 404
    assert "Страница не найдена" in response.get_data(as_text=True)
    response = client.put("/subscribe")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]


def test_a_page_that_fails_is_a_plain_500_that_logs_no_token(
    app: Newsletter, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with app.session() as session:
        broken = Campaign(kind="unknown-kind", subject="Broken")
        session.add(broken)
        session.flush()
        campaign_id = broken.id
    token = links.view_online_token(app.signing_key, campaign_id)
    response = client.get(f"/v/{token}")
    assert response.status_code == 500
    assert "Something went wrong" in response.get_data(as_text=True)
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Traceback" not in response.get_data(as_text=True)
    assert "page /v failed: InputError" in caplog.text
    assert token not in caplog.text


def test_stylesheet_is_served(client: Client) -> None:
    response = client.get("/static/site.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"
    assert client.get("/static/../app.py").status_code == 404


# Pages in the reader's language --------------------------------------------------------


def test_subscribe_page_is_accessible_and_in_english_by_default(client: Client) -> None:
    page = client.get("/subscribe").get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in page
    assert '<main id="main"' in page and "<header" in page and "<footer" in page
    assert 'name="viewport"' in page
    # Every visible input has a label; the lists and topics are fieldsets with legends.
    for control in ("email", "name", "language", "list-members", "list-news", "topic-hiv"):
        assert f'for="{control}"' in page and f'id="{control}"' in page
    assert "<legend>" in page
    # Only public lists are offered.
    assert "Members" in page and "News" in page and "Partners" not in page
    assert "<script" not in page and "style=" not in page


def test_page_language_follows_accept_language_then_falls_back_to_english(
    client: Client,
) -> None:
    russian = client.get("/subscribe", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    assert '<html lang="ru"' in russian.get_data(as_text=True)
    assert "Подписаться" in russian.get_data(as_text=True)
    assert russian.headers["Content-Language"] == "ru"
    # German has no catalogue: the page is in English, and says so in its lang attribute.
    german = client.get("/subscribe", headers={"Accept-Language": "de"})
    assert '<html lang="en"' in german.get_data(as_text=True)
    spanish = client.get("/subscribe", headers={"Accept-Language": "es-MX,es;q=0.9"})
    assert '<html lang="es"' in spanish.get_data(as_text=True)
    assert "Suscribirse" in spanish.get_data(as_text=True)
    # An explicit choice wins over the browser's.
    chosen = client.get("/subscribe?lang=ru", headers={"Accept-Language": "en"})
    assert '<html lang="ru"' in chosen.get_data(as_text=True)


# Subscribing with double opt-in --------------------------------------------------------


def test_double_opt_in_sends_a_confirmation_and_nothing_reaches_them_until_confirmed(
    app: Newsletter, web: WebApp, client: Client
) -> None:
    campaign_id = sent_campaign(app, "members", status="draft")
    response = post_form(
        client,
        "/subscribe/members",
        {"email": "Ana.Lopez@Example.org", "name": "Ana", "language": "ru", "topics": "hiv"},
    )
    assert response.status_code == 200
    assert "ana.lopez" not in response.get_data(as_text=True).lower()
    web.tasks.join()

    assert subscription_statuses(app, "ana.lopez@example.org") == {"members": "unconfirmed"}
    sid = subscriber_id(app, "ana.lopez@example.org")
    assert sid is not None and not in_audience(app, campaign_id, sid)

    (message,) = outbox(app)
    assert message["To"].addresses[0].addr_spec.lower() == "ana.lopez@example.org"
    assert message["Content-Language"] == "ru"
    assert "Подтвердите подписку" in str(message["Subject"])
    confirm_path = link_in(message, "c")

    # Opening the link shows a button and changes nothing.
    before = state(app)
    page = client.get(confirm_path)
    assert page.status_code == 200 and "Members" in page.get_data(as_text=True)
    assert '<html lang="ru"' in page.get_data(as_text=True)
    assert state(app) == before

    done = client.post(confirm_path, data={"csrf_token": csrf_of(page)})
    assert done.status_code == 200
    assert subscription_statuses(app, "ana.lopez@example.org") == {"members": "confirmed"}
    assert in_audience(app, campaign_id, sid)
    with app.session() as session:
        subscriber = session.get_one(Subscriber, sid)
        assert (subscriber.name, subscriber.language) == ("Ana", "ru")
        assert subscriber.attributes["topics"] == ["hiv"]


def test_replayed_confirmation_is_harmless_and_says_so(
    app: Newsletter, web: WebApp, client: Client
) -> None:
    post_form(client, "/subscribe/members", {"email": "ben@example.org", "language": "en"})
    web.tasks.join()
    path = link_in(outbox(app)[0], "c")
    token = csrf_of(client.get(path))
    assert client.post(path, data={"csrf_token": token}).status_code == 200
    before = state(app)
    again = client.post(path, data={"csrf_token": token})
    assert again.status_code == 200
    assert "already confirmed" in again.get_data(as_text=True)
    assert "already confirmed" in client.get(path).get_data(as_text=True)
    assert state(app) == before


def test_consent_record_keeps_time_list_and_the_wording_shown_but_no_ip(
    app: Newsletter, web: WebApp, client: Client
) -> None:
    page = client.get("/subscribe/members")
    wording = "By subscribing you agree that Example Network may email you the lists you chose"
    assert wording in page.get_data(as_text=True)
    client.post(
        "/subscribe/members",
        data={"csrf_token": csrf_of(page), "email": "cai@example.org", "language": "en"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    web.tasks.join()
    with app.session() as session:
        sub = session.scalars(select(Subscription)).one()
        assert sub.consent_text.startswith(wording)
        assert sub.consent_method == "form"
        assert sub.consent_source == "/subscribe/members"
        assert sub.consent_at is not None
        assert sub.consent_ip is None


def test_consent_record_keeps_the_ip_only_when_configured(make_app) -> None:
    app = make_app({"privacy": {"store_ip_addresses": True}})
    make_lists(app)
    pages = make_wsgi_app(app)
    post_form(
        Client(pages),
        "/subscribe/members",
        {"email": "dee@example.org", "language": "en"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    pages.close()
    with app.session() as session:
        assert session.scalars(select(Subscription.consent_ip)).one() == "203.0.113.9"


def test_footer_promises_only_what_the_config_keeps(make_app) -> None:
    quiet = Client(make_wsgi_app(make_app())).get("/subscribe").get_data(as_text=True)
    assert "We do not track" in quiet and "no record of where you connect from" in quiet
    app = make_app({"privacy": {"store_ip_addresses": True, "count_clicks": True}})
    page = Client(make_wsgi_app(app)).get("/subscribe").get_data(as_text=True)
    assert "We do not track whether you open" in page and "never who followed it" in page
    assert "or click their links" not in page and "no record of where" not in page


def test_single_opt_in_list_confirms_at_once_and_sends_nothing(
    app: Newsletter, web: WebApp, client: Client
) -> None:
    response = post_form(client, "/subscribe/news", {"email": "eve@example.org"})
    assert response.status_code == 200
    web.tasks.join()
    assert subscription_statuses(app, "eve@example.org") == {"news": "confirmed"}
    assert outbox(app) == []


def test_page_for_several_lists_asks_about_the_double_opt_in_ones(
    app: Newsletter, web: WebApp, client: Client
) -> None:
    response = post_form(
        client, "/subscribe", {"email": "fay@example.org", "lists": ["members", "news"]}
    )
    assert response.status_code == 200
    web.tasks.join()
    assert subscription_statuses(app, "fay@example.org") == {
        "members": "unconfirmed",
        "news": "confirmed",
    }
    (message,) = outbox(app)
    assert "Members" in text_of(message) and "News" not in text_of(message)


def test_private_and_unknown_lists_cannot_be_joined(
    app: Newsletter, web: WebApp, client: Client
) -> None:
    assert client.get("/subscribe/partners").status_code == 404
    assert client.get("/subscribe/nope").status_code == 404
    response = post_form(client, "/subscribe", {"email": "gus@example.org", "lists": "partners"})
    assert response.status_code == 400
    web.tasks.join()
    assert subscriber_id(app, "gus@example.org") is None


def test_invalid_address_is_refused_with_the_field_marked(
    app: Newsletter, web: WebApp, client: Client
) -> None:
    response = post_form(client, "/subscribe/members", {"email": "not-an-address", "name": "Hal"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'aria-invalid="true"' in page and 'id="email-error"' in page
    # What was typed is kept, escaped.
    assert 'value="Hal"' in page
    web.tasks.join()
    assert state(app)[0] == ()


def test_typed_values_are_escaped_when_the_form_comes_back(client: Client) -> None:
    response = post_form(
        client, "/subscribe/members", {"email": "x", "name": '"><script>alert(1)</script>'}
    )
    page = response.get_data(as_text=True)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


# No enumeration ------------------------------------------------------------------------


def test_known_and_unknown_addresses_get_byte_identical_answers(
    app: Newsletter, web: WebApp, client: Client
) -> None:
    subscribed(app, "known@example.org", "members")
    outbox_before = len(outbox(app))
    answers = []
    for address in ("known@example.org", "unknown@example.org"):
        response = post_form(client, "/subscribe/members", {"email": address, "language": "en"})
        answers.append((response.status_code, dict(response.headers), response.data))
    assert answers[0][0] == answers[1][0] == 200
    assert answers[0][1] == answers[1][1]
    assert without_csrf(answers[0][2]) == without_csrf(answers[1][2])
    web.tasks.join()
    # The owners learn the difference by email, not the browser.
    messages = outbox(app)[outbox_before:]
    subjects = sorted(str(m["Subject"]) for m in messages)
    assert subjects == [
        "Please confirm your subscription to Example Network",
        "You are already subscribed to Example Network",
    ]
    notice = next(m for m in messages if "already" in str(m["Subject"]))
    assert notice["To"].addresses[0].addr_spec == "known@example.org"
    assert link_in(notice, "p").startswith("/p/")


def test_suppressed_address_gets_the_same_answer_and_no_email(
    app: Newsletter, web: WebApp, client: Client
) -> None:
    from newsletter.audience import suppress

    with app.session() as session:
        suppress(session, app.suppression_key, "bounced@example.org", "hard_bounce")
    first = post_form(client, "/subscribe/members", {"email": "bounced@example.org"})
    second = post_form(client, "/subscribe/members", {"email": "fresh@example.org"})
    assert without_csrf(first.data) == without_csrf(second.data)
    web.tasks.join()
    assert [m["To"].addresses[0].addr_spec for m in outbox(app)] == ["fresh@example.org"]
    assert subscriber_id(app, "bounced@example.org") is None


def test_api_answers_known_and_unknown_addresses_alike(
    app: Newsletter, web: WebApp, client: Client
) -> None:
    subscribed(app, "known@example.org", "members")
    answers = []
    for address in ("known@example.org", "unknown@example.org"):
        response = client.post(
            "/api/subscribe", json={"email": address, "lists": ["members"], "language": "en"}
        )
        answers.append((response.status_code, response.data))
    assert answers[0] == answers[1]
    assert answers[0][0] == 202
    assert json.loads(answers[0][1])["status"] == "accepted"
    web.tasks.join()
    assert subscription_statuses(app, "unknown@example.org") == {"members": "unconfirmed"}
    with app.session() as session:
        sub = session.scalars(
            select(Subscription)
            .join(Subscriber)
            .where(Subscriber.email_key == "unknown@example.org")
        ).one()
        assert sub.consent_source == "api"


def test_api_refuses_what_it_cannot_take(client: Client) -> None:
    form = client.post("/api/subscribe", data={"email": "a@example.org", "lists": "members"})
    assert form.status_code == 415
    bad = client.post("/api/subscribe", json={"email": "nope", "lists": ["members"]})
    assert bad.status_code == 400 and bad.get_json()["field"] == "email"
    private = client.post("/api/subscribe", json={"email": "a@example.org", "lists": ["partners"]})
    assert private.status_code == 400 and private.get_json()["field"] == "lists"
    wrong_type = client.post("/api/subscribe", json={"email": 5, "lists": ["members"]})
    assert wrong_type.status_code == 400


# Rate limit, honeypot, CSRF ------------------------------------------------------------


def test_rate_limit_answers_429_per_client_address(make_app) -> None:
    app = make_app({"web": {"subscribe_burst": 2, "subscribe_per_hour": 1}})
    make_lists(app)
    pages = make_wsgi_app(app)
    client = Client(pages)
    one = {"environ_base": {"REMOTE_ADDR": "198.51.100.1"}}
    codes = [
        post_form(client, "/subscribe/members", {"email": f"r{i}@example.org"}, **one).status_code
        for i in range(3)
    ]
    assert codes == [200, 200, 429]
    limited = post_form(
        client,
        "/subscribe/members",
        {"email": "r9@example.org"},
        headers={"Accept-Language": "ru"},
        **one,
    )
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert "Слишком много запросов" in limited.get_data(as_text=True)
    api = client.post("/api/subscribe", json={"email": "r@example.org"}, **one)
    assert api.status_code == 429
    # Another client is not slowed down by the first.
    other = {"environ_base": {"REMOTE_ADDR": "198.51.100.2"}}
    assert (
        post_form(client, "/subscribe/members", {"email": "s@example.org"}, **other).status_code
        == 200
    )
    pages.close()
    # Only the requests that got through did anything, and no address was stored.
    with app.session() as session:
        assert sorted(session.scalars(select(Subscriber.email))) == [
            "r0@example.org",
            "r1@example.org",
            "s@example.org",
        ]


def test_behind_a_proxy_the_limit_is_per_forwarded_client(make_app) -> None:
    app = make_app({"web": {"subscribe_burst": 1, "subscribe_per_hour": 1, "proxy_hops": 1}})
    make_lists(app)
    pages = make_wsgi_app(app)
    client = Client(pages)
    proxy = {"REMOTE_ADDR": "10.0.0.1"}

    def from_client(address: str, email: str) -> int:
        return post_form(
            client,
            "/subscribe/members",
            {"email": email},
            environ_base=proxy,
            headers={"X-Forwarded-For": address},
        ).status_code

    assert from_client("198.51.100.7", "a@example.org") == 200
    assert from_client("198.51.100.7", "b@example.org") == 429
    assert from_client("198.51.100.8", "c@example.org") == 200
    pages.close()


def test_honeypot_gets_the_same_page_and_does_nothing(
    app: Newsletter, web: WebApp, client: Client
) -> None:
    person = post_form(client, "/subscribe/members", {"email": "p@example.org"})
    bot = post_form(
        client, "/subscribe/members", {"email": "bot@example.org", "homepage": "http://spam"}
    )
    assert bot.status_code == 200
    assert without_csrf(bot.data) == without_csrf(person.data)
    web.tasks.join()
    assert subscriber_id(app, "bot@example.org") is None
    assert [m["To"].addresses[0].addr_spec for m in outbox(app)] == ["p@example.org"]
    api = client.post(
        "/api/subscribe",
        json={"email": "bot2@example.org", "lists": ["members"], "homepage": "x"},
    )
    assert api.status_code == 202
    web.tasks.join()
    assert subscriber_id(app, "bot2@example.org") is None


@pytest.mark.parametrize(
    "token",
    [None, "", "forged", "members-token-from-another-form"],
    ids=["missing", "empty", "forged", "other-form"],
)
def test_forms_without_a_valid_csrf_token_are_refused(
    app: Newsletter, web: WebApp, client: Client, token: str | None
) -> None:
    if token == "members-token-from-another-form":
        token = csrf_of(client.get("/subscribe/news"))
    data = {"email": "csrf@example.org"}
    if token is not None:
        data["csrf_token"] = token
    response = client.post("/subscribe/members", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "This form had expired" in page
    # The answer is the form again, with a fresh token and what was typed.
    assert csrf_of(response) and 'value="csrf@example.org"' in page
    web.tasks.join()
    assert subscriber_id(app, "csrf@example.org") is None


def test_csrf_token_of_one_link_does_not_work_on_another(
    app: Newsletter, web: WebApp, client: Client
) -> None:
    first = subscribed(app, "one@example.org", "members")
    second = subscribed(app, "two@example.org", "members")
    campaign_id = sent_campaign(app, "members")
    page_one = f"/u/{links.unsubscribe_token(app.signing_key, first, campaign_id)}"
    page_two = f"/u/{links.unsubscribe_token(app.signing_key, second, campaign_id)}"
    token_one = csrf_of(client.get(page_one))
    before = state(app)
    assert client.post(page_two, data={"csrf_token": token_one}).status_code == 400
    assert state(app) == before


# Forged and expired links --------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/u/", "/p/", "/c/", "/v/"])
def test_forged_or_altered_links_get_a_plain_400_in_the_readers_language(
    app: Newsletter, client: Client, prefix: str
) -> None:
    sid = subscribed(app, "victim@example.org", "members")
    genuine = {
        "/u/": links.unsubscribe_token(app.signing_key, sid, 1),
        "/p/": links.preferences_token(app.signing_key, sid),
        "/c/": links.confirm_token(app.signing_key, sid, [1]),
        "/v/": links.view_online_token(app.signing_key, 1),
    }[prefix]
    payload, _, signature = genuine.rpartition(".")
    altered = payload + "." + ("A" if signature[0] != "A" else "B") + signature[1:]
    other_key = {
        "/u/": links.unsubscribe_token("another-key", sid, 1),
        "/p/": links.preferences_token("another-key", sid),
        "/c/": links.confirm_token("another-key", sid, [1]),
        "/v/": links.view_online_token("another-key", 1),
    }[prefix]
    other_purpose = links.preferences_token(app.signing_key, sid)
    if prefix == "/p/":
        other_purpose = links.view_online_token(app.signing_key, sid)
    before = state(app)
    for token in ("garbage", altered, other_key, other_purpose, genuine[:-3]):
        for method in ("get",) if prefix == "/v/" else ("get", "post"):
            response = getattr(client, method)(prefix + token, headers={"Accept-Language": "ru"})
            assert response.status_code == 400, (prefix, token, method)
            page = response.get_data(as_text=True)
            assert '<html lang="ru"' in page
            assert "Ссылка или форма недействительна" in page
            assert "victim" not in page and "Traceback" not in page
    assert state(app) == before


def test_tokens_reveal_nothing_when_read(app: Newsletter, web: WebApp, client: Client) -> None:
    import base64

    post_form(client, "/subscribe/members", {"email": "secret.person@example.org"})
    web.tasks.join()
    token = link_in(outbox(app)[0], "c").split("/")[-1]
    payload = token.split(".")[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    assert b"secret" not in decoded and b"example" not in decoded


def test_expired_confirmation_link_says_so_and_changes_nothing(
    app: Newsletter, web: WebApp, client: Client
) -> None:
    post_form(client, "/subscribe/members", {"email": "late@example.org"})
    web.tasks.join()
    sid = subscriber_id(app, "late@example.org")

    class EightDaysAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 8 * 86400

    old = URLSafeTimedSerializer(
        app.signing_key, salt=links.CONFIRM_SALT, signer=EightDaysAgo
    ).dumps([sid, [1]])
    before = state(app)
    response = client.get(f"/c/{old}")
    assert response.status_code == 400
    assert "This link has expired" in response.get_data(as_text=True)
    assert client.post(f"/c/{old}").status_code == 400
    assert state(app) == before


# Unsubscribing -------------------------------------------------------------------------


def unsubscribe_path(app: Newsletter, sid: int | None, campaign_id: int) -> str:
    return f"/u/{links.unsubscribe_token(app.signing_key, sid, campaign_id)}"


def test_unsubscribe_get_shows_one_button_and_changes_nothing(
    app: Newsletter, client: Client
) -> None:
    sid = subscribed(app, "una@example.org", "members")
    campaign_id = sent_campaign(app, "members")
    before = state(app)
    for _ in range(3):
        page = client.get(unsubscribe_path(app, sid, campaign_id))
        assert page.status_code == 200
        assert client.head(unsubscribe_path(app, sid, campaign_id)).status_code == 200
    text = page.get_data(as_text=True)
    assert text.count("<button") == 1 and "Members" in text
    assert state(app) == before
    assert in_audience(app, campaign_id, sid)


def test_unsubscribe_form_post_takes_effect_at_once(app: Newsletter, client: Client) -> None:
    sid = subscribed(app, "ula@example.org", "members")
    next_campaign = sent_campaign(app, "members", status="draft")
    with app.session() as session:
        session.add(Delivery(campaign_id=next_campaign, subscriber_id=sid, status="pending"))
    path = unsubscribe_path(app, sid, sent_campaign(app, "members"))
    response = post_form(client, path, {})
    assert response.status_code == 200
    assert "You are unsubscribed" in response.get_data(as_text=True)
    assert subscription_statuses(app, "ula@example.org") == {"members": "unsubscribed"}
    assert not in_audience(app, next_campaign, sid)
    with app.session() as session:
        assert session.scalars(select(Delivery.status)).one() == "cancelled"
        event = session.scalars(select(Event)).one()
        assert (event.type, event.source, event.subscriber_id) == ("unsubscribe", "page", sid)
    # Doing it again is harmless.
    assert post_form(client, path, {}).status_code == 200


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_unsubscribes_at_once_with_no_page(
    app: Newsletter, client: Client, encoding: str
) -> None:
    sid = subscribed(app, "oc@example.org", "members")
    campaign_id = sent_campaign(app, "members")
    path = unsubscribe_path(app, sid, campaign_id)
    if encoding == "urlencoded":
        response = client.post(
            path,
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
    else:
        response = client.post(
            path, data={"List-Unsubscribe": "One-Click"}, content_type="multipart/form-data"
        )
        assert response.request.mimetype == "multipart/form-data"
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "Location" not in response.headers
    assert subscription_statuses(app, "oc@example.org") == {"members": "unsubscribed"}
    assert not in_audience(app, campaign_id, sid)
    with app.session() as session:
        assert session.scalars(select(Event.source)).one() == "one-click"


@pytest.mark.parametrize(
    "body",
    [
        "List-Unsubscribe=One-Click&extra=1",
        "List-Unsubscribe=one-click",
        "unsubscribe=yes",
        "",
    ],
)
def test_other_posts_without_csrf_change_nothing(
    app: Newsletter, client: Client, body: str
) -> None:
    sid = subscribed(app, "nc@example.org", "members")
    path = unsubscribe_path(app, sid, sent_campaign(app, "members"))
    before = state(app)
    response = client.post(path, data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert state(app) == before


def test_unsubscribing_from_one_campaigns_list_keeps_the_others(
    app: Newsletter, client: Client
) -> None:
    sid = subscribed(app, "two.lists@example.org", "members", "news")
    members_campaign = sent_campaign(app, "members")
    news_campaign = sent_campaign(app, "news")
    post_form(client, unsubscribe_path(app, sid, members_campaign), {})
    assert subscription_statuses(app, "two.lists@example.org") == {
        "members": "unsubscribed",
        "news": "confirmed",
    }
    assert in_audience(app, news_campaign, sid)
    # Leaving the last list is leaving everything: the address is then suppressed.
    post_form(client, unsubscribe_path(app, sid, news_campaign), {})
    with app.session() as session:
        assert session.get_one(Subscriber, sid).status == "unsubscribed"
    from newsletter.audience import is_suppressed

    with app.session() as session:
        assert is_suppressed(session, app.suppression_key, "two.lists@example.org")


def test_test_message_link_changes_nothing(app: Newsletter, client: Client) -> None:
    subscribed(app, "someone@example.org", "members")
    campaign_id = sent_campaign(app, "members")
    before = state(app)
    path = unsubscribe_path(app, None, campaign_id)
    page = client.get(path)
    assert page.status_code == 200 and "test message" in page.get_data(as_text=True)
    assert (
        client.post(
            path,
            data="List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        ).status_code
        == 200
    )
    prefs = client.get(f"/p/{links.preferences_token(app.signing_key, None)}")
    assert prefs.status_code == 200 and "test message" in prefs.get_data(as_text=True)
    assert state(app) == before


def test_unsubscribe_link_of_an_erased_person_still_answers(
    app: Newsletter, client: Client
) -> None:
    sid = subscribed(app, "gone@example.org", "members")
    campaign_id = sent_campaign(app, "members")
    path = unsubscribe_path(app, sid, campaign_id)
    with app.session() as session:
        session.delete(session.get_one(Subscriber, sid))
    assert client.get(path).status_code == 200
    response = client.post(
        path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200


# Preferences ---------------------------------------------------------------------------


def preferences_path(app: Newsletter, sid: int) -> str:
    return f"/p/{links.preferences_token(app.signing_key, sid)}"


def test_preferences_page_shows_choices_and_only_a_masked_address(
    app: Newsletter, client: Client
) -> None:
    sid = subscribed(app, "maria.ivanova@example.org", "members", name="Maria")
    before = state(app)
    page = client.get(preferences_path(app, sid)).get_data(as_text=True)
    assert "maria.ivanova@example.org" not in page
    assert "m…@e….org" in page
    assert 'value="Maria"' in page
    assert 'id="list-members" name="lists" value="members" checked' in page
    assert 'id="list-news" name="lists" value="news">' in page
    assert "Partners" not in page
    assert state(app) == before


def test_preferences_change_lists_topics_language_and_name(app: Newsletter, client: Client) -> None:
    sid = subscribed(app, "pat@example.org", "members", name="Pat")
    path = preferences_path(app, sid)
    response = post_form(
        client,
        path,
        {
            "action": "save",
            "name": "Patricia",
            "language": "ru",
            "lists": ["news", "partners"],
            "topics": ["hiv", "human-rights"],
        },
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    # The page now speaks the language just chosen.
    assert '<html lang="ru"' in page and "Ваш выбор сохранён" in page
    # A private list cannot be joined from here; the unticked one is left.
    assert subscription_statuses(app, "pat@example.org") == {
        "members": "unsubscribed",
        "news": "confirmed",
    }
    with app.session() as session:
        subscriber = session.get_one(Subscriber, sid)
        assert (subscriber.name, subscriber.language) == ("Patricia", "ru")
        assert subscriber.attributes["topics"] == ["hiv", "human-rights"]
        news = session.scalars(select(Subscription).where(Subscription.status == "confirmed")).one()
        assert news.consent_source == "preferences"
        # The wording recorded is the one the page showed, in the language it was read in.
        assert news.consent_text.startswith("By ticking a list you agree")


def test_preferences_leave_everything(app: Newsletter, client: Client) -> None:
    sid = subscribed(app, "lea@example.org", "members", "news")
    campaign_id = sent_campaign(app, "members", status="draft")
    response = post_form(client, preferences_path(app, sid), {"action": "leave"})
    assert response.status_code == 200
    assert "You have left all lists" in response.get_data(as_text=True)
    assert set(subscription_statuses(app, "lea@example.org").values()) == {"unsubscribed"}
    assert not in_audience(app, campaign_id, sid)


def test_preferences_of_an_erased_person_are_a_plain_400(app: Newsletter, client: Client) -> None:
    sid = subscribed(app, "erased@example.org", "members")
    with app.session() as session:
        session.delete(session.get_one(Subscriber, sid))
    assert client.get(preferences_path(app, sid)).status_code == 400


def test_coming_back_after_leaving_needs_confirmation_even_on_single_opt_in(
    app: Newsletter, web: WebApp, client: Client
) -> None:
    sid = subscribed(app, "back@example.org", "news")
    post_form(client, preferences_path(app, sid), {"action": "leave"})
    post_form(client, "/subscribe/news", {"email": "back@example.org"})
    web.tasks.join()
    # Until the owner confirms, the record of their leaving stands.
    assert subscription_statuses(app, "back@example.org") == {"news": "unsubscribed"}
    (message,) = outbox(app)
    path = link_in(message, "c")
    post_form(client, path, {})
    assert subscription_statuses(app, "back@example.org") == {"news": "confirmed"}
    from newsletter.audience import is_suppressed

    with app.session() as session:
        assert not is_suppressed(session, app.suppression_key, "back@example.org")
        assert session.get_one(Subscriber, sid).status == "active"
        sub = session.scalars(select(Subscription)).one()
        assert "after unsubscribing" in sub.consent_note


def test_get_never_changes_anything_on_any_page(app: Newsletter, client: Client) -> None:
    sid = subscribed(app, "look@example.org", "members")
    campaign_id = sent_campaign(app, "members")
    pending = links.confirm_token(app.signing_key, sid, [2])
    before = state(app)
    for path in (
        "/",
        "/subscribe",
        "/subscribe/members",
        "/embed/members",
        unsubscribe_path(app, sid, campaign_id),
        preferences_path(app, sid),
        f"/c/{pending}",
        "/archive",
        "/archive/members",
        f"/archive/members/{campaign_id}",
        f"/v/{links.view_online_token(app.signing_key, campaign_id)}",
        "/healthz",
    ):
        assert client.get(path).status_code == 200, path
    assert state(app) == before


# Archive -------------------------------------------------------------------------------


def test_archive_lists_sent_editions_of_public_lists_only(app: Newsletter, client: Client) -> None:
    sent = sent_campaign(app, "members", title="A sent statement")
    draft = sent_campaign(app, "members", status="draft", title="A draft statement")
    private = sent_campaign(app, "partners", title="A private statement")
    index = client.get("/archive").get_data(as_text=True)
    assert "Members" in index and "Partners" not in index
    page = client.get("/archive/members").get_data(as_text=True)
    assert "A sent statement" in page
    assert "A draft statement" not in page
    assert f"/archive/members/{sent}" in page
    assert client.get("/archive/partners").status_code == 404
    assert client.get(f"/archive/members/{draft}").status_code == 404
    assert client.get(f"/archive/members/{private}").status_code == 404
    assert client.get(f"/archive/partners/{private}").status_code == 404


def test_edition_pages_have_nothing_personal_in_them(app: Newsletter, client: Client) -> None:
    subscribed(app, "reader@example.org", "members", name="Rosalind")
    campaign_id = sent_campaign(app, "members")
    for path in (
        f"/archive/members/{campaign_id}",
        f"/v/{links.view_online_token(app.signing_key, campaign_id)}",
    ):
        response = client.get(path)
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert "Statement to the Human Rights Council" in page
        assert "Rosalind" not in page and "reader@example.org" not in page
        assert "/u/" not in page and "/p/" not in page
        # Worded for any reader, not as a subscriber's copy with an empty address in it.
        assert "This is the web copy of an email" in page
        assert "You receive this email at" not in page
        csp = response.headers["Content-Security-Policy"]
        assert "script-src" not in csp and "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["Referrer-Policy"] == "no-referrer"
