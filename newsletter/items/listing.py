"""Plain-text news listings: a web page's news list, exported as text.

The shape: each item is introduced by a date line (a line holding only a date,
such as ``June 2019``; the accepted spellings are listed in `dates`), and its
paragraphs are separated by one or more blank lines. Lines of one paragraph are
joined with spaces, so hard-wrapped text reads as one paragraph.

Where an item ends:
  at the next date line, or at a paragraph that is nothing but a link caption
  ("Read the full report here!", "Read more") when more text follows before the
  next date line: a listing that puts several items under one month heading
  closes each with such a caption. A caption that points down the page ("Read
  the statement below, or download it here") never ends an item. Items under
  one date line all take its date.

Link captions:
  a caption at the end of a paragraph, or as a paragraph of its own, becomes the
  item's call to action (`link_text`, cleaned: "Read the full report here!" →
  "Read the full report") and leaves the body and summary. Such exports lose the
  link's target, so `link` stays empty unless the text holds an address: one
  written after the caption or alone on a line becomes the link and leaves the
  text; otherwise the first address in the item's text is the link.

A first item without a date line (the page's top lost it):
  takes the month given to the import (``--date YYYY-MM``); without one it is
  reported as a problem naming its line and not imported, while the rest of the
  listing is. It is never guessed from its neighbours.

Title, summary and kind:
  an item's own title line is its title (rule in `_heading`); otherwise
  the title is derived from the first sentence and the summary from the rest of
  the first paragraph, or the next paragraph when the first was one sentence
  (rules in `prose`; a shortened title leaves its sentence in the summary); the
  kind is inferred (rule in `classify`).

Source id (how a re-import finds the item again):
  ``YYYY-MM/<slug of the first eight words of the first sentence>``, the month
  from the item's date line, or ``undated/…`` for an item that had none (so that
  correcting ``--date`` moves the item rather than adding a copy). It survives a
  re-import of the same text and edits anywhere past those first words. Two
  items with the same id in one listing get ``~2``, ``~3`` … in reading order.

Encoding: the file must be UTF-8 (a byte-order mark is allowed). An item with a
line that is not valid UTF-8 is reported with that line and not imported; the
other items are. Nothing is guessed from mis-decoded text.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from newsletter.errors import InputError
from newsletter.items.dates import month_key, parse_date_line
from newsletter.items.markup import paragraphs_to_html
from newsletter.items.parsed import ParsedItem, ParseResult, Problem
from newsletter.items.prose import derive_title, sentences, slug, squash, summarise

_CAPTION = re.compile(
    r"^(?P<caption>(?:please\s+)?(?:"
    r"(?:click|tap)\s+here\s+to\s+\w.{0,80}?"
    r"|(?:read|download|see|view|find|access|watch|listen|get|learn|consult)\b.{0,80}?"
    r"\b(?:here|more|below|online|pdf)\b\)?"
    r"|continue\s+reading|more\s+information|more\s+info"
    r"))"
    r"[\s.!:…»>→-]*(?:<?(?P<url>https?://[^\s<>]+?)>?)?[\s.!]*$",
    re.IGNORECASE,
)
_URL_ONLY = re.compile(r"^<?(?P<url>https?://[^\s<>]+?)>?$")
_URL = re.compile(r"https?://[^\s<>\"')\]]+")
_BELOW = re.compile(r"\bbelow\b", re.IGNORECASE)


@dataclass
class _Paragraph:
    line: int
    lines: list[str] = field(default_factory=list)
    # (line, detail) of each line that was not valid UTF-8.
    bad: list[tuple[int, str]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return squash(" ".join(self.lines))


@dataclass
class _Item:
    date: date | None
    date_line: int | None
    date_text: str
    paragraphs: list[_Paragraph] = field(default_factory=list)


def parse_listing(path: Path, *, label: str, month: date | None = None) -> ParseResult:
    """Read a listing file; InputError when the file itself cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{label}: cannot read the file: {exc.strerror or exc}") from None
    return parse_listing_bytes(data, label=label, month=month)


