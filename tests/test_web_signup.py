"""The service functions behind the subscriber pages (newsletter.audience: joining,
leaving, preferences) and the notices they call for (newsletter.notices)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import select
from webkit import make_lists, outbox, subscription_statuses

from newsletter import editions, links, notices
from newsletter.app import Newsletter
from newsletter.audience import suppress
from newsletter.audience.joining import SignupError, confirm, subscribe
from newsletter.audience.leaving import unsubscribe
from newsletter.audience.preferences import get_preferences, update_preferences
from newsletter.models import Delivery, Item, Subscriber, Subscription


@pytest.fixture
def lists(app: Newsletter) -> Newsletter:
    make_lists(app)
    return app


def confirmed(app: Newsletter, address: str, *list_names: str, **details: str) -> int:
    outcome = subscribe(app, address, list_names=list(list_names), **details)
    assert outcome.subscriber_id is not None
    if outcome.action == "confirmation_sent":
        token = links.confirm_token(app.signing_key, outcome.subscriber_id, list(outcome.list_ids))
        confirm(app, token)
    return outcome.subscriber_id


def campaign_to(app: Newsletter, *list_names: str) -> int:
    with app.session() as session:
        item = Item(
            source="t", source_id=uuid.uuid4().hex, kind="news", title="T", date=date(2019, 6, 1)
        )
        session.add(item)
        session.flush()
        item_id = item.id
    return editions.new_announcement(app, item_id, lists=list(list_names), actor="tester").id


def test_form_checks_name_the_field_at_fault(lists: Newsletter) -> None:
    cases = [
        ({"email": "nope", "list_names": ["members"]}, "email"),
        ({"email": "a@example.org", "list_names": []}, "lists"),
        ({"email": "a@example.org", "list_names": ["partners"]}, "lists"),
        ({"email": "a@example.org", "list_names": ["members"], "language": "xx"}, "language"),
        ({"email": "a@example.org", "list_names": ["members"], "topics": ["cats"]}, "topics"),
    ]
    for arguments, field in cases:
        with pytest.raises(SignupError) as caught:
            subscribe(lists, **arguments)
        assert caught.value.field == field


def test_a_stranger_cannot_change_a_known_persons_details(lists: Newsletter) -> None:
    sid = confirmed(lists, "kim@example.org", "members", name="Kim", language="en")
    outcome = subscribe(
        lists,
        "KIM@example.org",
        name="Someone else",
        language="ru",
        list_names=["members"],
        topics=["hiv"],
    )
    assert outcome.action == "already_subscribed"
    with lists.session() as session:
        subscriber = session.get_one(Subscriber, sid)
        assert (subscriber.name, subscriber.language, subscriber.attributes) == ("Kim", "en", {})


def test_the_confirmation_notice_the_outcome_calls_for_is_sent(lists: Newsletter) -> None:
    outcome = subscribe(lists, "new@example.org", list_names=["members"], language="ru")
    assert outcome.action == "confirmation_sent"
    assert outcome.notice == "confirm"
    assert outbox(lists) == []
    assert notices.send_signup_notice(lists, outcome)
    (message,) = outbox(lists)
    assert message["Content-Language"] == "ru"


def test_a_confirmation_clicked_after_leaving_does_not_put_them_back(lists: Newsletter) -> None:
    outcome = subscribe(lists, "lee@example.org", list_names=["members"])
    assert outcome.subscriber_id is not None
    token = links.confirm_token(lists.signing_key, outcome.subscriber_id, list(outcome.list_ids))
    assert confirm(lists, token).state == "confirmed"
    unsubscribe(lists, outcome.subscriber_id, everything=True)
    assert confirm(lists, token).state == "nothing"
    assert subscription_statuses(lists, "lee@example.org") == {"members": "unsubscribed"}


def test_bounced_or_blocked_addresses_cannot_come_back_by_themselves(lists: Newsletter) -> None:
    sid = confirmed(lists, "bob@example.org", "members")
    with lists.session() as session:
        suppress(session, lists.suppression_key, "bob@example.org", "hard_bounce")
    assert subscribe(lists, "bob@example.org", list_names=["news"]).action == ("refused")
    prefs = update_preferences(
        lists, sid, name="", language="en", topics=[], list_names=["members", "news"]
    )
    assert prefs is not None and not prefs.can_join
    assert subscription_statuses(lists, "bob@example.org") == {"members": "confirmed"}
    assert outbox(lists) == []


def test_unsubscribe_cancels_only_the_deliveries_that_no_longer_reach_them(
    lists: Newsletter,
) -> None:
    sid = confirmed(lists, "dee@example.org", "members", "news")
    members_campaign = campaign_to(lists, "members")
    news_campaign = campaign_to(lists, "news")
    claimed_campaign = campaign_to(lists, "members")
    with lists.session() as session:
        session.add_all(
            [
                Delivery(campaign_id=members_campaign, subscriber_id=sid, status="pending"),
                Delivery(campaign_id=news_campaign, subscriber_id=sid, status="retry"),
                Delivery(campaign_id=claimed_campaign, subscriber_id=sid, status="sending"),
            ]
        )
    outcome = unsubscribe(lists, sid, members_campaign)
    assert outcome.left == ("Members",) and not outcome.everything and not outcome.already
    with lists.session() as session:
        statuses = dict(session.execute(select(Delivery.campaign_id, Delivery.status)).all())
    # The members campaign no longer reaches them; the news one does; a claimed row is
    # the worker's.
    assert statuses == {
        members_campaign: "cancelled",
        news_campaign: "retry",
        claimed_campaign: "sending",
    }
    again = unsubscribe(lists, sid, members_campaign)
    assert again.already and again.left == ()


def test_preferences_show_public_lists_and_the_persons_own_private_ones(
    lists: Newsletter,
) -> None:
    from newsletter.audience import add_subscriber

    add_subscriber(lists, "pia@example.org", "partners", actor="tester")
    with lists.session() as session:
        sid = session.scalars(select(Subscriber.id)).one()
    prefs = get_preferences(lists, sid)
    assert prefs is not None
    assert [(c.name, c.subscribed) for c in prefs.lists] == [
        ("members", False),
        ("news", False),
        ("partners", True),
    ]
    # Unticking the private list works; it cannot be ticked again from here afterwards.
    update_preferences(lists, sid, name="", language="en", topics=[], list_names=["news"])
    after = get_preferences(lists, sid)
    assert after is not None
    assert [(c.name, c.subscribed) for c in after.lists] == [("members", False), ("news", True)]
    with lists.session() as session:
        news = session.scalars(select(Subscription).where(Subscription.status == "confirmed")).one()
        assert "preferences link" in news.consent_note


def test_a_strangers_request_leaves_the_record_of_leaving_for_imports(
    lists: Newsletter, tmp_path
) -> None:
    """After a person left a list, a request in their name waits for their confirmation
    and does not turn the list back into something an import could confirm."""
    from newsletter.audience import import_subscribers

    sid = confirmed(lists, "left@example.org", "members", "news")
    unsubscribe(lists, sid, lists=["members"])
    outcome = subscribe(lists, "left@example.org", list_names=["members"])
    assert outcome.action == "confirmation_sent"
    assert subscription_statuses(lists, "left@example.org")["members"] == "unsubscribed"
    csv = tmp_path / "members.csv"
    csv.write_text("email\nleft@example.org\n", encoding="utf-8")
    import_subscribers(lists, csv, list_name="members", actor="tester")
    assert subscription_statuses(lists, "left@example.org")["members"] == "unsubscribed"
    # The owner's confirmation does bring them back.
    token = links.confirm_token(lists.signing_key, sid, list(outcome.list_ids))
    assert confirm(lists, token).state == "confirmed"
    assert subscription_statuses(lists, "left@example.org")["members"] == "confirmed"
