"""Item identity on re-import, merge and delete (newsletter/items/identity.py).

Every test runs on a real SQLite file, and on PostgreSQL when
NEWSLETTER_TEST_DATABASE_URL is set; the feed is served over real HTTP on loopback.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from newsletter import editions, items
from newsletter.errors import InputError, InvalidState
from newsletter.items.identity import normalise_link, normalise_title, similarity
from newsletter.models import CampaignItem, Item

DATA = Path(__file__).parent / "data" / "items"

JUNE_PAGE = """\
Networks met in Vienna to plan the year of advocacy ahead.

Read more: https://example.org/news/vienna

Our new report on prisons and health is out today. It has ten chapters.

May 2019

We mourn the passing of Ana, a friend of the network for twenty years.
"""

JULY_PAGE = """\
July 2019

Peer educators from twelve countries met in Bangkok for three days.

June 2019

Networks met in Vienna to plan the year of advocacy ahead.

Read more: https://example.org/news/vienna

Our new report on prisons and health is out today. It has ten chapters.

May 2019

We mourn the passing of Ana, a friend of the network for twenty years.
"""


def count_items(app) -> int:
    with app.session() as session:
        return session.scalar(select(func.count()).select_from(Item))


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def titles(app) -> list[str]:
    return sorted(row.title for row in items.list_items(app, include_excluded=True))


def test_next_months_page_adds_only_the_new_item(app, tmp_path: Path) -> None:
    first = items.import_source(
        app, write(tmp_path / "news.txt", JUNE_PAGE), month="2019-06", actor="cli:test"
    )
    assert first.added == 3
    # A month later the page has a new item on top, and the item that had lost its
    # date line now stands under "June 2019".
    again = items.import_source(app, write(tmp_path / "news.txt", JULY_PAGE), actor="cli:test")
    assert again.added == 1
    assert [p for p in again.problems if p.severity == "error"] == []
    assert count_items(app) == 4
    assert "Peer educators from twelve countries met in Bangkok for three days" in titles(app)


def test_the_same_file_from_another_path_adds_nothing(app, tmp_path: Path) -> None:
    items.import_source(app, write(tmp_path / "a" / "news.txt", JULY_PAGE), actor="cli:test")
    moved = tmp_path / "elsewhere" / "renamed.txt"
    moved.parent.mkdir()
    shutil.copy(tmp_path / "a" / "news.txt", moved)
    again = items.import_source(app, str(moved), actor="cli:test")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 4)
    # The item remembers where it was read last, for people.
    assert {items.get_item(app, i).source for i in again.item_ids} == {str(moved.resolve())}


def test_a_typo_fixed_in_the_first_sentence_updates_the_item(app, tmp_path: Path) -> None:
    source = write(tmp_path / "news.txt", JULY_PAGE.replace("passing", "pasing"))
    first = items.import_source(app, source, actor="cli:test")
    write(tmp_path / "news.txt", JULY_PAGE)
    again = items.import_source(app, source, actor="cli:test")
    assert (again.added, again.updated) == (0, 1)
    assert again.item_ids == first.item_ids
    assert "We mourn the passing of Ana, a friend of the network for twenty years" in titles(app)


@pytest.fixture
def served_items() -> Iterator[str]:
    """tests/data/items over real HTTP on loopback; yields the base address."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(DATA))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_same_feed_from_a_file_then_its_url_adds_nothing(app, served_items: str) -> None:
    from_file = items.import_source(app, str(DATA / "rss.xml"), actor="cli:test")
    assert from_file.added == 2
    from_url = items.import_source(app, f"{served_items}/rss.xml", actor="cli:test")
    assert (from_url.added, from_url.unchanged) == (0, 2)
    assert from_url.item_ids == from_file.item_ids


def test_staff_edits_survive_a_reimport_that_also_fixes_a_typo(app, tmp_path: Path) -> None:
    source = write(tmp_path / "news.txt", JULY_PAGE.replace("Vienna", "Viena"))
    report = items.import_source(app, source, actor="cli:test")
    vienna = next(i for i in report.item_ids if "Viena" in items.get_item(app, i).title)
    items.edit_item(app, vienna, actor="cli:test", title="Vienna planning meeting")
    write(tmp_path / "news.txt", JULY_PAGE)
    again = items.import_source(app, source, actor="cli:test")
    assert again.added == 0
    assert items.get_item(app, vienna).title == "Vienna planning meeting"
    assert "Vienna to plan" in items.get_item(app, vienna).body_text


def test_a_rewritten_title_is_added_and_reported_as_looking_like_the_old(
    app, tmp_path: Path
) -> None:
    source = write(tmp_path / "news.txt", JULY_PAGE)
    first = items.import_source(app, source, actor="cli:test")
    old = next(i for i in first.item_ids if "Ana" in items.get_item(app, i).title)
    write(
        tmp_path / "news.txt",
        JULY_PAGE.replace("We mourn the passing of Ana", "With sorrow we mourn our Ana"),
    )
    again = items.import_source(app, source, actor="cli:test")
    assert again.added == 1
    (alike,) = again.look_alikes
    assert alike.like_id == old and LOOKS_LIKE_RANGE[0] <= alike.similarity < LOOKS_LIKE_RANGE[1]
    (warning,) = [p for p in again.problems if "looks like" in p.message]
    assert f"looks like item {old}" in warning.message
    assert f"newsletter items merge {old} {alike.item_id}" in warning.message
    assert warning.where.startswith(source)