def parse_listing_bytes(data: bytes, *, label: str, month: date | None = None) -> ParseResult:
    """Parse a listing's bytes by the rules in this module's docstring."""
    result = ParseResult()
    items = _split_items(_read_lines(data))
    if not items:
        result.problems.append(Problem(label, "no items found: the file holds no text"))
        return result
    if items and _is_page_heading(items[0]):
        heading = items.pop(0)
        line = heading.paragraphs[0].line
        result.problems.append(
            Problem(
                f"{label}:{line}",
                f"skipped {heading.paragraphs[0].text!r}: a short line with no date above "
                "the first date line reads as the page's heading, not an item",
                severity="warning",
                line=line,
            )
        )
    for item in items:
        _build(item, label=label, month=month, result=result)
    return result


def _is_page_heading(item: _Item) -> bool:
    """An undated first block of one short line with no sentence in it ("Latest news")."""
    if item.date is not None or len(item.paragraphs) != 1 or len(item.paragraphs[0].lines) != 1:
        return False
    text = item.paragraphs[0].text
    return 0 < len(text.split()) <= 8 and not text.endswith((".", "!", "?", ":", ";"))


def _read_lines(data: bytes) -> list[tuple[int, str, str | None]]:
    """(line number, text, what was wrong with its bytes or None) for every line."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines: list[tuple[int, str, str | None]] = []
    # Windows (CRLF) and old Mac (CR) line ends count as line ends too.
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append((number, raw.decode("utf-8"), None))
        except UnicodeDecodeError as exc:
            detail = f"byte 0x{raw[exc.start]:02X} at column {exc.start + 1}"
            lines.append((number, raw.decode("utf-8", "replace"), detail))
    return lines


def _split_items(lines: list[tuple[int, str, str | None]]) -> list[_Item]:
    """Group lines into items: date lines open items, blank lines close paragraphs."""
    items: list[_Item] = []
    current: _Item | None = None
    paragraph: _Paragraph | None = None
    for number, text, bad in lines:
        stripped = text.strip()
        day = parse_date_line(stripped) if bad is None else None
        if day is not None:
            current = _Item(day, number, stripped)
            items.append(current)
            paragraph = None
            continue
        if not stripped:
            paragraph = None
            continue
        if current is None:
            current = _Item(None, None, "")
            items.append(current)
        if paragraph is None:
            # A paragraph that is only a caption closes its item when text follows.
            if current.paragraphs and _closes_item(current.paragraphs[-1].text):
                current = _Item(current.date, current.date_line, current.date_text)
                items.append(current)
            paragraph = _Paragraph(number)
            current.paragraphs.append(paragraph)
        paragraph.lines.append(stripped)
        if bad is not None:
            paragraph.bad.append((number, bad))
    return items


def _closes_item(text: str) -> bool:
    match = _CAPTION.match(text)
    return match is not None and not _BELOW.search(match.group("caption"))


def _split_caption(text: str) -> tuple[str, str, str]:
    """A paragraph without its closing link caption(s): (text, caption, url)."""
    caption, url = "", ""
    parts = sentences(text)
    while parts:
        match = _CAPTION.match(parts[-1])
        if match is None:
            break
        parts.pop()
        caption, url = match.group("caption"), match.group("url") or url
    return " ".join(parts), caption, url


def call_to_action(caption: str) -> str:
    """A caption as a call to action: "Read the full report here!" → "Read the full report"."""
    text = caption.strip().rstrip(" .!:…»>→-")
    text = re.sub(r"^please\s+", "", text, flags=re.IGNORECASE)
    text = re.sub(r"^(?:click|tap)\s+here\s+to\s+", "", text, flags=re.IGNORECASE)
    clauses = re.split(r",?\s+(?:and|or)\s+", text)
    if len(clauses) > 1 and _BELOW.search(clauses[0]):
        # "Read the statement below, and download it here": the link is the download.
        noun = re.search(r"(?P<noun>\w+)\s+below\b", clauses[0], re.IGNORECASE)
        text = clauses[-1]
        if noun:
            text = re.sub(r"\bit\b", f"the {noun['noun']}", text, count=1, flags=re.IGNORECASE)
    text = re.sub(r"\s+(?:here|below|online)$", "", text, flags=re.IGNORECASE)
    return text[:1].upper() + text[1:]


_SMALL_WORDS = frozenset(
    ["a", "an", "and", "at", "by", "for", "from", "in", "into", "of", "on", "or", "the", "to",
     "with"]
)  # fmt: skip


def _heading(paragraphs: list[_Paragraph]) -> str:
    """The item's own title line, taken out of its first paragraph; "" when it has none.

    Many pages put a title on a line of its own above the text. A first line is
    taken for a title when text follows it (in the same paragraph or the next),
    it is short (at most 20 words), starts with a capital, holds no sentence
    break, does not end like a sentence or a clause (. , ; :), does not end in
    a small word such as "the" or "of", and the text after it starts with a
    capital. The last three tell a title from the first line of a paragraph
    that was wrapped at a fixed width.
    """
    if not paragraphs or not paragraphs[0].lines:
        return ""
    first = paragraphs[0]
    line = squash(first.lines[0])
    following = first.lines[1] if len(first.lines) > 1 else ""
    if not following and len(paragraphs) > 1 and paragraphs[1].lines:
        following = paragraphs[1].lines[0]
    following = following.strip()
    words = line.split()
    if not following or not words or len(words) > 20 or len(line) > 150:
        return ""
    if not line[0].isupper() or not following[0].isupper():
        return ""
    if line.endswith((".", ",", ";", ":")) or ". " in line or _CAPTION.match(line):
        return ""
    if words[-1].lower() in _SMALL_WORDS:
        return ""
    first.lines = first.lines[1:]
    if not first.lines:
        paragraphs.pop(0)
    return line


def _summary_after(title: str, paragraphs: list[str]) -> str:
    """The summary of an item whose title was derived from its first sentence.

    An email that shows the title and then the same sentence again as the start
    of the summary reads badly, so the summary starts after the sentence the
    title came from; a title shortened with "…" leaves the sentence in.
    """
    if title.endswith("…"):
        return summarise(paragraphs[0])
    rest = " ".join(sentences(paragraphs[0])[1:])
    if not rest and len(paragraphs) > 1:
        rest = paragraphs[1]
    return summarise(rest) if rest else ""


def _build(item: _Item, *, label: str, month: date | None, result: ParseResult) -> None:
    start = item.paragraphs[0].line if item.paragraphs else item.date_line
    where = f"{label}:{start}"
    bad = [b for p in item.paragraphs for b in p.bad]
    if bad:
        line, detail = bad[0]
        result.problems.append(
            Problem(
                f"{label}:{line}",
                f"not valid UTF-8 ({detail}); the item starting at line {start} was not "
                "imported. Save the file as UTF-8 and import it again.",
                line=line,
            )
        )
        return

    heading = _heading(item.paragraphs)
    paragraphs: list[str] = []
    caption, link = "", ""
    for paragraph in item.paragraphs:
        url_only = _URL_ONLY.match(paragraph.text)
        if url_only:
            link = link or url_only.group("url")
            continue
        text, found, url = _split_caption(paragraph.text)
        caption = caption or found
        link = link or url
        if text:
            paragraphs.append(text)

    if not paragraphs:
        what = f"the item under {item.date_text!r}" if item.date_text else "the item"
        has = "only a link caption" if caption or link else "no text"
        result.problems.append(Problem(where, f"{what} has {has}; it was not imported", line=start))
        return
    if not link:
        found_url = next((m.group(0) for p in paragraphs if (m := _URL.search(p))), "")
        link = found_url.rstrip(".,;:!?")

    title = heading or derive_title(paragraphs[0])
    day = item.date
    if day is None:
        if month is None:
            result.problems.append(
                Problem(
                    where,
                    f"the item {title!r} has no date line above it, so it was not imported; "
                    "add a date line such as 'June 2019' above it, or give its month with "
                    "--date YYYY-MM",
                    line=start,
                )
            )
            return
        day = month
    first_sentence = heading or sentences(paragraphs[0])[0]
    words = slug(first_sentence) or hashlib.sha1(first_sentence.encode()).hexdigest()[:12]
    prefix = month_key(item.date) if item.date is not None else "undated"
    result.items.append(
        ParsedItem(
            source_id=f"{prefix}/{words}",
            title=title,
            date=day,
            summary=summarise(paragraphs[0]) if heading else _summary_after(title, paragraphs),
            body_html=paragraphs_to_html(paragraphs),
            body_text="\n\n".join(paragraphs),
            link=link,
            link_text=call_to_action(caption) if caption else "",
            where=where,
        )
    )
