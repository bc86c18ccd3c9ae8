"""What staff edit is what subscribers get: approval snapshots, editing, duplicating,
deleting, render errors before a send, and what test sends and web copies say.

Runs on SQLite, and on PostgreSQL too when NEWSLETTER_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from newsletter import audit, dispatch, editing, editions, items
from newsletter.audience import add_subscriber
from newsletter.errors import InputError, InvalidState, UserError
from newsletter.models import Campaign, Delivery, Item, MailingList
from newsletter.notices import build_preview
from newsletter.render import render_campaign
from newsletter.schedule.campaigns import schedule_campaign
from newsletter.schedule.due import start_due_campaign
from newsletter.transports import SendLimits
from newsletter.transports.memory import MemoryTransport
from newsletter.web.archive import render_public

ACTOR = "cli:tester"


def add_item(app, title: str, day: date, **extra) -> int:
    with app.session() as session:
        item = Item(
            source="test",
            source_id=title,
            kind=extra.pop("kind", "report"),
            title=title,
            date=day,
            summary=f"Summary of {title}.",
            link=extra.pop("link", "https://example.org/" + title.split()[0].lower()),
            **extra,
        )
        session.add(item)
        session.flush()
        return item.id


@pytest.fixture
def june(app) -> dict[str, int]:
    with app.session() as session:
        session.add(MailingList(name="members", title="Members"))
    add_subscriber(app, "ana@example.org", "members", name="Ana", actor="cli:t")
    return {
        "report": add_item(app, "Prisons report", date(2019, 6, 3)),
        "statement": add_item(app, "Statement to the council", date(2019, 6, 12), kind="statement"),
        "other": add_item(app, "Other news", date(2019, 6, 20), kind="news"),
    }


def html_of(app, campaign_id: int, **kwargs) -> str:
    rendered = render_campaign(app, campaign_id, **kwargs)
    return rendered.html.fill({f: "" for f in rendered.html.fields})


def status_of(app, campaign_id: int) -> Campaign:
    with app.session() as session:
        return session.get_one(Campaign, campaign_id)


# --- approval freezes what was approved ---------------------------------------------------


def test_an_item_edit_after_approval_does_not_reach_the_approved_campaign(app, june) -> None:
    cid = editions.new_bulletin(app, "2019-06", actor=ACTOR).id
    editions.approve(app, cid, actor=ACTOR)
    edited = items.edit_item(app, june["report"], actor=ACTOR, title="Renamed after approval")
    assert edited.frozen_campaigns == (cid,)
    (warning,) = edited.warnings
    assert f"campaign {cid} was approved before this edit" in warning
    html = html_of(app, cid)
    assert "Prisons report" in html and "Renamed after approval" not in html
    assert status_of(app, cid).status == "approved"


def test_apply_to_campaigns_sends_the_campaign_back_to_draft(app, june) -> None:
    cid = editions.new_bulletin(app, "2019-06", actor=ACTOR).id
    editions.approve(app, cid, actor=ACTOR)
    edited = items.edit_item(
        app, june["report"], actor=ACTOR, apply_to_campaigns=True, title="Renamed"
    )
    assert edited.reopened_campaigns == (cid,)
    campaign = status_of(app, cid)
    assert (campaign.status, campaign.snapshot, campaign.approved_by) == ("draft", None, "")
    assert "Renamed" in html_of(app, cid)
    assert "edit" in [e.action for e in audit.list_events(app, campaign_id=cid)]


def test_the_archive_shows_what_was_sent_whatever_is_edited_later(app, june) -> None:
    cid = editions.new_bulletin(app, "2019-06", actor=ACTOR).id
    editions.approve(app, cid, actor=ACTOR)
    outcome = dispatch.send_campaign(
        app, cid, transport=MemoryTransport(limits=SendLimits(connections=1)), actor=ACTOR
    )
    assert outcome.status == "sent"
    edited = items.edit_item(app, june["statement"], actor=ACTOR, summary="A new summary.")
    assert edited.sent_campaigns == (cid,)
    page = render_public(app, cid)
    assert "Summary of Statement to the council." in page and "A new summary." not in page
    # The web copy is the email as a page: no "view this email in your browser" in it.
    assert "in your browser" not in page.lower()
    with pytest.raises(InvalidState):
        items.edit_item(app, june["report"], actor=ACTOR, apply_to_campaigns=True, title="X")
        editing.edit_edition(app, cid, actor=ACTOR, subject="Too late")


def test_approval_is_refused_when_the_edition_does_not_render(make_app, tmp_path) -> None:
    app, cid, template = _custom_template_campaign(make_app, tmp_path)
    template.write_text(broken(template.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(InputError, match="no_such_name"):
        editions.approve(app, cid, actor=ACTOR)
    assert status_of(app, cid).status == "draft"


def broken(template: str) -> str:
    """The template with a name it does not know, inside its content block."""
    return template.replace("{% endblock %}", "{{ no_such_name }}{% endblock %}")


def _custom_template_campaign(make_app, tmp_path: Path):
    templates = tmp_path / "templates"
    templates.mkdir()
    bundled = Path(__file__).parent.parent / "templates" / "bulletin.html"
    template = templates / "bulletin.html"
    template.write_text(bundled.read_text(encoding="utf-8"), encoding="utf-8")
    app = make_app({"editions": {"templates_dir": str(templates)}})
    with app.session() as session:
        session.add(MailingList(name="members", title="Members"))
    add_subscriber(app, "ana@example.org", "members", name="Ana", actor="cli:t")
    add_item(app, "Prisons report", date(2019, 6, 3))
    cid = editions.new_bulletin(app, "2019-06", actor=ACTOR).id
    return app, cid, template


def test_a_send_that_cannot_render_pauses_with_the_reason_and_writes_nothing(
    make_app, tmp_path
) -> None:
    app, cid, template = _custom_template_campaign(make_app, tmp_path)
    good = template.read_text(encoding="utf-8")
    editions.approve(app, cid, actor=ACTOR)
    template.write_text(broken(good), encoding="utf-8")
    with pytest.raises(InputError, match="no_such_name"):
        dispatch.dry_run(app, cid)
    transport = MemoryTransport(limits=SendLimits(connections=1))
    outcome = dispatch.send_campaign(app, cid, transport=transport, actor=ACTOR)
    assert (outcome.status, outcome.reason) == ("paused", "failing")
    campaign = status_of(app, cid)
    assert campaign.status == "paused" and "no_such_name" in campaign.status_note
    with app.session() as session:
        assert session.scalar(select(func.count()).where(Delivery.campaign_id == cid)) == 0
    with pytest.raises(InputError, match="still does not render"):
        dispatch.resume_campaign(app, cid, actor=ACTOR)
    # Fixed: resume writes the ledger, and the send goes out.
    template.write_text(good, encoding="utf-8")
    dispatch.resume_campaign(app, cid, actor=ACTOR)
    outcome = dispatch.send_campaign(app, cid, transport=transport, actor=ACTOR)
    assert outcome.status == "sent" and transport.received() == {"ana@example.org": 1}


def test_a_scheduled_send_that_cannot_render_pauses_without_a_ledger(make_app, tmp_path) -> None:
    app, cid, template = _custom_template_campaign(make_app, tmp_path)
    editions.approve(app, cid, actor=ACTOR)
    now = datetime.now(UTC)
    schedule_campaign(app, cid, now + timedelta(minutes=5), actor=ACTOR, now=now)
    template.write_text(broken(template.read_text(encoding="utf-8")), encoding="utf-8")
    start_due_campaign(app, cid, now + timedelta(minutes=6))
    campaign = status_of(app, cid)
    assert campaign.status == "paused" and "no_such_name" in campaign.status_note
    with app.session() as session:
        assert session.scalar(select(func.count()).where(Delivery.campaign_id == cid)) == 0


# --- editing, duplicating, deleting ---------------------------------------------------------


def test_edition_edit_changes_content_and_an_approved_one_goes_back_to_draft(
    app, june, tmp_path: Path
) -> None:
    cid = editions.new_bulletin(app, "2019-06", actor=ACTOR).id
    editions.approve(app, cid, actor=ACTOR)
    intro = tmp_path / "intro.txt"
    intro.write_text("A new intro.\n\nSecond paragraph.", encoding="utf-8")
    extra = add_item(app, "Late addition", date(2019, 5, 2), kind="news")
    edited = editing.edit_edition(
        app,
        cid,
        actor=ACTOR,
        subject="June, corrected",
        preheader="What happened in June",
        intro_file=str(intro),
        add_items=[extra],
        remove_items=[june["other"]],
        order=[extra, june["report"], june["statement"]],
    )
    assert edited.unapproved and edited.status == "draft"
    assert edited.changed == ("subject", "preheader", "intro", "items")
    shown = editions.show_campaign(app, cid)
    assert shown.subject == "June, corrected"
    assert shown.intro == "A new intro.\n\nSecond paragraph."
    assert [row.id for row in shown.item_list] == [extra, june["report"], june["statement"]]


def test_an_edit_that_changes_no_value_changes_nothing(app, june) -> None:
    """Saving an approved edition's values as they are keeps it approved, with its snapshot,
    and writes no audit line: whatever subset of its fields is given back unchanged."""
    cid = editions.new_bulletin(app, "2019-06", actor=ACTOR).id
    editions.approve(app, cid, actor=ACTOR)
    shown = editions.show_campaign(app, cid)
    with app.session() as session:
        snapshot = session.get_one(Campaign, cid).snapshot
    ids = [row.id for row in shown.item_list]
    same = {
        "subject": shown.subject,
        "preheader": shown.preheader,
        "intro": shown.intro,
        "order": ids,
        "lists": list(shown.lists),
    }
    events = len(audit.list_events(app, campaign_id=cid))
    for name, value in same.items():
        edited = editing.edit_edition(app, cid, actor="cli:someone-else", **{name: value})
        assert (edited.changed, edited.unapproved, edited.status) == ((), False, "approved")
    edited = editing.edit_edition(app, cid, actor="cli:someone-else", **same)
    assert (edited.changed, edited.status) == ((), "approved")
    with app.session() as session:
        assert session.get_one(Campaign, cid).snapshot == snapshot
    assert len(audit.list_events(app, campaign_id=cid)) == events


def test_edition_edit_refuses_bad_edits_and_changes_nothing(app, june) -> None:
    cid = editions.new_bulletin(app, "2019-06", actor=ACTOR).id
    before = editions.show_campaign(app, cid)
    bad = [
        {"order": [june["report"]]},
        {"remove_items": [999]},
        {"add_items": [june["report"]]},
        {"subject": "  "},
        {"segment": "nope"},
        {},
    ]
    for change in bad:
        with pytest.raises(UserError) as caught:
            editing.edit_edition(app, cid, actor=ACTOR, **change)
        assert "\n" not in str(caught.value)
    after = editions.show_campaign(app, cid)
    assert after.item_list == before.item_list and after.subject == before.subject


def test_duplicate_and_delete_with_the_audit_trail(app, june) -> None:
    cid = editions.new_bulletin(app, "2019-06", actor=ACTOR).id
    editions.approve(app, cid, actor=ACTOR)
    copy = editing.duplicate_campaign(app, cid, actor=ACTOR)
    assert (copy.status, copy.items, copy.lists) == ("draft", 3, ["members"])
    with pytest.raises(InvalidState, match="only a draft can be deleted"):
        editing.delete_campaign(app, cid, actor=ACTOR)
    deleted = editing.delete_campaign(app, copy.id, actor=ACTOR)
    assert deleted.id == copy.id
    with app.session() as session:
        assert session.get(Campaign, copy.id) is None
    events = {(e.action, e.actor) for e in audit.list_events(app, campaign_id=copy.id)}
    assert events == {("build", ACTOR), ("delete", ACTOR)}


def test_a_second_draft_for_the_same_month_and_audience_is_warned_about(app, june) -> None:
    first = editions.new_bulletin(app, "2019-06", lists=["members"], actor=ACTOR)
    assert first.warnings == ()
    second = editions.new_bulletin(app, "2019-06", lists=["members"], actor=ACTOR)
    (warning,) = second.warnings
    assert f"campaign {first.id} is already a draft bulletin for 2019-06" in warning


def test_cli_edit_duplicate_delete(run_cli, app, june, tmp_path: Path) -> None:
    built = run_cli("edition", "new", "--month", "2019-06", "--list", "members", "--json")
    cid = json.loads(built.stdout)["id"]
    again = run_cli("edition", "new", "--month", "2019-06", "--list", "members")
    assert again.returncode == 0 and "warning: campaign" in again.stderr
    edited = run_cli("edition", "edit", str(cid), "--greeting", "none", "--json")
    assert edited.returncode == 0, edited.stderr
    assert json.loads(edited.stdout)["changed"] == ["greeting"]
    bad = run_cli("edition", "edit", str(cid), "--order", "1,x")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    copied = run_cli("campaigns", "duplicate", str(cid), "--json")
    assert copied.returncode == 0, copied.stderr
    copy_id = json.loads(copied.stdout)["id"]
    gone = run_cli("campaigns", "delete", str(copy_id))
    assert (gone.returncode, gone.stdout.startswith(f"Campaign {copy_id} deleted")) == (0, True)
    run_cli("approve", str(cid))
    refused = run_cli("campaigns", "delete", str(cid))
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"error: campaign {cid} is approved; only a draft can be deleted"
    )


# --- what messages say ------------------------------------------------------------------


def test_test_sends_and_previews_are_marked_and_say_how_to_approve(app, june) -> None:
    cid = editions.new_bulletin(app, "2019-06", actor=ACTOR).id
    transport = MemoryTransport(limits=SendLimits(connections=1))
    dispatch.send_test(app, cid, "staff@example.org", transport=transport)
    (message,) = transport.sent
    data = message.data.decode("ascii", "replace")
    assert "Subject: [TEST] " in data
    preview = build_preview(app, cid)
    assert preview.subject.startswith("[TEST] ")
    assert f"Approve it with: newsletter approve {cid}" in preview.html
    assert f"Approve it with: newsletter approve {cid}" in preview.text
    # What subscribers get carries neither.
    rendered = render_campaign(app, cid)
    assert not rendered.subject.startswith("[TEST]")
    assert "staff preview" not in html_of(app, cid)


def test_a_month_only_date_shows_the_month(app, june) -> None:
    only_month = add_item(app, "Undated news", date(2019, 6, 1), kind="news", date_is_month=True)
    cid = editions.new_bulletin(app, "2019-06", actor=ACTOR).id
    html = html_of(app, cid)
    assert "June 2019" in html
    assert "1 June 2019" not in html
    assert "3 June 2019" in html  # a real day stays a day
    assert only_month


@pytest.mark.parametrize(
    ("intro", "greeting", "expected", "absent"),
    [
        ("Dear friends, welcome to June.", "", None, "Dear Ana,"),
        ("Welcome to June.", "", "Dear Ana,", None),
        ("Welcome to June.", "none", None, "Dear Ana,"),
        ("Welcome to June.", "Hi {name}!", "Hi Ana!", "Dear Ana,"),
        ("Здравствуйте, друзья!", "", None, "Dear Ana,"),
    ],
)
def test_the_greeting_is_not_doubled_and_can_be_set_per_edition(
    app, june, tmp_path: Path, intro: str, greeting: str, expected: str | None, absent: str | None
) -> None:
    intro_file = tmp_path / "intro.txt"
    intro_file.write_text(intro, encoding="utf-8")
    cid = editions.new_bulletin(app, "2019-06", intro_file=str(intro_file), actor=ACTOR).id
    if greeting:
        editing.edit_edition(app, cid, actor=ACTOR, greeting=greeting)
    preview = build_preview(app, cid, "ana@example.org")
    if expected:
        assert expected in preview.text
    if absent:
        assert absent not in preview.text
