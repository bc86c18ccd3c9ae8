"""RSS 2.0 and Atom feeds, from a file or an http(s) address: one item per entry.

The feed is fetched with `requests` (FETCH_TIMEOUT seconds per network read,
FETCH_DEADLINE seconds in all however slowly a server drips its bytes, at most
MAX_FEED_BYTES) and parsed with `feedparser` from the bytes, so feedparser never
goes to the network itself. Entry HTML is sanitised with nh3 (`markup`), not by
feedparser, so that every source goes through the same rules.

A source that cannot be read at all raises InputError naming it: an address
that cannot be reached or does not answer 200, a file that is not a feed, or a
feed so malformed that no entry could be read. A malformed feed whose entries
could still be read imports them, with a warning.

Per entry: the source id is the entry's id (RSS guid, Atom id), else its link,
else its title and date; the kind comes from a category naming one ("report",
"Statements"), else it is inferred (`classify`); the language from the entry or
the feed (primary subtag: "en-GB" → "en"); the date from its published, else
updated time; the summary from the entry's summary when it also has content,
else from the first paragraph (`prose`).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import feedparser
import requests

from newsletter import __version__
from newsletter.errors import InputError
from newsletter.items.classify import normalise_kind
from newsletter.items.detect import is_url
from newsletter.items.markup import html_to_paragraphs, paragraphs_to_html, sanitise
from newsletter.items.parsed import ParsedItem, ParseResult, Problem, normalise_language
from newsletter.items.prose import derive_title, squash, summarise

FETCH_TIMEOUT = 20.0
# The whole fetch, headers included: a server that sends a byte every few seconds never
# trips the per-read timeout, so only an overall deadline ends it.
FETCH_DEADLINE = 60.0
MAX_FEED_BYTES = 20 * 1024 * 1024
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_BLOCK_TAG = re.compile(r"<(?:p|div|ul|ol|h[1-6]|blockquote|pre|table|dl|hr)\b", re.IGNORECASE)
_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)


def fetch(
    url: str, *, timeout: float = FETCH_TIMEOUT, deadline: float = FETCH_DEADLINE
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a feed address; InputError saying why when it cannot be had.

    The fetch runs in a daemon thread that this one waits for at most `deadline`
    seconds: requests has no overall time limit, and a server dripping its
    headers or body would otherwise hold the import for as long as it likes.
    The thread stops reading at the deadline too (see `_fetch`).
    """
    ends_at = time.monotonic() + deadline
    outcome: list[Any] = []
    finished = threading.Event()

    def run() -> None:
        try:
            outcome.append(_fetch(url, timeout=timeout, ends_at=ends_at))
        except BaseException as exc:  # handed to the waiting thread below
            outcome.append(exc)
        finally:
            finished.set()

    threading.Thread(target=run, name="feed-fetch", daemon=True).start()
    if not finished.wait(deadline):
        raise InputError(f"{url}: the feed did not arrive within {deadline:g} seconds")
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    result: tuple[bytes, dict[str, str]] = outcome[0]
    return result


