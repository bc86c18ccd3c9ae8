"""Item kinds on text the rules were not written from: a corpus of first sentences in
en, fr, es and ru (tests/data/kinds.tsv), written after the rules, with a held-out share
that was not read while the rules were tuned. Kinds stay editable across re-imports."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from newsletter import items
from newsletter.items.classify import infer_kind, is_tribute

CORPUS = Path(__file__).parent / "data" / "kinds.tsv"
KINDS = {"tribute", "statement", "report", "news"}
LANGUAGES = {"en", "fr", "es", "ru"}


def corpus() -> list[tuple[str, str, str, str]]:
    rows = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            split, language, kind, sentence = line.split("\t")
            rows.append((split, language, kind, sentence))
    return rows


def accuracy(split: str) -> tuple[int, int, list[str]]:
    rows = [r for r in corpus() if r[0] == split]
    misses = [
        f"{language} {kind} → {infer_kind('', sentence)}: {sentence}"
        for _, language, kind, sentence in rows
        if infer_kind("", sentence) != kind
    ]
    return len(rows) - len(misses), len(rows), misses


def test_the_corpus_covers_every_kind_in_every_language_in_both_shares() -> None:
    rows = corpus()
    assert len(rows) >= 60
    for split in ("design", "heldout"):
        cells = Counter((language, kind) for s, language, kind, _ in rows if s == split)
        assert set(cells) == {(lang, kind) for lang in LANGUAGES for kind in KINDS}, split
    held_out = sum(1 for row in rows if row[0] == "heldout")
    assert held_out >= len(rows) // 3


def test_accuracy_on_the_design_share() -> None:
    # Measured: 53 of 53.
    right, total, misses = accuracy("design")
    assert right / total >= 0.95, misses


def test_accuracy_on_the_held_out_share() -> None:
    # Measured once the rules were frozen: 34 of 35 (97%); the miss is a letter described
    # without the word ("have written to the Secretary-General asking for…").
    right, total, misses = accuracy("heldout")
    assert right / total >= 0.9, misses


def test_deaths_in_the_news_are_not_tributes() -> None:
    for sentence in (
        "Three people died in police custody this month.",
        "Overdose deaths rose by a third, the ministry says.",
        "Le gouvernement regrette la décision du tribunal.",
        "La muerte de dos jóvenes reabre el debate sobre la ley.",
        "Смертность от передозировок выросла на треть.",
        "The late 1990s saw the first needle exchanges open.",
    ):
        assert not is_tribute(sentence), sentence
    # Feeds that lost their accents still say it.
    assert is_tribute("Mireille nous a quittes le 12 fevrier, notre amie de toujours.")


def write_posts(folder: Path, anna: str, report: str) -> str:
    """A Markdown folder of two posts whose front matter names no kind."""
    folder.mkdir(exist_ok=True)
    (folder / "anna.md").write_text(f"---\ntitle: Anna Berg\ndate: 2019-06-03\n---\n{anna}\n")
    (folder / "prisons.md").write_text(
        f"---\ntitle: Prisons and health\ndate: 2019-06-10\n---\n{report}\n"
    )
    return str(folder)


def test_an_edited_kind_survives_reimport_and_an_inferred_one_follows_the_source(
    app, tmp_path: Path
) -> None:
    folder = tmp_path / "posts"
    source = write_posts(
        folder,
        "Sad news: our friend and colleague Anna Berg has left us after a long illness.",
        "Our new report on prisons and health is out today, in ten chapters.",
    )
    imported = items.import_source(app, source, actor="cli:test")
    by_title = {items.get_item(app, i).title: i for i in imported.item_ids}
    anna, prisons = by_title["Anna Berg"], by_title["Prisons and health"]
    assert items.get_item(app, anna).kind == "tribute"
    assert items.get_item(app, prisons).kind == "report"
    # Staff disagree with the rule about the second item.
    edited = items.edit_item(app, prisons, kind="news", actor="tester")
    assert (edited.item.kind, edited.item.kind_origin) == ("news", "edited")

    # The source changes both items' words: the inferred kind follows, the edited one stays.
    write_posts(
        folder,
        "Anna Berg begins a tour to present our open letter to health ministers.",
        "Our new report on prisons and health is out today, now in twelve chapters.",
    )
    again = items.import_source(app, source, actor="cli:test")
    assert again.added == 0 and again.updated == 2
    assert items.get_item(app, anna).kind == "statement"
    assert items.get_item(app, prisons).kind == "news"
    assert items.get_item(app, prisons).kind_origin == "edited"
