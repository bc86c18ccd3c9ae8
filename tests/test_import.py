"""CSV import: every quirk of real exports, with a real file each, and the import's rules."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from newsletter import audience
from newsletter.app import bundled_path
from newsletter.audience import imports
from newsletter.errors import InputError, NotFound, OperationFailed
from newsletter.models import Base, MailingList, Subscriber, Subscription, Suppression


@pytest.fixture
def members(app) -> str:
    audience.create_list(app, "members", title="Members", actor="tester")
    return "members"


@pytest.fixture(autouse=True)
def _work_in_tmp(tmp_path, monkeypatch) -> None:
    # The command's default reject file goes to the working folder: the test's own.
    monkeypatch.chdir(tmp_path)


def write(tmp_path: Path, text: str, *, name: str = "people.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def people(app, list_name: str = "members") -> dict[str, dict]:
    """Everyone on a list: address → name, language, attributes, subscription status."""
    with app.session() as session:
        rows = session.execute(
            select(Subscriber, Subscription.status)
            .join(Subscription, Subscription.subscriber_id == Subscriber.id)
            .join(MailingList, MailingList.id == Subscription.list_id)
            .where(MailingList.name == list_name)
        )
        return {
            s.email: {
                "name": s.name,
                "language": s.language,
                "attributes": s.attributes,
                "status": status,
            }
            for s, status in rows
        }


def reject_rows(path: str | Path) -> list[list[str]]:
    with open(path, encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


# --- encodings -----------------------------------------------------------------------


def test_utf8_with_byte_order_mark(app, members, tmp_path) -> None:
    path = write(tmp_path, "email,name\nana@example.org,Ana Pérez\n", encoding="utf-8-sig")
    report = audience.import_subscribers(app, path, list_name=members, actor="tester")
    assert report.added == 1 and report.rejected == 0
    # The BOM did not end up in the first header ("\ufeffemail" would not be found).
    assert people(app) == {
        "ana@example.org": {
            "name": "Ana Pérez",
            "language": "en",
            "attributes": {},
            "status": "confirmed",
        }
    }


def test_utf16_with_byte_order_mark_tab_separated_as_excel_writes_it(app, members, tmp_path):
    text = (
        "E-mail\tName\tLanguage\r\nивана@example.org\tИван Петров\tru\r\nb@example.net\tBé\tfr\r\n"
    )
    path = write(tmp_path, text, encoding="utf-16")  # Python writes the BOM
    assert path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
    report = audience.import_subscribers(app, path, list_name=members, actor="tester")
    assert (report.added, report.rejected) == (2, 0)
    assert report.format == "UTF-16, tab-separated"
    found = people(app)
    assert found["ивана@example.org"]["name"] == "Иван Петров"
    assert found["b@example.net"]["language"] == "fr"


def test_windows_1252_when_declared(app, members, tmp_path) -> None:
    path = write(tmp_path, "email;name\nzoe@example.org;Zoë Müller–Smith\n", encoding="cp1252")
    report = audience.import_subscribers(
        app, path, list_name=members, encoding="cp1252", actor="tester"
    )
    assert report.added == 1
    assert people(app)["zoe@example.org"]["name"] == "Zoë Müller–Smith"


def test_undeclared_windows_1252_is_refused_naming_the_line_and_suggesting_encoding(
    app, members, tmp_path
) -> None:
    path = write(
        tmp_path,
        "email,name\nok@example.org,Plain\nzoe@example.org,Zoë\n",
        encoding="cp1252",
    )
    with pytest.raises(InputError) as caught:
        audience.import_subscribers(app, path, list_name=members, actor="tester")
    message = str(caught.value)
    assert "line 3 is not UTF-8" in message
    assert "--encoding cp1252" in message
    assert people(app) == {}  # not even the good row before it


def test_bad_bytes_after_many_batches_leave_nothing_written(
    app, members, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(imports, "BATCH_SIZE", 3)
    rows = "".join(f"p{i}@example.org,Person {i}\n" for i in range(20))
    path = tmp_path / "late.csv"
    path.write_bytes(b"email,name\n" + rows.encode() + b"late@example.org,Jos\xe9\n")
    with pytest.raises(InputError, match="line 22 is not UTF-8"):
        audience.import_subscribers(app, path, list_name=members, actor="tester")
    assert people(app) == {}
    assert not (tmp_path / "late-rejected.csv").exists()


def test_utf16_without_byte_order_mark_is_refused_with_a_hint(app, members, tmp_path) -> None:
    path = write(tmp_path, "email\na@example.org\n", encoding="utf-16-le")
    with pytest.raises(InputError, match="--encoding utf-16-le"):
        audience.import_subscribers(app, path, list_name=members, actor="tester")


def test_unknown_encoding_is_named(app, members, tmp_path) -> None:
    path = write(tmp_path, "email\na@example.org\n")
    with pytest.raises(InputError, match="unknown encoding 'klingon'"):
        audience.import_subscribers(
            app, path, list_name=members, encoding="klingon", actor="tester"
        )


# --- delimiters and quoting --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "described"),
    [
        ("email;name;region\na@example.org;Ann;Europe\n", "semicolon"),
        ("email\tname\tregion\na@example.org\tAnn\tEurope\n", "tab"),
        ("email,name,region\na@example.org,Ann,Europe\n", "comma"),
        ("sep=;\nemail;name;region\na@example.org;Ann;Europe\n", "semicolon"),
    ],
    ids=["semicolon", "tab", "comma", "excel-sep-line"],
)
def test_delimiters_are_sniffed(app, members, tmp_path, text, described) -> None:
    report = audience.import_subscribers(
        app, write(tmp_path, text), list_name=members, actor="tester"
    )
    assert report.added == 1 and report.format.endswith(f"{described}-separated")
    assert people(app)["a@example.org"]["attributes"] == {"region": "Europe"}


def test_quoted_fields_with_embedded_newlines_keep_line_numbers_right(
    app, members, tmp_path
) -> None:
    text = (
        "email,name,organisation\n"  # line 1
        'a@example.org,"Ann, the ""first""","Line one\nline two\nline three"\n'  # lines 2-4
        "\n"  # line 5: blank
        "not-an-address,Bob,Org\n"  # line 6
        'c@example.org,Cy,"x\r\ny"\n'  # lines 7-8
        ",,\n"  # line 9: an empty spreadsheet row
        "also bad,Dee,Org\n"  # line 10
    )
    report = audience.import_subscribers(
        app, write(tmp_path, text), list_name=members, actor="tester"
    )
    assert (report.added, report.rejected) == (2, 2)
    assert [r["line"] for r in report.rejects] == [6, 10]
    found = people(app)
    assert found["a@example.org"]["name"] == 'Ann, the "first"'
    assert found["a@example.org"]["attributes"] == {
        "organisation": "Line one\nline two\nline three"
    }
    assert found["c@example.org"]["attributes"] == {"organisation": "x\r\ny"}


