"""The items service: importing into the database, re-importing, editing, excluding.

Every test runs on a real SQLite file, and on PostgreSQL when
NEWSLETTER_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import shutil
import socket
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from newsletter import audit, items
from newsletter.demo import NEWS_FIRST_MONTH, NEWS_LISTING
from newsletter.errors import InputError, NotFound
from newsletter.models import Item

DATA = Path(__file__).parent / "data" / "items"

LISTING = """\
Networks met in Vienna to plan the year. The notes are in the members' area.

June 2019

Our new report on prisons and health is out today. It has ten chapters.

Read the full report here!


April 2019

We mourn the passing of a friend of the network.
"""


def count_items(app) -> int:
    with app.session() as session:
        return session.scalar(select(func.count()).select_from(Item))


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_import_listing_stores_items_with_kinds_and_dates(app, tmp_path: Path) -> None:
    source = write(tmp_path / "news.txt", LISTING)
    report = items.import_source(app, source, month="2019-06", language="fr", actor="cli:test")
    assert (report.added, report.updated, report.unchanged) == (3, 0, 0)
    assert report.source == str((tmp_path / "news.txt").resolve())
    assert report.source_type == "listing"
    # The export lost the caption's address: said once, naming the item.
    (warning,) = report.problems
    assert warning.severity == "warning"
    assert warning.message.startswith("item 2 has a call to action ('Read the full report')")
    rows = items.list_items(app)
    assert [(r.date, r.kind, r.title, r.language) for r in rows] == [
        (date(2019, 4, 1), "tribute", "We mourn the passing of a friend of the network", "fr"),
        (date(2019, 6, 1), "news", "Networks met in Vienna to plan the year", "fr"),
        (date(2019, 6, 1), "report", "Our new report on prisons and health is out today", "fr"),
    ]
    report_item = items.get_item(app, report.item_ids[1])
    assert report_item.link_text == "Read the full report"
    assert report_item.kind_origin == "inferred"
    assert report_item.source_id == "2019-06/our-new-report-on-prisons-and-health-is"
    assert report_item.body_html == (
        "<p>Our new report on prisons and health is out today. It has ten chapters.</p>"
    )


def test_reimport_adds_nothing_and_updates_what_changed(app, tmp_path: Path) -> None:
    source = write(tmp_path / "news.txt", LISTING)
    first = items.import_source(app, source, month="2019-06", actor="cli:test")
    again = items.import_source(app, source, month="2019-06", actor="cli:test")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    assert again.item_ids == first.item_ids

    write(tmp_path / "news.txt", LISTING.replace("ten chapters", "twelve chapters"))
    changed = items.import_source(app, source, month="2019-06", actor="cli:test")
    assert (changed.added, changed.updated, changed.unchanged) == (0, 1, 2)
    assert changed.item_ids == first.item_ids
    assert "twelve chapters" in items.get_item(app, first.item_ids[1]).body_text
    assert count_items(app) == 3


def test_correcting_the_month_moves_the_undated_item(app, tmp_path: Path) -> None:
    source = write(tmp_path / "news.txt", LISTING)
    first = items.import_source(app, source, month="2019-05", actor="cli:test")
    moved = items.import_source(app, source, month="2019-06", actor="cli:test")
    assert (moved.added, moved.updated) == (0, 1)
    assert items.get_item(app, first.item_ids[0]).date == date(2019, 6, 1)


def test_the_same_file_from_another_folder_is_the_same_source(
    app, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "news.txt", LISTING)
    items.import_source(app, str(tmp_path / "news.txt"), month="2019-06", actor="cli:test")
    monkeypatch.chdir(tmp_path)
    again = items.import_source(app, "news.txt", month="2019-06", actor="cli:test")
    assert again.added == 0 and again.unchanged == 3


def test_edited_fields_survive_reimport(app, tmp_path: Path) -> None:
    source = write(tmp_path / "news.txt", LISTING)
    report_id = items.import_source(app, source, month="2019-06", actor="cli:test").item_ids[1]
    edited = items.edit_item(
        app,
        report_id,
        actor="cli:test",
        title="Prisons and health: our report",
        kind="statement",
        date="2019-06-14",
    )
    assert edited.edited_fields == ("date", "kind", "title")
    assert edited.item.kind_origin == "edited"

    write(tmp_path / "news.txt", LISTING.replace("ten chapters", "twelve chapters"))
    again = items.import_source(app, source, month="2019-06", actor="cli:test")
    assert again.updated == 1
    item = items.get_item(app, report_id)
    assert item.title == "Prisons and health: our report"
    assert item.kind == "statement"
    assert item.kind_origin == "edited"
    assert item.date == date(2019, 6, 14)
    # What staff did not touch still follows the source.
    assert "twelve chapters" in item.body_text


def test_edit_rejects_bad_values_and_changes_nothing(app, tmp_path: Path) -> None:
    source = write(tmp_path / "news.txt", LISTING)
    item_id = items.import_source(app, source, month="2019-06", actor="cli:test").item_ids[0]
    before = items.get_item(app, item_id)
    bad = [
        ({"kind": "rumour"}, "kind 'rumour' is not one of report, statement, tribute, news"),
        ({"date": "June"}, "date 'June' is not a date; write YYYY-MM-DD or YYYY-MM"),
        ({"link": "javascript:alert(1)"}, "must start with http://, https:// or mailto:"),
        ({"title": "  "}, "title cannot be empty"),
        ({"language": "english!"}, "is not a language code"),
        ({"colour": "red"}, "cannot edit colour"),
        ({}, "nothing to change"),
    ]
    for changes, message in bad:
        with pytest.raises(InputError, match=message):
            items.edit_item(app, item_id, actor="cli:test", **changes)
    assert items.get_item(app, item_id) == before
    with pytest.raises(NotFound, match="no item with id 999"):
        items.edit_item(app, 999, actor="cli:test", title="x")


def test_excluded_items_leave_lists_and_editions(app, tmp_path: Path) -> None:
    source = write(tmp_path / "news.txt", LISTING)
    ids = items.import_source(app, source, month="2019-06", actor="cli:test").item_ids
    items.exclude_item(app, ids[0], actor="cli:test")
    assert [r.id for r in items.list_items(app, month="2019-06")] == [ids[1]]
    assert [r.id for r in items.list_items(app, month="2019-06", include_excluded=True)] == [
        ids[0],
        ids[1],
    ]
    with app.session() as session:
        assert [i.id for i in items.items_for_month(session, "2019-06")] == [ids[1]]
    # Exclusion is staff's choice: a re-import does not undo it.
    items.import_source(app, source, month="2019-06", actor="cli:test")
    assert items.get_item(app, ids[0]).excluded is True
    items.exclude_item(app, ids[0], excluded=False, actor="cli:test")
    with app.session() as session:
        assert [i.id for i in items.items_for_month(session, "2019-06")] == ids[:2]


def test_item_changes_and_their_audit_lines_are_written_together(app, tmp_path: Path) -> None:
    """Import, edit and exclusion each write their audit line, with the actor, in their own
    transaction: a line that cannot be written (no actor) leaves the change unmade."""
    source = write(tmp_path / "news.txt", LISTING)
    with pytest.raises(ValueError, match="needs an actor"):
        items.import_source(app, source, month="2019-06", actor="")
    assert count_items(app) == 0
    ids = items.import_source(app, source, month="2019-06", actor="user:ed@example.org").item_ids
    with pytest.raises(ValueError, match="needs an actor"):
        items.exclude_item(app, ids[0], actor="")
    with pytest.raises(ValueError, match="needs an actor"):
        items.edit_item(app, ids[0], actor="", title="Renamed")
    assert items.get_item(app, ids[0]).excluded is False
    assert items.get_item(app, ids[0]).title != "Renamed"
    items.edit_item(app, ids[0], actor="user:ed@example.org", title="Renamed", kind="news")
    items.exclude_item(app, ids[0], actor="user:ed@example.org")
    items.exclude_item(app, ids[0], excluded=False, actor="cli:test")
    trail = [(e.actor, e.action, e.detail) for e in reversed(audit.list_events(app))]
    assert trail == [
        ("user:ed@example.org", "items.import", f"{len(ids)} added, 0 updated"),
        ("user:ed@example.org", "item.edit", "changed kind, title"),
        ("user:ed@example.org", "item.exclude", ""),
        ("cli:test", "item.include", ""),
    ]


def test_items_for_month_orders_by_date_then_id(app, tmp_path: Path) -> None:
    source = write(
        tmp_path / "news.txt",
        "17 March 2019\n\nLater in the month.\n\nMarch 2019\n\nFirst day, second item.\n\n"
        "2019-03\n\nFirst day, third item.\n\nFebruary 2019\n\nAnother month.\n",
    )
    items.import_source(app, source, actor="cli:test")
    with app.session() as session:
        march = items.items_for_month(session, "2019-03")
        assert [i.title for i in march] == [
            "First day, second item",
            "First day, third item",
            "Later in the month",
        ]
    assert [r.kind for r in items.list_items(app, kind="news", month="2019-02")] == ["news"]
    with pytest.raises(InputError, match="write it as YYYY-MM"):
        items.list_items(app, month="March")


def test_duplicates_within_one_source_get_unique_ids_in_order(app, tmp_path: Path) -> None:
    text = "May 2019\n\nSame words here.\n\nMay 2019\n\nSame words here. But a different body.\n"
    source = write(tmp_path / "news.txt", text)
    first = items.import_source(app, source, actor="cli:test")
    again = items.import_source(app, source, actor="cli:test")
    assert first.added == 2 and again.unchanged == 2
    ids = [items.get_item(app, i).source_id for i in first.item_ids]
    assert ids == ["2019-05/same-words-here", "2019-05/same-words-here~2"]


def test_import_reports_problems_and_imports_the_rest(app, tmp_path: Path) -> None:
    source = write(tmp_path / "news.txt", LISTING)
    report = items.import_source(app, source, actor="cli:test")
    assert report.added == 2
    (problem,) = [p for p in report.problems if p.severity == "error"]
    assert problem.where == f"{source}:1"
    assert "has no date line above it" in problem.message
    assert report.as_dict()["problems"][0] == {
        "where": f"{source}:1",
        "line": 1,
        "severity": "error",
        "message": problem.message,
    }


def test_markdown_folder_import_and_kind_from_option(app, tmp_path: Path) -> None:
    folder = tmp_path / "md"
    shutil.copytree(DATA / "markdown", folder)
    report = items.import_source(app, str(folder), kind="news", month="2019-01", actor="cli:test")
    assert report.source_type == "markdown"
    assert (report.added, len(report.problems)) == (4, 3)
    by_id = {items.get_item(app, i).source_id: items.get_item(app, i) for i in report.item_ids}
    assert by_id["2019/june-report.md"].kind == "report"
    assert by_id["2019/june-report.md"].tags == ["prisons", "harm reduction"]
    # The file says nothing about its kind: the import's --kind applies.
    assert by_id["statement-ru.md"].kind == "news"
    assert by_id["statement-ru.md"].kind_origin == "source"
    assert by_id["undated.md"].date == date(2019, 1, 1)
    # Re-read without a date, the undated file is a problem again; the others are as they were.
    again = items.import_source(app, str(folder), kind="news", actor="cli:test")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    # Without --kind, the Russian statement's kind is inferred from its words.
    inferred = items.import_source(app, str(folder), actor="cli:test")
    assert (inferred.updated, inferred.unchanged) == (1, 2)
    assert items.get_item(app, by_id["statement-ru.md"].id).kind == "statement"


def test_feed_import_keeps_only_sanitised_html(app) -> None:
    report = items.import_source(app, str(DATA / "rss.xml"), actor="cli:test")
    assert report.source_type == "feed"
    assert report.added == 2
    stored = [items.get_item(app, i) for i in report.item_ids]
    assert [s.kind for s in stored] == ["statement", "news"]
    assert [s.kind_origin for s in stored] == ["source", "inferred"]
    for unsafe in ("<script", "onclick", "onerror", "javascript:", "<img"):
        assert unsafe not in stored[0].body_html


def test_sources_that_cannot_be_read_write_nothing(app, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    failing = {
        str(DATA / "malformed.xml"): "not a readable feed",
        str(DATA / "page.html"): "not an RSS or Atom feed",
        str(tmp_path / "missing.txt"): "no such file or folder",
        f"http://127.0.0.1:{port}/feed.xml": "cannot connect",
    }
    for source, message in failing.items():
        with pytest.raises(InputError, match=message) as caught:
            items.import_source(app, source, actor="cli:test")
        assert str(caught.value).startswith(source)
    assert count_items(app) == 0


def test_bad_options_are_refused_before_anything_is_read(app, tmp_path: Path) -> None:
    source = write(tmp_path / "news.txt", LISTING)
    with pytest.raises(InputError, match="--date 'June' is not a month"):
        items.import_source(app, source, month="June", actor="cli:test")
    with pytest.raises(InputError, match="kind 'gossip' is not one of"):
        items.import_source(app, source, kind="gossip", actor="cli:test")
    with pytest.raises(InputError, match="language 'English!' is not a language code"):
        items.import_source(app, source, language="English!", actor="cli:test")
    assert count_items(app) == 0


def test_long_titles_and_ids_fit_their_columns(app, tmp_path: Path) -> None:
    title = "word " * 200
    entry_id = "x" * 800
    feed = (
        f'<rss version="2.0"><channel><title>t</title><item><title>{title}</title>'
        f"<guid>{entry_id}</guid><pubDate>Mon, 03 Jun 2019 10:00:00 GMT</pubDate>"
        "</item></channel></rss>"
    )
    source = write(tmp_path / "long.xml", feed)
    report = items.import_source(app, source, actor="cli:test")
    stored = items.get_item(app, report.item_ids[0])
    assert len(stored.title) <= 500 and stored.title.endswith("…")
    assert len(stored.source_id) <= 500
    assert items.import_source(app, source, actor="cli:test").unchanged == 1


def test_demo_listing_imports_every_item_with_the_right_kind(app) -> None:
    report = items.import_source(app, str(NEWS_LISTING), month=NEWS_FIRST_MONTH, actor="cli:test")
    # The demo's listing gives every call to action its address: nothing to report.
    assert report.problems == []
    rows = [items.get_item(app, i) for i in report.item_ids]
    assert [(r.date.isoformat()[:7], r.kind) for r in rows] == [
        ("2019-06", "statement"),
        ("2019-06", "report"),
        ("2019-05", "news"),
        ("2019-04", "tribute"),
        ("2019-03", "statement"),
        ("2019-03", "statement"),
    ]
    assert all(r.kind_origin == "inferred" for r in rows)
    assert all(len(r.title) <= 90 and not r.title.endswith("…") for r in rows)
    assert [r.link_text for r in rows] == [
        "Read the full statement",
        "Read the full report",
        "",
        "",
        "Read the full statement",
        "Download the statement",
    ]
