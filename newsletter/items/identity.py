"""How an item is recognised when its source is read again: its identity.

An item's identity comes from what the source says about it, never from where
the source was read (a file's path, a feed's address) nor from its exact first
words:

  feed entry     its guid (RSS) or id (Atom): ``guid:<id>``; without one, its
                 link: ``link:<link>``. The same feed read from a file and then
                 from its URL is the same items.
  Markdown file  its front matter ``url``: ``link:<link>``; without one, as a
                 listing item without a link.
  listing item   its link, when it has one that no other item of the same
                 import shares (a shared address is the organisation's home
                 page, not the item's); else its month and its normalised
                 title: ``title:YYYY-MM:<words>``.

An item in another language than the import's default adds its language to a
link identity (``link:ru:<link>``): its versions in other languages share the
original's link (newsletter/items/translations.py) and are items of their own.

Links are compared without their scheme (http and https are the same page),
with the host in lower case, without ``www.``, a default port, a trailing
slash or a ``#fragment``. A normalised title is its words (letters and digits)
in lower case with accents dropped, joined by single spaces.

Tolerance for small edits: a title identity that matches no stored one exactly
is compared with the stored title identities of the same month by
`similarity` (difflib's ratio over the normalised titles, 0 to 1). At SAME
(0.88) or above it is the same item (a typo fixed, a word added: the stored
item is updated and remembers the new wording too); from LOOKS_LIKE (0.6) up
to SAME the item is added as a new one and the import reports "looks like
item N", for staff to decide with `newsletter items merge`. An item whose month
the source does not give (it came from ``--date``) is matched by its title in
any month, so that correcting ``--date`` moves the item instead of copying it.

An item may hold several identities (a merge gives the kept item those of
the dropped one; a tolerated edit adds the new wording), so that every
spelling a source has used finds it again.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

SAME = 0.88
LOOKS_LIKE = 0.6
IDENTITY_MAX = 600
_WORDS = re.compile(r"\w+", re.UNICODE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_title(title: str) -> str:
    """'Our new Report — prisons & health!' → 'our new report prisons health'."""
    folded = unicodedata.normalize("NFKD", title)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).casefold()
    return " ".join(_WORDS.findall(folded)).replace("_", " ")


def normalise_link(link: str) -> str:
    """A link as identities compare it (see the module's rule); "" for no link."""
    text = link.strip()
    if not text:
        return ""
    if text.lower().startswith("mailto:"):
        return text.lower()
    parts = urlsplit(text)
    host = (parts.hostname or "").lower().removeprefix("www.")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{path}{query}"


def fit(identity: str) -> str:
    """An identity cut to its column, with a digest of the whole so that it stays unique."""
    if len(identity) <= IDENTITY_MAX:
        return identity
    digest = hashlib.sha1(identity.encode()).hexdigest()
    return f"{identity[: IDENTITY_MAX - 41]}#{digest}"


def guid_identity(guid: str) -> str:
    return fit(f"guid:{guid.strip()}")


def link_identity(link: str, language: str = "") -> str:
    """``link:<link>``; a language version of an item shares its original's link, so an item
    in another language than the import's default is ``link:<language>:<link>``."""
    if language:
        return fit(f"link:{language}:{normalise_link(link)}")
    return fit(f"link:{normalise_link(link)}")


def title_identity(month: str, title: str) -> str:
    """``title:YYYY-MM:<normalised title>``; `month` is ``YYYY-MM``."""
    return fit(f"title:{month}:{normalise_title(title)}")


def title_prefix(month: str) -> str:
    return f"title:{month}:"


@dataclass(frozen=True)
class TitleKey:
    """The parts of a title identity."""

    month: str
    words: str


def title_key(identity: str) -> TitleKey | None:
    """The month and words of a title identity; None for a guid or link identity."""
    if not identity.startswith("title:"):
        return None
    month, _, words = identity.removeprefix("title:").partition(":")
    return TitleKey(month, words)


def similarity(a: str, b: str) -> float:
    """How alike two normalised titles are, 0 to 1 (difflib's ratio over their characters)."""
    if a == b:
        return 1.0
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    # The cheap upper bounds first: most titles of a month are nothing alike.
    if matcher.real_quick_ratio() < LOOKS_LIKE or matcher.quick_ratio() < LOOKS_LIKE:
        return 0.0
    return matcher.ratio()