def _fetch(url: str, *, timeout: float, ends_at: float) -> tuple[bytes, dict[str, str]]:
    headers = {"User-Agent": f"newsletter/{__version__} (feed import)", "Accept": _ACCEPT}
    try:
        with requests.get(url, timeout=timeout, stream=True, headers=headers) as response:
            if response.status_code != 200:
                raise InputError(
                    f"{url}: the server answered HTTP {response.status_code} "
                    f"{response.reason or ''}".rstrip()
                    + "; check the address"
                )
            chunks, size = [], 0
            # read1 returns whatever has arrived, so the deadline is checked between
            # drips; iter_content would wait for a whole chunk, drip by drip.
            while chunk := response.raw.read1(64 * 1024, decode_content=True):
                if time.monotonic() > ends_at:
                    raise InputError(f"{url}: the feed did not arrive in time")
                size += len(chunk)
                if size > MAX_FEED_BYTES:
                    raise InputError(
                        f"{url}: the feed is larger than {MAX_FEED_BYTES // (1024 * 1024)} MB"
                    )
                chunks.append(chunk)
            found = {k.lower(): v for k, v in response.headers.items()}
            # feedparser resolves relative links against the address the feed came from.
            found["content-location"] = response.url
            return b"".join(chunks), found
    except requests.exceptions.Timeout:
        raise InputError(f"{url}: no answer within {timeout:g} seconds") from None
    except requests.exceptions.ConnectionError as exc:
        raise InputError(f"{url}: cannot connect ({_reason(exc)})") from None
    except requests.exceptions.RequestException as exc:
        raise InputError(f"{url}: cannot fetch the feed ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    # requests wraps urllib3's errors several levels deep; the innermost says what happened.
    inner: BaseException = exc
    while inner.args and isinstance(inner.args[0], BaseException):
        inner = inner.args[0]
    reason = getattr(inner, "reason", None)
    text = str(reason or inner)
    return text.split(": ", 1)[-1] if "Failed to establish" in text else text


def read_feed(
    source: str, *, label: str, month: date | None = None, timeout: float = FETCH_TIMEOUT
) -> ParseResult:
    """Fetch or read a feed and parse it."""
    if is_url(source):
        data, headers = fetch(source, timeout=timeout, deadline=max(timeout, FETCH_DEADLINE))
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as exc:
            raise InputError(f"{label}: cannot read the file: {exc.strerror or exc}") from None
        headers = {}
    return parse_feed_bytes(data, label=label, month=month, headers=headers)


def parse_feed_bytes(
    data: bytes, *, label: str, month: date | None = None, headers: dict[str, str] | None = None
) -> ParseResult:
    parsed = feedparser.parse(
        data, response_headers=headers or {}, sanitize_html=False, resolve_relative_uris=True
    )
    result = ParseResult()
    # A feed cut off mid-entry leaves feedparser with an empty entry; only
    # entries with a title or text count as read.
    readable = [e for e in parsed.entries if e.get("title") or e.get("summary") or e.get("content")]
    if not readable:
        if parsed.bozo:
            raise InputError(f"{label}: not a readable feed: {_bozo(parsed)}")
        # .get: feedparser leaves "version" out altogether for an empty document.
        if not parsed.get("version"):
            raise InputError(f"{label}: not an RSS or Atom feed (no <rss> or <feed> element)")
        if not parsed.entries:
            result.problems.append(Problem(label, "the feed has no entries"))
            return result
    if parsed.bozo:
        result.problems.append(
            Problem(
                label,
                f"the feed is not well-formed ({_bozo(parsed)}); the entries that could be "
                "read were imported",
                "warning",
            )
        )
    feed_language = normalise_language(parsed.feed.get("language") or "")
    for number, entry in enumerate(parsed.entries, start=1):
        _entry(entry, number, label, month, feed_language, result)
    return result


def _bozo(parsed: Any) -> str:
    exc = parsed.get("bozo_exception")
    if exc is None:
        return "malformed"
    line = getattr(exc, "getLineNumber", None)
    where = f" at line {line()}" if callable(line) else ""
    message = exc.getMessage() if hasattr(exc, "getMessage") else str(exc)
    return f"{message}{where}"


def _text_of(detail: Any, fallback: str) -> str:
    """A feed text construct as plain text, whatever its declared type."""
    if detail and detail.get("type") in _HTML_TYPES:
        return " ".join(html_to_paragraphs(sanitise(fallback)))
    return squash(fallback)


def _html_of(detail: Any) -> str:
    value = detail.get("value") or ""
    if detail.get("type") in _HTML_TYPES:
        cleaned = sanitise(value)
        # RSS descriptions are often bare text; give them a paragraph like the rest.
        if cleaned and not _BLOCK_TAG.search(cleaned):
            return f"<p>{cleaned}</p>"
        return cleaned
    paragraphs = [squash(p) for p in value.split("\n\n") if p.strip()]
    return paragraphs_to_html(paragraphs)


def _entry(
    entry: Any,
    number: int,
    label: str,
    month: date | None,
    feed_language: str | None,
    result: ParseResult,
) -> None:
    entry_id = (entry.get("id") or "").strip()
    where = f"{label}: entry {number}" + (f" ({entry_id})" if entry_id else "")

    title = _text_of(entry.get("title_detail"), entry.get("title") or "")
    contents = list(entry.get("content") or [])
    contents.sort(key=lambda c: c.get("type") not in _HTML_TYPES)
    summary_detail = entry.get("summary_detail")
    body_detail = contents[0] if contents else summary_detail
    body_html = _html_of(body_detail) if body_detail else ""
    paragraphs = html_to_paragraphs(body_html)
    summary = ""
    if contents and summary_detail and summary_detail.get("value"):
        summary = summarise(" ".join(html_to_paragraphs(_html_of(summary_detail))))
    if not summary and paragraphs:
        summary = summarise(paragraphs[0])
    if not (title or paragraphs):
        result.problems.append(Problem(where, "the entry has no title and no text; skipped"))
        return
    title = title or derive_title(summary or paragraphs[0])

    parsed_time = (
        entry.get("published_parsed") or entry.get("updated_parsed") or entry.get("created_parsed")
    )
    if parsed_time is not None:
        day = date(parsed_time.tm_year, parsed_time.tm_mon, parsed_time.tm_mday)
    elif month is not None:
        day = month
    else:
        result.problems.append(
            Problem(
                where,
                "the entry has no published or updated date, so it was not imported; "
                "give its month with --date YYYY-MM",
            )
        )
        return

    link = _web_link(entry)
    source_id = entry_id or link
    if not source_id:
        digest = hashlib.sha1(f"{title}\n{day.isoformat()}".encode()).hexdigest()[:16]
        source_id = f"entry-{digest}"

    terms = [squash(t.get("term") or t.get("label") or "") for t in entry.get("tags") or []]
    terms = [t for t in terms if t]
    kind = next((k for t in terms if (k := normalise_kind(t))), None)
    language = None
    for detail in (body_detail, summary_detail, entry.get("title_detail")):
        if detail and detail.get("language"):
            language = normalise_language(detail["language"])
            if language:
                break

    image = _image(entry)
    result.items.append(
        ParsedItem(
            source_id=source_id,
            title=title,
            date=day,
            summary=summary,
            body_html=body_html,
            body_text="\n\n".join(paragraphs),
            link=link,
            image=image.url,
            image_alt=image.alt,
            image_width=image.width,
            image_height=image.height,
            kind=kind,
            language=language or feed_language,
            tags=terms,
            where=where,
        )
    )


@dataclass(frozen=True)
class _Image:
    url: str = ""
    alt: str = ""
    width: int | None = None
    height: int | None = None


def _image(entry: Any) -> _Image:
    """The entry's image: Media RSS content or thumbnail, else an image enclosure.

    Media RSS gives a size (width, height); neither it nor an enclosure gives alt
    text that feedparser keeps apart from the entry's content (it reads
    media:description as content), so feed images come without one and
    `newsletter check` asks for it (`items edit --image-alt`).
    """
    for media in [*(entry.get("media_content") or []), *(entry.get("media_thumbnail") or [])]:
        url = media.get("url") or ""
        kind = media.get("medium") or media.get("type") or "image"
        if is_url(url) and kind.startswith("image"):
            return _Image(url, "", _pixels(media.get("width")), _pixels(media.get("height")))
    for enclosure in entry.get("enclosures") or []:
        url = enclosure.get("href") or ""
        if is_url(url) and (enclosure.get("type") or "").startswith("image/"):
            return _Image(url)
    return _Image()


def _pixels(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= 5000 else None


def _web_link(entry: Any) -> str:
    """The entry's web address: its link, else an alternate link; only http(s)."""
    candidates = [entry.get("link") or ""]
    candidates += [
        link.get("href") or ""
        for link in entry.get("links") or []
        if link.get("rel", "alternate") == "alternate"
    ]
    return next((c for c in candidates if is_url(c)), "")