# --- header aliases and columns --------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["email", "E-mail", "Email Address", "mail", "E-Mail-Adresse", "email_address", "Courriel",
     "Correo electrónico", "Электронная почта"],
)  # fmt: skip
def test_email_header_aliases(app, members, tmp_path, header) -> None:
    path = write(tmp_path, f'"{header}",Name\nx@example.org,X\n')
    assert audience.import_subscribers(app, path, list_name=members, actor="tester").added == 1


def test_first_and_last_name_columns_are_joined_and_aliases_map_fields(
    app, members, tmp_path
) -> None:
    text = (
        "Prénom;Nom;E-mail;Langue;Organization;Pays;Job Title;Interests;Member Since\n"
        "Claire;Martin;claire@example.org;Français;ARDR;France;coordinator;"
        '"harm reduction; drug policy | harm reduction";2015\n'
    )
    report = audience.import_subscribers(
        app, write(tmp_path, text), list_name=members, actor="tester"
    )
    assert report.added == 1
    assert people(app)["claire@example.org"] == {
        "name": "Claire Martin",
        "language": "fr",
        "attributes": {
            "organisation": "ARDR",
            "country": "France",
            "role": "coordinator",
            "topics": ["harm-reduction", "drug-policy"],
            "member_since": "2015",
        },
        "status": "confirmed",
    }


