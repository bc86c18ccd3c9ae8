"""CSV import: display names in any script, in every encoding the import reads.

Runs on SQLite, and on PostgreSQL too when NEWSLETTER_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter import audience
from newsletter.audience.addresses import InvalidAddress, normalise_address
from newsletter.models import Subscriber

LATIN = 'email,name\n"José Núñez <Jose@Example.es>",\n'
# A quoted name, as some address books write it: the CSV cell is "Пётр" <petr@…>.
CYRILLIC = 'email,name\n"Анна Иванова <anna@example.ru>",\n"""Пётр"" <petr@example.ru>",\n'
BOTH = LATIN + CYRILLIC.split("\n", 1)[1]


@pytest.mark.parametrize(
    ("encoding", "declared", "text"),
    [
        ("utf-8", None, BOTH),
        ("utf-8-sig", None, BOTH),
        ("utf-16", None, BOTH),
        ("cp1252", "cp1252", LATIN),
        ("latin-1", "latin-1", LATIN),
        ("cp1251", "cp1251", CYRILLIC),
        ("koi8-r", "koi8-r", CYRILLIC),
    ],
)
def test_display_names_in_any_script_are_kept(
    app, tmp_path: Path, encoding: str, declared: str | None, text: str
) -> None:
    audience.create_list(app, "members", actor="cli:t")
    path = tmp_path / f"{encoding}.csv"
    path.write_bytes(text.encode(encoding))
    report = audience.import_subscribers(
        app, path, list_name="members", encoding=declared, actor="cli:t"
    )
    assert report.rejected == 0
    with app.session() as session:
        names = dict(session.execute(select(Subscriber.email, Subscriber.name)).all())
    expected = {}
    if "José" in text:
        expected["Jose@example.es"] = "José Núñez"
    if "Анна" in text:
        expected |= {"anna@example.ru": "Анна Иванова", "petr@example.ru": "Пётр"}
    assert names == expected


def test_a_name_with_a_bad_address_is_still_refused() -> None:
    with pytest.raises(InvalidAddress, match="not a valid email address"):
        normalise_address("José <jose@>", allow_display_name=True)
    with pytest.raises(InvalidAddress):
        normalise_address("José <jose@example.es>")
    assert normalise_address("<ana@example.org>", allow_display_name=True).display_name == ""
