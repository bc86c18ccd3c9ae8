"""Editions: building bulletins and announcements, and the campaign's status."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import select

from newsletter import editions
from newsletter.errors import InputError, InvalidState, NotFound
from newsletter.models import Campaign, Item, MailingList


def add_item(app, title: str, kind: str, day: date, **extra) -> int:
    with app.session() as session:
        item = Item(
            source="test",
            source_id=title,
            kind=kind,
            title=title,
            date=day,
            summary=f"Summary of {title}.",
            **extra,
        )
        session.add(item)
        session.flush()
        return item.id


def add_list(app, name: str, archived: bool = False) -> None:
    with app.session() as session:
        session.add(MailingList(name=name, title=name.title(), archived=archived))


@pytest.fixture
def june(app):
    add_list(app, "members")
    add_list(app, "partners")
    return {
        "tribute": add_item(app, "Remembering a friend", "tribute", date(2019, 6, 20)),
        "report": add_item(app, "Community report", "report", date(2019, 6, 3)),
        "statement_late": add_item(app, "Later statement", "statement", date(2019, 6, 28)),
        "statement_early": add_item(app, "Early statement", "statement", date(2019, 6, 1)),
        "news": add_item(app, "Some news", "news", date(2019, 6, 15)),
        "excluded": add_item(app, "Left out", "news", date(2019, 6, 16), excluded=True),
        "may": add_item(app, "Last month", "news", date(2019, 5, 30)),
    }


def test_bulletin_groups_the_months_items_by_kind_in_configured_order(app, june) -> None:
    result = editions.new_bulletin(app, "2019-06", lists=["members"], actor="tester")
    assert result.status == "draft"
    assert result.subject == "Example Network bulletin — June 2019"
    assert result.lists == ["members"]
    shown = editions.show_campaign(app, result.id)
    titles = [row.title for row in shown.item_list]
    # statement, report, news, tribute; newest first within a kind; excluded and May left out.
    assert titles == [
        "Later statement",
        "Early statement",
        "Community report",
        "Some news",
        "Remembering a friend",
    ]


def test_bulletin_kind_order_and_subject_come_from_config(make_app) -> None:
    app = make_app(
        {
            "editions": {
                "kind_order": ["tribute", "news"],
                "subject_pattern": "{month}: news from {org}",
            },
            "org": {"name": "Our Network"},
        }
    )
    add_list(app, "members")
    add_item(app, "A report", "report", date(2019, 3, 2))
    add_item(app, "A tribute", "tribute", date(2019, 3, 5))
    add_item(app, "A news item", "news", date(2019, 3, 9))
    result = editions.new_bulletin(app, "2019-03", actor="tester")
    shown = editions.show_campaign(app, result.id)
    assert [row.kind for row in shown.item_list] == ["tribute", "news", "report"]
    assert result.subject == "March 2019: news from Our Network"


def test_bulletin_without_lists_goes_to_every_list_not_archived(app, june) -> None:
    add_list(app, "old", archived=True)
    result = editions.new_bulletin(app, "2019-06", actor="tester")
    assert sorted(result.lists) == ["members", "partners"]


def test_month_is_written_out_in_the_editions_language(app, june) -> None:
    result = editions.new_bulletin(app, "2019-06", language="fr", actor="tester")
    assert result.subject == "Example Network bulletin — juin 2019"


def test_empty_month_is_refused_and_writes_nothing(app, june) -> None:
    with pytest.raises(InputError, match="no items for July 2019"):
        editions.new_bulletin(app, "2019-07", actor="tester")
    with app.session() as session:
        assert session.scalars(select(Campaign)).all() == []


@pytest.mark.parametrize("month", ["2019-13", "June 2019", "2019-6", ""])
def test_bad_month_is_a_clear_error(app, month: str) -> None:
    with pytest.raises(InputError, match="YYYY-MM"):
        editions.new_bulletin(app, month, actor="tester")


def test_unknown_list_or_segment_writes_nothing(app, june) -> None:
    with pytest.raises(NotFound, match="no list named 'nobody'"):
        editions.new_bulletin(app, "2019-06", lists=["members", "nobody"], actor="tester")
    with pytest.raises(NotFound, match="no segment named 'ghosts'"):
        editions.new_bulletin(app, "2019-06", segment="ghosts", actor="tester")
    assert editions.list_campaigns(app) == []


def test_intro_file_is_read_and_a_missing_one_is_named(app, june, tmp_path) -> None:
    intro = tmp_path / "intro.txt"
    intro.write_text("Dear friends,\n\nThis month we…\n", encoding="utf-8")
    result = editions.new_bulletin(app, "2019-06", intro_file=intro, actor="tester")
    shown = editions.show_campaign(app, result.id)
    assert shown.intro.startswith("Dear friends,")
    assert shown.preheader.startswith("Dear friends,")
    with pytest.raises(InputError, match=r"nope\.txt: intro file not found"):
        editions.new_bulletin(app, "2019-06", intro_file=tmp_path / "nope.txt", actor="tester")


def test_announcement_carries_one_item_with_its_title_as_subject(app, june) -> None:
    result = editions.new_announcement(app, june["report"], lists=["partners"], actor="tester")
    assert result.kind == "announcement"
    assert result.subject == "Community report"
    assert result.items == 1
    with pytest.raises(NotFound, match="no item with id 999"):
        editions.new_announcement(app, 999, actor="tester")


def test_approve_records_who_and_when_and_only_once(app, june) -> None:
    campaign_id = editions.new_bulletin(app, "2019-06", actor="tester").id
    editions.approve(app, campaign_id, actor="Comms")
    shown = editions.show_campaign(app, campaign_id)
    assert shown.status == "approved"
    assert shown.approved_by == "Comms"
    assert shown.approved_at is not None
    with pytest.raises(InvalidState, match="already approved"):
        editions.approve(app, campaign_id, actor="tester")


def test_cli_builds_lists_shows_and_approves(run_cli, app, june) -> None:
    created = run_cli("edition", "new", "--month", "2019-06", "--list", "members", "--json")
    assert created.returncode == 0, created.stderr
    campaign_id = json.loads(created.stdout)["id"]
    listed = json.loads(run_cli("campaigns", "list", "--json").stdout)
    assert [row["id"] for row in listed] == [campaign_id]
    assert set(listed[0]) >= {"id", "kind", "status", "month", "subject", "lists", "items"}
    shown = json.loads(run_cli("campaigns", "show", str(campaign_id), "--json").stdout)
    assert shown["items"] == 5 and shown["status"] == "draft"
    approved = run_cli("approve", str(campaign_id), "--by", "tester")
    assert approved.returncode == 0 and "approved" in approved.stdout
    again = run_cli("approve", str(campaign_id))
    assert again.returncode == 2 and "already approved" in again.stderr
    assert "Traceback" not in again.stderr


def test_cli_errors_exit_2_without_traceback(run_cli, app, june) -> None:
    for args, message in [
        (("edition", "new", "--month", "2019-13"), "YYYY-MM"),
        (("edition", "new", "--month", "2019-07"), "no items for July 2019"),
        (("campaigns", "show", "42"), "no campaign with id 42"),
        (("announce", "4242"), "no item with id 4242"),
    ]:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr
        assert "Traceback" not in result.stderr


def test_a_template_mistake_fails_the_build_and_leaves_nothing(make_app, tmp_path) -> None:
    templates = tmp_path / "my-templates"
    templates.mkdir()
    (templates / "bulletin.html").write_text(
        '{% extends "base.html" %}{% block content %}{{ no_such_variable }}{% endblock %}'
    )
    app = make_app({"editions": {"templates_dir": str(templates)}})
    add_list(app, "members")
    add_item(app, "A report", "report", date(2019, 3, 2))
    with pytest.raises(InputError, match=r"bulletin\.html.*line 1"):
        editions.new_bulletin(app, "2019-03", actor="tester")
    assert editions.list_campaigns(app) == []