LOOKS_LIKE_RANGE = (0.6, 0.88)


def test_merge_moves_campaign_entries_and_later_imports_find_the_kept_item(
    app, tmp_path: Path
) -> None:
    source = write(tmp_path / "news.txt", JULY_PAGE)
    first = items.import_source(app, source, actor="cli:test")
    keep = next(i for i in first.item_ids if "Ana" in items.get_item(app, i).title)
    changed = JULY_PAGE.replace("We mourn the passing of Ana", "With sorrow we mourn our Ana")
    write(tmp_path / "news.txt", changed)
    drop = items.import_source(app, source, actor="cli:test").look_alikes[0].item_id
    bulletin = editions.new_bulletin(app, "2019-05", actor="cli:test")
    merged = items.merge_items(app, keep, drop)
    assert merged.campaigns == (bulletin.id,)
    with app.session() as session:
        held = set(
            session.scalars(
                select(CampaignItem.item_id).where(CampaignItem.campaign_id == bulletin.id)
            )
        )
    assert keep in held and drop not in held
    # Both spellings now name the kept item: neither source adds anything.
    assert items.import_source(app, source, actor="cli:test").added == 0
    write(tmp_path / "news.txt", JULY_PAGE)
    assert items.import_source(app, source, actor="cli:test").added == 0
    with pytest.raises(InputError):
        items.merge_items(app, keep, keep)


def test_delete_is_refused_for_an_item_of_an_approved_campaign(app, tmp_path: Path) -> None:
    report = items.import_source(app, write(tmp_path / "news.txt", JULY_PAGE), actor="cli:test")
    bulletin = editions.new_bulletin(app, "2019-07", actor="cli:test")
    (july,) = [i for i in report.item_ids if items.get_item(app, i).date.month == 7]
    editions.approve(app, bulletin.id, actor="cli:test")
    with pytest.raises(
        InvalidState, match=rf"item {july} is in campaign {bulletin.id} \(approved\)"
    ):
        items.delete_item(app, july)
    assert count_items(app) == 4

    draft = editions.new_bulletin(app, "2019-05", actor="cli:test")
    (may,) = [i for i in report.item_ids if items.get_item(app, i).date.month == 5]
    deleted = items.delete_item(app, may)
    assert deleted.drafts == (draft.id,)
    assert count_items(app) == 3


_WORDS = st.sampled_from(
    ["report", "statement", "network", "prison", "health", "rights", "meeting", "drug",
     "policy", "women", "youth", "Asia", "Africa", "funding", "tribute", "council"]
)  # fmt: skip


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sentences=st.lists(st.lists(_WORDS, min_size=6, max_size=10), min_size=2, max_size=5),
    typo_in=st.integers(min_value=0, max_value=4),
    position=st.integers(min_value=0, max_value=40),
)
def test_reimporting_an_edited_listing_adds_nothing(
    app, tmp_path: Path, sentences: list[list[str]], typo_in: int, position: int
) -> None:
    """Property: a listing re-imported with one letter changed in one item adds no item."""
    # Distinct first sentences, as on a real page; each item under one month line.
    seen: set[str] = set()
    lines = ["June 2019", ""]
    for number, words in enumerate(sentences):
        text = f"Item {number} " + " ".join(words)
        if normalise_title(text) in seen:
            continue
        seen.add(normalise_title(text))
        lines += [f"{text} and more.", "", "Some more words here.", ""]
    folder = tmp_path / f"case-{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    source = write(folder / "news.txt", "\n".join(lines))
    before_count = count_items(app)
    first = items.import_source(app, source, actor="cli:test")
    items_lines = [i for i, line in enumerate(lines) if line.startswith("Item ")]
    target = items_lines[typo_in % len(items_lines)]
    line = lines[target]
    spot = 7 + position % max(1, len(line) - 12)
    lines[target] = line[:spot] + ("x" if line[spot] != "x" else "y") + line[spot + 1 :]
    write(folder / "news.txt", "\n".join(lines))
    again = items.import_source(app, source, actor="cli:test")
    assert again.added == 0, again.problems
    assert count_items(app) == before_count + first.added


def test_identity_rules_in_small() -> None:
    assert normalise_title("Our new Report — prisons & health!") == "our new report prisons health"
    assert normalise_title("Réduction des risques") == "reduction des risques"
    assert normalise_link("HTTPS://www.Example.org:443/news/1/#top") == "example.org/news/1"
    assert normalise_link("http://example.org/news/1?id=2") == "example.org/news/1?id=2"
    assert similarity("networks met in vienna", "networks met in viena") > 0.88
    assert similarity("networks met in vienna", "a tribute to ana") < 0.6
