"""CSV import: the outcome never depends on where the file is cut into batches.

The import reads, validates and writes a file in batches (and reads the next
batch in a thread while writing one). Whatever the batch size, the same file
into the same state must give the same counts, the same reject file, in the
order of the file, and the same members: a duplicate in a later batch, a bad row
in the middle of one, a suppressed or departed address anywhere.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest

from newsletter import audience
from newsletter.audience import imports
from tests.test_import import people

BATCH_SIZES = (1, 2, 3, 7, 10_000)
ADDRESSES = [f"p{i}@example.org" for i in range(12)] + ["sup@example.org", "left@example.org"]
BAD_ADDRESSES = ["", "bob@", "not an address", "a@@example.org"]
LANGUAGES = ["", "en", "RU", "fr_FR", "Spanish", "klingon"]


def random_file(path: Path, rng: random.Random, rows: int) -> None:
    """A file where every rule of the import has a chance to meet a batch boundary."""
    lines = ["email,name,language,topics"]
    for n in range(rows):
        roll = rng.random()
        if roll < 0.15:
            address = rng.choice(BAD_ADDRESSES)
        else:
            address = rng.choice(ADDRESSES)
            # Another spelling of the same address: a duplicate all the same.
            address = address.upper() if rng.random() < 0.2 else address
        topics = rng.choice(["", "HIV", "harm reduction; HIV", "Drug policy | hiv"])
        line = f"{address},Person {n},{rng.choice(LANGUAGES)},{topics}"
        if rng.random() < 0.05:
            line += ",one field too many"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def rejects_of(path: str | None, list_name: str) -> list[list[str]]:
    if path is None:
        return []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))
    # The only place a list's name shows: "unsubscribed from list 'x'".
    return [[cell.replace(repr(list_name), "'LIST'") for cell in row] for row in rows]


@pytest.mark.parametrize("seed", range(4))
def test_any_batch_size_gives_the_same_import(app, tmp_path, monkeypatch, seed) -> None:
    rng = random.Random(seed)
    source = tmp_path / "people.csv"
    random_file(source, rng, rows=rng.randint(20, 60))
    audience.suppression.suppress_address(app, "sup@example.org", "hard_bounce", actor="tester")

    # left@ left each list the file goes to, but stays on another (leaving them all
    # would suppress the address).
    audience.create_list(app, "other", actor="tester")
    audience.add_subscriber(app, "left@example.org", "other", actor="tester")
    for size in BATCH_SIZES:
        audience.create_list(app, f"list-{size}", actor="tester")
        audience.add_subscriber(app, "left@example.org", f"list-{size}", actor="tester")
        audience.unsubscribe_address(
            app, "left@example.org", list_name=f"list-{size}", actor="tester"
        )

    outcomes = []
    for size in BATCH_SIZES:
        list_name = f"list-{size}"
        monkeypatch.setattr(imports, "BATCH_SIZE", size)
        report = audience.import_subscribers(
            app,
            source,
            list_name=list_name,
            reject_path=tmp_path / f"rejected-{size}.csv",
            actor="tester",
        )
        rejected = rejects_of(report.reject_file, list_name)
        lines = [int(row[0]) for row in rejected[1:]]
        # Every row is counted once, and the reject file follows the file's order.
        assert report.rows == sum(report.counts().values())
        assert lines == sorted(lines) and len(lines) == len(set(lines))
        assert len(lines) == report.rejected + report.skipped
        outcomes.append((report.counts(), report.rows, rejected, people(app, list_name)))

    first = outcomes[0]
    assert first[0]["added"] > 0 and first[0]["rejected"] > 0  # the file tests something
    for size, outcome in zip(BATCH_SIZES[1:], outcomes[1:], strict=True):
        assert outcome == first, f"batches of {size} differ from batches of {BATCH_SIZES[0]}"
