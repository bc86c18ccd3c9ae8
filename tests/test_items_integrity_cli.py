"""`newsletter items import --encoding`, `items merge`, `items delete`, `items edit
--apply-to-campaigns`: the real command against SQLite (and PostgreSQL when set)."""

from __future__ import annotations

import json
from pathlib import Path

PAGE = """\
Juin 2019

Réunion des réseaux à Vienne pour préparer l'année.

Mai 2019

Nous pleurons Ana, amie du réseau depuis vingt ans.
"""


def test_import_with_encoding_reads_a_windows_listing(run_cli, tmp_path: Path) -> None:
    source = tmp_path / "news.txt"
    source.write_bytes(PAGE.encode("cp1252"))
    plain = run_cli("items", "import", str(source))
    assert plain.returncode == 2
    assert "not valid UTF-8" in plain.stderr and "--encoding" in plain.stderr
    read = run_cli("items", "import", str(source), "--encoding", "cp1252", "--json")
    assert read.returncode == 0, read.stderr
    assert json.loads(read.stdout)["added"] == 2
    titles = {row["title"] for row in json.loads(run_cli("items", "list", "--json").stdout)}
    assert "Réunion des réseaux à Vienne pour préparer l'année" in titles
    unknown = run_cli("items", "import", str(source), "--encoding", "klingon")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "error: --encoding 'klingon' is not an encoding Python knows"


def test_merge_delete_and_edit_warnings(run_cli, tmp_path: Path) -> None:
    source = tmp_path / "news.txt"
    source.write_text(PAGE, encoding="utf-8")
    run_cli("items", "import", str(source))
    source.write_text(PAGE.replace("Nous pleurons Ana", "Avec tristesse, nous pleurons notre Ana"))
    again = json.loads(run_cli("items", "import", str(source), "--json").stdout)
    (alike,) = again["look_alikes"]
    assert alike["looks_like"] == 2

    merged = run_cli("items", "merge", "2", str(alike["id"]))
    assert merged.returncode == 0, merged.stderr
    assert merged.stdout.startswith(f"Item {alike['id']} merged into item 2")
    assert json.loads(run_cli("items", "import", str(source), "--json").stdout)["added"] == 0

    run_cli("lists", "create", "members")
    built = json.loads(run_cli("edition", "new", "--month", "2019-05", "--json").stdout)
    run_cli("approve", str(built["id"]))
    refused = run_cli("items", "delete", "2")
    assert refused.returncode == 2
    assert f"item 2 is in campaign {built['id']} (approved)" in refused.stderr
    edited = run_cli("items", "edit", "2", "--title", "Ana")
    assert edited.returncode == 0
    assert f"warning: campaign {built['id']} was approved before this edit" in edited.stderr
    applied = run_cli("items", "edit", "2", "--title", "Ana", "--apply-to-campaigns", "--json")
    assert json.loads(applied.stdout)["reopened_campaigns"] == [built["id"]]
    deleted = run_cli("items", "delete", "1", "--json")
    assert json.loads(deleted.stdout)["id"] == 1
    assert json.loads(deleted.stdout)["drafts"] == []
    assert [r["id"] for r in json.loads(run_cli("items", "list", "--json").stdout)] == [2]
    missing = run_cli("items", "merge", "2", "99")
    assert missing.returncode == 2 and missing.stderr.strip() == "error: no item with id 99"
