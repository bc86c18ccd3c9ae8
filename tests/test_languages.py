"""Multilingual editions, end to end: item versions, one render per language, real messages.

The month here has an English report, its Russian version, and a Russian-only
statement. The edition is built, approved and sent through the real pipeline
into the maildir outbox; the tests read the messages as they went out.
"""

from __future__ import annotations

import json
import re
from email.message import EmailMessage
from pathlib import Path

import pytest
from lxml import html as lxml_html
from webkit import outbox
from werkzeug.test import Client

from newsletter import audience, dispatch, editions, items
from newsletter.app import Newsletter
from newsletter.errors import InputError
from newsletter.items.translations import link_items
from newsletter.message import Composer, Recipient
from newsletter.models import Campaign, CampaignText, Item
from newsletter.web import make_wsgi_app

REPORT_EN = """---
title: Harm reduction saves lives
date: 2019-10-12
kind: report
language: en
url: https://example.org/report
---
The network's yearly report on harm reduction services.
"""
REPORT_RU = """---
title: Снижение вреда спасает жизни
date: 2019-10-12
kind: report
language: ru
url: https://example.org/ru/report
translation_of: report-en.md
---
Ежегодный доклад сети о службах снижения вреда.
"""
STATEMENT_RU = """---
title: Заявление сети к КНД
date: 2019-10-20
kind: statement
language: ru
---
Сеть обращается к Комиссии по наркотическим средствам.
"""

ENGLISH_WORDS = ("Unsubscribe", "Update your preferences", "Reports", "Statements", "Read more")
RUSSIAN_WORDS = ("Отписаться", "Изменить настройки", "Доклады", "Заявления", "Читать дальше")


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def october(app: Newsletter, tmp_path: Path) -> int:
    """An approved October 2019 bulletin to one English and one Russian subscriber."""
    folder = write_folder(
        tmp_path / "posts",
        {"report-en.md": REPORT_EN, "report-ru.md": REPORT_RU, "statement-ru.md": STATEMENT_RU},
    )
    report = items.import_source(app, str(folder), actor="cli:test")
    assert not [p for p in report.problems if p.severity == "error"]
    audience.create_list(app, "members", title="Members", actor="test")
    audience.add_subscriber(
        app, "ann@example.org", "members", name="Ann", language="en", actor="test"
    )
    audience.add_subscriber(
        app, "olga@example.org", "members", name="Ольга", language="ru", actor="test"
    )
    built = editions.new_bulletin(app, "2019-10", lists=["members"], actor="test")
    editions.approve(app, built.id, actor="test")
    return built.id


def message_to(messages: list[EmailMessage], address: str) -> EmailMessage:
    (found,) = [m for m in messages if m["To"].addresses[0].addr_spec == address]
    return found


def bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    return text, html


def test_a_version_is_not_an_item_of_its_own_in_the_edition(app: Newsletter, october) -> None:
    with app.session() as session:
        campaign = session.get_one(Campaign, october)
        titles = [item.title for item in campaign.items]
    assert titles == ["Заявление сети к КНД", "Harm reduction saves lives"] or titles == [
        "Harm reduction saves lives",
        "Заявление сети к КНД",
    ]


