"""Languages: locale data from babel and the words of emails and pages, in one place.

Two kinds of thing live here, and nowhere else:

- **Locale data** comes from babel (the Unicode CLDR), never from tables in
  code: month names (the stand-alone form for a heading, "Октябрь 2019"; the
  form inside a date, the Russian genitive, "12 октября 2019"), written-out
  dates, language names (each in its own words, or in the reader's), and which
  languages are written right to left.
- **Words** come from the gettext catalogues in `newsletter/translations/`,
  one `<language>/LC_MESSAGES/messages.po` per language, read with babel when
  first needed (so an installed wheel needs no build step; the `.po` files
  ship inside the package). Message ids are stable keys such as
  `"email.footer.unsubscribe"`; the English catalogue holds the English words
  and is complete, and every other shipped catalogue translates every id
  (tests/test_locale.py fails otherwise). A text may hold `{name}` fields,
  filled in with `str.format`; whoever prints the result escapes it, so a
  catalogue cannot inject markup. A language without a catalogue reads the
  default language's words (English), with its own dates and direction.

Translators work on the `.po` files with any gettext tool; `pybabel extract
-F babel.cfg -o messages.pot newsletter` lists every id the code and
templates use (see README, "Languages").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Literal

from babel import Locale, UnknownLocaleError
from babel.dates import format_date as babel_format_date
from babel.dates import get_month_names
from babel.messages.pofile import read_po

CATALOGUES = Path(__file__).resolve().parent / "translations"
DOMAIN = "messages"
FALLBACK = "en"
# English dates are written day first ("12 June 2019"), as the network has always written
# them: that is British English's CLDR data, not American.
_DATE_LOCALE = {"en": "en_GB"}
# A written-out date ends at its year: the abbreviation of "year" that Russian style puts
# after it ("2019 г.") is left out in running text and headings.
CONTEXTS: tuple[Literal["format", "stand-alone"], ...] = ("format", "stand-alone")
_YEAR_SUFFIX = re.compile(r"\s*'[^']*'\.?\s*$")


# Language codes ----------------------------------------------------------------------------


def base_language(code: str | None) -> str:
    """'ru-RU' → 'ru', 'pt_BR' → 'pt': catalogues and editions are per language, not region."""
    return (code or "").strip().replace("_", "-").split("-")[0].lower()


@cache
def babel_locale(language: str) -> Locale:
    """babel's locale for a language code; English for a code CLDR does not know."""
    code = _DATE_LOCALE.get(language, language).replace("-", "_")
    try:
        return Locale.parse(code)
    except (UnknownLocaleError, ValueError):
        return Locale.parse(_DATE_LOCALE[FALLBACK])


def is_known_language(code: str) -> bool:
    """Whether CLDR knows the language (so that its dates and direction can be written)."""
    try:
        Locale.parse(base_language(code))
    except (UnknownLocaleError, ValueError):
        return False
    return True


def direction(language: str) -> str:
    """'rtl' for a language written right to left (Arabic, Hebrew, Persian, Urdu…), else 'ltr'."""
    order = babel_locale(base_language(language) or FALLBACK).character_order
    return "rtl" if order == "right-to-left" else "ltr"


def language_name(code: str, in_language: str | None = None, *, capital: bool = True) -> str:
    """A language's name: in its own words ('Русский'), or in `in_language` ('Russian').

    Capitalised as a choice in a list, or as the language writes it inside a
    sentence with `capital=False` ('en ruso'); the code itself for a language
    CLDR does not know.
    """
    language = base_language(code)
    try:
        locale = Locale.parse(language)
    except (UnknownLocaleError, ValueError):
        return code
    name = locale.get_display_name(base_language(in_language) or language) or code
    return name[:1].upper() + name[1:] if capital else name


# Months and dates --------------------------------------------------------------------------


def month_name(number: int, language: str, *, in_date: bool = False) -> str:
    """A month's name: stand-alone ('октябрь') or as inside a date ('октября')."""
    if in_date:
        return get_month_names("wide", "format", babel_locale(language))[number]
    return get_month_names("wide", "stand-alone", babel_locale(language))[number]


def month_label(year: int, number: int, language: str) -> str:
    """A month written out for a heading or subject: 'June 2019', 'июнь 2019', 'junio de 2019'.

    As CLDR writes it: lower case where the language writes month names so.
    """
    locale = babel_locale(language)
    return babel_format_date(date(year, number, 1), _pattern(locale, "yMMMM"), locale=locale)