def test_display_name_in_the_address_cell_is_used_when_there_is_no_name(
    app, members, tmp_path
) -> None:
    path = write(tmp_path, 'email\n"Jane Doe <Jane@EXAMPLE.org>"\n')
    audience.import_subscribers(app, path, list_name=members, actor="tester")
    assert people(app)["Jane@example.org"]["name"] == "Jane Doe"


def test_a_name_with_a_line_break_is_made_one_line(app, members, tmp_path) -> None:
    path = write(tmp_path, 'email,name\na@example.org,"Evil\r\nBcc: x@example.net"\n')
    audience.import_subscribers(app, path, list_name=members, actor="tester")
    assert people(app)["a@example.org"]["name"] == "Evil Bcc: x@example.net"


def test_no_email_column_is_an_error_naming_the_header(app, members, tmp_path) -> None:
    path = write(tmp_path, "name,phone\nAnn,123\n")
    with pytest.raises(InputError) as caught:
        audience.import_subscribers(app, path, list_name=members, actor="tester")
    assert "line 1: no email column" in str(caught.value)
    assert "'name', 'phone'" in str(caught.value)


def test_two_address_columns_are_an_error(app, members, tmp_path) -> None:
    path = write(tmp_path, "email,E-mail\na@example.org,b@example.org\n")
    with pytest.raises(InputError, match="both give the email"):
        audience.import_subscribers(app, path, list_name=members, actor="tester")


def test_empty_file_is_an_error(app, members, tmp_path) -> None:
    with pytest.raises(InputError, match="empty"):
        audience.import_subscribers(app, write(tmp_path, ""), list_name=members, actor="tester")


# --- rejects ---------------------------------------------------------------------------


def test_bad_rows_go_to_the_reject_file_with_line_and_reason(
    app, members, tmp_path, monkeypatch
) -> None:
    # Batches of two, so that a duplicate is found across batches, not only within one.
    monkeypatch.setattr(imports, "BATCH_SIZE", 2)
    text = (
        "email,name,language\n"
        "ana@example.org,Ana,es\n"  # 2
        ",No Address,en\n"  # 3
        "bob@,Bob,en\n"  # 4
        "cy@example.org,Cy,en\n"  # 5
        "ANA@example.org,Ana again,es\n"  # 6: duplicate of line 2, in another batch
        "dee@example.org,Dee,klingon\n"  # 7
        "eve@example.org,Eve,en,extra\n"  # 8
        "cy@example.org,Cy twice,en\n"  # 9: duplicate of line 5
    )
    rejects = tmp_path / "people-rejected.csv"
    path = write(tmp_path, text)
    report = audience.import_subscribers(
        app, path, list_name=members, reject_path=rejects, actor="tester"
    )
    assert (report.added, report.rejected) == (2, 6)
    assert report.reject_file == str(rejects)
    rows = reject_rows(report.reject_file)
    assert rows[0] == ["rejected_line", "rejected_reason", "email", "name", "language"]
    by_line = {int(row[0]): row[1] for row in rows[1:]}
    assert list(by_line) == [3, 4, 6, 7, 8, 9]
    assert by_line[3] == "no email address"
    assert "'bob@' is not a valid email address" in by_line[4]
    assert by_line[6] == "duplicate: ANA@example.org is already on line 2"
    assert "language 'klingon' is not a language code" in by_line[7]
    assert "4 fields where the header has 3" in by_line[8]
    assert by_line[9] == "duplicate: cy@example.org is already on line 5"
    assert rows[2][2:] == ["bob@", "Bob", "en"]  # the row as it was
    assert (tmp_path / "people-rejected.csv").stat().st_mode & 0o077 == 0
    assert set(people(app)) == {"ana@example.org", "cy@example.org"}


