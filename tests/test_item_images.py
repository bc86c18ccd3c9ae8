"""Item images: from Markdown front matter and from a feed's Media RSS content or image
enclosure, shown at the column's width with their alt text; a missing alt is reported."""

from __future__ import annotations

from pathlib import Path

from lxml import html as lxml_html

from newsletter import items
from newsletter.items.feed import parse_feed_bytes
from newsletter.items.markdown_folder import parse_markdown_folder
from newsletter.render import render_campaign

VALUES = {
    "name": "Ana",
    "greeting": "Dear Ana,",
    "email": "ana@example.org",
    "unsubscribe_url": "https://news.example.org/u/x",
    "preferences_url": "https://news.example.org/p/x",
    "view_online_url": "https://news.example.org/v/x",
}


def test_front_matter_gives_an_image_with_alt_and_size(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "---\ntitle: Vienna\ndate: 2019-06-03\nimage: https://example.org/vienna.jpg\n"
        "image_alt: Members holding a banner outside the UN\nimage_width: 1200\n"
        "image_height: 800\n---\nWe met in Vienna.\n"
    )
    (tmp_path / "b.md").write_text(
        "---\ntitle: No alt\ndate: 2019-06-04\nimage: https://example.org/b.jpg\n"
        "image_width: wide\n---\nText.\n"
    )
    (tmp_path / "c.md").write_text(
        "---\ntitle: Relative\ndate: 2019-06-05\nimage: /img/c.jpg\nimage_alt: C\n---\nText.\n"
    )
    result = parse_markdown_folder(tmp_path, label="md")
    a, b, c = result.items
    assert (a.image, a.image_alt, a.image_width, a.image_height) == (
        "https://example.org/vienna.jpg",
        "Members holding a banner outside the UN",
        1200,
        800,
    )
    assert (b.image, b.image_alt, b.image_width) == ("https://example.org/b.jpg", "", None)
    assert c.image == "" and c.image_alt == ""
    problems = [str(p) for p in result.problems]
    assert any("b.md" in p and "image without image_alt" in p for p in problems)
    assert any("b.md" in p and "image_width 'wide'" in p for p in problems)
    assert any("c.md" in p and "not an absolute http(s) address" in p for p in problems)


FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>News</title><link>https://example.org/</link><description>d</description>
<item><title>With media</title><link>https://example.org/1</link><guid>1</guid>
<pubDate>Mon, 03 Jun 2019 09:00:00 +0000</pubDate><description>One.</description>
<media:content url="https://example.org/1.jpg" medium="image" width="800" height="450"/>
</item>
<item><title>With enclosure</title><link>https://example.org/2</link><guid>2</guid>
<pubDate>Tue, 04 Jun 2019 09:00:00 +0000</pubDate><description>Two.</description>
<enclosure url="https://example.org/2.png" type="image/png" length="1000"/></item>
<item><title>With a podcast</title><link>https://example.org/3</link><guid>3</guid>
<pubDate>Wed, 05 Jun 2019 09:00:00 +0000</pubDate><description>Three.</description>
<enclosure url="https://example.org/3.mp3" type="audio/mpeg" length="1000"/></item>
</channel></rss>"""


def test_feeds_give_media_content_and_image_enclosures() -> None:
    media, enclosure, podcast = parse_feed_bytes(FEED, label="feed").items
    assert (media.image, media.image_alt, media.image_width, media.image_height) == (
        "https://example.org/1.jpg",
        "",
        800,
        450,
    )
    assert (enclosure.image, enclosure.image_alt, enclosure.image_width) == (
        "https://example.org/2.png",
        "",
        None,
    )
    assert podcast.image == ""


def test_the_email_shows_the_image_at_the_column_width_with_its_alt(
    app, make_campaign, tmp_path: Path
) -> None:
    campaign_id = make_campaign(
        app,
        items=[
            {"kind": "news", "title": "Big", "image": "https://example.org/big.jpg",
             "image_alt": "A march", "image_width": 1200, "image_height": 800},
            {"kind": "news", "title": "Small", "image": "https://example.org/s.jpg",
             "image_alt": "", "image_width": 300, "image_height": 100},
        ],
    )  # fmt: skip
    html, text = render_campaign(app, campaign_id).personalise(VALUES)
    images = {
        img.get("src"): (img.get("width"), img.get("height"), img.get("alt"))
        for img in lxml_html.document_fromstring(html).xpath("//img")
    }
    assert images == {
        "https://example.org/big.jpg": ("536", "357", "A march"),
        "https://example.org/s.jpg": ("300", "100", ""),
    }
    # The text part has no pictures to describe.
    assert "A march" not in text and "big.jpg" not in text


def test_alt_text_is_editable(app, tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(
        "---\ntitle: Photo\ndate: 2019-06-03\nimage: https://example.org/p.jpg\n---\nText.\n"
    )
    (item_id,) = items.import_source(app, str(tmp_path), actor="cli:test").item_ids
    edited = items.edit_item(
        app, item_id, image_alt="Two people at a needle exchange", actor="tester"
    )
    assert edited.item.image_alt == "Two people at a needle exchange"
    items.import_source(app, str(tmp_path), actor="cli:test")
    assert items.get_item(app, item_id).image_alt == "Two people at a needle exchange"
