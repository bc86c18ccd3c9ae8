"""Reading plain prose: sentences, the titles and summaries derived from them, slugs.

Title rule (used when a source gives no title):
  the item's first sentence, without its closing full stop. A sentence longer
  than TITLE_LIMIT characters is shortened: at the last clause break (a comma,
  semicolon, colon or dash) that leaves at least half of the limit, else at the
  last word boundary within the limit; small words left dangling at the end
  ("of", "the", "and", …) are dropped and an ellipsis marks the cut.

Summary rule (used when a source gives no summary):
  the first paragraph when it fits in SUMMARY_LIMIT characters; otherwise as
  many of its whole sentences as fit; a first sentence that alone is too long is
  shortened at a word boundary with an ellipsis.

A sentence ends at `.`, `!`, `?` or `…` (and any closing quote or bracket)
followed by a space and a capital letter, digit or opening quote, except after
common abbreviations ("e.g.", "Dr.", "No.") and single initials ("J. Smith").
"""

from __future__ import annotations

import re
import unicodedata

TITLE_LIMIT = 90
SUMMARY_LIMIT = 400

_ABBREVIATIONS = frozenset(
    [
        "e.g",
        "i.e",
        "etc",
        "vs",
        "dr",
        "mr",
        "mrs",
        "ms",
        "prof",
        "st",
        "no",
        "nos",
        "fig",
        "art",
        "para",
        "op",
        "cf",
        "approx",
        "dept",
        "est",
        "inc",
        "ltd",
        "co",
        "jr",
        "sr",
        "mt",
        "ca",
        "u.n",
        "u.s",
        "u.k",
        "e.u",
    ]
)
_SENTENCE_END = re.compile(r"[.!?…]+[\"”’'»)\]]*\s+")
_SENTENCE_START = re.compile(r"[\"“‘'«(\[¿¡]*[^\W_a-zà-öø-ÿа-яё]")
_CLAUSE_BREAK = re.compile(r"\s*(?:[,;:]|\s[–—-])\s")
_DANGLING = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "and",
        "or",
        "to",
        "in",
        "on",
        "for",
        "with",
        "by",
        "at",
        "from",
        "as",
        "that",
        "which",
        "who",
        "our",
        "their",
        "its",
        "is",
        "are",
        "was",
        "were",
        "be",
    ]
)
_WORDS = re.compile(r"\w+", re.UNICODE)


def squash(text: str) -> str:
    """Collapse runs of whitespace (line breaks included) to single spaces."""
    return " ".join(text.split())


def sentences(text: str) -> list[str]:
    """Split a paragraph into sentences by the rule in this module's docstring."""
    text = squash(text)
    result: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        following = text[match.end() :]
        if not _SENTENCE_START.match(following):
            continue
        before = text[start : match.start()].rsplit(" ", 1)[-1].lower()
        if text[match.start()] == "." and (
            before in _ABBREVIATIONS or (len(before) == 1 and before.isalpha())
        ):
            continue
        result.append(text[start : match.end()].strip())
        start = match.end()
    if text[start:].strip():
        result.append(text[start:].strip())
    return result


def shorten(text: str, limit: int) -> str:
    """Cut text to at most `limit` characters at a clause or word boundary, with an ellipsis."""
    text = squash(text)
    if len(text) <= limit:
        return text
    window = text[: limit - 1]
    cut = None
    for match in _CLAUSE_BREAK.finditer(window):
        if match.start() >= limit // 2:
            cut = match.start()
    if cut is None:
        space = window.rfind(" ")
        cut = space if space > 0 else limit - 1
    words = window[:cut].split(" ")
    while len(words) > 1 and words[-1].lower().strip(",;:–—-") in _DANGLING:
        words.pop()
    return " ".join(words).rstrip(" ,;:–—-") + "…"


def derive_title(text: str, limit: int = TITLE_LIMIT) -> str:
    """A title from the first sentence of `text` (see the rule above)."""
    parts = sentences(text)
    if not parts:
        return ""
    first = parts[0]
    if first.endswith(".") and not first.endswith(".."):
        first = first[:-1]
    return shorten(first, limit)


def summarise(paragraph: str, limit: int = SUMMARY_LIMIT) -> str:
    """A summary from a paragraph (see the rule above)."""
    paragraph = squash(paragraph)
    if len(paragraph) <= limit:
        return paragraph
    kept: list[str] = []
    for sentence in sentences(paragraph):
        if len(" ".join([*kept, sentence])) > limit:
            break
        kept.append(sentence)
    return " ".join(kept) if kept else shorten(paragraph, limit)


def slug(text: str, words: int = 8) -> str:
    """Lower-case words joined by hyphens, accents dropped, other scripts kept."""
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    return "-".join(_WORDS.findall(folded)[:words]).replace("_", "-")
