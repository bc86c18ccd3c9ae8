"""Counts the database keeps: list members by status, feedback events by week.

Triggers of migration 0009_console_counts maintain them, whatever path changes
the rows counted (why triggers, and why this shape: see that migration). On
SQLite the triggers update the counter rows (list_member_counts,
feedback_weeks). On PostgreSQL they append changes (list_member_changes,
feedback_week_changes) so that no statement waits on or piles versions onto a
counter row; a count there is its counter row plus its changes not yet folded
in. `fold_changes` moves the changes into the counters, each kind in one
transaction; readers call it when more than FOLD_AT have piled up, so reading
stays a few hundred rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Engine, func, select, text, union_all
from sqlalchemy.orm import Session

from newsletter.models import FeedbackWeek, FeedbackWeekChange, ListMemberChange, ListMemberCount

# Unfolded changes a reader tolerates before folding them in.
FOLD_AT = 1000

# Each statement moves every change present when it starts and adds them to the
# counters atomically: a reader sees the changes or their sum, never both or neither.
# Changes made meanwhile stay for the next fold. Changes of a list deleted since are
# dropped with it (its counter row went by cascade).
_FOLD_LISTS = """
WITH moved AS (DELETE FROM list_member_changes RETURNING list_id, status, members)
INSERT INTO list_member_counts AS c (list_id, status, members)
SELECT list_id, status, sum(members) FROM moved
WHERE list_id IN (SELECT id FROM lists)
GROUP BY list_id, status ORDER BY list_id, status
ON CONFLICT (list_id, status) DO UPDATE SET members = c.members + EXCLUDED.members
"""
_FOLD_WEEKS = """
WITH moved AS (DELETE FROM feedback_week_changes RETURNING week, type, events)
INSERT INTO feedback_weeks AS w (week, type, events)
SELECT week, type, sum(events) FROM moved GROUP BY week, type ORDER BY week, type
ON CONFLICT (week, type) DO UPDATE SET events = w.events + EXCLUDED.events
"""


def list_member_counts(
    session: Session, list_ids: Sequence[int] | None = None
) -> list[tuple[int, str, int]]:
    """(list_id, status, members) for the lists, counter rows plus unfolded changes."""
    kept = select(ListMemberCount.list_id, ListMemberCount.status, ListMemberCount.members)
    changes = select(ListMemberChange.list_id, ListMemberChange.status, ListMemberChange.members)
    if list_ids is not None:
        kept = kept.where(ListMemberCount.list_id.in_(list_ids))
        changes = changes.where(ListMemberChange.list_id.in_(list_ids))
    both = union_all(kept, changes).subquery()
    query = select(both.c.list_id, both.c.status, func.sum(both.c.members)).group_by(
        both.c.list_id, both.c.status
    )
    return [(list_id, status, int(n)) for list_id, status, n in session.execute(query)]


def feedback_weeks(session: Session, since: date, types: Sequence[str]) -> list[tuple[Any, ...]]:
    """(week, type, events) from the week of `since` on, counter rows plus changes."""
    kept = select(FeedbackWeek.week, FeedbackWeek.type, FeedbackWeek.events).where(
        FeedbackWeek.week >= since, FeedbackWeek.type.in_(types)
    )
    changes = select(
        FeedbackWeekChange.week, FeedbackWeekChange.type, FeedbackWeekChange.events
    ).where(FeedbackWeekChange.week >= since, FeedbackWeekChange.type.in_(types))
    both = union_all(kept, changes).subquery()
    query = select(both.c.week, both.c.type, func.sum(both.c.events)).group_by(
        both.c.week, both.c.type
    )
    return [(week, kind, int(n)) for week, kind, n in session.execute(query)]


def fold_changes(engine: Engine, *, at_least: int = FOLD_AT) -> None:
    """Fold the unfolded changes into the counters when more than `at_least` wait
    (PostgreSQL; on SQLite there are never any)."""
    if engine.dialect.name != "postgresql":
        return
    for table, statement in (("list_member_changes", _FOLD_LISTS),
                             ("feedback_week_changes", _FOLD_WEEKS)):  # fmt: skip
        with engine.begin() as conn:
            # A cheap bound, not a count: stop reading at the threshold.
            waiting = conn.execute(
                text(f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT :n) AS w"),
                {"n": at_least + 1},
            ).scalar_one()
            if waiting > at_least:
                conn.execute(text(statement))
