"""The audience: lists, subscribers, suppression and who a campaign resolves to."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, insert, literal, select

from newsletter import audience
from newsletter.audience.suppression import hash_key
from newsletter.errors import InputError, InvalidState, NotFound
from newsletter.models import (
    Campaign,
    Delivery,
    MailingList,
    Segment,
    Subscriber,
    Subscription,
    Suppression,
)

# --- who a campaign goes to ----------------------------------------------------------


def add(app, email: str, *lists: str, language: str = "en", confirmed: bool = True) -> None:
    for list_name in lists:
        audience.add_subscriber(
            app, email, list_name, language=language, confirmed=confirmed, actor="tester"
        )


@pytest.fixture
def crowd(app) -> None:
    """A bit of everything that may or may not receive a campaign."""
    for name in ("members", "partners", "old"):
        audience.create_list(app, name, actor="tester")
    add(app, "m1@example.org", "members")
    add(app, "m2@example.org", "members", "partners", language="ru")  # on two lists: once
    add(app, "m3@example.org", "members", confirmed=False)  # not confirmed
    add(app, "m4@example.org", "members")
    audience.unsubscribe_address(
        app, "m4@example.org", list_name="members", actor="tester"
    )  # left the list
    add(app, "m5@example.org", "members")
    with app.session() as session:  # a hard bounce, as the dispatcher reports it
        audience.suppress(session, app.suppression_key, "m5@example.org", "hard_bounce")
    add(app, "m6@example.org", "members")
    with app.session() as session:
        # Suppressed but still marked active (say, suppressed by another process before the
        # subscriber existed): the anti-join on the hash must leave it out on its own.
        session.add(
            Suppression(email_hash=hash_key(app.suppression_key, "m6@example.org"), reason="manual")
        )
    add(app, "r1@example.org", "members", language="ru")
    add(app, "p1@example.org", "partners", language="ru")
    add(app, "o1@example.org", "old", language="ru")
    audience.archive_list(app, "old", actor="tester")


def campaign(app, lists: list[str], segment_rules: dict | None = None) -> int:
    with app.session() as session:
        chosen = list(session.scalars(select(MailingList).where(MailingList.name.in_(lists))))
        segment = None
        if segment_rules is not None:
            segment = Segment(name=f"s{len(lists)}-{id(segment_rules)}", definition=segment_rules)
        item = Campaign(kind="bulletin", subject="June", lists=chosen, segment=segment)
        session.add(item)
        session.flush()
        return item.id


def recipients(app, campaign_id: int) -> list[str]:
    with app.session() as session:
        query = audience.recipients_query(session, session.get(Campaign, campaign_id)).subquery()
        return sorted(
            session.scalars(
                select(Subscriber.email).join(query, query.c.subscriber_id == Subscriber.id)
            )
        )


RUSSIAN = {"field": "language", "op": "eq", "value": "ru"}


def test_lists_confirmed_members_minus_inactive_and_suppressed_once_each(app, crowd) -> None:
    both = campaign(app, ["members", "partners"])
    assert recipients(app, both) == [
        "m1@example.org",
        "m2@example.org",
        "p1@example.org",
        "r1@example.org",
    ]


def test_a_segment_narrows_the_lists(app, crowd) -> None:
    narrowed = campaign(app, ["members"], RUSSIAN)
    assert recipients(app, narrowed) == ["m2@example.org", "r1@example.org"]


def test_a_segment_alone_spans_every_open_list(app, crowd) -> None:
    # o1 speaks Russian too, but only through an archived list.
    alone = campaign(app, [], RUSSIAN)
    assert recipients(app, alone) == ["m2@example.org", "p1@example.org", "r1@example.org"]


def test_no_lists_and_no_segment_is_nobody_and_an_archived_list_is_nobody(app, crowd) -> None:
    assert recipients(app, campaign(app, [])) == []
    assert recipients(app, campaign(app, ["old"])) == []


def test_the_query_feeds_insert_select_and_agrees_with_the_count(app, crowd) -> None:
    campaign_id = campaign(app, ["members", "partners"])
    with app.session() as session:
        item = session.get(Campaign, campaign_id)
        counted = audience.count_recipients(session, item)
        query = audience.recipients_query(session, item).subquery()
        session.execute(
            insert(Delivery).from_select(
                ["campaign_id", "subscriber_id"],
                select(literal(campaign_id), query.c.subscriber_id),
            )
        )
        written = session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.campaign_id == campaign_id)
        )
    assert counted == written == 4


def test_unsubscribing_from_everything_suppresses(app, crowd) -> None:
    audience.unsubscribe_address(app, "m2@example.org", actor="tester")
    assert "m2@example.org" not in recipients(app, campaign(app, ["members", "partners"]))
    with app.session() as session:
        assert audience.suppression_reason(session, app.suppression_key, "M2@example.org") == (
            "unsubscribed"
        )
        statuses = set(
            session.scalars(
                select(Subscription.status)
                .join(Subscriber)
                .where(Subscriber.email_key == "m2@example.org")
            )
        )
    assert statuses == {"unsubscribed"}


# --- suppression ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("hard_bounce", "bounced"),
        ("complaint", "complained"),
        ("manual", "blocklisted"),
        ("unsubscribed", "unsubscribed"),
    ],
)
def test_suppress_marks_the_subscriber(app, reason, status) -> None:
    audience.create_list(app, "members", actor="tester")
    add(app, "who@example.org", "members")
    with app.session() as session:
        assert audience.suppress(session, app.suppression_key, "WHO@example.org", reason) is True
        assert audience.suppress(session, app.suppression_key, "who@example.org", reason) is False
        assert audience.is_suppressed(session, app.suppression_key, "who@EXAMPLE.ORG")
        assert session.scalar(select(Subscriber.status)) == status


def test_only_a_keyed_hash_is_stored(app) -> None:
    with app.session() as session:
        audience.suppress(session, app.suppression_key, "secret@example.org", "manual", "note")
        stored = session.scalar(select(Suppression))
        assert "secret" not in stored.email_hash and len(stored.email_hash) == 64
        assert stored.email_hash == audience.suppression_hash(
            app.suppression_key, "Secret@Example.org"
        )
        assert stored.email_hash != audience.suppression_hash("another key", "secret@example.org")


def test_unknown_reason_is_refused(app) -> None:
    with app.session() as session, pytest.raises(InputError, match="unknown suppression reason"):
        audience.suppress(session, app.suppression_key, "a@example.org", "annoying")


def test_suppress_fills_in_a_missing_hash(app) -> None:
    # A subscriber created without the audience functions has no hash yet.
    audience.create_list(app, "members", actor="tester")
    with app.session() as session:
        person = Subscriber(email="raw@example.org", email_key="raw@example.org")
        session.add(person)
        session.flush()
        session.add(Subscription(subscriber_id=person.id, list_id=1, status="confirmed"))
    with app.session() as session:
        audience.suppress(session, app.suppression_key, "raw@example.org", "hard_bounce")
        assert session.scalar(select(Subscriber.email_hash)) == audience.suppression_hash(
            app.suppression_key, "raw@example.org"
        )


def test_a_suppressed_address_is_not_added_unless_forced(app) -> None:
    audience.create_list(app, "members", actor="tester")
    audience.suppression.suppress_address(app, "gone@example.org", "complaint", actor="tester")
    with pytest.raises(InvalidState, match=r"suppressed \(complaint\).*--force-resubscribe"):
        add(app, "gone@example.org", "members")
    result = audience.add_subscriber(app, "gone@example.org", "members", force=True, actor="tester")
    assert result.forced == "the address is suppressed (complaint)"
    with app.session() as session:
        assert not audience.is_suppressed(session, app.suppression_key, "gone@example.org")
        assert "--force-resubscribe over" in session.scalar(select(Subscription.consent_note))


def test_lift_restores_the_status_the_suppression_gave(app) -> None:
    audience.create_list(app, "members", actor="tester")
    add(app, "oops@example.org", "members")
    audience.suppression.suppress_address(app, "oops@example.org", "manual", actor="tester")
    assert (
        audience.suppression.lift_address(app, "oops@example.org", actor="tester").lifted
        == "manual"
    )
    with app.session() as session:
        assert session.scalar(select(Subscriber.status)) == "active"


# --- lists ---------------------------------------------------------------------------


def test_list_names_are_slugs_with_a_suggestion(app) -> None:
    with pytest.raises(InputError, match="for example 'regional-networks'"):
        audience.create_list(app, "Regional Networks", actor="tester")


def test_lists_create_twice_and_ensure(app) -> None:
    audience.create_list(app, "members", actor="tester")
    with pytest.raises(InvalidState, match="already exists"):
        audience.create_list(app, "members", actor="tester")
    again = audience.ensure_list(app, "members", title="Changed", actor="tester")
    assert again.created is False and again.title == "Members"


def test_archived_list_takes_no_members_and_is_hidden(app) -> None:
    audience.create_list(app, "old", actor="tester")
    add(app, "a@example.org", "old")
    audience.archive_list(app, "old", actor="tester")
    assert audience.list_lists(app) == []
    assert [row.name for row in audience.list_lists(app, include_archived=True)] == ["old"]
    assert audience.show_list(app, "old").reachable == 0
    with pytest.raises(InvalidState, match="archived"):
        add(app, "b@example.org", "old")


def test_show_list_counts_by_status(app) -> None:
    audience.create_list(app, "members", actor="tester")
    add(app, "a@example.org", "members")
    add(app, "b@example.org", "members", confirmed=False)
    add(app, "c@example.org", "members")
    audience.unsubscribe_address(app, "c@example.org", list_name="members", actor="tester")
    shown = audience.show_list(app, "members")
    assert (shown.confirmed, shown.unconfirmed, shown.unsubscribed) == (1, 1, 1)
    assert shown.reachable == 1
    with pytest.raises(NotFound, match="no list named 'nope' \\(known: members\\)"):
        audience.show_list(app, "nope")


def test_addresses_are_unique_regardless_of_case(app) -> None:
    audience.create_list(app, "members", actor="tester")
    first = audience.add_subscriber(app, "Ana@Example.ORG", "members", name="Ana", actor="tester")
    second = audience.add_subscriber(app, "ana@example.org", "members", actor="tester")
    assert first.id == second.id and first.email == "Ana@example.org"
    with pytest.raises(InputError, match="not a valid email address"):
        audience.add_subscriber(app, "ana@", "members", actor="tester")


# --- the commands --------------------------------------------------------------------


def test_cli_lists(run_cli) -> None:
    created = run_cli("lists", "create", "members", "--optin", "single", "--public", "--json")
    assert created.returncode == 0 and json.loads(created.stdout)["id"] >= 1
    # The keys of `lists create --json` and `lists show --json`, pinned: scripts read them.
    summary = ["id", "name", "title", "description", "optin", "visibility", "archived",
               "unconfirmed", "confirmed", "unsubscribed", "created_at"]  # fmt: skip
    assert list(json.loads(created.stdout)) == [*summary, "created"]
    shown_list = json.loads(run_cli("lists", "show", "members", "--json").stdout)
    assert list(shown_list) == [*summary, "reachable"]
    assert run_cli("lists", "create", "members").returncode == 2
    assert run_cli("lists", "create", "members", "--exist-ok").returncode == 0
    listed = run_cli("lists", "list")
    assert "members" in listed.stdout and "single" in listed.stdout
    archived = run_cli("lists", "archive", "members")
    assert archived.returncode == 0 and "Archived list members" in archived.stdout
    assert "members" in run_cli("lists", "list", "--all").stdout
    missing = run_cli("lists", "show", "nope")
    assert missing.returncode == 2 and "error: no list named 'nope'" in missing.stderr


def test_cli_subscribers(run_cli, tmp_path) -> None:
    run_cli("lists", "create", "members")
    added = run_cli(
        "subscribers", "add", "Ana@Example.org", "--list", "members", "--name", "Ana",
        "--language", "Spanish", "--attr", "region=Latin America",
        "--attr", "topics=HIV; drug policy",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "Added Ana@example.org to members (confirmed)." in added.stdout
    shown = json.loads(run_cli("subscribers", "show", "ana@example.org", "--json").stdout)
    assert shown["language"] == "es"
    assert shown["attributes"] == {"region": "Latin America", "topics": ["hiv", "drug-policy"]}
    assert shown["subscriptions"][0]["consent_method"] == "admin"
    # The keys of `subscribers show --json`, pinned: scripts read them.
    assert list(shown) == [
        "id", "email", "name", "language", "status", "attributes", "created_at", "updated_at",
        "suppressed", "deliveries", "subscriptions",
    ]  # fmt: skip
    assert list(shown["subscriptions"][0]) == [
        "list", "status", "consent_at", "consent_method", "consent_source", "consent_text",
        "consent_ip", "consent_note", "unsubscribed_at", "created_at", "updated_at",
    ]  # fmt: skip

    found = run_cli("subscribers", "search", "ANA", "--list", "members")
    assert "Ana@example.org" in found.stdout
    assert "No subscriber matches" in run_cli("subscribers", "search", "zed").stdout

    exported = run_cli("subscribers", "export", "--list", "members", "--out", "out.csv")
    assert exported.returncode == 0 and "Exported 1 subscriber(s)" in exported.stderr
    assert (tmp_path / "out.csv").stat().st_mode & 0o077 == 0
    assert "Ana@example.org,Ana,es,Latin America,hiv; drug-policy,confirmed," in (
        tmp_path / "out.csv"
    ).read_text(encoding="utf-8")
    as_json = run_cli("subscribers", "export", "--list", "members", "--format", "json")
    assert json.loads(as_json.stdout)[0]["attributes"]["topics"] == ["hiv", "drug-policy"]

    left = run_cli("subscribers", "unsubscribe", "ana@example.org", "--list", "members")
    assert left.returncode == 0
    assert "Unsubscribed Ana@example.org from Members." in left.stdout
    assert "No list is left: the address is suppressed" in left.stdout
    again = run_cli("subscribers", "add", "ana@example.org", "--list", "members")
    assert again.returncode == 2
    assert "suppressed (unsubscribed); not subscribed again" in again.stderr

    removed = run_cli("subscribers", "remove", "ana@example.org")
    assert removed.returncode == 0 and "Removed subscriber Ana@example.org" in removed.stdout
    gone = run_cli("subscribers", "show", "ana@example.org")
    assert gone.returncode == 2 and "no subscriber with the address" in gone.stderr
    bad = run_cli("subscribers", "add", "not-an-address", "--list", "members")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    neither = run_cli("subscribers", "export")
    assert neither.returncode == 2 and "--list NAME or --segment NAME" in neither.stderr


def test_cli_suppress(run_cli) -> None:
    done = run_cli("suppress", "someone@example.org", "--reason", "manual", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["added"] is True
    again = run_cli("suppress", "Someone@example.org", "--reason", "complaint")
    assert "already suppressed (manual)" in again.stdout
    no_reason = run_cli("suppress", "x@example.org")
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    erased = run_cli("suppress", "x@example.org", "--reason", "erased")
    assert erased.returncode == 2
    lifted = run_cli("suppress", "someone@example.org", "--lift")
    assert "Lifted the suppression of someone@example.org (manual)" in lifted.stdout
