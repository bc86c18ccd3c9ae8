"""Transactional notices (newsletter.notices), and the subscribe form used to harass someone.

Anyone may type anyone's address: the form must not become a way to mail a
victim again and again, nor to put an attacker's words in front of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy

import pytest
from lxml import html as lxml_html
from sqlalchemy import select
from webkit import make_lists, outbox, post_form, text_of
from werkzeug.test import Client

from newsletter import notices
from newsletter.app import Newsletter
from newsletter.audience.joining import NAME_MAX, subscribe
from newsletter.audience.suppression import hash_key
from newsletter.models import NoticeSent, Subscriber
from newsletter.web import WebApp, make_wsgi_app

VICTIM = "victim@example.org"
SPAM_NAME = "Dear WINNER! Claim your prize at https://prize.example.net/claim"


@pytest.fixture
def web(app: Newsletter) -> Iterator[WebApp]:
    make_lists(app)
    pages = make_wsgi_app(app)
    yield pages
    pages.close()


def from_many_sources(web: WebApp, times: int, **form: str) -> None:
    """The same request from `times` different client addresses (each under the rate limit)."""
    for number in range(times):
        client = Client(web)
        source = {"REMOTE_ADDR": f"198.51.100.{number + 1}"}
        response = post_form(
            client,
            "/subscribe/members",
            {"email": VICTIM, "name": SPAM_NAME, "language": "en", **form},
            environ_base=source,
        )
        assert response.status_code == 200
    web.tasks.join()


def test_one_address_gets_a_few_notices_a_day_whatever_the_source(
    app: Newsletter, web: WebApp
) -> None:
    from_many_sources(web, 12)
    limit = app.config.web.notices_per_address_per_day
    assert limit == 3
    assert len(outbox(app)) == limit
    # The count is kept under the keyed hash, never the address.
    with app.session() as session:
        rows = list(session.scalars(select(NoticeSent)))
    assert len(rows) == limit
    assert {row.recipient_hash for row in rows} == {hash_key(app.suppression_key, VICTIM)}
    assert all(VICTIM not in row.recipient_hash for row in rows)


def test_the_limit_counts_every_kind_of_notice_and_other_addresses_are_not_affected(
    app: Newsletter, web: WebApp
) -> None:
    from_many_sources(web, 3)
    sid = subscribe(app, "other@example.org", "", "en", ["members"]).subscriber_id
    assert sid is not None
    # The victim's address now asks to join a list it waits on: refused, today's share is used.
    again = subscribe(app, VICTIM, "", "en", ["members"])
    assert not notices.send_signup_notice(app, again)
    other = subscribe(app, "other@example.org", "", "en", ["members"])
    assert notices.send_signup_notice(app, other)
    assert len(outbox(app)) == 4


def test_a_name_typed_at_the_form_never_reaches_the_confirmation(
    app: Newsletter, web: WebApp
) -> None:
    from_many_sources(web, 1)
    (message,) = outbox(app)
    text = text_of(message)
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    words = lxml_html.document_fromstring(html.encode("utf-8")).text_content()
    raw = message.as_string()
    for shown in (text, words, raw, str(message["To"])):
        assert "WINNER" not in shown and "prize.example.net" not in shown
    # A neutral greeting instead.
    assert "Hello," in text


def test_the_already_subscribed_notice_does_not_print_the_name_either(
    app: Newsletter, web: WebApp
) -> None:
    outcome = subscribe(app, VICTIM, "Vic", "en", ["news"])  # single opt-in: joined at once
    assert outcome.action == "confirmed"
    again = subscribe(app, VICTIM, SPAM_NAME, "fr", ["news"])
    assert again.notice == "already_subscribed"
    assert notices.send_signup_notice(app, again)
    last = outbox(app)[-1]
    assert last["Content-Language"] == "fr"
    assert "Vous êtes déjà abonné" in str(last["Subject"])
    assert "WINNER" not in last.as_string() and "Vic" not in str(last["To"])


def test_the_name_is_capped_on_the_form_and_in_the_service(app: Newsletter, web: WebApp) -> None:
    page = Client(web).get("/subscribe/members").get_data(as_text=True)
    assert f'maxlength="{NAME_MAX}"' in page
    subscribe(app, "long@example.org", "N" * 5000, "en", ["news"])
    with app.session() as session:
        name = session.scalar(select(Subscriber.name).where(Subscriber.email == "long@example.org"))
    assert name == "N" * NAME_MAX


@pytest.mark.parametrize("language", ["en", "ru", "fr", "es"])
def test_notices_in_every_shipped_language(app: Newsletter, language: str) -> None:
    make_lists(app)
    outcome = subscribe(app, f"n-{language}@example.org", "", language, ["members"])
    message = notices.compose(
        app,
        "confirm",
        language,
        subscriber_id=outcome.subscriber_id or 0,
        email=outcome.email,
        list_ids=list(outcome.list_ids),
        list_titles=list(outcome.list_titles),
    )
    text = message.data.decode("ascii")
    assert f"Content-Language: {language}" in text
    expected = {
        "en": "Please confirm",
        "ru": "Подтвердите",
        "fr": "Confirmez",
        "es": "Confirme",
    }[language]
    parsed = message_from_bytes(message.data, policy=policy.default)
    assert expected in str(parsed["Subject"])
    assert expected.casefold() in text_of(parsed).casefold()  # type: ignore[arg-type]