def test_a_fixed_reject_file_imports_as_it_is(app, members, tmp_path) -> None:
    path = write(tmp_path, "email,name\nann@example,Ann\nbob@example.org,Bob\n")
    report = audience.import_subscribers(
        app, path, list_name=members, reject_path=tmp_path / "rejected.csv", actor="tester"
    )
    fixed = reject_rows(report.reject_file)
    fixed[1][2] = "ann@example.org"
    with open(tmp_path / "fixed.csv", "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(fixed)
    again = audience.import_subscribers(
        app, tmp_path / "fixed.csv", list_name=members, actor="tester"
    )
    assert (again.added, again.rejected) == (1, 0)
    assert people(app)["ann@example.org"]["attributes"] == {}  # the extra columns ignored


def test_no_reject_file_when_nothing_is_rejected(app, members, tmp_path) -> None:
    rejects = tmp_path / "people-rejected.csv"
    path = write(tmp_path, "email\na@example.org\n")
    report = audience.import_subscribers(
        app, path, list_name=members, reject_path=rejects, actor="tester"
    )
    assert report.reject_file is None
    assert not rejects.exists()


def test_without_a_reject_path_the_service_writes_no_file(app, members, tmp_path) -> None:
    # Only the command picks a default place; a program calling the service decides.
    path = write(tmp_path, "email\nbroken\n")
    report = audience.import_subscribers(app, path, list_name=members, actor="tester")
    assert report.rejected == 1 and report.reject_file is None
    assert report.rejects == [{"line": 2, "reason": report.rejects[0]["reason"]}]
    assert not list(tmp_path.glob("*rejected*"))


# --- the rules -------------------------------------------------------------------------


def test_never_resubscribes_someone_who_left_the_list(app, members, tmp_path) -> None:
    path = write(tmp_path, "email\nleft@example.org\nstays@example.org\n")
    audience.import_subscribers(app, path, list_name=members, actor="tester")
    # On a second list too, so that leaving members is leaving one list, not everything.
    audience.create_list(app, "partners", actor="tester")
    audience.add_subscriber(app, "left@example.org", "partners", actor="tester")
    audience.unsubscribe_address(app, "left@example.org", list_name=members, actor="tester")

    report = audience.import_subscribers(
        app, path, list_name=members, mode="update", actor="tester"
    )
    assert (report.added, report.unchanged, report.skipped) == (0, 1, 1)
    assert "unsubscribed from list 'members'" in report.rejects[0]["reason"]
    assert people(app)["left@example.org"]["status"] == "unsubscribed"


def test_never_resubscribes_someone_who_left_everything(app, members, tmp_path) -> None:
    path = write(tmp_path, "email\nleft@example.org\n")
    audience.import_subscribers(app, path, list_name=members, actor="tester")
    audience.unsubscribe_address(
        app, "left@example.org", list_name=members, actor="tester"
    )  # the only list
    audience.create_list(app, "partners", actor="tester")
    report = audience.import_subscribers(app, path, list_name="partners", actor="tester")
    assert (report.added, report.skipped) == (0, 1)
    assert "suppressed (unsubscribed)" in report.rejects[0]["reason"]


def test_never_resubscribes_a_suppressed_address_even_one_never_seen(
    app, members, tmp_path
) -> None:
    audience.suppression.suppress_address(app, "Bounced@Example.org", "hard_bounce", actor="tester")
    path = write(tmp_path, "email\nbounced@example.org\n")
    report = audience.import_subscribers(app, path, list_name=members, actor="tester")
    assert (report.added, report.skipped) == (0, 1)
    assert "suppressed (hard_bounce)" in report.rejects[0]["reason"]
    with app.session() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_force_resubscribe_lifts_the_obstacle_and_records_it(app, members, tmp_path) -> None:
    path = write(tmp_path, "email\nleft@example.org\nblocked@example.org\n")
    audience.import_subscribers(app, path, list_name=members, actor="tester")
    audience.create_list(app, "partners", actor="tester")
    audience.add_subscriber(app, "left@example.org", "partners", actor="tester")
    audience.unsubscribe_address(app, "left@example.org", list_name=members, actor="tester")
    audience.suppression.suppress_address(app, "blocked@example.org", "manual", actor="tester")

    report = audience.import_subscribers(
        app,
        path,
        list_name=members,
        force_resubscribe=True,
        consent_text="Signed form, 2024",
        actor="tester",
    )
    assert (report.added, report.forced, report.skipped) == (2, 2, 0)
    found = people(app)
    assert found["left@example.org"]["status"] == "confirmed"
    with app.session() as session:
        notes = dict(
            session.execute(
                select(Subscriber.email, Subscription.consent_note)
                .join(Subscription)
                .join(MailingList)
                .where(MailingList.name == members)
            ).all()
        )
        assert session.scalar(select(func.count()).select_from(Suppression)) == 0
        blocked = session.scalar(select(Subscriber).where(Subscriber.email_key.like("blocked%")))
        assert blocked.status == "active"
    assert "--force-resubscribe over: unsubscribed from list 'members'" in notes["left@example.org"]
    assert "the import of people.csv" in notes["left@example.org"]
    assert "suppressed (manual)" in notes["blocked@example.org"]


def test_dry_run_writes_nothing(app, members, tmp_path) -> None:
    audience.import_subscribers(
        app, write(tmp_path, "email\nold@example.org\n"), list_name=members, actor="tester"
    )
    before = table_counts(app)
    text = "email,region\nnew@example.org,Asia\nold@example.org,Asia\nbad\n"
    path = write(tmp_path, text, name="next.csv")
    report = audience.import_subscribers(
        app, path, list_name=members, mode="sync", dry_run=True, actor="tester"
    )
    assert (report.added, report.updated, report.rejected) == (1, 1, 1)
    assert table_counts(app) == before
    assert not (tmp_path / "next-rejected.csv").exists()
    assert people(app)["old@example.org"]["attributes"] == {}


def table_counts(app) -> dict[str, int]:
    with app.session() as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table))
            for table in Base.metadata.sorted_tables
        }