def format_date(day: date, language: str) -> str:
    """A date written out: '12 June 2019', '12 октября 2019', '12 de octubre de 2019'."""
    locale = babel_locale(language)
    return babel_format_date(day, _pattern(locale, "long"), locale=locale)


@cache
def _pattern(locale: Locale, name: str) -> str:
    if name == "long":
        pattern = locale.date_formats["long"].pattern
    else:
        pattern = locale.datetime_skeletons[name].pattern
    return _YEAR_SUFFIX.sub("", pattern)


def month_number(name: str) -> int:
    """The number of a month named in any shipped language ('juin', 'окт.'); 0 if none."""
    return month_numbers(shipped_languages()).get(name.casefold().strip().rstrip("."), 0)


@cache
def month_numbers(languages: tuple[str, ...]) -> dict[str, int]:
    """Month names and abbreviations people write, lower case, → month number.

    Every form CLDR has in each language (wide and abbreviated, stand-alone and
    inside a date, so Russian's genitive too), each also without its accents
    ('fevrier') and its final dot ('sept.'), and the first three letters of a
    full name where no other month starts so ('sep', 'ноя'), for reading dates
    in listings.
    """
    found: dict[str, int] = {}
    prefixes: dict[str, set[int]] = {}
    for language in languages:
        for locale in {babel_locale(language), Locale.parse(base_language(language))}:
            for width in ("wide", "abbreviated"):
                for context in CONTEXTS:
                    for number, name in get_month_names(width, context, locale).items():
                        for form in _spellings(name):
                            found.setdefault(form, number)
                            if width == "wide":
                                prefixes.setdefault(form[:3], set()).add(number)
    for prefix, numbers in prefixes.items():
        if len(numbers) == 1:
            found.setdefault(prefix, numbers.pop())
    return found


def language_code(name: str) -> str | None:
    """The code of a language named in any shipped language ('Russian', 'ruso'); None if none."""
    return language_codes(shipped_languages()).get(name.casefold().strip())


@cache
def language_codes(languages: tuple[str, ...]) -> dict[str, str]:
    """Language names people type instead of codes ('Russian', 'русский', 'inglés') → code.

    The names of each of `languages` in each of them, lower case, with and
    without accents.
    """
    found: dict[str, str] = {}
    codes = list(languages)
    for code in codes:
        locale = Locale.parse(code)
        for reader in codes:
            for form in _spellings(locale.get_display_name(reader) or ""):
                found.setdefault(form, code)
    return found


def _spellings(name: str) -> set[str]:
    lowered = name.casefold().strip().rstrip(".")
    unaccented = "".join(
        ch for ch in unicodedata.normalize("NFD", lowered) if not unicodedata.combining(ch)
    )
    # Cyrillic й and ё lose their marks under NFD; those spellings are not wanted.
    forms = {lowered}
    if unaccented.isascii():
        forms.add(unaccented)
    return {form for form in forms if form}


# Catalogues --------------------------------------------------------------------------------


@cache
def shipped_languages() -> tuple[str, ...]:
    """The languages that have a catalogue, English first."""
    found = sorted(
        path.parent.parent.name for path in CATALOGUES.glob(f"*/LC_MESSAGES/{DOMAIN}.po")
    )
    return (FALLBACK, *(code for code in found if code != FALLBACK))


def catalogue_path(language: str) -> Path:
    return CATALOGUES / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def catalogue(language: str) -> Mapping[str, str]:
    """A catalogue's translated messages, id → text; empty for a language with none."""
    path = catalogue_path(language)
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        po = read_po(handle, locale=language, domain=DOMAIN)
    return {
        str(message.id): str(message.string)
        for message in po
        if message.id and isinstance(message.string, str) and message.string
        and not message.fuzzy
    }  # fmt: skip


@dataclass(frozen=True)
class Translator:
    """The words of one language, with English behind every id the language lacks."""

    language: str

    @property
    def direction(self) -> str:
        return direction(self.language)

    def has(self, key: str) -> bool:
        return key in catalogue(self.language) or key in catalogue(FALLBACK)

    def __call__(self, key: str, /, **fields: object) -> str:
        text = catalogue(self.language).get(key)
        if text is None:
            text = catalogue(FALLBACK).get(key)
        if text is None:
            # An id missing from English too is a programming error; show it plainly
            # rather than fail a page or a send (tests/test_locale.py finds these).
            return key
        return text.format(**fields) if fields else text


def translator(language: str) -> Translator:
    """The words of `language` ('ru-RU' reads Russian); a language without a catalogue
    keeps its code, so that its dates and direction are its own, and reads English."""
    return Translator(base_language(language) or FALLBACK)
