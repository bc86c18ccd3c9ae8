"""A right-to-left reader's edition in a real browser: direction, alignment, no overflow.

Playwright drives Debian's chromium (as tests/test_browser.py does). The
edition is rendered for a subscriber whose language is Arabic (no Arabic
catalogue is shipped: the words are English, the direction and dates are
Arabic), on a phone-sized and a desktop-sized window. The checks read the
page as a person would: `dir="rtl"` on <html>, the document no wider than the
window, and in a screenshot the Arabic item's title inked on the right of its
column, not the left.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsletter.message import Composer, Recipient

CHROMIUM = os.environ.get("NEWSLETTER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
VIEWPORTS = {"phone": (375, 667), "desktop": (1280, 800)}
ARABIC_TITLE = "تقرير الشبكة عن الحد من الضرر"

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright for Python is not installed (pip install -e '.[test]')",
)
if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.slow

# Where the dark pixels of a screenshot are: the leftmost and rightmost inked columns.
INK_SCRIPT = """async (data) => {
  const image = new Image();
  image.src = "data:image/png;base64," + data;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width; canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, image.width, image.height).data;
  let first = image.width, last = -1;
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      const i = (y * image.width + x) * 4;
      if (pixels[i] + pixels[i + 1] + pixels[i + 2] < 300) {
        first = Math.min(first, x); last = Math.max(last, x);
      }
    }
  }
  return {first, last, width: image.width};
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def arabic_edition(make_app, make_campaign) -> str:
    app = make_app({"web": {"languages": ["en", "ar"]}})
    campaign_id = make_campaign(
        app,
        items=[
            {
                "kind": "report",
                "title": ARABIC_TITLE,
                "summary": "يصف التقرير خدمات الحد من الضرر التي يقودها الأقران في اثني عشر بلدا.",
                "language": "ar",
                "link": "https://example.org/ar/report",
                "link_text": "اقرأ التقرير",
            },
            {"kind": "news", "title": "A regional call in June", "link": "https://example.org/n"},
        ],
    )
    composer = Composer(app, campaign_id)
    recipient = Recipient(1, "reader@example.org", "", "ar")
    message = composer.compose(recipient)
    assert b"Content-Language: ar" in message.data
    edition = composer.edition_for("ar")
    html, _text = edition.personalise(composer.personal_values(recipient))
    return html


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_a_right_to_left_reader_gets_a_layout_that_reads_right_to_left(
    browser: Any, arabic_edition: str, viewport: str
) -> None:
    width, height = VIEWPORTS[viewport]
    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        page.set_content(arabic_edition)
        root = page.evaluate("[document.documentElement.lang, document.documentElement.dir]")
        assert root == ["ar", "rtl"]
        # Nothing wider than the window: no sideways scrolling on a phone.
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, (viewport, scroll_width)
        title = page.locator("h3.item-title", has_text=ARABIC_TITLE)
        assert title.evaluate("e => getComputedStyle(e).direction") == "rtl"
        # The title's text hugs the right edge of its column.
        text_box = title.evaluate(
            """e => { const r = document.createRange(); r.selectNodeContents(e);
                      const t = r.getBoundingClientRect(); const c = e.getBoundingClientRect();
                      return {text_left: t.left, text_right: t.right,
                              left: c.left, right: c.right}; }"""
        )
        assert abs(text_box["right"] - text_box["text_right"]) < 2, text_box
        assert text_box["text_left"] - text_box["left"] > 20, text_box
        # And so it looks: in a screenshot of the title, the ink starts at the right edge
        # and leaves the left side blank.
        shot = title.screenshot()
        ink = page.evaluate(INK_SCRIPT, base64.b64encode(shot).decode("ascii"))
        assert ink["last"] >= ink["width"] - 6, ink
        assert ink["first"] > 20, ink
        full = page.screenshot(full_page=True)
        size = page.evaluate(
            """async (data) => { const i = new Image(); i.src = "data:image/png;base64," + data;
                                 await i.decode(); return i.width; }""",
            base64.b64encode(full).decode("ascii"),
        )
        assert size == width
    finally:
        page.close()