def test_add_leaves_existing_people_alone_and_update_changes_them(app, members, tmp_path):
    first = "email,name,language,region,topics\nann@example.org,Ann,en,Asia,HIV\n"
    audience.import_subscribers(app, write(tmp_path, first), list_name=members, actor="tester")
    second = "email,name,language,region,country\nann@example.org,Ann Lee,fr,Europe,France\n"
    path = write(tmp_path, second, name="second.csv")

    added = audience.import_subscribers(app, path, list_name=members, actor="tester")
    assert (added.added, added.updated, added.unchanged) == (0, 0, 1)
    assert people(app)["ann@example.org"]["name"] == "Ann"

    updated = audience.import_subscribers(
        app, path, list_name=members, mode="update", actor="tester"
    )
    assert (updated.added, updated.updated, updated.unchanged) == (0, 1, 0)
    assert people(app)["ann@example.org"] == {
        "name": "Ann Lee",
        "language": "fr",
        "attributes": {"region": "Europe", "topics": ["hiv"], "country": "France"},
        "status": "confirmed",
    }
    again = audience.import_subscribers(app, path, list_name=members, mode="update", actor="tester")
    assert (again.updated, again.unchanged) == (0, 1)


def test_sync_unsubscribes_members_missing_from_the_file(app, members, tmp_path) -> None:
    audience.create_list(app, "partners", actor="tester")
    everyone = "email\na@example.org\nb@example.org\nc@example.org\n"
    audience.import_subscribers(app, write(tmp_path, everyone), list_name=members, actor="tester")
    audience.import_subscribers(
        app, write(tmp_path, everyone), list_name="partners", actor="tester"
    )
    path = write(tmp_path, "email\na@example.org\nd@example.org\n", name="now.csv")
    report = audience.import_subscribers(app, path, list_name=members, mode="sync", actor="tester")
    assert (report.added, report.unchanged, report.removed) == (1, 1, 2)
    statuses = {email: p["status"] for email, p in people(app).items()}
    assert statuses == {
        "a@example.org": "confirmed",
        "b@example.org": "unsubscribed",
        "c@example.org": "unsubscribed",
        "d@example.org": "confirmed",
    }
    # Other lists are not touched, and nobody is deleted.
    assert {p["status"] for p in people(app, "partners").values()} == {"confirmed"}


