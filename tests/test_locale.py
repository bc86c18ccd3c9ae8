"""Languages: the shipped catalogues are complete, and locale data comes from babel."""

from __future__ import annotations

import ast
import re
from datetime import date
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from newsletter import locale
from newsletter.audience.columns import normalise_language
from newsletter.items.dates import parse_item_date

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("en", "ru", "fr", "es")
# Catalogue ids the code builds rather than writes out, so that extraction cannot see them.
BUILT_IDS = {
    *(f"error.{status}.{part}" for status in (400, 404, 405, 413, 415, 429, 500)
      for part in ("title", "text")),
    *(f"email.section.{kind}" for kind in ("statement", "report", "news", "tribute")),
    *(f"topic.{slug}" for slug in ("harm-reduction", "hiv", "human-rights", "drug-policy")),
}  # fmt: skip


def used_ids() -> set[str]:
    """Every catalogue id in the code and templates, as `pybabel extract -F babel.cfg` sees it."""
    method_map = [
        ("newsletter/**.py", "python"),
        ("newsletter/web/templates/**.html", "jinja2"),
        ("templates/**.html", "jinja2"),
        ("templates/**.txt", "jinja2"),
    ]
    options = {"trim_blocks": "true", "lstrip_blocks": "true"}
    options_map = {pattern: options for pattern, method in method_map if method == "jinja2"}
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options_map):
        found.add(message if isinstance(message, str) else message[0])
    return found


def po_messages(language: str) -> dict[str, str]:
    with locale.catalogue_path(language).open("rb") as handle:
        catalogue = read_po(handle)
    return {str(m.id): str(m.string or "") for m in catalogue if m.id}


def test_the_four_languages_are_shipped_inside_the_package() -> None:
    assert locale.shipped_languages() == ("en", "es", "fr", "ru")
    for language in SHIPPED:
        path = locale.catalogue_path(language)
        # Inside the package folder, so that a wheel carries it (hatch packages it whole).
        assert ROOT / "newsletter" in path.parents and path.is_file()


def test_extraction_finds_the_ids_the_code_uses_and_english_has_them_all() -> None:
    used = used_ids()
    assert {"email.footer.unsubscribe", "subscribe.button", "email.confirm.heading"} <= used
    english = po_messages("en")
    assert sorted((used | BUILT_IDS) - set(english)) == []


@pytest.mark.parametrize("language", SHIPPED)
def test_every_shipped_catalogue_translates_every_id(language: str) -> None:
    english = po_messages("en")
    other = po_messages(language)
    missing = sorted(set(english) - set(other))
    untranslated = sorted(key for key, text in other.items() if not text.strip())
    assert missing == [] and untranslated == [], (missing, untranslated)
    assert sorted(set(other) - set(english)) == []
    for key, text in other.items():
        # The same {fields}, or str.format would fail (or leave a field out) at send time.
        assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", english[key])), key


def test_a_missing_id_fails_the_completeness_check(tmp_path: Path, monkeypatch) -> None:
    """The check above can fail: a catalogue with one id left out is caught."""
    source = locale.catalogue_path("fr").read_text(encoding="utf-8")
    cut = re.sub(
        r'#\. English: Unsubscribe\nmsgid "email.footer.unsubscribe"\nmsgstr "[^"]*"\n', "", source
    )
    assert cut != source
    for language, text in (("fr", cut), ("en", locale.catalogue_path("en").read_text("utf-8"))):
        folder = tmp_path / language / "LC_MESSAGES"
        folder.mkdir(parents=True)
        (folder / "messages.po").write_text(text, encoding="utf-8")
    monkeypatch.setattr(locale, "CATALOGUES", tmp_path)
    with pytest.raises(AssertionError):
        test_every_shipped_catalogue_translates_every_id("fr")


def test_a_language_without_a_catalogue_reads_english_with_its_own_direction() -> None:
    assert locale.translator("de")("subscribe.button") == "Subscribe"
    assert locale.translator("ru-RU")("subscribe.button") == "Подписаться"
    assert locale.translator("ar").direction == "rtl"
    assert locale.translator("ar")("email.footer.unsubscribe") == "Unsubscribe"


def test_dates_and_months_are_written_as_each_language_writes_them() -> None:
    day = date(2019, 10, 12)
    assert locale.format_date(day, "en") == "12 October 2019"
    assert locale.format_date(day, "ru") == "12 октября 2019"
    assert locale.format_date(day, "es") == "12 de octubre de 2019"
    assert locale.format_date(day, "fr") == "12 octobre 2019"
    # The heading's month stands alone (nominative); inside a date, Russian's genitive.
    assert locale.month_label(2019, 10, "ru") == "октябрь 2019"
    assert locale.month_name(10, "ru", in_date=True) == "октября"
    assert locale.month_label(2019, 6, "en") == "June 2019"


def test_direction_and_names_come_from_cldr() -> None:
    assert [locale.direction(code) for code in ("ar", "he", "fa", "ur", "yi")] == ["rtl"] * 5
    assert [locale.direction(code) for code in ("en", "ru", "fr", "es", "xx")] == ["ltr"] * 5
    assert locale.language_name("ru") == "Русский"
    assert locale.language_name("ru", "en") == "Russian"
    assert locale.language_name("ru", "es", capital=False) == "ruso"


def test_month_and_language_names_people_type_are_read_in_every_language() -> None:
    assert parse_item_date("12 октября 2019") == date(2019, 10, 12)
    assert parse_item_date("juin 2019") == date(2019, 6, 1)
    assert parse_item_date("Sept. 2019") == date(2019, 9, 1)
    assert parse_item_date("12 de febrero de 2019") == date(2019, 2, 12)
    assert [normalise_language(n) for n in ("Russian", "русский", "ruso", "Français")] == [
        "ru",
        "ru",
        "ru",
        "fr",
    ]


def test_no_table_of_month_names_or_rtl_languages_is_left_in_the_code() -> None:
    """Locale data has one home (newsletter.locale, from babel): no literal tables elsewhere."""
    months = {"january", "janvier", "enero", "январь", "января", "june", "juin", "июнь"}
    rtl = {"ar", "he", "fa", "ur"}
    for path in (ROOT / "newsletter").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        strings = {
            node.value.casefold()
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        assert len(strings & months) < 2, path
        assert len(strings & rtl) < 3, path
