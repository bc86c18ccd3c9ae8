"""The email's design in a real browser: Debian's Chromium (driven by Playwright) at 320,
375, 600 and 1200 pixels, in the light and the dark colour scheme.

On every width and scheme: no sideways scrolling, images inside the column with their
alt text, filled buttons whose text and background keep WCAG AA contrast (4.5:1, from
the computed colours), body text and links readable on the card, the preheader hidden,
and axe-core finding no contrast, alt-text or link-name problem. Run on the demo's
bulletin and on an edition with a logo, item images, footer links and a light brand
colour (which must get dark button text). Images are served from memory: nothing leaves
the machine.

With NEWSLETTER_SCREENSHOTS=folder the demo bulletin's phone (375 px) and desktop
(1200 px) screenshots are written there; docs/ holds the ones the README shows.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import zlib
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from newsletter.app import Newsletter
from newsletter.brand import contrast
from newsletter.config import build_config
from newsletter.demo import run_demo
from newsletter.message import Composer, Recipient
from newsletter.models import Campaign, CampaignItem, Item

CHROMIUM = os.environ.get("NEWSLETTER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update"]  # fmt: skip
AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (320, 375, 600, 1200)
SCHEMES = ("light", "dark")

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright for Python is not installed (pip install -e '.[test]')",
)
if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
if not AXE.is_file():
    pytest.skip("axe-core is not installed (npm install)", allow_module_level=True)

pytestmark = pytest.mark.slow


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain PNG of one colour, made here so that the tests need no image files."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))  # fmt: skip


IMAGES = {
    "https://example.org/logo.png": png(360, 80, (30, 30, 30)),
    "https://example.org/vienna.png": png(1200, 675, (80, 120, 160)),
    "https://example.org/clinic.png": png(400, 300, (160, 110, 80)),
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def make_app(tmp_path: Path, **sections: dict[str, Any]) -> Newsletter:
    env = {"NEWSLETTER_SECRET_KEY": "design-test-key"}
    data: dict[str, Any] = {
        "database": {"url": f"sqlite:///{tmp_path / 'newsletter.db'}"},
        "transports": {"outbox": {"dsn": f"maildir:{tmp_path / 'outbox'}"}},
        "web": {"base_url": "https://news.example.org"},
        **sections,
    }
    return Newsletter(build_config(data, env, base_dir=tmp_path), env=env)


def personal_html(app: Newsletter, campaign_id: int) -> str:
    composer = Composer(app, campaign_id)
    recipient = Recipient(1, "ana@example.org", "Ana Ruiz")
    html, _ = composer.edition.personalise(composer.personal_values(recipient))
    return html


@pytest.fixture(scope="module")
def demo_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    app = make_app(tmp_path_factory.mktemp("demo"))
    try:
        june = next(c["id"] for c in run_demo(app).campaigns if c["month"] == "2019-06")
        return personal_html(app, june)
    finally:
        app.close()


@pytest.fixture(scope="module")
def branded_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A light brand colour, a logo, footer links and item images, one without a size."""
    app = make_app(
        tmp_path_factory.mktemp("branded"),
        brand={
            "logo_url": "https://example.org/logo.png", "logo_alt": "Example Network",
            "logo_width": 180, "logo_height": 40, "colour": "#ffcc00",
            "footer_links": {"Website": "https://example.org", "Donate": "https://example.org/d"},
        },
    )  # fmt: skip
    try:
        with app.session() as session:
            campaign = Campaign(
                kind="bulletin",
                month="2019-06",
                subject="Bulletin — June 2019",
                intro="A month of meetings, statements and a new report.",
            )
            for n, (kind, image, size) in enumerate(
                [
                    ("statement", "https://example.org/vienna.png", (1200, 675)),
                    ("report", "https://example.org/clinic.png", (None, None)),
                    ("news", "", (None, None)),
                ]
            ):
                item = Item(
                    source="design", source_id=str(n), kind=kind, date=date(2019, 6, n + 1),
                    title=f"A {kind} with a long title that wraps onto a second line on a phone",
                    summary="Members met to review a decade of drug policy. " * 3,
                    link=f"https://example.org/{kind}", link_text=f"Read the full {kind}",
                    image=image, image_alt=f"Picture for the {kind}" if image else "",
                    image_width=size[0], image_height=size[1],
                )  # fmt: skip
                campaign.entries.append(CampaignItem(item=item, position=n))
            session.add(campaign)
            session.flush()
            campaign_id = campaign.id
        return personal_html(app, campaign_id)
    finally:
        app.close()


