"""Reading sources into items: listings, Markdown folders, feeds, and the rules they share.

These tests need no database: a parser turns a source into items and problems.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from newsletter.errors import InputError
from newsletter.items.classify import infer_kind
from newsletter.items.dates import parse_date_line, parse_month
from newsletter.items.detect import source_type
from newsletter.items.feed import parse_feed_bytes, read_feed
from newsletter.items.listing import call_to_action, parse_listing, parse_listing_bytes
from newsletter.items.markdown_folder import parse_markdown_folder
from newsletter.items.markup import sanitise
from newsletter.items.prose import TITLE_LIMIT, derive_title, sentences, summarise

DATA = Path(__file__).parent / "data" / "items"


def by_title(result) -> dict:
    return {item.title: item for item in result.items}


# Plain-text listings


def test_listing_splits_items_at_date_lines_and_closing_captions() -> None:
    result = parse_listing(DATA / "listing.txt", label="listing.txt", month=date(2019, 7, 1))
    titles = [item.title for item in result.items]
    assert titles == [
        "Harm reduction workers from twelve countries met online to plan the next year of joint…",
        "Our briefing paper explains what the new UN guidelines on drug policy mean…",
        "A joint letter from youth networks asks donors to fund peer-led outreach",
        "The regional office moves to a new address on 1 June, and the phone numbers stay the same",
        "We mourn the passing of a founding member of the Eastern Europe network…",
        # Under the same April line, after the tribute's closing "Read more".
        "The spring training for peer educators will take place in Nairobi",
        "Today we publish a report on naloxone access in prisons across the region",
    ]
    dates = [item.date for item in result.items]
    assert dates == [
        date(2019, 7, 1),
        date(2019, 6, 1),
        date(2019, 6, 1),
        date(2019, 5, 1),
        date(2019, 4, 1),
        date(2019, 4, 1),
        date(2019, 3, 17),
    ]


def test_listing_date_line_without_text_is_reported_with_its_line() -> None:
    result = parse_listing(DATA / "listing.txt", label="listing.txt", month=date(2019, 7, 1))
    assert [str(p) for p in result.problems] == [
        "listing.txt:36: error: the item under 'March 2019' has no text; it was not imported"
    ]


def test_listing_first_item_without_date_line_is_reported_not_guessed() -> None:
    result = parse_listing(DATA / "listing.txt", label="listing.txt")
    first = result.problems[0]
    assert first.line == 1
    assert first.severity == "error"
    assert str(first).startswith("listing.txt:1: error: the item 'Harm reduction workers")
    assert "--date YYYY-MM" in first.message
    # The rest of the listing is still read.
    assert len(result.items) == 6
    assert all(not item.source_id.startswith("undated/") for item in result.items)


def test_listing_first_item_takes_the_given_month_and_an_undated_id() -> None:
    result = parse_listing(DATA / "listing.txt", label="listing.txt", month=date(2019, 6, 1))
    first = result.items[0]
    assert first.date == date(2019, 6, 1)
    assert first.source_id == "undated/harm-reduction-workers-from-twelve-countries-met-online"
    assert first.link_text == "Read more"


def test_listing_captions_become_the_call_to_action_and_leave_the_text() -> None:
    result = by_title(parse_listing(DATA / "listing.txt", label="l", month=date(2019, 6, 1)))
    briefing = result["Our briefing paper explains what the new UN guidelines on drug policy mean…"]
    assert briefing.link_text == "Read the full report"
    assert briefing.link == ""
    assert "Read the full" not in briefing.body_text
    assert "Read the full" not in briefing.summary
    letter = result["A joint letter from youth networks asks donors to fund peer-led outreach"]
    # A caption followed by an address: the address is the link and leaves the text.
    assert letter.link == "https://example.org/youth-letter.pdf"
    assert letter.link_text == "Download the statement"
    assert letter.body_text.endswith("Sign it before the end of the month.")
    naloxone = result["Today we publish a report on naloxone access in prisons across the region"]
    assert naloxone.link == "https://example.org/naloxone-report"
    assert naloxone.link_text == "Read the report"


def test_listing_paragraphs_and_html() -> None:
    text = b"May 2019\n\nFirst paragraph, written\nover two lines.\n\n\n\nSecond <p> & more.\n"
    item = parse_listing_bytes(text, label="x").items[0]
    assert item.body_text == "First paragraph, written over two lines.\n\nSecond <p> & more."
    assert item.body_html == (
        "<p>First paragraph, written over two lines.</p>\n<p>Second &lt;p&gt; &amp; more.</p>"
    )
    # The title is the first paragraph's only sentence, so the summary is what follows.
    assert item.title == "First paragraph, written over two lines"
    assert item.summary == "Second <p> & more."


def test_listing_summary_does_not_repeat_the_title_sentence() -> None:
    text = b"May 2019\n\nWe published a report. It looks at rights. It is long.\n\nMore.\n"
    item = parse_listing_bytes(text, label="x").items[0]
    assert item.title == "We published a report"
    assert item.summary == "It looks at rights. It is long."


def test_listing_with_invalid_utf8_skips_only_the_item_with_the_bad_line() -> None:
    result = parse_listing(DATA / "latin1.txt", label="latin1.txt")
    assert [item.title for item in result.items] == [
        "This item is fine and will be imported",
        "This one is fine too",
    ]
    (problem,) = result.problems
    assert problem.line == 7
    assert str(problem).startswith("latin1.txt:7: error: not valid UTF-8 (byte 0xE9 at column 30)")


def test_listing_that_is_empty_is_a_problem() -> None:
    result = parse_listing_bytes(b"\n\n   \n", label="empty.txt")
    assert result.items == []
    assert [str(p) for p in result.problems] == [
        "empty.txt: error: no items found: the file holds no text"
    ]


def test_listing_ids_survive_edits_past_the_first_words() -> None:
    before = parse_listing_bytes(
        b"June 2019\n\nOur new report on prisons and health is out today. It has ten chapters.\n",
        label="x",
    ).items[0]
    after = parse_listing_bytes(
        b"June 2019\n\nOur new report on prisons and health is out today, in three languages. "
        b"It has twelve chapters.\n\nA new paragraph.\n",
        label="x",
    ).items[0]
    assert before.source_id == after.source_id == "2019-06/our-new-report-on-prisons-and-health-is"
    assert before.body_text != after.body_text


def test_a_caption_that_points_down_the_page_does_not_end_the_item() -> None:
    text = (
        b"March 2019\n\nNetworks wrote to the member states.\n\n"
        b"Read the statement below, or download it here\n\n"
        b"The statement itself, paragraph one.\n"
    )
    (item,) = parse_listing_bytes(text, label="x").items
    assert item.link_text == "Download the statement"
    assert item.body_text.endswith("The statement itself, paragraph one.")


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("Read the full report here!", "Read the full report"),
        ("Read the full statement here", "Read the full statement"),
        ("download it here", "Download it"),
        ("Read the full statement below, and download it here", "Download the statement"),
        ("Click here to read the report.", "Read the report"),
        ("Read more", "Read more"),
    ],
)
def test_call_to_action_from_caption(caption: str, expected: str) -> None:
    assert call_to_action(caption) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("June 2019", date(2019, 6, 1)),
        ("JUNE 2019", date(2019, 6, 1)),
        ("  june 2019 ", date(2019, 6, 1)),
        ("Jun 2019", date(2019, 6, 1)),
        ("Sept. 2019", date(2019, 9, 1)),
        ("2019-06", date(2019, 6, 1)),
        ("2019-06-17", date(2019, 6, 17)),
        ("17 June 2019", date(2019, 6, 17)),
        ("17th June 2019", date(2019, 6, 17)),
        ("June 17, 2019", date(2019, 6, 17)),
        ("juin 2019", date(2019, 6, 1)),
        ("17 de junio de 2019", date(2019, 6, 17)),
        ("Июнь 2019", date(2019, 6, 1)),
        ("June 2019 was busy", None),
        ("06/2019", None),
        ("Statement 2019", None),
        ("2019-13", None),
        ("31 June 2019", None),
    ],
)
def test_date_line_spellings(line: str, expected: date | None) -> None:
    assert parse_date_line(line) == expected


def test_month_argument_must_be_yyyy_mm() -> None:
    assert parse_month("2019-06") == date(2019, 6, 1)
    for bad in ("2019-6", "June 2019", "2019-13", ""):
        with pytest.raises(InputError, match="write it as YYYY-MM"):
            parse_month(bad)


# Titles, summaries, kinds


def test_title_is_the_first_sentence_shortened_at_a_boundary() -> None:
    assert derive_title("Short and sweet. Then more.") == "Short and sweet"
    long = (
        "Following the meeting in Vienna last week of many networks of people who use "
        "drugs from every region of the world, we publish our joint conclusions. More."
    )
    title = derive_title(long)
    assert len(title) <= TITLE_LIMIT
    assert title.endswith("…")
    assert not title[:-1].endswith((" the", " of", " and", ","))
    assert long.startswith(title[:-1])


def test_sentences_keep_abbreviations_together() -> None:
    assert sentences("See e.g. the work of Dr. J. Smith. It is good.") == [
        "See e.g. the work of Dr. J. Smith.",
        "It is good.",
    ]


def test_summary_keeps_whole_sentences_within_its_limit() -> None:
    paragraph = " ".join(f"Sentence number {i} is here." for i in range(40))
    summary = summarise(paragraph, limit=100)
    assert len(summary) <= 100
    assert summary.endswith("is here.")


@pytest.mark.parametrize(
    ("title", "summary", "link_text", "kind"),
    [
        ("We are deeply sad to share that our friend died", "", "", "tribute"),
        ("In memory of a colleague", "", "", "tribute"),
        ("A tribute to our founder", "", "Read the full statement", "tribute"),
        ("Something new", "It was reported widely.", "Read the full report", "report"),
        ("Our statement to the CND", "", "", "statement"),
        ("Networks wrote to states", "", "Download the statement", "statement"),
        ("A report on our statement", "", "", "report"),
        ("An open letter to donors", "", "", "statement"),
        ("Office moves", "Reporting will be weekly.", "", "news"),
        ("UN political declaration agreed", "", "", "news"),
    ],
)
def test_kind_rule(title: str, summary: str, link_text: str, kind: str) -> None:
    assert infer_kind(title, summary, link_text) == kind


# Markdown folders


def test_markdown_folder_reads_front_matter_and_renders_the_body() -> None:
    result = parse_markdown_folder(DATA / "markdown", label="md")
    items = {item.source_id: item for item in result.items}
    assert sorted(items) == ["2019/june-report.md", "no-title.md", "statement-ru.md"]
    report = items["2019/june-report.md"]
    assert report.title == "Community report on harm reduction in prisons"
    assert report.date == date(2019, 6, 12)
    assert report.kind == "report"
    assert report.link == "https://example.org/reports/prisons"
    assert report.summary == "What people in prison told us about needles, naloxone and treatment."
    assert report.tags == ["prisons", "harm reduction"]
    assert report.language == "en"
    assert "<strong>people in prison</strong>" in report.body_html
    assert "<li>access to naloxone on release</li>" in report.body_html
    assert "<script" not in report.body_html and "alert" not in report.body_text
    # A leading heading is the title; a YYYY-MM date is the month's first day.
    russian = items["statement-ru.md"]
    assert russian.title == "Заявление о доступе к лечению"
    assert russian.date == date(2019, 5, 1)
    assert russian.language == "ru"
    assert "Заявление" not in russian.body_text
    # No title: derived from the first sentence; "Tributes" is the kind tribute.
    untitled = items["no-title.md"]
    assert untitled.title == "We remember a colleague who gave twenty years to the movement"
    assert untitled.kind == "tribute"


def test_markdown_problems_name_the_file_and_line() -> None:
    result = parse_markdown_folder(DATA / "markdown", label="md")
    assert [str(p) for p in result.problems] == [
        "md/broken.md:2: error: front matter is not valid YAML: did not find expected ',' "
        "or ']'; the file was not imported",
        "md/empty.md:4: error: the file has no text (no title, summary or body); "
        "it was not imported",
        "md/no-title.md:4: warning: unknown front matter key 'titel' ignored (known: title, "
        "date, kind, url, summary, tags, language, link_text, translation_of, key, image, "
        "image_alt, image_width, image_height)",
        "md/undated.md:1: error: no date in the front matter, so the file was not imported; "
        "add 'date: YYYY-MM-DD' or give its month with --date YYYY-MM",
    ]


def test_markdown_undated_file_takes_the_given_month(tmp_path: Path) -> None:
    (tmp_path / "note.md").write_text("---\ntitle: A note\n---\nSome text.\n", encoding="utf-8")
    result = parse_markdown_folder(tmp_path, label="notes", month=date(2019, 2, 1))
    assert [(i.title, i.date) for i in result.items] == [("A note", date(2019, 2, 1))]
    assert result.problems == []


def test_markdown_bad_values_are_warnings_and_the_file_still_imports(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "---\ntitle: A\ndate: 2019-02-03\nkind: statment\nurl: ftp://x\nlanguage: 12\n---\nB.\n",
        encoding="utf-8",
    )
    (tmp_path / "b.md").write_bytes(b"---\ntitle: B\ndate: 2019-02-03\n---\nline\nbad \xff\n")
    (tmp_path / "c.md").write_text("---\ntitle: C\ndate: soon\n---\nx\n", encoding="utf-8")
    result = parse_markdown_folder(tmp_path, label="f")
    assert [(i.title, i.kind, i.link, i.language) for i in result.items] == [("A", None, "", None)]
    messages = [str(p) for p in result.problems]
    assert messages[0].startswith("f/a.md:4: warning: unknown kind 'statment'")
    assert messages[1].startswith("f/a.md:5: warning: url 'ftp://x' is not an http(s)")
    assert messages[2].startswith("f/a.md:6: warning: language 12 is not a language code")
    assert messages[3].startswith("f/b.md:6: error: not valid UTF-8 (byte 0xFF)")
    assert messages[4].startswith("f/c.md:3: error: date 'soon' is not a date")


def test_an_empty_markdown_folder_is_a_problem(tmp_path: Path) -> None:
    result = parse_markdown_folder(tmp_path, label="empty")
    assert [str(p) for p in result.problems] == [
        "empty: error: no Markdown files (*.md) in this folder"
    ]


# Feeds


def test_rss_entries_are_sanitised_with_kind_from_category() -> None:
    result = read_feed(str(DATA / "rss.xml"), label="rss.xml")
    statement, bangkok = result.items
    assert statement.source_id == "example-2019-06-hrc"
    assert statement.kind == "statement"
    assert statement.tags == ["Statements", "UN"]
    assert statement.language == "en"
    assert statement.date == date(2019, 6, 18)
    assert statement.link == "https://example.org/news/hrc-statement"
    html = statement.body_html
    for unsafe in ("<script", "onclick", "onerror", "javascript:", "<img", "evil.example"):
        assert unsafe not in html
    assert "<b>Human Rights Council</b>" in html
    assert '<a href="https://example.org/hrc" rel="noopener noreferrer">' in html
    assert statement.body_text == (
        "We spoke at the Human Rights Council about arbitrary detention.\n\n"
        "a bad link and the full text (https://example.org/hrc)."
    )
    # No guid: the link is the id; bare text becomes a paragraph; no category: inferred later.
    assert bangkok.source_id == "https://example.org/news/bangkok"
    assert bangkok.body_html == "<p>Forty peer educators from the region met for three days.</p>"
    assert bangkok.kind is None
    assert [str(p) for p in result.problems] == [
        "rss.xml: entry 3 (example-empty): error: the entry has no title and no text; skipped"
    ]


def test_atom_entries() -> None:
    result = read_feed(str(DATA / "atom.xml"), label="atom.xml")
    tribute, report = result.items
    assert tribute.source_id == "urn:example:tribute-2019-03"
    assert tribute.date == date(2019, 3, 14)
    assert tribute.language == "fr"
    assert tribute.summary == "Nous saluons la mémoire d'un ami."
    assert tribute.body_html == (
        "<p>Il a porté la voix des usagers pendant vingt ans.</p><p>Nous ne l'oublierons pas.</p>"
    )
    assert infer_kind(tribute.title, tribute.summary) == "tribute"
    assert report.date == date(2019, 3, 2)
    assert report.body_text == "Un nouveau rapport communautaire.\n\nIl est disponible en français."
    assert infer_kind(report.title, report.summary) == "report"


def test_malformed_feed_is_an_error_naming_the_source() -> None:
    with pytest.raises(InputError, match=r"^malformed.xml: not a readable feed: .+ at line 3$"):
        read_feed(str(DATA / "malformed.xml"), label="malformed.xml")


def test_a_web_page_is_not_a_feed() -> None:
    with pytest.raises(InputError, match=r"page.html: not an RSS or Atom feed"):
        read_feed(str(DATA / "page.html"), label="page.html")


def test_feed_entry_without_date_needs_a_month() -> None:
    feed = (
        b'<rss version="2.0"><channel><title>t</title>'
        b"<item><title>Undated</title><guid>u1</guid></item></channel></rss>"
    )
    undated = parse_feed_bytes(feed, label="f.xml")
    assert undated.items == []
    assert str(undated.problems[0]).startswith("f.xml: entry 1 (u1): error: the entry has no")
    dated = parse_feed_bytes(feed, label="f.xml", month=date(2019, 1, 1))
    assert [i.date for i in dated.items] == [date(2019, 1, 1)]


def test_sanitise_keeps_safe_markup_only() -> None:
    assert sanitise('<p style="x" onclick="y">Hi <em>you</em></p><iframe src="z">f</iframe>') == (
        "<p>Hi <em>you</em></p>"
    )


class _FeedHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/feed.xml":
            body = (DATA / "rss.xml").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404, "Not Found")

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def feed_server() -> Iterator[str]:
    """A real HTTP server on a free loopback port; yields its base address."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FeedHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_feed_is_fetched_over_http(feed_server: str) -> None:
    url = f"{feed_server}/feed.xml"
    assert source_type(url) == "feed"
    result = read_feed(url, label=url)
    assert [i.title for i in result.items] == [
        "Statement to the Human Rights Council",
        "Peer educators meet in Bangkok",
    ]


