"""The choice of a page's language, per request.

The words themselves, and each language's name and direction, are in
newsletter.locale (the gettext catalogues and babel's locale data).

A page's language is, in order: an explicit `?lang=` the reader chose, the
subscriber's stored language (on the pages a signed link opens), the
browser's Accept-Language, then English.
"""

from __future__ import annotations

from collections.abc import Iterable

from werkzeug.datastructures import LanguageAccept

from newsletter.locale import FALLBACK, base_language, shipped_languages


def choose_language(
    *,
    explicit: str | None = None,
    stored: str | None = None,
    accept: LanguageAccept | None = None,
    available: Iterable[str] | None = None,
    default: str = FALLBACK,
) -> str:
    """The language of one page: explicit choice, stored language, browser, else `default`."""
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
    return default