def test_sync_with_no_valid_row_refuses_to_empty_the_list(app, members, tmp_path) -> None:
    audience.import_subscribers(
        app, write(tmp_path, "email\na@example.org\n"), list_name=members, actor="tester"
    )
    path = write(tmp_path, "email\nnot an address\n", name="broken.csv")
    with pytest.raises(InputError, match="refusing to sync"):
        audience.import_subscribers(app, path, list_name=members, mode="sync", actor="tester")
    assert people(app)["a@example.org"]["status"] == "confirmed"


def test_import_confirms_on_a_double_opt_in_list_unless_told_otherwise(
    app, members, tmp_path
) -> None:
    path = write(tmp_path, "email\na@example.org\n")
    audience.create_list(app, "waiting", optin="double", actor="tester")
    audience.import_subscribers(app, path, list_name="waiting", unconfirmed=True, actor="tester")
    assert people(app, "waiting")["a@example.org"]["status"] == "unconfirmed"
    # The admin now vouches for the consent: the waiting subscription is confirmed.
    report = audience.import_subscribers(app, path, list_name="waiting", actor="tester")
    assert report.updated == 1
    assert people(app, "waiting")["a@example.org"]["status"] == "confirmed"


def test_consent_record_names_the_method_file_time_and_wording(app, members, tmp_path):
    path = write(tmp_path, "email\na@example.org\n", name="conference.csv")
    audience.import_subscribers(
        app, path, list_name=members, consent_text="Ticked 'send me the bulletin'", actor="tester"
    )
    with app.session() as session:
        sub = session.scalar(select(Subscription))
        assert (sub.consent_method, sub.consent_source) == ("import", "conference.csv")
        assert sub.consent_text == "Ticked 'send me the bulletin'"
        assert sub.consent_at is not None and sub.consent_ip is None


def test_the_list_must_exist(app, tmp_path) -> None:
    path = write(tmp_path, "email\na@example.org\n")
    with pytest.raises(NotFound, match="lists create members"):
        audience.import_subscribers(app, path, list_name="members", actor="tester")


def test_export_then_import_round_trips(app, members, tmp_path) -> None:
    text = (
        "email,name,language,region,topics\n"
        'a@example.org,Ann,ru,Eurasia,"HIV; drug policy"\nb@example.org,Bob,en,,\n'
    )
    audience.import_subscribers(app, write(tmp_path, text), list_name=members, actor="tester")
    out = tmp_path / "export.csv"
    with open(out, "w", encoding="utf-8", newline="") as handle:
        assert audience.export_subscribers(app, handle, list_name=members) == 2
    audience.create_list(app, "copy", actor="tester")
    report = audience.import_subscribers(app, out, list_name="copy", actor="tester")
    assert (report.unchanged, report.added, report.rejected) == (0, 2, 0)
    assert people(app, "copy") == people(app, "members")


def test_sample_lists_import_cleanly(app) -> None:
    samples = bundled_path("subscribers")
    for name, expected in (("members", 24), ("partners", 16)):
        audience.ensure_list(app, name, actor="tester")
        report = audience.import_subscribers(
            app, samples / f"{name}.csv", list_name=name, actor="tester"
        )
        assert (report.added, report.rejected, report.skipped) == (expected, 0, 0)
        assert {p["language"] for p in people(app, name).values()} == {"en", "ru", "fr", "es"}