def test_feed_address_that_answers_404_is_an_error(feed_server: str) -> None:
    url = f"{feed_server}/gone.xml"
    with pytest.raises(InputError, match=r"/gone.xml: the server answered HTTP 404 Not Found"):
        read_feed(url, label=url)


def test_unreachable_feed_address_is_an_error() -> None:
    # A port that was free a moment ago: nothing listens there.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/feed.xml"
    with pytest.raises(InputError, match=rf"^http://127.0.0.1:{port}/feed.xml: cannot connect"):
        read_feed(url, label=url)


def test_feed_server_that_never_answers_times_out() -> None:
    # A listening socket that never accepts: the connection opens, no answer comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/feed.xml"
        with pytest.raises(InputError, match=r"no answer within 0.2 seconds"):
            read_feed(url, label=url, timeout=0.2)


# Which parser reads a source


def test_source_type_detection(tmp_path: Path) -> None:
    assert source_type(str(DATA / "markdown")) == "markdown"
    assert source_type(str(DATA / "rss.xml")) == "feed"
    assert source_type(str(DATA / "listing.txt")) == "listing"
    assert source_type("https://example.org/feed") == "feed"
    bom_xml = tmp_path / "feed.txt"
    bom_xml.write_bytes(b"\xef\xbb\xbf  \n<rss version='2.0'></rss>")
    assert source_type(str(bom_xml)) == "feed"
    with pytest.raises(InputError, match=r"nowhere.txt: no such file or folder"):
        source_type(str(tmp_path / "nowhere.txt"))
    with pytest.raises(InputError, match=r"only http:// and https://"):
        source_type("ftp://example.org/feed.xml")


