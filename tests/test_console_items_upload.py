"""Importing a folder of Markdown files from the console: several files, a picked
folder, or a .zip, through the same service as `newsletter items import FOLDER`."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from consolekit import make_staff, signed_in

from newsletter import items as items_service
from newsletter import staff
from newsletter.app import Newsletter
from newsletter.items import uploads

FOLDER = Path(__file__).parent / "data" / "items" / "markdown"
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staff, "_hasher", lambda: CHEAP_HASHER)


def folder_files(prefix: str = "posts/") -> list[tuple[str, bytes]]:
    return [
        (prefix + path.relative_to(FOLDER).as_posix(), path.read_bytes())
        for path in sorted(FOLDER.rglob("*"))
        if path.is_file()
    ]


def as_zip(files: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files:
            archive.writestr(name, data)
    return buffer.getvalue()


def post(app: Newsletter, **fields: object) -> tuple[int, str]:
    if not any(user.email == "editor@example.org" for user in staff.list_users(app)):
        make_staff(app, ("editor",))
    response = signed_in(app, "editor").post(
        "/admin/items/import-folder", fields, content_type="multipart/form-data"
    )
    return response.status_code, response.get_data(as_text=True)


@pytest.mark.parametrize("how", ["files", "folder", "zip"])
def test_an_upload_imports_what_the_folder_import_does(make_app, how: str) -> None:
    by_upload = make_app()
    files = folder_files()
    if how == "zip":
        fields = {"files": (io.BytesIO(as_zip(files)), "posts.zip")}
    else:
        fields = {how: [(io.BytesIO(data), name) for name, data in files]}
    status, page = post(by_upload, **fields)
    assert status == 200, page[:2000]
    by_cli = (
        make_app({"database": {"url": f"sqlite:///{FOLDER.parent}/unused.db"}}) if False else None
    )
    del by_cli
    assert "upload:posts (markdown)" in page
    added = int(page.split("(markdown): ")[1].split(" added")[0])
    listed = items_service.list_items(by_upload)
    assert added == len(listed) > 0
    # The problems name the uploaded files, never the temporary folder.
    assert "broken.md" in page and "/tmp" not in page and "newsletter-items-" not in page


def test_the_same_folder_from_the_command_line_gives_the_same_items(app: Newsletter) -> None:
    make_staff(app, ("editor",))
    console = signed_in(app, "editor")
    fields = {"files": [(io.BytesIO(data), name) for name, data in folder_files()]}
    first = console.post("/admin/items/import-folder", fields, content_type="multipart/form-data")
    assert first.status_code == 200
    titles = sorted(item.title for item in items_service.list_items(app))
    report = items_service.import_source(app, str(FOLDER), actor="cli:test")
    assert report.added == 0  # the command line finds every uploaded item
    assert sorted(item.title for item in items_service.list_items(app)) == titles
    again = console.post(
        "/admin/items/import-folder",
        {"files": [(io.BytesIO(data), name) for name, data in folder_files()]},
        content_type="multipart/form-data",
    )
    assert " 0 added" in again.get_data(as_text=True)


@pytest.mark.parametrize(
    "member",
    ["../evil.md", "/etc/evil.md", "posts/../../evil.md", "C:/evil.md", "..\\\\evil.md"],
)
def test_a_zip_member_pointing_outside_the_folder_is_refused(app: Newsletter, member: str) -> None:
    data = as_zip([("posts/good.md", b"---\ntitle: Good\ndate: 2019-06-01\n---\nText.\n"),
                   (member, b"---\ntitle: Evil\n---\n")])  # fmt: skip
    status, page = post(app, files=(io.BytesIO(data), "posts.zip"))
    assert status == 400
    assert "points outside the folder" in page and 'aria-invalid="true"' in page
    assert items_service.list_items(app) == []


def test_size_limits_hold_whatever_a_zip_declares(
    app: Newsletter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploads, "MAX_FILE_BYTES", 1000)
    data = as_zip([("big.md", b"---\ntitle: Big\n---\n" + b"x" * 5000)])
    status, page = post(app, files=(io.BytesIO(data), "big.zip"))
    assert status == 400 and "larger than" in page
    monkeypatch.setattr(uploads, "MAX_FILES", 2)
    many = [(f"p{n}.md", b"---\ntitle: P\n---\n") for n in range(3)]
    status, page = post(app, files=(io.BytesIO(as_zip(many)), "many.zip"))
    assert status == 400 and "more than 2 Markdown files" in page


def test_clear_errors_for_nothing_useful(app: Newsletter) -> None:
    status, page = post(app)
    assert status == 400 and "choose Markdown files" in page
    status, page = post(app, files=(io.BytesIO(b"not a zip"), "posts.zip"))
    assert status == 400 and "not a readable .zip file" in page
    status, page = post(app, files=[(io.BytesIO(b"a,b\n"), "people.csv")])
    assert status == 400 and "no Markdown (.md) file" in page and "people.csv" in page
