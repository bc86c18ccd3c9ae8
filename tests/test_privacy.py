"""Data-protection requests: export everything held on a person; erase it for good."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from newsletter import audience
from newsletter.models import Base, Campaign, Delivery, Event, Subscriber, Suppression

ADDRESS = "Erase.Me@example.org"
NAME = "Zebulon Quixote"
# What must not survive anywhere: the address (any case) and the name.
TRACES = ("erase.me@example.org", "zebulon", "quixote")


@pytest.fixture
def held(app, tmp_path) -> dict[str, int]:
    """A person with a bit of everything: two lists, deliveries, bounces, an old name."""
    audience.create_list(app, "members", actor="tester")
    audience.create_list(app, "partners", actor="tester")
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(
        f"email,name,region,topics\n{ADDRESS},Zeb Q,Eurasia,HIV\nkeep@example.org,Kim,Asia,\n",
        encoding="utf-8",
    )
    audience.import_subscribers(
        app, csv_file, list_name="members", reject_path=tmp_path / "r.csv", actor="tester"
    )
    # A changed name leaves the old row's bytes behind in SQLite's free space.
    csv_file.write_text(f"email,name\n{ADDRESS},{NAME}\n", encoding="utf-8")
    audience.import_subscribers(app, csv_file, list_name="members", mode="update", actor="tester")
    audience.add_subscriber(app, ADDRESS, "partners", actor="tester")
    with app.session() as session:
        ids = dict(session.execute(select(Subscriber.email_key, Subscriber.id)).all())
        person, other = ids["erase.me@example.org"], ids["keep@example.org"]
        bulletin = Campaign(kind="bulletin", subject="June bulletin")
        session.add(bulletin)
        session.flush()
        mine = Delivery(
            campaign_id=bulletin.id,
            subscriber_id=person,
            status="sent",
            last_response=f"250 accepted for <{ADDRESS}>",
            message_id="abc@example.org",
        )
        theirs = Delivery(campaign_id=bulletin.id, subscriber_id=other, status="sent")
        session.add_all([mine, theirs])
        session.flush()
        session.add_all(
            [
                Event(subscriber_id=person, campaign_id=bulletin.id, type="soft_bounce"),
                Event(delivery_id=mine.id, type="delivered", detail={"to": ADDRESS}),
                # An unmatched bounce that only names the address.
                Event(type="hard_bounce", detail={"recipient": ADDRESS.upper(), "code": 550}),
                Event(subscriber_id=other, type="soft_bounce", detail={"to": "keep@example.org"}),
            ]
        )
    return {"person": person, "other": other, "campaign": bulletin.id}


def test_export_holds_everything(app, held) -> None:
    document = audience.export_person(app, "erase.me@EXAMPLE.org")
    assert document.subscriber is not None and document.subscriber.name == NAME
    assert document.subscriber.attributes == {"region": "Eurasia", "topics": ["hiv"]}
    lists = {s.list: s for s in document.subscriptions}
    assert set(lists) == {"members", "partners"}
    assert lists["members"].consent_method == "import"
    assert lists["members"].consent_source == "people.csv"
    assert lists["partners"].consent_method == "admin"
    assert [d.subject for d in document.deliveries] == ["June bulletin"]
    assert sorted(e.type for e in document.events) == [
        "delivered",
        "hard_bounce",
        "soft_bounce",
    ]
    assert document.suppression is None


def all_rows_text(app) -> str:
    """Every row of every table, as text, lower-cased."""
    with app.session() as session:
        return "\n".join(
            repr(tuple(row)).casefold()
            for table in Base.metadata.sorted_tables
            for row in session.execute(select(table))
        )


def test_erase_leaves_nothing_but_the_suppression_entry(app, held) -> None:
    report = audience.erase_person(app, ADDRESS, actor="tester")
    assert report.found
    assert report.removed == {"events": 3, "deliveries": 1, "subscriptions": 2, "subscribers": 1}
    assert report.remaining == []

    everything = all_rows_text(app)
    for trace in TRACES:
        assert trace not in everything
    with app.session() as session:
        (entry,) = session.scalars(select(Suppression)).all()
        assert (entry.reason, entry.note) == ("erased", "")
        assert audience.is_suppressed(session, app.suppression_key, ADDRESS)
        # The other person is untouched.
        assert session.scalar(select(Subscriber.email)) == "keep@example.org"
        assert len(session.scalars(select(Delivery)).all()) == 1
        assert len(session.scalars(select(Event)).all()) == 1

    # Erased means out of the file too, not only unlinked.
    if app.engine.dialect.name == "sqlite":
        database = Path(make_url(app.config.database.url).database)
        files = [p for p in database.parent.glob(database.name + "*") if p.is_file()]
        assert database in files
        for path in files:
            raw = path.read_bytes().lower()
            for trace in TRACES:
                assert trace.encode() not in raw, f"{trace!r} still in {path.name}"

    # And the address never comes back through an import.
    again = app.config.base_dir / "again.csv"
    again.write_text(f"email\n{ADDRESS}\n", encoding="utf-8")
    result = audience.import_subscribers(
        app,
        again,
        list_name="members",
        reject_path=app.config.base_dir / "again-rejected.csv",
        actor="tester",
    )
    assert (result.added, result.skipped) == (0, 1)
    assert "suppressed (erased)" in result.rejects[0]["reason"]


def test_erasing_an_unknown_address_still_suppresses_it(app) -> None:
    report = audience.erase_person(app, "never@example.org", actor="tester")
    assert not report.found and report.removed == {"events": 0}
    with app.session() as session:
        assert audience.suppression_reason(session, app.suppression_key, "never@example.org") == (
            "erased"
        )


def test_erase_replaces_an_earlier_suppression_and_its_note(app) -> None:
    audience.suppression.suppress_address(
        app, "noted@example.org", "manual", "asked by Jo Bloggs", actor="tester"
    )
    audience.erase_person(app, "noted@example.org", actor="tester")
    with app.session() as session:
        (entry,) = session.scalars(select(Suppression)).all()
        assert (entry.reason, entry.note) == ("erased", "")


def test_cli_person_export_and_erase(run_cli, tmp_path) -> None:
    run_cli("lists", "create", "members")
    run_cli("subscribers", "add", ADDRESS, "--list", "members", "--name", NAME)
    exported = run_cli("person", "export", ADDRESS)
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["subscriber"]["name"] == NAME
    # The document's keys, pinned: what a person asking for their data reads.
    assert list(json.loads(exported.stdout)) == [
        "address", "exported_at", "subscriber", "subscriptions", "deliveries", "events",
        "suppression",
    ]  # fmt: skip
    to_file = run_cli("person", "export", ADDRESS, "--out", "me.json")
    assert to_file.returncode == 0 and "Wrote me.json" in to_file.stderr
    assert json.loads((tmp_path / "me.json").read_text(encoding="utf-8"))["subscriptions"]
    assert (tmp_path / "me.json").stat().st_mode & 0o077 == 0

    unasked = run_cli("person", "erase", ADDRESS)
    assert unasked.returncode == 2 and "add --yes" in unasked.stderr
    erased = run_cli("person", "erase", ADDRESS, "--yes")
    assert erased.returncode == 0, erased.stderr
    assert f"Erased {ADDRESS}: removed 0 events, 0 deliveries, 1 subscriptions, 1 subscribers" in (
        erased.stdout
    )
    assert "Kept: the suppression entry" in erased.stdout
    after = json.loads(run_cli("person", "export", ADDRESS).stdout)
    assert after["subscriber"] is None and after["suppression"]["reason"] == "erased"


def test_erase_reports_copies_left_in_a_maildir_outbox(app, tmp_path) -> None:
    outbox = tmp_path / "outbox"  # the test config's transport
    (outbox / "new").mkdir(parents=True)
    (outbox / "new" / "1.eml").write_bytes(f"To: {ADDRESS}\n\nHello\n".encode())
    (outbox / "new" / "2.eml").write_bytes(b"To: someone.else@example.org\n\nHello\n")
    report = audience.erase_person(app, ADDRESS.lower(), actor="tester")
    assert report.outbox_copies == [f"{outbox} (1 message(s))"]
    # Sent mail is reported, not deleted: the folder may belong to another program.
    assert (outbox / "new" / "1.eml").exists()
