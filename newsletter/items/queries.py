"""Every query the items stage runs, each with the reason for its shape."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from newsletter.items.identity import title_prefix
from newsletter.models.campaigns import Campaign, CampaignItem
from newsletter.models.items import Item, ItemIdentity


def items_by_identity(session: Session, identities: Sequence[str]) -> dict[str, Item]:
    """The stored items an import's identities name, by identity.

    One SELECT per few hundred identities instead of one per entry: a source
    holds tens or hundreds of items, the identities' primary key serves the
    lookup, and the import then compares in memory.
    """
    found: dict[str, Item] = {}
    wanted = list(dict.fromkeys(identities))
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        rows = session.execute(
            select(ItemIdentity.identity, Item)
            .join(Item, Item.id == ItemIdentity.item_id)
            .where(ItemIdentity.identity.in_(chunk))
        )
        found.update({identity: item for identity, item in rows})
    return found


def identities_of_month(session: Session, month: str | None) -> list[tuple[str, int]]:
    """(identity, item id) of the title identities of a `YYYY-MM` month (None: every month).

    A prefix LIKE on the identities' primary key: a range scan of one month's
    titles, which the import then compares by similarity in memory.
    """
    prefix = title_prefix(month) if month else "title:"
    rows = session.execute(
        select(ItemIdentity.identity, ItemIdentity.item_id)
        .where(ItemIdentity.identity.like(f"{prefix}%"))
        .order_by(ItemIdentity.item_id)
    )
    return [(identity, item_id) for identity, item_id in rows]


def campaigns_holding(session: Session, item_id: int) -> list[tuple[int, str]]:
    """(campaign id, status) of every campaign that holds an item, oldest first.

    campaign_items holds a few dozen rows per edition, so a scan by item is
    cheap; it is read only when staff edit, merge or delete an item.
    """
    rows = session.execute(
        select(Campaign.id, Campaign.status)
        .join(CampaignItem, CampaignItem.campaign_id == Campaign.id)
        .where(CampaignItem.item_id == item_id)
        .order_by(Campaign.id)
    )
    return [(campaign_id, status) for campaign_id, status in rows]


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
