"""The brand in the email: logo, colour and footer links, with colours readers can read.

`[brand] colour` is whatever the organisation uses. What the templates get
(`brand_style`) is derived from it so that every pairing passes WCAG 2.1 AA
(a contrast ratio of at least 4.5:1) in both themes:

- the filled button: the brand colour behind white or near-black text,
  whichever reads better; if neither reaches 4.5:1 the colour is darkened
  until white text does;
- links and headings on the white card: the brand colour, darkened until it
  reaches 4.5:1 against white;
- dark mode (the card is `DARK_CARD`): links and headings are lightened until
  they reach 4.5:1 against it, and the button becomes that light colour with
  dark text.

The ratios are computed here (WCAG's relative luminance) and checked again by
tests/test_design.py in Chromium, on the rendered page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from newsletter.config import BrandConfig

WHITE = "#ffffff"
DARK_TEXT = "#0f1419"
# The card's background in dark mode (templates/base.html).
DARK_CARD = "#1b2129"
AA = 4.5
_HEX = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class FooterLink:
    label: str
    url: str


@dataclass(frozen=True)
class BrandStyle:
    """What the templates use: the brand's logo and colours, each pairing readable."""

    logo_url: str
    logo_alt: str
    logo_width: int
    logo_height: int  # 0 when not given: the height follows the width
    colour: str  # as configured
    accent: str  # links and headings on white
    accent_dark: str  # links and headings on the dark card
    button: str  # the filled button's background…
    button_text: str  # …and its text
    button_dark: str
    button_text_dark: str
    footer_links: tuple[FooterLink, ...]


def brand_style(brand: BrandConfig, org_name: str) -> BrandStyle:
    colour = brand.colour.lower()
    button, button_text = _button(colour)
    accent = _until(colour, WHITE, darker=True)
    accent_dark = _until(colour, DARK_CARD, darker=False)
    return BrandStyle(
        logo_url=brand.logo_url,
        logo_alt=brand.logo_alt or org_name,
        logo_width=brand.logo_width,
        logo_height=brand.logo_height,
        colour=colour,
        accent=accent,
        accent_dark=accent_dark,
        button=button,
        button_text=button_text,
        button_dark=accent_dark,
        button_text_dark=DARK_TEXT,
        footer_links=tuple(FooterLink(label, url) for label, url in brand.footer_links.items()),
    )


def is_colour(value: str) -> bool:
    return bool(_HEX.match(value))


def contrast(one: str, other: str) -> float:
    """WCAG 2.1 contrast ratio of two #rrggbb colours, from 1 to 21."""
    lighter, darker = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _button(colour: str) -> tuple[str, str]:
    """(background, text) of the filled button in the light theme."""
    best = max((WHITE, DARK_TEXT), key=lambda text: contrast(colour, text))
    if contrast(colour, best) >= AA:
        return colour, best
    return _until(colour, WHITE, darker=True), WHITE


def _until(colour: str, background: str, *, darker: bool) -> str:
    """`colour` mixed towards black (or white) in small steps until it reads on `background`."""
    target = (0, 0, 0) if darker else (255, 255, 255)
    rgb = _rgb(colour)
    for step in range(0, 101, 2):
        pairs = zip(rgb, target, strict=True)
        mixed = _hex(tuple(round(c + (t - c) * step / 100) for c, t in pairs))
        if contrast(mixed, background) >= AA:
            return mixed
    return _hex(target)


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _hex(rgb: tuple[int, ...]) -> str:
    return "#" + "".join(f"{c:02x}" for c in rgb)


def _luminance(colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(v) for v in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
