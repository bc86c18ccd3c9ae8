"""Writing parsed items: insert the new, update the changed, leave staff edits alone.

Items are found again by (source, source_id). A field staff changed with
`edit_item` is listed in `Item.edited_fields` and a re-import never writes it;
changing the kind by hand also freezes `kind_origin`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from newsletter.items.parsed import Problem
from newsletter.items.queries import items_of_source
from newsletter.models.items import Item

# The fields a source provides, so the ones a re-import may update.
SOURCE_FIELDS = (
    "kind",
    "kind_origin",
    "title",
    "date",
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
class ImportReport:
    """What an import did: counts, the ids of the source's items, and the problems met."""

    source: str
    source_type: str
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    item_ids: list[int] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def imported(self) -> int:
        """Items of the source now in the database, whether new, updated or unchanged."""
        return self.added + self.updated + self.unchanged

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "source_type": self.source_type,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "item_ids": list(self.item_ids),
            "problems": [p.as_dict() for p in self.problems],
        }


def _frozen(item: Item) -> set[str]:
    frozen = set(item.edited_fields or [])
    if "kind" in frozen:
        frozen.add("kind_origin")
    return frozen


def upsert(session: Session, source: str, rows: list[dict[str, Any]], report: ImportReport) -> None:
    """Store `rows` (field values by name, each with its source_id) for one source."""
    existing = items_of_source(session, source)
    stored: list[Item] = []
    for row in rows:
        item = existing.get(row["source_id"])
        if item is None:
            item = Item(source=source, **row)
            session.add(item)
            report.added += 1
        else:
            frozen = _frozen(item)
            changes = {
                name: row[name]
                for name in SOURCE_FIELDS
                if name not in frozen and getattr(item, name) != row[name]
            }
            for name, value in changes.items():
                setattr(item, name, value)
            if changes:
                report.updated += 1
            else:
                report.unchanged += 1
        stored.append(item)
    # New rows get their ids here, inside the transaction that may still roll back.
    session.flush()
    report.item_ids = [item.id for item in stored]