def test_listing_reads_windows_and_old_mac_line_ends() -> None:
    for end in (b"\r\n", b"\r"):
        text = end.join(
            [b"\xef\xbb\xbfMay 2019", b"", b"One item.", b"", b"April 2019", b"", b"Two."]
        )
        result = parse_listing_bytes(text, label="x")
        assert [(i.date, i.body_text) for i in result.items] == [
            (date(2019, 5, 1), "One item."),
            (date(2019, 4, 1), "Two."),
        ]


def test_listing_title_on_its_own_line_is_the_title() -> None:
    text = (
        b"February 2021\n\nOpen letter to the Global Fund board on community funding\n"
        b"We wrote to the board. We asked for funding.\n\n"
        b"January 2021\n\nWhat next for drug checking?\n\nA new briefing reviews twelve services.\n"
    )
    letter, briefing = parse_listing_bytes(text, label="x").items
    assert letter.title == "Open letter to the Global Fund board on community funding"
    assert letter.summary == "We wrote to the board. We asked for funding."
    assert briefing.title == "What next for drug checking?"
    assert briefing.summary == "A new briefing reviews twelve services."


def test_listing_wrapped_paragraph_is_not_mistaken_for_a_title() -> None:
    text = (
        b"May 2019\n\nWe have written to the member states meeting at the\n"
        b"United Nations. It asks for reform.\n\n"
        b"May 2019\n\nOur report looks at stigma and human\nrights in five regions.\n"
    )
    first, second = parse_listing_bytes(text, label="x").items
    assert first.title == "We have written to the member states meeting at the United Nations"
    assert second.title == "Our report looks at stigma and human rights in five regions"


def test_listing_page_heading_above_the_first_date_is_skipped_with_a_warning() -> None:
    text = b"Latest news\n\nMarch 2019\n\nOur statement puts rights first. It is short.\n"
    result = parse_listing_bytes(text, label="news.txt")
    assert [item.title for item in result.items] == ["Our statement puts rights first"]
    (problem,) = result.problems
    assert problem.severity == "warning" and problem.line == 1
    assert "'Latest news'" in problem.message
