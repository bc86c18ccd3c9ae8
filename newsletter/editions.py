"""Editions: monthly bulletins and announcements as campaigns, and their status.

A campaign moves draft → approved → scheduled → sending → sent, and may be
paused, cancelled or missed on the way. Every change of status is one
conditional UPDATE (`change_status`), so that when two processes race for the
same campaign exactly one of them wins.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import update
from sqlalchemy.orm import Session

from newsletter.models import Campaign, utcnow


def change_status(
    session: Session,
    campaign_id: int,
    allowed_from: Iterable[str],
    to: str,
    *,
    note: str | None = None,
    **fields: object,
) -> bool:
    """Move a campaign to `to` if and only if its status is one of `allowed_from`.

    Returns whether this call made the change. Written as a single UPDATE … WHERE
    status IN (…) rather than read-then-write: the database, not the caller,
    decides who wins a race (two `serve` processes firing the same schedule).
    Extra keyword arguments set other columns in the same statement.
    """
    values: dict[str, object] = {"status": to, "updated_at": utcnow(), **fields}
    if note is not None:
        values["status_note"] = note
    result = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign_id, Campaign.status.in_(list(allowed_from)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1
