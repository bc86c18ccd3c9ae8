"""HTML in items: sanitising it, writing paragraphs as HTML, and reading it back as text.

Item bodies end up inside emails, so what a feed or a Markdown file says is
cleaned by nh3 (a maintained HTML sanitiser, never regular expressions) to a
short list of harmless tags: no scripts, styles, forms or event attributes, and
links only to http, https and mailto addresses. Images are dropped too: a remote
image in an email tells its server who opened the message and when, which the
people this project serves must not be exposed to.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser

import nh3

ALLOWED_TAGS = frozenset(
    [
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "cite",
        "code",
        "dd",
        "del",
        "dl",
        "dt",
        "em",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "ins",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "small",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "u",
        "ul",
    ]
)
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "abbr": {"title"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Their content goes too, not only the tags: the text of a script is no prose.
DROPPED_WITH_CONTENT = frozenset({"script", "style", "noscript", "iframe", "object", "template"})

# Tags after which the plain-text version starts a new paragraph or line.
_BLOCKS = frozenset(
    [
        "p",
        "div",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "pre",
        "ul",
        "ol",
        "li",
        "dl",
        "dt",
        "dd",
        "table",
        "tr",
        "hr",
        "section",
        "article",
        "header",
        "footer",
        "figure",
        "figcaption",
    ]
)


def sanitise(fragment: str) -> str:
    """Clean an HTML fragment for use in an email (see the module docstring)."""
    cleaned = nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    return cleaned.strip()


def paragraphs_to_html(paragraphs: list[str]) -> str:
    """Plain paragraphs as escaped `<p>` elements."""
    return "\n".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs)


class _TextWriter(HTMLParser):
    """Collects the text of an HTML fragment, one paragraph per block element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self.current: list[str] = []
        self.links: list[str | None] = []
        self.skip = 0

    def flush(self) -> None:
        text = " ".join("".join(self.current).split())
        if text:
            self.paragraphs.append(text)
        self.current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.skip += 1
        elif tag in _BLOCKS:
            self.flush()
            if tag == "li":
                self.current.append("- ")
        elif tag == "br":
            self.flush()
        elif tag == "a":
            self.links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in DROPPED_WITH_CONTENT:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCKS:
            self.flush()
        elif tag == "a" and self.links:
            href = self.links.pop()
            # The text part of an email has no hyperlinks: write the address out.
            text = "".join(self.current)
            if href and href.startswith(("http://", "https://")) and href not in text:
                self.current.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.current.append(data)


def html_to_paragraphs(fragment: str) -> list[str]:
    """The text of an HTML fragment, one string per paragraph."""
    writer = _TextWriter()
    writer.feed(fragment)
    writer.close()
    writer.flush()
    return writer.paragraphs


def html_to_text(fragment: str) -> str:
    """The text of an HTML fragment, paragraphs separated by blank lines."""
    return "\n\n".join(html_to_paragraphs(fragment))
