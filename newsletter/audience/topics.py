"""Topics: one identity per topic, a slug, with a label per language.

A subscriber's `topics` attribute holds slugs (``harm-reduction``), whatever
wrote it: the CSV import, the subscribe and preferences pages, `subscribers
add`. The slugs and their English labels are `web.topics` in the config
(slug = label); `web.topic_labels` adds labels in other languages
(``harm-reduction = { ru = "Снижение вреда" }``).

How a text becomes a topic (`to_slug`): a configured slug, or any configured
label in any language, compared without regard to case, accents or spacing,
is that topic; any other text becomes its own slug (`slugify`: words in lower
case, accents dropped, joined by hyphens: "Prison health" → "prison-health"),
so that an imported topic the pages do not offer still has one spelling.
Segments on `topics` accept a slug or a label the same way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_WORDS = re.compile(r"\w+", re.UNICODE)


def slugify(text: str) -> str:
    """'Harm  Réduction' → 'harm-reduction'; '' when the text has no letters or digits."""
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).casefold()
    return "-".join(_WORDS.findall(folded)).replace("_", "-")


@dataclass(frozen=True)
class Topics:
    """The configured topics: slug → English label, and labels in other languages."""

    labels: Mapping[str, str]
    translations: Mapping[str, Mapping[str, str]]

    @classmethod
    def from_config(cls, web: object) -> Topics:
        return cls(
            labels=dict(getattr(web, "topics", {}) or {}),
            translations=dict(getattr(web, "topic_labels", {}) or {}),
        )

    def _index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for slug, label in self.labels.items():
            index.setdefault(slugify(slug), slug)
            index.setdefault(slugify(label), slug)
        for slug, by_language in self.translations.items():
            for label in by_language.values():
                index.setdefault(slugify(label), slug)
        return index

    def to_slug(self, text: str) -> str:
        """The topic a slug or label names (see the module's rule); '' for empty text."""
        key = slugify(text)
        return self._index().get(key, key) if key else ""

    def to_slugs(self, texts: Iterable[str]) -> list[str]:
        """Each text's topic, in order, once each, blanks left out."""
        index = self._index()
        slugs = (index.get(key, key) for text in texts if (key := slugify(str(text))))
        return list(dict.fromkeys(slugs))

    def label(self, slug: str, language: str = "en") -> str:
        """A topic's label in a language, else in English, else the slug."""
        translated = self.translations.get(slug, {}).get(language)
        return translated or self.labels.get(slug) or slug
