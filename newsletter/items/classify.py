"""The kind of an item whose source does not say: a documented rule over its words.

Rule, applied to the item's title, summary and call to action (never to the
whole body, where words such as "report" turn up in passing):

1. tribute, when any of these appear: "tribute", "in memory of", "in memoriam",
   "obituary", "passing of", "passed away", "died", "mourn", "rest in peace",
   "rest in power" (fr "hommage", "décès", "en mémoire de"; es "homenaje",
   "en memoria de", "falleció"; ru "памяти", "скончался", "ушёл из жизни");
2. else the kind named by the call to action ("Read the full report" → report,
   "Download the statement" → statement): the link says what it leads to;
3. else the kind whose words come first in the title, else in the summary:
   statement ("statement", "open letter", "joint letter"; fr "déclaration",
   "lettre ouverte"; es "declaración", "carta abierta"; ru "заявление",
   "открытое письмо") or report ("report", "briefing paper", "technical
   brief"; fr "rapport" but not "par rapport"; es "informe"; ru "доклад",
   "отчёт");
4. else news.

Words match whole and in any case ("statements" and "Reports" count;
"reported" and "reporting" do not). The English "declaration" is left out on
purpose: news about a UN declaration is not our statement.
"""

from __future__ import annotations

import re

from newsletter.models.items import ITEM_KINDS

DEFAULT_KIND = "news"

_TRIBUTE = re.compile(
    r"\b(?:tribute|in memory of|in memoriam|obituary|passing of|passed away|died|mourns?|"
    r"mourning|rest in (?:peace|power)|hommage|décès|en mémoire de|homenaje|en memoria de|"
    r"falleci(?:ó|do|da)|памяти|скончал(?:ся|ась)|ушл?(?:ёл|ел|а) из жизни)\b",
    re.IGNORECASE,
)
_KIND_WORDS: dict[str, re.Pattern[str]] = {
    "statement": re.compile(
        r"\b(?:statements?|open letters?|joint letters?|déclarations?|lettres? ouvertes?|"
        r"declaraci(?:ón|ones)|cartas? abiertas?|заявлени[еяюий]\w*|открыто\w* письм\w*)\b",
        re.IGNORECASE,
    ),
    "report": re.compile(
        r"\b(?:reports?|briefing papers?|technical briefs?|(?<!par )rapports?|informes?|"
        r"доклад\w*|отч[её]т\w*)\b",
        re.IGNORECASE,
    ),
}


def _first_named_kind(text: str) -> str | None:
    found = [(m.start(), kind) for kind, rx in _KIND_WORDS.items() if (m := rx.search(text))]
    return min(found)[1] if found else None


def infer_kind(title: str, summary: str, link_text: str = "") -> str:
    """The kind of an item by the rule in this module's docstring."""
    if _TRIBUTE.search(" ".join((title, summary, link_text))):
        return "tribute"
    for text in (link_text, title, summary):
        kind = _first_named_kind(text)
        if kind is not None:
            return kind
    return DEFAULT_KIND


def normalise_kind(value: str) -> str | None:
    """A kind as a source may spell it ("Reports", " Statement ") or None if it is none."""
    word = value.strip().lower()
    if word in ITEM_KINDS:
        return word
    if word.endswith("s") and word[:-1] in ITEM_KINDS:
        return word[:-1]
    return None
