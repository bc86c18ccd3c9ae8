"""Counts the console cannot make within a request: estimates, stored counts, the ledger.

The console never shows an estimated or stored number as if it were a count of
now: an estimate says it is one and from how many subscribers; a stored count
says when it was made; the exact count replaces the estimate once it is done.
"""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher
from conftest import wait_for
from consolekit import make_staff, signed_in
from sqlalchemy import select

from newsletter import staff
from newsletter.app import Newsletter
from newsletter.audience import counting
from newsletter.audience.subscribers import add_subscriber
from newsletter.models import MailingList, Subscriber, Subscription

CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
RULE = {"combine": "all", "field-0": "language", "op-0": "eq", "value-0": "ru"}


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staff, "_hasher", lambda: CHEAP_HASHER)


def crowd(app: Newsletter, people: int, russian_every: int = 3) -> None:
    """`people` confirmed members of one list; every third reads Russian."""
    with app.session() as session:
        members = MailingList(name="members", title="Members", optin="single")
        for n in range(people):
            email = f"person{n}@example.org"
            language = "ru" if n % russian_every == 0 else "en"
            person = Subscriber(email=email, email_key=email, name="", language=language)
            session.add(Subscription(subscriber=person, mailing_list=members, status="confirmed"))


def test_many_subscribers_get_a_labelled_estimate_then_the_exact_count(
    app: Newsletter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An estimate from 10 of 60 subscribers stands for one from 50,000 of a million.
    monkeypatch.setattr(counting, "SAMPLE", 10)
    make_staff(app, ("viewer",))
    crowd(app, 60)
    console = signed_in(app, "viewer")
    first = console.get("/admin/audience/segments/count", query_string=RULE).json
    assert first["exact"] is False and first["pending"] is True
    assert re.match(r"About \d+ subscriber\(s\) match", first["text"])
    assert "estimated from 10 of about 60 subscribers" in first["text"]
    assert "Counted at" not in first["text"]

    def exact() -> dict | None:
        answer = console.get("/admin/audience/segments/count", query_string=RULE).json
        return answer if answer["exact"] else None

    done = wait_for(exact, 30, "the exact count", every=0.1)
    assert done["pending"] is False
    assert done["text"].startswith("20 subscriber(s) match; 20 of them can be mailed")
    assert "Counted at" in done["text"] and "About" not in done["text"]
    # Without a script, the Count button shows the same stored exact count.
    page = console.post("/admin/audience/segments/new", RULE).get_data(as_text=True)
    assert "20 subscriber(s) match" in page


def test_few_subscribers_are_counted_exactly_at_once(app: Newsletter) -> None:
    make_staff(app, ("viewer",))
    crowd(app, 30)
    answer = signed_in(app, "viewer").get("/admin/audience/segments/count", query_string=RULE).json
    assert answer["exact"] is True and answer["text"].startswith("10 subscriber(s) match")


def test_an_estimate_is_rounded_so_it_does_not_look_exact() -> None:
    from newsletter.admin.audience import _about

    assert [_about(n) for n in (7, 99, 123, 41_234, 987_654)] == [
        "7", "99", "120", "41,000", "990,000",
    ]  # fmt: skip


def test_a_campaigns_recipients_are_a_stored_count_with_its_time(
    app: Newsletter, make_campaign
) -> None:
    make_staff(app, ("viewer", "admin"))
    campaign_id = make_campaign(
        app, subscribers=[("ana@example.org", "Ana"), ("bo@example.org", "Bo")]
    )
    console = signed_in(app, "viewer")
    path = f"/admin/campaigns/{campaign_id}/audience"

    def counted(people: int) -> str | None:
        page = console.get(path).get_data(as_text=True)
        return page if f"<strong>{people}</strong> people when they were" in page else None

    page = wait_for(lambda: counted(2), 30, "the first count", every=0.1)
    assert re.search(r"counted at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)
    with app.session() as session:
        list_name = session.scalar(select(MailingList.name))
    assert list_name
    add_subscriber(app, "cy@example.org", list_name, actor="cli:test")
    # The stored count stays what it was, with its time, until counted again.
    assert counted(2)
    again = console.post(path, {})
    assert again.status_code == 302
    wait_for(lambda: counted(3), 30, "the new count", every=0.1)


def test_once_sent_the_count_is_the_ledgers_size(app: Newsletter) -> None:
    from newsletter.dispatch import send_campaign
    from tests.test_dispatch_support import seed_campaign

    make_staff(app, ("viewer",))
    campaign_id = seed_campaign(app, 3)
    assert send_campaign(app, campaign_id, actor="tester").status == "sent"
    # Someone joins afterwards: the campaign's recipients were fixed when it was sent.
    with app.session() as session:
        list_name = session.scalar(select(MailingList.name))
    assert list_name
    add_subscriber(app, "late@example.org", list_name, actor="cli:test")
    page = signed_in(app, "viewer").get(f"/admin/campaigns/{campaign_id}/audience")
    text = page.get_data(as_text=True)
    assert "its deliveries ledger holds <strong>3</strong> recipients" in text
    assert "counted at" not in text