# --- the command -----------------------------------------------------------------------


def test_cli_import_prints_the_summary_and_the_reject_file(run_cli, tmp_path) -> None:
    assert run_cli("lists", "create", "members").returncode == 0
    write(tmp_path, "email;name\nann@example.org;Ann\nbroken;Bob\n", name="in.csv")
    result = run_cli("subscribers", "import", "in.csv", "--list", "members")
    assert result.returncode == 0, result.stderr
    assert "in.csv (UTF-8, semicolon-separated) into members" in result.stdout
    assert "2 rows: 1 added, 0 updated, 0 unchanged, 0 skipped, 1 rejected" in result.stdout
    assert "line 3: 'broken' is not a valid email address" in result.stdout
    assert str(tmp_path / "in-rejected.csv") in result.stdout

    again = run_cli("subscribers", "import", "in.csv", "--list", "members", "--dry-run", "--json")
    assert json.loads(again.stdout)["unchanged"] == 1


def test_cli_import_errors_are_exit_2_without_traceback(run_cli, tmp_path) -> None:
    write(tmp_path, "email\nzoé@example.org\n", name="latin.csv", encoding="cp1252")
    no_list = run_cli("subscribers", "import", "latin.csv", "--list", "members")
    assert no_list.returncode == 2
    assert "no list named 'members'" in no_list.stderr
    run_cli("lists", "create", "members")
    bad = run_cli("subscribers", "import", "latin.csv", "--list", "members")
    assert bad.returncode == 2
    assert "latin.csv: line 2 is not UTF-8" in bad.stderr and "Traceback" not in bad.stderr
    missing = run_cli("subscribers", "import", "nowhere.csv", "--list", "members")
    assert missing.returncode == 2 and "nowhere.csv: file not found" in missing.stderr
    good = run_cli(
        "subscribers", "import", "latin.csv", "--list", "members", "--encoding", "cp1252"
    )
    assert good.returncode == 0 and "1 added" in good.stdout


def test_an_address_added_meanwhile_by_another_process_fails_the_import_cleanly(
    app, members, tmp_path, monkeypatch
) -> None:
    path = write(tmp_path, "email\na@example.org\nb@example.org\n")
    looked_up = imports.suppressed_among

    def and_meanwhile(session, hashes):
        # Between the look-up of existing subscribers and the insert, b arrives.
        session.add(Subscriber(email="b@example.org", email_key="b@example.org"))
        session.flush()
        return looked_up(session, hashes)

    monkeypatch.setattr(imports, "suppressed_among", and_meanwhile)
    with pytest.raises(OperationFailed, match="run the import again"):
        audience.import_subscribers(app, path, list_name=members, actor="tester")
    with app.session() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 0


# --- the planner after a large import ---------------------------------------------------


def test_a_large_import_leaves_the_planner_knowing_the_tables_size(
    app, members, tmp_path, monkeypatch
) -> None:
    """After an import that adds many rows, PostgreSQL's statistics say how large the tables
    are, so the next import's lookups are planned for that size (not as nested loops over
    a table believed empty); a smaller import, and SQLite, leave them alone."""
    monkeypatch.setattr(imports, "ANALYZE_AFTER", 50)
    audience.import_subscribers(
        app, write(tmp_path, "email\n" + "".join(f"a{i}@example.org\n" for i in range(49))),
        list_name=members, actor="tester",
    )  # fmt: skip
    if app.engine.dialect.name != "postgresql":
        assert len(people(app)) == 49
        return

    def planner_rows() -> float:
        with app.engine.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE oid = 'subscribers'::regclass"
            ).scalar_one()

    assert planner_rows() <= 0  # never analysed: the planner guesses
    audience.import_subscribers(
        app, write(tmp_path, "email\n" + "".join(f"b{i}@example.org\n" for i in range(60)),
                   name="more.csv"),
        list_name=members, actor="tester",
    )  # fmt: skip
    assert planner_rows() == 109