def test_each_reader_gets_their_own_language_throughout_and_nothing_mixes(
    app: Newsletter, october
) -> None:
    outcome = dispatch.send_campaign(app, october, actor="test")
    assert outcome is not None
    messages = outbox(app)
    assert len(messages) == 2

    english = message_to(messages, "ann@example.org")
    text, html = bodies(english)
    page = lxml_html.document_fromstring(html.encode("utf-8"))
    assert page.get("lang") == "en" and page.get("dir") == "ltr"
    assert english["Content-Language"] == "en"
    assert english["Subject"] == "Example Network bulletin — October 2019"
    for words in ENGLISH_WORDS:
        assert words.casefold() in text.casefold(), words
    assert "Harm reduction saves lives" in text and "12 October 2019" in text
    # The Russian-only statement is there, marked as Russian in English words.
    assert "Заявление сети к КНД" in text
    assert "20 October 2019 · In Russian" in text
    assert "Снижение вреда спасает жизни" not in text
    # No Russian wording or date, only the Russian item's own words.
    russian_item_words = {"Заявление", "сети", "к", "КНД", "Сеть", "обращается", "Комиссии", "по"}
    russian_item_words |= {"наркотическим", "средствам"}
    cyrillic = set(re.findall(r"[А-Яа-яЁё]+", text))
    assert cyrillic <= russian_item_words, cyrillic - russian_item_words

    russian = message_to(messages, "olga@example.org")
    text, html = bodies(russian)
    page = lxml_html.document_fromstring(html.encode("utf-8"))
    assert page.get("lang") == "ru"
    assert russian["Content-Language"] == "ru"
    assert russian["Subject"] == "Бюллетень Example Network — октябрь 2019"
    for words in RUSSIAN_WORDS:
        assert words.casefold() in text.casefold(), words
    assert "Здравствуйте, Ольга!" in text
    assert "Снижение вреда спасает жизни" in text and "12 октября 2019" in text
    assert "https://example.org/ru/report" in text
    assert "20 октября 2019" in text
    assert "Harm reduction saves lives" not in text
    # Nothing English but the organisation's name and the addresses.
    latin = set(re.findall(r"\b[A-Za-z]{3,}\b", re.sub(r"\S+://\S+|\S+@\S+", "", text)))
    assert latin <= {"Example", "Network", "Street", "City"}, latin
    for words in ENGLISH_WORDS:
        assert words.casefold() not in text.casefold()


def test_stage_one_runs_once_per_language_not_per_recipient(app: Newsletter, october) -> None:
    composer = Composer(app, october)
    assert composer.renders == 1
    languages = ["en", "ru", "fr", "es", "ru", "en", "de", "es", "fr"] * 20
    for number, language in enumerate(languages):
        composer.compose(Recipient(number + 1, f"r{number}@example.org", "", language))
    # en, ru, fr, es; German is not offered, so its reader gets the edition's English.
    assert composer.renders == 4


def test_per_language_subject_and_intro_fall_back_to_the_default(app: Newsletter, october) -> None:
    with app.session() as session:
        session.add(
            CampaignText(
                campaign_id=october,
                language="fr",
                subject="Le bulletin",
                intro="Bonjour à toutes et à tous.",
            )
        )
        campaign = session.get_one(Campaign, october)
        # As an edit does: the approval's snapshot would otherwise keep the approved intro.
        campaign.intro = "Welcome to October."
        campaign.snapshot = None
    french = Composer(app, october, "fr").edition
    _html, text = french.personalise(_values())
    assert french.subject == "Le bulletin"
    assert "Bonjour à toutes et à tous." in text and "Welcome to October." not in text
    assert "12 octobre 2019" in text
    spanish = Composer(app, october, "es").edition
    _html, text = spanish.personalise(_values())
    assert spanish.subject == "Boletín de Example Network — octubre de 2019"
    assert "Welcome to October." in text  # no Spanish intro: the default language's
    assert "12 de octubre de 2019" in text
    assert "En ruso" in text  # the Russian-only statement, marked in Spanish


def test_a_version_added_after_the_edition_was_built_is_used(
    app: Newsletter, october, tmp_path: Path
) -> None:
    later = write_folder(
        tmp_path / "later",
        {
            "report-fr.md": REPORT_EN.replace("language: en", "language: fr").replace(
                "title: Harm reduction saves lives", "title: La réduction des risques sauve"
            )
        },
    )
    items.import_source(app, str(later), actor="cli:test")
    with app.session() as session:
        ids = {i.title: i.id for i in session.query(Item)}
    link_items(
        app, ids["Harm reduction saves lives"], [ids["La réduction des risques sauve"]], actor="t"
    )
    _html, text = Composer(app, october, "fr").edition.personalise(_values())
    assert "La réduction des risques sauve" in text


def test_linking_refuses_two_versions_in_one_language(app: Newsletter, october) -> None:
    with app.session() as session:
        ids = {i.title: i.id for i in session.query(Item)}
    with pytest.raises(InputError, match="both in 'ru'"):
        link_items(app, ids["Harm reduction saves lives"], [ids["Заявление сети к КНД"]], actor="t")
    with pytest.raises(InputError, match="is a version of item"):
        link_items(
            app, ids["Снижение вреда спасает жизни"], [ids["Заявление сети к КНД"]], actor="t"
        )


