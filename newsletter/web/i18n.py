"""The pages' words in several languages, and the choice of language per request.

The catalogue is one small TOML file per language in `translations/`, a flat
table of `key = "text"`. English is complete; any other language may leave a
key out, and that key then reads in English rather than as a raw key. Texts
may hold `{name}` fields, filled in with `str.format`; the pages escape the
result like any other value, so a catalogue cannot inject markup.

A page's language is, in order: an explicit `?lang=` the reader chose, the
subscriber's stored language (on the pages a signed link opens), the
browser's Accept-Language, then English.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from werkzeug.datastructures import LanguageAccept

CATALOGUES = Path(__file__).resolve().parent / "translations"
FALLBACK = "en"

# Each language named in its own words, for the language choices on the forms.
ENDONYMS: dict[str, str] = {
    "en": "English",
    "ru": "Русский",
    "fr": "Français",
    "es": "Español",
    "pt": "Português",
    "ar": "العربية",
    "zh": "中文",
    "uk": "Українська",
    "ka": "ქართული",
    "ky": "Кыргызча",
    "kk": "Қазақша",
    "id": "Bahasa Indonesia",
    "vi": "Tiếng Việt",
    "th": "ไทย",
    "sw": "Kiswahili",
}

# Languages written right to left get dir="rtl" on the page.
RTL = frozenset({"ar", "fa", "he", "ur"})


@cache
def shipped_languages() -> tuple[str, ...]:
    """The languages that have a catalogue, English first."""
    found = sorted(path.stem for path in CATALOGUES.glob("*.toml"))
    return (FALLBACK, *(code for code in found if code != FALLBACK))


@cache
def _catalogue(language: str) -> Mapping[str, str]:
    path = CATALOGUES / f"{language}.toml"
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        return tomllib.load(handle)


@dataclass(frozen=True)
class Translator:
    """The words of one page in one language, with English behind every missing key."""

    language: str

    @property
    def direction(self) -> str:
        return "rtl" if self.language in RTL else "ltr"

    def has(self, key: str) -> bool:
        return key in _catalogue(self.language) or key in _catalogue(FALLBACK)

    def __call__(self, key: str, /, **fields: object) -> str:
        text = _catalogue(self.language).get(key)
        if text is None:
            text = _catalogue(FALLBACK).get(key)
        if text is None:
            # A key missing from English too is a programming error; show it plainly
            # rather than fail the page (tests/test_web_parts.py finds these).
            return key
        return text.format(**fields) if fields else text


def translator(language: str) -> Translator:
    return Translator(language if language in shipped_languages() else FALLBACK)


def base_language(code: str | None) -> str:
    """'ru-RU' → 'ru'; the catalogues are per language, not per region."""
    return (code or "").strip().replace("_", "-").split("-")[0].lower()


def choose_language(
    *,
    explicit: str | None = None,
    stored: str | None = None,
    accept: LanguageAccept | None = None,
    available: Iterable[str] | None = None,
) -> str:
    """The language of one page: explicit choice, stored language, browser, English."""
    languages = tuple(available) if available is not None else shipped_languages()
    for candidate in (explicit, stored):
        code = base_language(candidate)
        if code in languages:
            return code
    if accept is not None:
        # By the browser's order of preference, each tag by its language alone: werkzeug's
        # best_match would prefer a later exact "en" to a first "ru-RU".
        for value, quality in accept:
            code = base_language(value)
            if quality > 0 and code in languages:
                return code
    return FALLBACK


def language_name(code: str) -> str:
    return ENDONYMS.get(code, code)
