"""The member counts the database keeps per list (list_member_counts) always equal a recount.

Random sequences of operations go through the real service functions, every path
that changes a membership (sign-up, confirmation, unsubscription, imports, staff
adds and removals, erasure, suppression, complaints, archiving), and after each
one the kept counts must equal a fresh COUNT over subscriptions.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from newsletter import links
from newsletter.app import Newsletter
from newsletter.audience.imports import import_subscribers
from newsletter.audience.joining import confirm, subscribe
from newsletter.audience.leaving import unsubscribe, unsubscribe_address
from newsletter.audience.lists import (
    archive_list,
    create_list,
    list_lists,
    recount_statuses,
    status_counts,
)
from newsletter.audience.privacy import erase_person
from newsletter.audience.subscribers import add_subscriber
from newsletter.audience.suppression import suppress_address
from newsletter.counts import fold_changes
from newsletter.errors import UserError
from newsletter.feedback.events import FeedbackEvent
from newsletter.feedback.rules import record_feedback
from newsletter.models import MailingList, Subscriber, Subscription

PEOPLE = [f"person{n}@example.org" for n in range(12)]


def kept_equals_recount(app: Newsletter) -> None:
    with app.session() as session:
        kept = status_counts(session)
        fresh = recount_statuses(session)
    # A kept row may fall to zero and stay; a recount has no row for an empty group.
    nonzero = {
        list_id: {status: n for status, n in counts.items() if n}
        for list_id, counts in kept.items()
    }
    expected = {
        list_id: {status: n for status, n in counts.items() if n}
        for list_id, counts in fresh.items()
    }
    assert {k: v for k, v in nonzero.items() if v} == expected


def subscriber_id(app: Newsletter, email: str) -> int | None:
    with app.session() as session:
        return session.scalar(select(Subscriber.id).where(Subscriber.email == email))


def list_ids(app: Newsletter) -> dict[str, int]:
    with app.session() as session:
        rows = session.execute(select(MailingList.name, MailingList.id))
        return {name: id_ for name, id_ in rows}


def random_operation(app: Newsletter, rng: random.Random, tmp_path: Path, step: int) -> str:
    lists = [name for name in list_ids(app)]
    person = rng.choice(PEOPLE)
    target = rng.choice(lists)
    kind = rng.choice(
        ["subscribe", "confirm", "unsubscribe", "unsubscribe_all", "add", "admin_remove",
         "import", "erase", "suppress", "complaint", "archive", "new_list"]
    )  # fmt: skip
    if kind == "subscribe":
        subscribe(app, person, list_names=rng.sample(lists, rng.randint(1, len(lists))))
    elif kind == "confirm":
        found = subscriber_id(app, person)
        if found is not None:
            token = links.confirm_token(app.signing_key, found, list(list_ids(app).values()))
            confirm(app, token)
    elif kind in ("unsubscribe", "unsubscribe_all"):
        found = subscriber_id(app, person)
        if found is not None:
            everything = kind == "unsubscribe_all"
            unsubscribe(app, found, lists=None if everything else [target], everything=everything)
    elif kind == "add":
        add_subscriber(app, person, target, force=rng.random() < 0.5, actor="test")
    elif kind == "admin_remove":
        unsubscribe_address(app, person, list_name=rng.choice([target, None]), actor="test")
    elif kind == "import":
        rows = rng.sample(PEOPLE, rng.randint(1, 6))
        path = tmp_path / f"import-{step}.csv"
        path.write_text("email,name\n" + "".join(f"{row},Name\n" for row in rows))
        import_subscribers(app, path, list_name=target, mode=rng.choice(["add", "sync"]),
                           unconfirmed=rng.random() < 0.3, actor="test")  # fmt: skip
    elif kind == "erase":
        erase_person(app, person, actor="test")
    elif kind == "suppress":
        suppress_address(app, person, rng.choice(["manual", "hard_bounce"]), actor="test")
    elif kind == "complaint":
        record_feedback(app, [FeedbackEvent(type="complaint", source="sendgrid", address=person)])
    elif kind == "archive":
        archive_list(app, target, actor="test")
    else:
        create_list(app, f"list-{step}", optin=rng.choice(["single", "double"]), public=True,
                    actor="test")  # fmt: skip
    return kind


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kept_counts_equal_a_recount_after_any_sequence_of_operations(
    app: Newsletter, tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    create_list(app, "members", optin="single", public=True, actor="test")
    create_list(app, "partners", optin="double", public=True, actor="test")
    done: list[str] = []
    for step in range(40):
        try:
            done.append(random_operation(app, rng, tmp_path, step))
        except UserError:
            done.append("refused")  # e.g. an archived list, an unknown address
        kept_equals_recount(app)
        # PostgreSQL's changes folded into the counters now and then: the same counts.
        fold_changes(app.engine, at_least=rng.choice([0, 3, 1000]))
        kept_equals_recount(app)
    # The sequence did change memberships (a count that never moved proves nothing).
    with app.session() as session:
        assert sum(sum(c.values()) for c in status_counts(session).values()) > 0


def test_bulk_statements_and_cascades_keep_the_counts(app: Newsletter) -> None:
    """Statements outside the service functions: a mass status change, a subscriber
    deleted (its subscriptions go by cascade), a list deleted."""
    create_list(app, "members", optin="single", public=True, actor="test")
    create_list(app, "partners", optin="single", public=True, actor="test")
    for person in PEOPLE:
        add_subscriber(app, person, "members", actor="test")
        add_subscriber(app, person, "partners", actor="test")
    kept_equals_recount(app)
    ids = list_ids(app)
    with app.session() as session:
        session.execute(
            update(Subscription)
            .where(Subscription.list_id == ids["members"], Subscription.id % 3 == 0)
            .values(status="unsubscribed")
        )
        # An update that changes no key must leave the counts alone.
        session.execute(update(Subscription).values(consent_note="checked"))
    kept_equals_recount(app)
    with app.session() as session:
        session.execute(delete(Subscriber).where(Subscriber.email == PEOPLE[0]))
    kept_equals_recount(app)
    with app.session() as session:
        session.execute(delete(MailingList).where(MailingList.name == "partners"))
    kept_equals_recount(app)
    fold_changes(app.engine, at_least=0)  # a deleted list's changes go with it
    kept_equals_recount(app)
    members = next(lst for lst in list_lists(app) if lst.name == "members")
    assert members.confirmed + members.unsubscribed == len(PEOPLE) - 1
    assert members.unsubscribed > 0


def test_the_lists_page_shows_the_kept_counts(app: Newsletter, monkeypatch) -> None:
    from argon2 import PasswordHasher
    from consolekit import make_staff, signed_in

    from newsletter import staff

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(staff, "_hasher", lambda: cheap)
    create_list(app, "members", optin="double", public=True, actor="test")
    for person in PEOPLE[:5]:
        add_subscriber(app, person, "members", actor="test")
    for person in PEOPLE[5:8]:
        subscribe(app, person, list_names=["members"])  # awaiting confirmation
    unsubscribe_address(app, PEOPLE[0], list_name="members", actor="test")
    make_staff(app, ("viewer",))
    page = signed_in(app, "viewer").get("/admin/audience/").get_data(as_text=True)
    row = page.split("<td>members</td>")[1].split("</tr>")[0]
    assert '<td class="num">4</td><td class="num">3</td><td class="num">1</td>' in row