def test_feed_entries_with_one_link_in_two_languages_are_versions(
    app: Newsletter, tmp_path
) -> None:
    feed = tmp_path / "feed.xml"
    feed.write_text(
        """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title>News</title><id>urn:feed</id><updated>2019-10-12T00:00:00Z</updated>
<entry xml:lang="en"><id>urn:1</id><title>Report out</title><link href="https://example.org/r"/>
<updated>2019-10-12T00:00:00Z</updated><summary>The report.</summary></entry>
<entry xml:lang="es"><id>urn:2</id><title>Informe publicado</title><link href="https://example.org/r"/>
<updated>2019-10-12T00:00:00Z</updated><summary>El informe.</summary></entry>
</feed>
""",
        encoding="utf-8",
    )
    items.import_source(app, str(feed), actor="cli:test")
    with app.session() as session:
        found = {i.title: (i.id, i.original_id) for i in session.query(Item)}
    assert found["Informe publicado"][1] == found["Report out"][0]
    assert found["Report out"][1] is None


def _values() -> dict[str, str]:
    return {
        "name": "",
        "greeting": "",
        "email": "r@example.org",
        "unsubscribe_url": "https://x/u",
        "preferences_url": "https://x/p",
        "view_online_url": "https://x/v",
    }


def test_items_link_command_links_and_refuses_with_one_line(
    app: Newsletter, october, run_cli
) -> None:
    with app.session() as session:
        ids = {i.title: i.id for i in session.query(Item)}
    original, statement = ids["Harm reduction saves lives"], ids["Заявление сети к КНД"]
    refused = run_cli("items", "link", str(original), str(statement))
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1 and "both in 'ru'" in refused.stderr
    assert "Traceback" not in refused.stderr
    missing = run_cli("items", "link", str(original), "9999")
    assert missing.returncode != 0 and "no item with id 9999" in missing.stderr
    shown = run_cli(
        "items", "link", str(original), str(ids["Снижение вреда спасает жизни"]), "--json"
    )
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    assert body["id"] == original
    assert [v["language"] for v in body["versions"]] == ["ru"]


def test_edition_text_command_sets_a_language_and_an_approved_edition_goes_back_to_draft(
    app: Newsletter, october, run_cli, tmp_path: Path
) -> None:
    intro = tmp_path / "intro.ru.txt"
    intro.write_text("Дорогие друзья, вот октябрьский выпуск.", encoding="utf-8")
    result = run_cli(
        "edition", "text", str(october), "--language", "ru", "--subject", "Октябрь в сети",
        "--intro-file", str(intro), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["language"] == "ru"
    with app.session() as session:
        assert session.get_one(Campaign, october).status == "draft"
    edition = Composer(app, october, "ru").edition
    _html, text = edition.personalise(_values())
    assert edition.subject == "Октябрь в сети"
    assert "Дорогие друзья, вот октябрьский выпуск." in text
    bad = run_cli("edition", "text", str(october), "--language", "12", "--subject", "x")
    assert bad.returncode == 2 and "not a language code" in bad.stderr


def test_the_web_copy_follows_the_readers_language(app: Newsletter, october) -> None:
    dispatch.send_campaign(app, october, actor="test")
    russian = message_to(outbox(app), "olga@example.org")
    text, _html = bodies(russian)
    link = re.search(r"http://localhost:8080(/v/\S+)", text)
    assert link is not None and link.group(1).endswith("?lang=ru")
    pages = make_wsgi_app(app)
    try:
        client = Client(pages)
        page = client.get(link.group(1)).get_data(as_text=True)
        assert '<html lang="ru"' in page and "Снижение вреда спасает жизни" in page
        path = link.group(1).split("?")[0]
        spanish = client.get(path, headers={"Accept-Language": "es-ES,es;q=0.9"})
        assert '<html lang="es"' in spanish.get_data(as_text=True)
        # A language the editions are not rendered in: the edition's own.
        german = client.get(path, headers={"Accept-Language": "de"}).get_data(as_text=True)
        assert '<html lang="en"' in german and "Harm reduction saves lives" in german
    finally:
        pages.close()
