"""Stage 1 of rendering: templates, inlined CSS, sections and template errors."""

from __future__ import annotations

import re
from pathlib import Path

import premailer
import pytest
from lxml import html as lxml_html

from newsletter.errors import ConfigError, InputError
from newsletter.message import Composer, Recipient
from newsletter.render import CONFIRMATION_FIELDS, PERSONAL_FIELDS, render_campaign, render_notice

ITEMS = [
    {
        "kind": "report",
        "title": "Community report on harm reduction",
        "summary": "What peers found in twelve countries.\n\nA second paragraph.",
        "link": "https://example.org/report",
        "link_text": "Read the full report",
    },
    {"kind": "tribute", "title": "Remembering a friend", "summary": "A life of advocacy."},
    {
        "kind": "statement",
        "title": "Statement to the Commission on Narcotic Drugs",
        "summary": "Our statement at the 62nd session.",
        "link": "https://example.org/statement",
    },
    {"kind": "podcast", "title": "A kind nobody configured", "summary": "Still shown."},
    {"kind": "news", "title": "Network news", "summary": "Elections.", "link": "javascript:x()"},
]

VALUES = {
    "name": "Ana",
    "greeting": "Dear Ana,",
    "email": "ana@example.org",
    "unsubscribe_url": "https://news.example.org/u/TOKEN",
    "preferences_url": "https://news.example.org/p/TOKEN",
    "view_online_url": "https://news.example.org/v/VIEW",
}


def _html_tree(html: str):
    return lxml_html.document_fromstring(html.encode("utf-8"))


def _style_text(tree) -> str:
    return "\n".join(style.text or "" for style in tree.xpath("//head/style"))


def test_bulletin_html_is_responsive_email_html(make_app, make_campaign) -> None:
    app = make_app(
        {"org": {"name": "Example Net"}, "brand": {"logo_url": "https://example.org/logo.png"}}
    )
    campaign_id = make_campaign(app, items=ITEMS, preheader="Our June news in brief")
    html, _ = render_campaign(app, campaign_id).personalise(VALUES)
    tree = _html_tree(html)

    assert tree.get("lang") == "en"
    assert tree.xpath("//head/meta[@name='viewport']/@content") == [
        "width=device-width, initial-scale=1"
    ]
    # A 600px column that shrinks with the screen: width attribute for Outlook,
    # width:100% and max-width:600px inlined for everyone else.
    (container,) = tree.xpath("//table[contains(@class, 'container')]")
    assert container.get("width") == "600"
    assert "max-width:600px" in container.get("style").replace(" ", "")
    assert "width:100%" in container.get("style").replace(" ", "")
    # The preheader is hidden, and first in the body.
    preheader = tree.xpath("//body/*")[0]
    assert "preheader" in preheader.get("class")
    assert preheader.text_content().startswith("Our June news in brief")
    assert "display:none" in preheader.get("style").replace(" ", "")
    # Styles were inlined onto the elements.
    for element in tree.xpath("//p[@class='text'] | //h2 | //a[@class='cta'] | //td[@class]"):
        assert element.get("style"), lxml_html.tostring(element)[:80]
    # Images have alt text.
    images = tree.xpath("//img")
    assert images and all(img.get("alt") for img in images)
    assert images[0].get("alt") == "Example Net"


def test_media_queries_and_dark_mode_stay_in_head_with_important(app, make_campaign) -> None:
    html, _ = render_campaign(app, make_campaign(app, items=ITEMS)).personalise(VALUES)
    tree = _html_tree(html)
    css = _style_text(tree)
    phone = re.search(r"@media[^{]*max-width:\s*480px[^{]*\{(.*?)\n\}", css, re.S)
    dark = re.search(r"@media[^{]*prefers-color-scheme:\s*dark[^{]*\{(.*?)\n\}", css, re.S)
    assert phone and dark
    # Without !important the inlined styles would always win over these rules.
    assert "!important" in phone.group(1)
    assert "!important" in dark.group(1)
    # And nothing from the body's style attributes carries a stripped rule's leftovers.
    assert not tree.xpath("//body//style")


