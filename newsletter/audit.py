"""The audit trail: every state-changing action, with the actor who took it.

Actors are short strings (see newsletter/actors.py): `cli:<os user>`,
`user:<staff email>`, `schedule`, `worker`, `webhook:<provider>`, `page`.
A line holds nothing personal beyond what the action needs: an erasure's line
keeps the keyed hash of the address, never the address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.app import Newsletter
from newsletter.models import AuditEvent as AuditRow

# Long enough for a sentence, short enough that nobody pastes a document into it.
DETAIL_LIMIT = 500


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    detail: str


def record(
    session: Session,
    actor: str,
    action: str,
    object_type: str,
    object_id: object,
    detail: str = "",
) -> None:
    """Add one line to the trail, inside the caller's transaction (so it is written if and
    only if the action is)."""
    if not actor:
        raise ValueError("an audit line needs an actor")
    detail = " ".join(detail.split())
    if len(detail) > DETAIL_LIMIT:
        detail = detail[: DETAIL_LIMIT - 1] + "…"
    session.add(
        AuditRow(
            actor=actor[:200],
            action=action,
            object_type=object_type,
            object_id="" if object_id is None else str(object_id),
            detail=detail,
        )
    )


def list_events(
    app: Newsletter,
    *,
    campaign_id: int | None = None,
    object_type: str | None = None,
    actor: str | None = None,
    limit: int = 200,
    before_id: int | None = None,
) -> list[AuditEvent]:
    """The newest lines first; `before_id` pages back through older ones (keyset, so a long
    trail costs the same to page through at any depth)."""
    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(max(1, min(limit, 10_000)))
    if campaign_id is not None:
        query = query.where(AuditRow.object_type == "campaign",
                            AuditRow.object_id == str(campaign_id))  # fmt: skip
    elif object_type is not None:
        query = query.where(AuditRow.object_type == object_type)
    if actor is not None:
        query = query.where(AuditRow.actor == actor)
    if before_id is not None:
        query = query.where(AuditRow.id < before_id)
    with app.session() as session:
        return [
            AuditEvent(
                id=row.id,
                at=row.at,
                actor=row.actor,
                action=row.action,
                object_type=row.object_type,
                object_id=row.object_id,
                detail=row.detail,
            )
            for row in session.scalars(query)
        ]


def campaign_authors(session: Session, campaign_id: int) -> set[str]:
    """Who built a campaign and who last edited it, as the trail records them.

    Four-eyes approval (newsletter.editions.approve) asks this: neither may
    approve. Read in the caller's transaction, from the object index.
    """
    rows = session.execute(
        select(AuditRow.action, AuditRow.actor)
        .where(AuditRow.object_type == "campaign", AuditRow.object_id == str(campaign_id),
               AuditRow.action.in_(("build", "edit")))
        .order_by(AuditRow.id.desc())
    )  # fmt: skip
    authors: set[str] = set()
    last_edit_seen = False
    for action, actor in rows:
        if action == "build":
            authors.add(actor)
        elif not last_edit_seen:
            authors.add(actor)
            last_edit_seen = True
    return authors
