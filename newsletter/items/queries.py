"""Every query the items stage runs, each with the reason for its shape."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from newsletter.models.items import Item


def items_of_source(session: Session, source: str) -> dict[str, Item]:
    """All items already stored from one source, by source id.

    One SELECT for the whole source instead of one per entry: a source holds tens
    or hundreds of items, the (source, source_id) unique index serves the lookup,
    and the import then compares in memory.
    """
    rows = session.scalars(select(Item).where(Item.source == source))
    return {item.source_id: item for item in rows}


def listed_items(
    *,
    first: date | None = None,
    following: date | None = None,
    kind: str | None = None,
    include_excluded: bool = False,
) -> Select[Any]:
    """Items in a date range, optionally of one kind, in reading order (date, then id).

    A month is a half-open range on the indexed `date` column rather than a
    function of it (strftime on SQLite, extract on PostgreSQL): the index on
    items.date serves it and the same SQL runs on both databases. Ordering by id
    after date keeps items of the same day in the order they were imported,
    which for a listing is the page's order.
    """
    query = select(Item)
    if first is not None:
        query = query.where(Item.date >= first)
    if following is not None:
        query = query.where(Item.date < following)
    if kind is not None:
        query = query.where(Item.kind == kind)
    if not include_excluded:
        query = query.where(Item.excluded.is_(False))
    return query.order_by(Item.date, Item.id)