def _luminance(colour: str) -> float:
    colour = colour.lstrip("#")
    if len(colour) == 3:
        colour = "".join(c * 2 for c in colour)
    channels = [int(colour[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _inline(element, prop: str) -> str | None:
    match = re.search(rf"(?:^|;)\s*{prop}\s*:\s*(#[0-9a-fA-F]{{3,6}})", element.get("style", ""))
    return match.group(1) if match else None


def test_text_has_readable_contrast_on_its_background(app, make_campaign) -> None:
    html, _ = render_campaign(app, make_campaign(app, items=ITEMS)).personalise(VALUES)
    tree = _html_tree(html)
    checked = 0
    for element in tree.xpath("//body//*[contains(@style, 'color')]"):
        colour = _inline(element, "color")
        if colour is None or "preheader" in (element.get("class") or ""):
            continue
        painted = (_inline(e, "background-color") for e in (element, *element.iterancestors()))
        background = next((b for b in painted if b), "#ffffff")
        lighter, darker = sorted((_luminance(colour), _luminance(background)), reverse=True)
        ratio = (lighter + 0.05) / (darker + 0.05)
        # WCAG AA for body text.
        assert ratio >= 4.5, (element.get("class"), colour, background, ratio)
        checked += 1
    assert checked > 20


def test_footer_has_address_unsubscribe_preferences_and_view_online(make_app, make_campaign):
    app = make_app({"org": {"postal_address": "5 Harm Reduction Road, Bangkok"}})
    html, text = render_campaign(app, make_campaign(app)).personalise(VALUES)
    tree = _html_tree(html)
    (footer,) = tree.xpath("//td[contains(@class, 'footer')]")
    hrefs = footer.xpath(".//a/@href")
    assert VALUES["unsubscribe_url"] in hrefs
    assert VALUES["preferences_url"] in hrefs
    assert "5 Harm Reduction Road, Bangkok" in footer.text_content()
    assert VALUES["view_online_url"] in tree.xpath("//a/@href")
    for value in ("5 Harm Reduction Road", VALUES["unsubscribe_url"], VALUES["view_online_url"]):
        assert value in text


def test_sections_follow_the_configured_order_with_headings(make_app, make_campaign) -> None:
    app = make_app(
        {
            "editions": {
                "kind_order": ["statement", "report", "news", "tribute"],
                "section_titles": {"statement": "Our statements", "report": "Reports"},
            }
        }
    )
    rendered = render_campaign(app, make_campaign(app, items=ITEMS))
    html, text = rendered.personalise(VALUES)
    headings = [h.text_content() for h in _html_tree(html).xpath("//h2")]
    # Configured kinds in order, a kind without a configured title gets its own name,
    # and kinds not listed come last.
    assert headings == ["Our statements", "Reports", "News", "Tribute", "Podcast"]
    positions = [text.index(t) for t in ("OUR STATEMENTS", "REPORTS", "NEWS", "PODCAST")]
    assert positions == sorted(positions)
    assert "June 2019" in html


def test_items_show_title_date_summary_and_call_to_action(app, make_campaign) -> None:
    html, text = render_campaign(app, make_campaign(app, items=ITEMS)).personalise(VALUES)
    tree = _html_tree(html)
    titles = [h.text_content() for h in tree.xpath("//h3")]
    assert "Community report on harm reduction" in titles
    assert "1 June 2019" in tree.text_content()
    assert "What peers found in twelve countries." in tree.text_content()
    ctas = {a.text_content(): a.get("href") for a in tree.xpath("//a[@class='cta']")}
    assert ctas["Read the full report"] == "https://example.org/report"
    assert ctas["Read more"] == "https://example.org/statement"
    # An item without a usable link has no call to action; a javascript: link is dropped.
    assert len(ctas) == 2
    assert "javascript" not in html
    assert "Read the full report:\nhttps://example.org/report" in text


def test_announcement_shows_its_item_in_full(app, make_campaign) -> None:
    campaign_id = make_campaign(
        app,
        kind="announcement",
        subject="Joint statement on universal health coverage",
        items=[
            {
                "kind": "statement",
                "title": "Joint statement on universal health coverage",
                "body_html": "<p>First <strong>point</strong>.</p><script>alert(1)</script>",
                "body_text": "First point.",
                "link": "https://example.org/uhc",
            }
        ],
    )
    html, text = render_campaign(app, campaign_id).personalise(VALUES)
    tree = _html_tree(html)
    assert tree.xpath("//h1")[0].text_content() == "Joint statement on universal health coverage"
    assert tree.xpath("//strong")[0].text_content() == "point"
    assert "<script" not in html
    assert "First point." in text


def test_personal_fields_are_left_open_and_escaped_per_recipient(app, make_campaign) -> None:
    rendered = render_campaign(app, make_campaign(app))
    assert set(rendered.html.fields) <= set(PERSONAL_FIELDS)
    assert "unsubscribe_url" in rendered.html.fields
    values = {**VALUES, "greeting": "Dear <script>alert(1)</script>,"}
    html, text = rendered.personalise(values)
    assert "<script>" not in html
    assert "Dear &lt;script&gt;alert(1)&lt;/script&gt;," in html
    assert "Dear <script>alert(1)</script>," in text


def test_premailer_runs_once_per_campaign_not_per_recipient(
    app, make_campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = premailer.Premailer

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(premailer, "Premailer", counting)
    composer = Composer(app, make_campaign(app, items=ITEMS))
    for number in range(25):
        composer.compose(Recipient(number + 1, f"reader{number}@example.org", f"Reader {number}"))
    assert len(calls) == 1


def _custom_templates(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "custom-templates"
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    return folder


def test_templates_dir_overrides_and_falls_back_to_bundled(
    make_app, make_campaign, tmp_path: Path
) -> None:
    folder = _custom_templates(
        tmp_path,
        {
            "bulletin.html": '{% extends "base.html" %}{% block content %}'
            "<tr><td><p>Our own layout for {{ month_name }}</p></td></tr>{% endblock %}",
        },
    )
    app = make_app({"editions": {"templates_dir": str(folder)}})
    rendered = render_campaign(app, make_campaign(app))
    html, text = rendered.personalise(VALUES)
    assert "Our own layout for June 2019" in html
    # base.html and the text templates came from the bundled folder.
    assert VALUES["unsubscribe_url"] in html
    assert "A community report" in text
    assert rendered.template_names[0] == str(folder / "bulletin.html")


def test_missing_templates_dir_is_a_config_error(make_app, make_campaign, tmp_path) -> None:
    app = make_app({"editions": {"templates_dir": str(tmp_path / "nowhere")}})
    with pytest.raises(ConfigError, match=r"templates_dir.*nowhere"):
        render_campaign(app, make_campaign(app))


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("line one\n{% for x in %}\n", 2, "Expected an expression"),
        ("line one\nline two\n{{ no_such_thing }}\n", 3, "'no_such_thing' is undefined"),
        ("{{ org.name }}\n{% if name %}Hi {{ name }}{% endif %}\n", 2, "cannot be tested"),
    ],
    ids=["syntax", "undefined", "test-on-personal-field"],
)
def test_template_errors_name_the_file_and_line(
    make_app, make_campaign, tmp_path: Path, content: str, line: int, message: str
) -> None:
    folder = _custom_templates(tmp_path, {"bulletin.txt": content})
    app = make_app({"editions": {"templates_dir": str(folder)}})
    campaign_id = make_campaign(app)
    with pytest.raises(InputError) as caught:
        render_campaign(app, campaign_id)
    assert f"{folder / 'bulletin.txt'}, line {line}" in str(caught.value)
    assert message in str(caught.value)


def test_error_in_an_extended_layout_names_that_layout(
    make_app, make_campaign, tmp_path: Path
) -> None:
    folder = _custom_templates(tmp_path, {"base.html": "<html>\n\n{{ missing.attr }}</html>"})
    app = make_app({"editions": {"templates_dir": str(folder)}})
    with pytest.raises(InputError, match=re.escape(f"{folder / 'base.html'}, line 3")):
        render_campaign(app, make_campaign(app))


def test_filter_on_a_personal_field_is_refused(make_app, make_campaign, tmp_path) -> None:
    folder = _custom_templates(tmp_path, {"bulletin.txt": "Hello {{ name|upper }}\n"})
    app = make_app({"editions": {"templates_dir": str(folder)}})
    with pytest.raises(InputError, match=r"bulletin\.txt: a personal field went through a filter"):
        render_campaign(app, make_campaign(app))


def test_language_specific_template_is_preferred(make_app, make_campaign, tmp_path) -> None:
    folder = _custom_templates(
        tmp_path, {"bulletin.fr.txt": "Bulletin de {{ month_name }}\n{{ unsubscribe_url }}\n"}
    )
    app = make_app({"editions": {"templates_dir": str(folder)}})
    rendered = render_campaign(app, make_campaign(app, language="fr"))
    _, text = rendered.personalise(VALUES)
    assert text.startswith("Bulletin de juin 2019")
    # No French HTML template: the bundled one, in French where the context is.
    assert rendered.template_names[1].endswith("bulletin.fr.txt")
    html, _ = rendered.personalise(VALUES)
    assert _html_tree(html).get("lang") == "fr"


def test_confirmation_email_renders_with_its_own_fields(app) -> None:
    rendered = render_notice(
        app.config,
        "confirm",
        CONFIRMATION_FIELDS,
        "en",
        "Please confirm",
        lists=["Members", "Eurasia network"],
    )
    assert "confirm_url" in rendered.html.fields
    assert "unsubscribe_url" not in rendered.html.fields + rendered.text.fields
    values = {
        "name": "",
        "greeting": "Hello,",
        "email": "new@example.org",
        "confirm_url": "https://news.example.org/c/TOKEN",
    }
    html, text = rendered.personalise(values)
    tree = _html_tree(html)
    assert "https://news.example.org/c/TOKEN" in tree.xpath("//a/@href")
    assert "Eurasia network" in tree.text_content()
    assert "https://news.example.org/c/TOKEN" in text


def test_unknown_campaign_is_not_found(app) -> None:
    from newsletter.errors import NotFound

    with pytest.raises(NotFound, match="no campaign with id 999"):
        render_campaign(app, 999)


def _launch_browser(playwright):
    """Playwright's own Chromium, else the system's; skip when there is neither."""
    import shutil

    try:
        return playwright.chromium.launch()
    except Exception:
        system = shutil.which("chromium") or shutil.which("chromium-browser")
        if system is None:
            pytest.skip("no Chromium for playwright")
        return playwright.chromium.launch(executable_path=system, args=["--no-sandbox"])


@pytest.mark.slow
def test_bulletin_reflows_on_phones_and_has_a_dark_mode(app, make_campaign) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    items = [
        *ITEMS,
        {
            "kind": "news",
            "title": "A title with a very long unbroken word: " + "Antidiscrimination" * 4,
            "summary": "See https://example.org/" + "a-long-path-segment/" * 8,
            "link": "https://example.org/" + "x" * 120,
        },
    ]
    long_address = "a.very.long.address.of.somebody." * 3 + "@example.org"
    values = {**VALUES, "email": long_address}
    html, _ = render_campaign(app, make_campaign(app, items=items)).personalise(values)
    with sync_api.sync_playwright() as playwright:
        browser = _launch_browser(playwright)
        try:
            page = browser.new_page(viewport={"width": 1024, "height": 800})
            page.set_content(html)
            width = "document.querySelector('.container').getBoundingClientRect().width"
            assert page.evaluate(width) == 600
            for phone in (320, 375, 480):
                page.set_viewport_size({"width": phone, "height": 800})
                # No horizontal scrolling: nothing is wider than the screen.
                assert page.evaluate("document.documentElement.scrollWidth") <= phone
                assert page.evaluate(width) <= phone
            card = "getComputedStyle(document.querySelector('.card')).backgroundColor"
            assert page.evaluate(card) == "rgb(255, 255, 255)"
            page.emulate_media(color_scheme="dark")
            assert page.evaluate(card) == "rgb(27, 33, 41)"
        finally:
            browser.close()
