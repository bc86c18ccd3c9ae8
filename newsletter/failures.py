"""Work accepted after its answer went out that finally failed: recorded where staff see it.

The subscribe pages answer before they do the work (newsletter.web.background
says why); that work is retried, and when every attempt has failed it must
not vanish into a log nobody reads. `record_failure` writes one row per lost
piece of work and logs it; `newsletter status` counts the recent ones.

A row names the kind of work and of error and at most a masked address: the
full message of a database error may quote an address, so it is never kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from newsletter import db
from newsletter.app import Newsletter
from newsletter.errors import OperationFailed, UserError
from newsletter.logs import log_event
from newsletter.models import TaskFailure, utcnow

log = logging.getLogger(__name__)

# How far back `newsletter status` looks.
RECENT = timedelta(days=7)


@dataclass(frozen=True)
class RecentFailures:
    """Failed background work of the last days, for `newsletter status`."""

    count: int
    since: datetime
    last_at: datetime | None = None
    last_task: str = ""
    last_error: str = ""


def describe_error(exc: BaseException) -> str:
    """The kind of an error and, for our own errors, their one line; never a DBAPI message."""
    if isinstance(exc, UserError | OperationFailed):
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    orig = getattr(exc, "orig", None)
    if orig is not None:
        return f"{type(exc).__name__} ({type(orig).__name__})"
    return type(exc).__name__


def record_failure(
    app: Newsletter, task: str, exc: BaseException, *, attempts: int, detail: str = ""
) -> None:
    """Log the failure, then keep it in the database (retried; a log line if even that fails)."""
    error = describe_error(exc)[:300]
    log_event(
        "task.failed", level=logging.ERROR, task=task, error=error, attempts=attempts, detail=detail
    )

    def write() -> None:
        with app.session() as session:
            session.add(
                TaskFailure(task=task[:100], error=error, attempts=attempts, detail=detail[:2000])
            )

    try:
        db.retrying(write, attempts=5, what="recording a failed task")
    except Exception as again:
        log_event(
            "task.failure_not_recorded",
            level=logging.ERROR,
            task=task,
            error=describe_error(again),
        )


def recent_failures(app: Newsletter, *, now: datetime | None = None) -> RecentFailures:
    since = (now or utcnow()) - RECENT
    with app.reading() as session:
        # A count and the newest row: the table holds only failures, a handful at most.
        count = session.scalar(select(func.count()).where(TaskFailure.at >= since)) or 0
        last = session.scalar(
            select(TaskFailure).where(TaskFailure.at >= since).order_by(TaskFailure.id.desc())
        )
    if last is None:
        return RecentFailures(count=count, since=since)
    return RecentFailures(
        count=count, since=since, last_at=last.at, last_task=last.task, last_error=last.error
    )
