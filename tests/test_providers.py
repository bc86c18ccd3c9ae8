"""API provider transports against fake providers on loopback: batches, personal links,
temporary failures, per-message rejections and fatal refusals, through the real engine."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterator
from html import escape
from typing import Any

import pytest
from sqlalchemy import select

from newsletter import links
from newsletter.app import Newsletter
from newsletter.dispatch import resume_campaign, send_campaign
from newsletter.errors import ConfigError
from newsletter.message import Composer, Recipient
from newsletter.models import Campaign, Delivery, Subscriber
from newsletter.transports import open_transport
from newsletter.transports.providers import sigv4
from newsletter.transports.providers.http import wait_asked
from newsletter.transports.providers.parts import message_parts
from tests.test_dispatch_support import seed_campaign
from tests.test_providers_support import (
    FakeMailgun,
    FakePostmark,
    FakeProvider,
    FakeSendGrid,
    FakeSES,
)

FAST_RETRIES = {
    "retry_initial_seconds": 0.05,
    "retry_max_seconds": 0.2,
    "retry_max_attempts": 6,
    "batch_size": 40,
}


def provider_app(make_app: Any, dsn: str, env: dict[str, str] | None = None) -> Newsletter:
    return make_app(
        {
            "dispatch": FAST_RETRIES,
            "transports": {"api": {"dsn": dsn, "password_env": "API_KEY", "connections": 2}},
            "transport": {"default": "api"},
        },
        env=env or {},
    )


@pytest.fixture
def sendgrid() -> Iterator[FakeSendGrid]:
    server = FakeSendGrid()
    yield server
    server.close()


@pytest.fixture
def mailgun() -> Iterator[FakeMailgun]:
    server = FakeMailgun()
    yield server
    server.close()


@pytest.fixture
def postmark() -> Iterator[FakePostmark]:
    server = FakePostmark()
    yield server
    server.close()


@pytest.fixture
def ses() -> Iterator[FakeSES]:
    server = FakeSES()
    yield server
    server.close()


def deliveries(app: Newsletter, campaign_id: int) -> dict[str, Delivery]:
    with app.session() as session:
        rows = session.execute(
            select(Delivery, Subscriber.email)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.campaign_id == campaign_id)
        ).all()
        for delivery, _ in rows:
            session.expunge(delivery)
        return {email: delivery for delivery, email in rows}


def assert_each_got_their_own(
    app: Newsletter, campaign_id: int, server: FakeProvider, addresses: list[str]
) -> None:
    """Everyone got exactly one message, with their own links and List-Unsubscribe."""
    assert server.problems == []
    assert server.received() == Counter(addresses)
    ledger = deliveries(app, campaign_id)
    seen_urls = set()
    for got in server.delivered:
        header = got.headers["List-Unsubscribe"]
        url = re.search(r"<(https?://[^>]+)>", header).group(1)
        assert url in got.text
        assert escape(url) in got.html
        assert "mailto:" in header
        assert got.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        subscriber_id, cid = links.load_unsubscribe_token(app.signing_key, url.rsplit("/", 1)[1])
        assert cid == campaign_id
        delivery = ledger[got.to]
        assert delivery.subscriber_id == subscriber_id
        assert got.meta.get("delivery_id") == str(delivery.id)
        assert got.subject == "Example Network bulletin — June 2019"
        seen_urls.add(url)
    assert len(seen_urls) == len(addresses)
    for address in addresses:
        assert ledger[address].status == "sent"
        assert ledger[address].provider_message_id


def people(count: int) -> list[str]:
    return [f"person{i}@example.org" for i in range(count)]


# --- configuration ---------------------------------------------------------------------


def test_each_provider_is_configured_by_dsn_with_the_key_from_the_environment(make_app) -> None:
    app = make_app(
        {
            "transports": {
                "sg": {"dsn": "sendgrid://default", "password_env": "SG_KEY"},
                "mg": {"dsn": "mailgun://key-1@mg.example.org?region=eu"},
                "pm": {"dsn": "postmark://TOKEN@default?stream=news&batch=100"},
                "aws": {"dsn": "ses://AKIDEXAMPLE@eu-west-1", "password_env": "AWS_SECRET"},
            }
        },
        env={"SG_KEY": "SG.from-env", "AWS_SECRET": "secret"},
    )
    sg = open_transport(app, "sg")
    assert sg.describe().startswith("sendgrid https://api.sendgrid.com (batches of 1000")
    assert sg._key == "SG.from-env"  # type: ignore[attr-defined]
    assert sg.limits.batch_size == 1000
    mg = open_transport(app, "mg")
    assert "mg.example.org via https://api.eu.mailgun.net" in mg.describe()
    pm = open_transport(app, "pm")
    assert pm.limits.batch_size == 100 and "stream news" in pm.describe()
    aws = open_transport(app, "aws")
    assert "ses eu-west-1 via https://email.eu-west-1.amazonaws.com" in aws.describe()
    assert aws.limits.batch_size == 1


@pytest.mark.parametrize(
    ("dsn", "env", "message"),
    [
        ("sendgrid://default", {}, "no SendGrid API key: set $API_KEY"),
        ("mailgun://key@mg.example.org?region=mars", {}, "region='mars' is not one of us, eu"),
        ("postmark://T@default?batch=501", {}, "batch=501 is more than postmark takes"),
        ("postmark://T@default?strem=x", {}, "unknown parameter 'strem'"),
        ("ses://AKID@eu-west-1", {}, "no SES secret access key: set $API_KEY"),
        ("sendgrid://K@default?endpoint=ftp://x", {}, "endpoint='ftp://x' must start with"),
    ],
)
def test_a_provider_dsn_that_cannot_work_is_a_clear_error(
    make_app, dsn: str, env: dict[str, str], message: str
) -> None:
    app = provider_app(make_app, dsn, env)
    with pytest.raises(ConfigError, match=re.escape(message)):
        open_transport(app)


def test_sigv4_matches_the_published_aws_test_vectors() -> None:
    from datetime import UTC, datetime

    moment = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
    common = dict(
        access_key="AKIDEXAMPLE",
        secret_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        region="us-east-1",
        service="service",
        now=moment,
    )
    host = {"Host": "example.amazonaws.com"}
    vanilla = sigv4.sign("GET", "https://example.amazonaws.com/", host, b"", **common)
    assert vanilla["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        "SignedHeaders=host;x-amz-date, "
        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )
    ordered = sigv4.sign(
        "GET", "https://example.amazonaws.com/?Param2=value2&Param1=value1", host, b"", **common
    )
    assert ordered["Authorization"].endswith(
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
    )


def test_retry_after_and_rate_limit_reset_headers_are_read() -> None:
    import requests

    def response(**headers: str) -> requests.Response:
        r = requests.Response()
        r.status_code = 429
        r.headers.update(headers)
        return r

    assert wait_asked(response(**{"Retry-After": "7"})) == 7
    assert wait_asked(response(**{"Retry-After": "Thu, 01 Jan 1970 00:01:40 GMT"}), now=90) == 10
    assert wait_asked(response(**{"X-RateLimit-Reset": "1000000030"}), now=1e9) == 30
    assert wait_asked(response(**{"X-RateLimit-Reset": "12"})) == 12
    assert wait_asked(response()) is None


def test_the_template_and_values_give_exactly_the_composed_parts(app) -> None:
    campaign_id = seed_campaign(app, 1, prefix="o'brien")
    with app.session() as session:
        subscriber = session.scalar(select(Subscriber))
        subscriber.name = 'Ana "A&B" <Ó>'
        recipient = Recipient(subscriber.id, subscriber.email, subscriber.name)
    message = Composer(app, campaign_id).compose(recipient)
    assert message.personal is not None
    from_template = message_parts(message).bodies()
    from_mime = message_parts(dataclasses.replace(message, personal=None)).bodies()
    assert from_template == from_mime
    assert "Ana &quot;A&amp;B&quot; &lt;Ó&gt;" in from_template[1]


# --- SendGrid ---------------------------------------------------------------------------


def test_sendgrid_sends_personalised_batches_through_a_500_and_429s(make_app, sendgrid) -> None:
    app = provider_app(make_app, f"sendgrid://SG.test-key@default?endpoint={sendgrid.url}&batch=7")
    campaign_id = seed_campaign(app, 30)
    sendgrid.script = {
        2: (500, {}, {"errors": [{"message": "internal error"}]}),
        3: (429, {"Retry-After": "1"}, {"errors": [{"message": "too many requests"}]}),
        4: (429, {}, {"errors": [{"message": "too many requests"}]}),
    }
    outcome = send_campaign(app, campaign_id, actor="tester")
    assert outcome.status == "sent", outcome
    assert_each_got_their_own(app, campaign_id, sendgrid, people(30))
    assert max(sendgrid.batch_sizes) <= 7
    assert sum(sendgrid.batch_sizes) == 30  # the refused requests delivered nobody


def test_sendgrid_fails_the_recipients_it_names_and_sends_the_others(make_app, sendgrid) -> None:
    app = provider_app(make_app, f"sendgrid://SG.test-key@default?endpoint={sendgrid.url}")
    campaign_id = seed_campaign(app, 12)
    sendgrid.reject = {"person3@example.org", "person8@example.org"}
    send_campaign(app, campaign_id, actor="tester")
    ledger = deliveries(app, campaign_id)
    assert ledger["person3@example.org"].status == "failed"
    assert "valid address" in ledger["person3@example.org"].last_response
    others = [a for a in people(12) if a not in sendgrid.reject]
    assert_each_got_their_own(app, campaign_id, sendgrid, others)


def test_a_401_pauses_the_campaign_and_resume_sends_everyone_once(make_app, sendgrid) -> None:
    app = provider_app(make_app, f"sendgrid://SG.wrong@default?endpoint={sendgrid.url}")
    campaign_id = seed_campaign(app, 10)
    outcome = send_campaign(app, campaign_id, actor="tester")
    assert outcome.status == "paused"
    assert outcome.reason == "failing"
    assert "sendgrid refused the request (401" in outcome.note
    assert "check the API key" in outcome.note
    ledger = deliveries(app, campaign_id)
    assert {d.status for d in ledger.values()} <= {"pending", "retry"}
    assert all(d.attempts == 0 for d in ledger.values())
    assert sendgrid.delivered == []
    with app.session() as session:
        assert "401" in session.get_one(Campaign, campaign_id).status_note

    fixed = provider_app(make_app, f"sendgrid://SG.test-key@default?endpoint={sendgrid.url}")
    resume_campaign(fixed, campaign_id, actor="tester")
    assert send_campaign(fixed, campaign_id, actor="tester").status == "sent"
    assert_each_got_their_own(fixed, campaign_id, sendgrid, people(10))


# --- Mailgun ----------------------------------------------------------------------------


def test_mailgun_batches_with_recipient_variables_through_failures(make_app, mailgun) -> None:
    dsn = f"mailgun://key-test@mg.example.org?endpoint={mailgun.url}&batch=9"
    app = provider_app(make_app, dsn)
    campaign_id = seed_campaign(app, 25)
    mailgun.script = {
        1: (429, {"X-RateLimit-Reset": "0"}, {"message": "rate limited"}),
        3: (503, {}, {"message": "service unavailable"}),
    }
    assert send_campaign(app, campaign_id, actor="tester").status == "sent"
    assert_each_got_their_own(app, campaign_id, mailgun, people(25))
    assert max(mailgun.batch_sizes) <= 9
    requests_made = [r.path for r in mailgun.requests]
    assert all(path.endswith("/messages") for path in requests_made)


def test_mailgun_finds_the_one_recipient_a_batch_was_refused_for(make_app, mailgun) -> None:
    app = provider_app(make_app, f"mailgun://key-test@mg.example.org?endpoint={mailgun.url}")
    campaign_id = seed_campaign(app, 16)
    mailgun.reject = {"person5@example.org"}
    send_campaign(app, campaign_id, actor="tester")
    ledger = deliveries(app, campaign_id)
    assert ledger["person5@example.org"].status == "failed"
    others = [a for a in people(16) if a != "person5@example.org"]
    assert_each_got_their_own(app, campaign_id, mailgun, others)
    # Halving found it in a handful of requests, not one per recipient.
    assert len(mailgun.requests) <= 12


def test_mailgun_refusing_every_request_alike_pauses_instead_of_failing_all(
    make_app, mailgun
) -> None:
    app = provider_app(make_app, f"mailgun://key-test@mg.example.org?endpoint={mailgun.url}")
    campaign_id = seed_campaign(app, 16)
    mailgun.reject = set(people(16))
    outcome = send_campaign(app, campaign_id, actor="tester")
    assert outcome.status == "paused"
    assert "not a valid address" in outcome.note
    assert not any(d.status == "failed" for d in deliveries(app, campaign_id).values())


def test_mailgun_without_a_template_sends_raw_mime_one_message_a_request(app, mailgun) -> None:
    from newsletter.transports.providers.http import ApiSettings
    from newsletter.transports.providers.mailgun import MailgunTransport

    campaign_id = seed_campaign(app, 3)
    composer = Composer(app, campaign_id)
    with app.session() as session:
        rows = session.execute(select(Subscriber.id, Subscriber.email)).all()
    messages = [
        dataclasses.replace(composer.compose(Recipient(sid, email)), personal=None)
        for sid, email in rows
    ]
    transport = MailgunTransport(
        "mg", "key-test", "mg.example.org", ApiSettings("mailgun", mailgun.url, batch_size=10)
    )
    results = transport.send(messages)
    transport.close()
    assert [r.outcome for r in results] == ["sent"] * 3
    assert [r.path for r in mailgun.requests] == ["/v3/mg.example.org/messages.mime"] * 3
    assert mailgun.received() == Counter(people(3))


# --- Postmark ---------------------------------------------------------------------------


def test_postmark_records_each_result_of_an_accepted_batch(make_app, postmark) -> None:
    app = provider_app(make_app, f"postmark://pm-token@default?endpoint={postmark.url}&batch=8")
    campaign_id = seed_campaign(app, 20)
    postmark.reject = {"person2@example.org", "person17@example.org"}
    postmark.script = {2: (500, {}, {"ErrorCode": 500, "Message": "Internal"})}
    assert send_campaign(app, campaign_id, actor="tester").status == "sent"
    ledger = deliveries(app, campaign_id)
    for address in postmark.reject:
        assert ledger[address].status == "failed"
        assert "ErrorCode 406" in ledger[address].last_response
    others = [a for a in people(20) if a not in postmark.reject]
    assert_each_got_their_own(app, campaign_id, postmark, others)
    assert max(postmark.batch_sizes) <= 8


def test_postmark_checks_the_limit_of_500_a_batch(app, postmark) -> None:
    from newsletter.transports.providers.http import ApiSettings
    from newsletter.transports.providers.postmark import PostmarkTransport

    campaign_id = seed_campaign(app, 1)
    composer = Composer(app, campaign_id)
    message = composer.compose(Recipient(None, "someone@example.org"))
    many = [dataclasses.replace(message, recipient=f"r{i}@example.org") for i in range(501)]
    transport = PostmarkTransport(
        "pm", "pm-token", "broadcast", ApiSettings("postmark", postmark.url, batch_size=500)
    )
    results = transport.send(many)
    transport.close()
    assert postmark.batch_sizes == [500, 1]
    assert len(results) == 501 and {r.outcome for r in results} == {"sent"}
    assert postmark.problems == []


# --- Amazon SES -------------------------------------------------------------------------


def test_ses_sends_raw_signed_requests_and_fails_a_rejected_address(make_app, ses) -> None:
    app = provider_app(
        make_app, f"ses://AKIDEXAMPLE@eu-west-1?endpoint={ses.url}", {"API_KEY": "ses-secret"}
    )
    campaign_id = seed_campaign(app, 8)
    ses.reject = {"person6@example.org"}
    ses.script = {3: (429, {"x-amzn-ErrorType": "TooManyRequestsException"}, {"message": "slow"})}
    assert send_campaign(app, campaign_id, actor="tester").status == "sent"
    ledger = deliveries(app, campaign_id)
    assert ledger["person6@example.org"].status == "failed"
    assert "MessageRejected" in ledger["person6@example.org"].last_response
    others = [a for a in people(8) if a != "person6@example.org"]
    assert_each_got_their_own(app, campaign_id, ses, others)


def test_ses_with_a_wrong_secret_pauses_the_campaign(make_app, ses) -> None:
    app = provider_app(
        make_app, f"ses://AKIDEXAMPLE@eu-west-1?endpoint={ses.url}", {"API_KEY": "wrong"}
    )
    campaign_id = seed_campaign(app, 4)
    outcome = send_campaign(app, campaign_id, actor="tester")
    assert outcome.status == "paused"
    assert "403" in outcome.note and "signature" in outcome.note.lower()
    assert ses.delivered == []


# --- the engine with a batching transport -------------------------------------------------


def test_the_engine_hands_batches_and_counts_a_refused_batch_as_one_failure(make_app) -> None:
    from newsletter.dispatch import EngineOptions
    from newsletter.dispatch.retry import RetryPolicy
    from newsletter.transports import SendLimits, SendResult
    from newsletter.transports.memory import MemoryTransport

    app = make_app()
    campaign_id = seed_campaign(app, 60)
    calls: list[int] = []

    class Batching(MemoryTransport):
        def send(self, messages):  # type: ignore[no-untyped-def]
            calls.append(len(messages))
            return super().send(messages)

    def first_try_fails(message, tries):  # type: ignore[no-untyped-def]
        return SendResult("retry", "451 try later") if tries == 0 else SendResult("sent", "250")

    transport = Batching(script=first_try_fails, limits=SendLimits(batch_size=20))
    options = EngineOptions(
        batch_size=60,
        pause_after_consecutive_failures=4,
        retry=RetryPolicy(initial_seconds=0.02, max_seconds=0.05, max_attempts=3),
    )
    outcome = send_campaign(app, campaign_id, transport=transport, options=options, actor="tester")
    # Three refused batches of twenty are three failures in a row, not sixty: no pause.
    assert outcome.status == "sent", outcome.note
    assert max(calls) == 20 and sum(calls) == 120
    assert transport.received() == Counter(people(60))
