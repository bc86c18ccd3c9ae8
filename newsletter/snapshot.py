"""What a campaign's approval freezes, and how sends and the archive read it back.

Approving a campaign records a snapshot of its content: the subject, preheader,
intro and greeting, and each item's text and link as they were, in reading
order. From then on the send and the public archive render the snapshot, so an
item edited after approval changes nothing that was approved, and the archive
always shows what was sent. A draft has no snapshot and renders its items as
they are now; sending a campaign back to draft (an edit) drops its snapshot.

The snapshot is plain JSON (Campaign.snapshot), version 1:

    {"version": 1, "subject": …, "preheader": …, "intro": …, "greeting": …,
     "items": [{"id", "kind", "title", "date" (ISO), "date_is_month", "summary",
                "body_html", "body_text", "link", "link_text", "language",
                "tags"}, …]}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from newsletter import lifecycle

VERSION = 1
ITEM_FIELDS = (
    "id",
    "kind",
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
    "image",
    "image_alt",
    "image_width",
    "image_height",
)


@dataclass(frozen=True)
class FrozenItem:
    """An item as it was approved; renders like an Item."""

    id: int
    kind: str
    title: str
    date: date
    date_is_month: bool
    summary: str
    body_html: str
    body_text: str
    link: str
    link_text: str
    language: str
    tags: tuple[str, ...]
    # The item's image as approved (empty when it has none).
    image: str = ""
    image_alt: str = ""
    image_width: int | None = None
    image_height: int | None = None


@dataclass(frozen=True)
class Content:
    """A campaign's content: the snapshot's, or the live one of a draft."""

    subject: str
    preheader: str
    intro: str
    greeting: str
    items: tuple[Any, ...]


# A mapping: the snapshot is a JSON document stored in the campaign's row.
def freeze(campaign: Any, items: Iterable[Any]) -> dict[str, Any]:
    """The snapshot of a campaign and its items (objects or rows with the fields above)."""
    return {
        "version": VERSION,
        "subject": campaign.subject,
        "preheader": campaign.preheader,
        "intro": campaign.intro,
        "greeting": getattr(campaign, "greeting", "") or "",
        "items": [_item_values(item) for item in items],
    }


def _item_values(item: Any) -> dict[str, Any]:
    values = {name: getattr(item, name, None) for name in ITEM_FIELDS}
    values["date"] = item.date.isoformat()
    values["date_is_month"] = bool(values["date_is_month"])
    values["tags"] = list(values["tags"] or [])
    for name in ("summary", "body_html", "body_text", "link", "link_text", "language", "image",
                 "image_alt"):  # fmt: skip
        values[name] = values[name] or ""
    return values


def thaw(snapshot: Mapping[str, Any]) -> Content:
    """The content a snapshot froze."""
    return Content(
        subject=snapshot["subject"],
        preheader=snapshot.get("preheader", ""),
        intro=snapshot.get("intro", ""),
        greeting=snapshot.get("greeting", ""),
        items=tuple(
            FrozenItem(
                id=int(values["id"]),
                kind=values["kind"],
                title=values["title"],
                date=date.fromisoformat(values["date"]),
                date_is_month=bool(values.get("date_is_month")),
                summary=values.get("summary", ""),
                body_html=values.get("body_html", ""),
                body_text=values.get("body_text", ""),
                link=values.get("link", ""),
                link_text=values.get("link_text", ""),
                language=values.get("language", ""),
                tags=tuple(values.get("tags") or ()),
                image=values.get("image", ""),
                image_alt=values.get("image_alt", ""),
                image_width=values.get("image_width"),
                image_height=values.get("image_height"),
            )
            for values in snapshot.get("items", [])
        ),
    )


def content_of(campaign: Any) -> Content:
    """What a campaign sends: its snapshot once approved, else its live content."""
    if campaign.snapshot:
        return thaw(campaign.snapshot)
    return Content(
        subject=campaign.subject,
        preheader=campaign.preheader,
        intro=campaign.intro,
        greeting=campaign.greeting or "",
        items=tuple(campaign.items),
    )


def reopen(session: Session, campaign_id: int, *, actor: str, why: str) -> None:
    """draft|approved → draft (the lifecycle's `edit`), dropping the approval and its
    snapshot: the campaign renders its live content again and must be approved again."""
    lifecycle.apply(
        session,
        campaign_id,
        "edit",
        actor,
        detail=why,
        snapshot=None,
        approved_by="",
        approved_at=None,
    )
