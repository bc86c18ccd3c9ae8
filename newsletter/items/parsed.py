"""What every source parser returns: the items it read and the problems it met.

A parser never raises because of one bad entry: it reports the entry as a
`Problem` (where it is and what is wrong) and goes on with the rest. It raises
`InputError` only when the source as a whole cannot be read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One entry that could not be imported ("error") or was imported with a caveat ("warning")."""

    # The file (or feed URL) and, where known, the line: "news.txt:12", "feed.xml: entry 3".
    where: str
    message: str
    severity: Severity = "error"
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.severity}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "where": self.where,
            "line": self.line,
            "severity": self.severity,
            "message": self.message,
        }


@dataclass
class ParsedItem:
    """One item as a source gave it, before it is stored.

    `kind` and `language` are None when the source does not say; the import then
    applies the importer's choice or the documented defaults.
    """

    source_id: str
    title: str
    date: date
    summary: str = ""
    body_html: str = ""
    body_text: str = ""
    link: str = ""
    link_text: str = ""
    kind: str | None = None
    language: str | None = None
    tags: list[str] = field(default_factory=list)
    # Language versions the source declares (newsletter.items.translations): another
    # entry of the same source this one translates, or a key its versions share.
    translation_of: str = ""
    translation_key: str = ""
    # An image shown with the item: an absolute http(s) URL, its alt text, and its size
    # in pixels when the source gives it.
    image: str = ""
    image_alt: str = ""
    image_width: int | None = None
    image_height: int | None = None
    # Where the item is in its source, for messages.
    where: str = ""
    # A feed entry's guid (RSS) or id (Atom): the strongest identity (items.identity).
    guid: str = ""
    # False when the date came from the importer's --date, not from the source: such
    # an item is then recognised by its title in any month (items.identity).
    dated_by_source: bool = True
    # True when the source gives only a month ("June 2019"): editions then show the
    # month, not an invented first day.
    month_only: bool = False


@dataclass
class ParseResult:
    items: list[ParsedItem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


_LANGUAGE = re.compile(r"^(?P<primary>[a-z]{2,3})(?:[-_][a-z0-9]{1,8})*$", re.IGNORECASE)


def normalise_language(value: str) -> str | None:
    """The primary language of a tag ("en-US" → "en"), or None when it is not a language tag.

    Editions and subscribers speak of languages as "en", "ru", "fr", "es", so a
    region or script subtag from a feed would only keep items from matching.
    """
    match = _LANGUAGE.match(value.strip())
    return match.group("primary").lower() if match else None
