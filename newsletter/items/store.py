"""Writing parsed items: insert the new, update the changed, leave staff edits alone.

A re-import finds an item by its identity (rule in `identity`): exactly, else,
for a title identity, by a similar title of the same month. A field staff
changed with `edit_item` is listed in `Item.edited_fields` and a re-import never
writes it; changing the kind by hand also freezes `kind_origin`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from newsletter.items import identity as identities
from newsletter.items.parsed import Problem
from newsletter.items.queries import identities_of_month, items_by_identity
from newsletter.models.items import Item, ItemIdentity

# The fields a source provides, so the ones a re-import may update.
SOURCE_FIELDS = (
    "kind",
    "kind_origin",
    "title",
    "date",
    "date_is_month",
    "summary",
    "body_html",
    "body_text",
    "link",
    "link_text",
    "language",
    "tags",
    "translation_key",
    "image",
    "image_alt",
    "image_width",
    "image_height",
)


@dataclass
class StoredRow:
    """One parsed item ready for the table: its values and how to recognise it."""

    values: dict[str, Any]
    identity: str
    # The normalised title and month its title identity compares (see `identity`).
    title_words: str
    month: str
    # The month came from the source; else the title is matched in any month.
    dated_by_source: bool
    where: str


@dataclass(frozen=True)
class LookAlike:
    """An item added as new that resembles a stored one: staff decide with `items merge`."""

    item_id: int
    like_id: int
    title: str
    like_title: str
    similarity: float


@dataclass
class ImportReport:
    """What an import did: counts, the ids of the source's items, and the problems met."""

    source: str
    source_type: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    item_ids: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    look_alikes: list[LookAlike] = field(default_factory=list)

    @property
    def imported(self) -> int:
        """Items of the source now in the database, whether new, updated or unchanged."""
        return self.added + self.updated + self.unchanged

    # A mapping: the --json document, whose names (id, looks_like) are not the fields'.
    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "source_type": self.source_type,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "item_ids": list(self.item_ids),
            "problems": [p.as_dict() for p in self.problems],
            "look_alikes": [
                {"id": a.item_id, "looks_like": a.like_id, "similarity": round(a.similarity, 2)}
                for a in self.look_alikes
            ],
        }


def _frozen(item: Item) -> set[str]:
    frozen = set(item.edited_fields or [])
    if "kind" in frozen:
        frozen.add("kind_origin")
    if "date" in frozen:
        frozen.add("date_is_month")
    return frozen


class _Matcher:
    """Finds the stored item a row stands for; one query per month met, not per row."""

    def __init__(self, session: Session, rows: list[StoredRow]) -> None:
        self.session = session
        self.exact = items_by_identity(session, [row.identity for row in rows])
        self.taken: set[int] = set()
        self._months: dict[str | None, list[tuple[str, int]]] = {}

    def _titles(self, month: str | None) -> list[tuple[str, int]]:
        if month not in self._months:
            self._months[month] = identities_of_month(self.session, month)
        return self._months[month]

    def find(self, row: StoredRow) -> tuple[Item | None, tuple[int, float] | None]:
        """(the stored item, None) or (None, (a look-alike's id, similarity) or None)."""
        item = self.exact.get(row.identity)
        if item is not None and item.id not in self.taken:
            return item, None
        if row.identity.startswith("guid:") or not row.title_words:
            return None, None
        best: tuple[int, float] | None = None
        month = row.month if row.dated_by_source else None
        for stored, item_id in self._titles(month):
            if item_id in self.taken:
                continue
            key = identities.title_key(stored)
            if key is None:
                continue
            ratio = identities.similarity(row.title_words, key.words)
            if best is None or ratio > best[1]:
                best = (item_id, ratio)
        if best is not None and best[1] >= identities.SAME:
            return self.session.get_one(Item, best[0]), None
        if best is not None and best[1] >= identities.LOOKS_LIKE:
            return None, best
        return None, None


def upsert(session: Session, source: str, rows: list[StoredRow], report: ImportReport) -> None:
    """Store `rows` read from `source`: each one updates the item it is, or is added."""
    matcher = _Matcher(session, rows)
    stored: list[Item] = []
    similar: list[tuple[Item, str, int, float]] = []
    for row in rows:
        item, like = matcher.find(row)
        if item is None:
            item = Item(source=source, **row.values)
            session.add(item)
            session.flush()
            report.added += 1
            if like is not None:
                similar.append((item, row.where, *like))
        else:
            frozen = _frozen(item)
            changes = {
                name: value
                for name, value in row.values.items()
                if name in SOURCE_FIELDS and name not in frozen and getattr(item, name) != value
            }
            for name, value in changes.items():
                setattr(item, name, value)
            if changes:
                report.updated += 1
            else:
                report.unchanged += 1
            # Where it was read last, for people; not part of what changed.
            item.source, item.source_id = source, row.values["source_id"]
        matcher.taken.add(item.id)
        # Every spelling a source used finds the item again (a tolerated edit adds one).
        if row.identity not in matcher.exact:
            session.add(ItemIdentity(identity=row.identity, item_id=item.id))
            matcher.exact[row.identity] = item
        stored.append(item)
    session.flush()
    report.item_ids = [item.id for item in stored]
    for item, where, like_id, ratio in similar:
        other = session.get_one(Item, like_id)
        report.look_alikes.append(LookAlike(item.id, like_id, item.title, other.title, ratio))
        report.problems.append(
            Problem(
                where,
                f"new item {item.id} {item.title!r} looks like item {like_id} {other.title!r}; "
                f"if they are the same, run `newsletter items merge {like_id} {item.id}`",
                "warning",
            )
        )