MEASURE = """() => {
  const colour = (el, prop) => getComputedStyle(el)[prop];
  const box = el => el.getBoundingClientRect();
  const card = document.querySelector('.card');
  const column = document.querySelector('.container');
  return {
    viewport: document.documentElement.clientWidth,
    scroll: document.documentElement.scrollWidth,
    column: box(column).width,
    card: colour(card, 'backgroundColor'),
    text: [...document.querySelectorAll('.text, .item-title, .body-html')]
      .map(e => colour(e, 'color')),
    links: [...document.querySelectorAll('.section-title, .content a:not(.cta), .org-link')]
      .map(e => colour(e, 'color')),
    buttons: [...document.querySelectorAll('a.cta')].map(e => ({
      fg: colour(e, 'color'), bg: colour(e, 'backgroundColor'),
      height: box(e).height, right: box(e).right, left: box(e).left})),
    images: [...document.images].map(e => ({
      src: e.src, alt: e.getAttribute('alt'), width: e.getAttribute('width'),
      loaded: e.complete && e.naturalWidth > 0, right: box(e).right, shown: box(e).width})),
    preheader: box(document.querySelector('.preheader')).height,
  };
}"""


def hex_of(css: str) -> str:
    r, g, b = (int(v) for v in re.findall(r"\d+", css)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def open_page(browser: Any, html: str, width: int, scheme: str) -> tuple[Any, Any]:
    context = browser.new_context(
        viewport={"width": width, "height": 900}, color_scheme=scheme, java_script_enabled=True
    )
    page = context.new_page()

    def serve(route: Any) -> None:
        body = IMAGES.get(route.request.url)
        if body is None:
            route.fulfill(status=404, body="")
        else:
            route.fulfill(status=200, body=body, content_type="image/png")

    page.route("**/*", serve)
    page.set_content(html, wait_until="load")
    return context, page


def check_page(page: Any, width: int, scheme: str) -> dict[str, Any]:
    m = page.evaluate(MEASURE)
    where = f"{width}px {scheme}"
    assert m["scroll"] <= m["viewport"], f"{where}: the page scrolls sideways"
    assert m["column"] <= min(width, 600), where
    card = hex_of(m["card"])
    assert (card == "#ffffff") == (scheme == "light"), f"{where}: card {card}"
    for colour in m["text"]:
        assert contrast(hex_of(colour), card) >= 7, f"{where}: text {colour} on {card}"
    for colour in m["links"]:
        assert contrast(hex_of(colour), card) >= 4.5, f"{where}: link {colour} on {card}"
    assert m["buttons"], where
    for button in m["buttons"]:
        ratio = contrast(hex_of(button["fg"]), hex_of(button["bg"]))
        assert ratio >= 4.5, f"{where}: button {button['fg']} on {button['bg']} is {ratio:.2f}"
        assert button["height"] >= 40 and button["right"] <= width, f"{where}: {button}"
        if width <= 480:
            # A phone gets buttons as wide as the column: an easy target for a thumb.
            assert button["right"] - button["left"] >= width - 2 * 16 - 1, f"{where}: {button}"
    for image in m["images"]:
        assert image["alt"] is not None and image["width"], f"{where}: {image}"
        assert image["loaded"] and image["right"] <= width, f"{where}: {image}"
    assert m["preheader"] <= 1, f"{where}: the preheader shows"
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """() => axe.run(document, {runOnly: ['color-contrast', 'image-alt', 'link-name',
             'html-has-lang', 'document-title']})"""
    )
    problems = [(v["id"], [n["html"][:80] for n in v["nodes"]]) for v in result["violations"]]
    assert problems == [], f"{where}: {problems}"
    return m


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_the_demo_bulletin_reads_well_everywhere(
    browser: Any, demo_html: str, width: int, scheme: str
) -> None:
    context, page = open_page(browser, demo_html, width, scheme)
    try:
        check_page(page, width, scheme)
        folder = os.environ.get("NEWSLETTER_SCREENSHOTS")
        if folder and scheme == "light" and width in (375, 1200):
            name = "bulletin-phone.png" if width == 375 else "bulletin-desktop.png"
            page.screenshot(path=str(Path(folder) / name), full_page=True)
    finally:
        context.close()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_branded_edition_with_images_reads_well_everywhere(
    browser: Any, branded_html: str, width: int, scheme: str
) -> None:
    context, page = open_page(browser, branded_html, width, scheme)
    try:
        m = check_page(page, width, scheme)
        assert len(m["images"]) == 3  # the logo and two item images
        # A light brand colour gets dark text on its buttons, in both schemes.
        assert all(contrast(hex_of(b["fg"]), "#000000") < 2 for b in m["buttons"])
    finally:
        context.close()


def test_outlook_gets_its_fallbacks(branded_html: str) -> None:
    # Outlook for Windows: a fixed-width table around the column, and VML buttons that
    # lead where the HTML buttons do.
    assert '<!--[if mso]><table role="presentation" width="600"' in branded_html
    vml = re.findall(
        r'<v:roundrect [^>]*href="([^"]+)"[^>]*fillcolor="(#[0-9a-f]{6})"', branded_html
    )
    html_buttons = re.findall(r'<a class="cta" href="([^"]+)"', branded_html)
    assert [url for url, _ in vml] == html_buttons and len(vml) == 3
    assert {fill for _, fill in vml} == {"#ffcc00"}
    assert "<!--[if !mso]><!-- -->" in branded_html
