"""`newsletter items …` through the installed command, as scripts and staff use it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsletter.items import DETAIL_FIELDS, LIST_FIELDS

DATA = Path(__file__).parent / "data" / "items"

# For checks that happen before any database work: run them once, on SQLite.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

LISTING = """\
Networks met in Vienna to plan the year.

June 2019

Our new report on prisons and health is out today.

Read the full report here!
"""


def test_import_prints_counts_and_each_problem_with_its_line(run_cli, tmp_path: Path) -> None:
    source = tmp_path / "news.txt"
    source.write_text(LISTING, encoding="utf-8")
    result = run_cli("items", "import", str(source))
    # Part of it is in and part is not: exit 1, so that a script can tell.
    assert result.returncode == 1, result.stderr
    assert (
        result.stdout == f"{source}: 1 added, 0 updated, 0 unchanged, 1 not imported (see above).\n"
    )
    assert result.stderr.startswith(f"{source}:1: error: the item 'Networks met in Vienna")
    assert result.stderr.splitlines()[-1] == (
        f"failed: 1 not imported from {source} (see above), 1 imported; fix them and import again"
    )

    again = run_cli("items", "import", str(source), "--date", "2019-06", "--json")
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    report = json.loads(again.stdout)
    assert report == {
        "source": str(source.resolve()),
        "source_type": "listing",
        "added": 1,
        "updated": 0,
        "unchanged": 1,
        "item_ids": [2, 1],
        "problems": [],
    }


@sqlite_only
def test_import_with_nothing_importable_exits_2(run_cli, tmp_path: Path) -> None:
    undated = tmp_path / "undated.txt"
    undated.write_text("An item that lost its date line.\n", encoding="utf-8")
    result = run_cli("items", "import", str(undated), "--json")
    assert result.returncode == 2
    assert json.loads(result.stdout)["problems"][0]["line"] == 1
    assert result.stderr.startswith(f"{undated}:1: error: the item 'An item that lost its date")

    missing = run_cli("items", "import", str(tmp_path / "missing.txt"))
    assert missing.returncode == 2
    assert missing.stderr == f"error: {tmp_path / 'missing.txt'}: no such file or folder\n"
    unknown = run_cli("items", "show", "999")
    assert (unknown.returncode, unknown.stderr) == (2, "error: no item with id 999\n")


def test_malformed_feed_exits_2_and_writes_nothing(run_cli) -> None:
    result = run_cli("items", "import", str(DATA / "malformed.xml"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {DATA / 'malformed.xml'}: not a readable feed:")
    assert "Traceback" not in result.stderr
    listed = run_cli("items", "list", "--all", "--json")
    assert json.loads(listed.stdout) == []


@sqlite_only
def test_months_and_dates_are_checked(run_cli, tmp_path: Path) -> None:
    result = run_cli("items", "import", str(tmp_path), "--date", "2019-6")
    assert result.returncode == 2
    assert "'2019-6' is not a month; write it as YYYY-MM" in result.stderr
    result = run_cli("items", "list", "--month", "June")
    assert result.returncode == 2
    assert "'June' is not a month" in result.stderr
    result = run_cli("items", "edit", "1", "--date", "someday")
    assert result.returncode == 2
    assert "'someday' is not a date; write YYYY-MM-DD or YYYY-MM" in result.stderr


def test_list_and_show_print_the_fields_of_their_tables(run_cli) -> None:
    imported = run_cli("items", "import", str(DATA / "rss.xml"), "--json")
    assert imported.returncode == 0, imported.stderr
    first = json.loads(imported.stdout)["item_ids"][0]

    table = run_cli("items", "list")
    assert table.stdout.split("\n")[0].split() == [f.upper() for f in LIST_FIELDS]
    assert "Statement to the Human Rights Council" in table.stdout
    rows = json.loads(run_cli("items", "list", "--json", "--kind", "statement").stdout)
    assert [list(row) for row in rows] == [list(LIST_FIELDS)]
    assert rows[0]["date"] == "2019-06-18"

    shown = run_cli("items", "show", str(first))
    assert [line.split()[0] for line in shown.stdout.splitlines()] == list(DETAIL_FIELDS)
    record = json.loads(run_cli("items", "show", str(first), "--json").stdout)
    assert list(record) == list(DETAIL_FIELDS)
    assert record["kind"] == "statement" and record["tags"] == ["Statements", "UN"]


def test_edit_exclude_and_include(run_cli) -> None:
    run_cli("items", "import", str(DATA / "rss.xml"))
    edited = run_cli(
        "items", "edit", "2", "--kind", "report", "--title", "Bangkok meeting", "--json"
    )
    assert edited.returncode == 0, edited.stderr
    record = json.loads(edited.stdout)
    assert (record["kind"], record["title"], record["kind_origin"]) == (
        "report",
        "Bangkok meeting",
        "edited",
    )
    assert record["edited_fields"] == ["kind", "title"]

    excluded = run_cli("items", "exclude", "2", "--json")
    assert json.loads(excluded.stdout) == {"id": 2, "excluded": True}
    assert [r["id"] for r in json.loads(run_cli("items", "list", "--json").stdout)] == [1]
    every = json.loads(run_cli("items", "list", "--all", "--json").stdout)
    assert [(r["id"], r["excluded"]) for r in every] == [(2, True), (1, False)]
    included = run_cli("items", "include", "2")
    assert included.stdout == "Item 2 is included in editions again.\n"
