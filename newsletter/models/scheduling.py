"""What the scheduler and the service keep: runs of recurring rules, live services, jobs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    LargeBinary,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.models.base import Base, utcnow

# What happened to one period of a recurring rule.
# sending: built, approved by the rule and started (or scheduled to start);
# held: built as a draft for approval, staff emailed a preview;
# empty: no items that month, nothing built; missed: due while the service was down
# for longer than the grace period; failed: the rule could not build (a missing list).
SCHEDULE_OUTCOMES = ("sending", "held", "empty", "missed", "failed")


class ScheduleRun(Base):
    """The outcome of one period of one recurring rule: written once, by whoever ran it.

    Unique per rule and period, so that of several services running a rule at the
    same moment one records the outcome; the edition itself is made unique by
    `Campaign.recurrence_key`.
    """

    __tablename__ = "schedule_runs"
    __table_args__ = (UniqueConstraint("rule", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule: Mapped[str] = mapped_column(String(100))
    # The period the run covers: for a bulletin, the month of its items ("YYYY-MM").
    period: Mapped[str] = mapped_column(String(20))
    # The occurrence of the rule's cron expression that ran it.
    due_at: Mapped[datetime]
    outcome: Mapped[str] = mapped_column(String(20))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class ServiceInstance(Base):
    """A running `newsletter serve`, as it last reported itself (its heartbeat).

    `newsletter status` reads these to tell whether a service is up, from any
    process and any host; a row that stops being refreshed belongs to a service
    that is gone.
    """

    __tablename__ = "service_instances"

    # host:pid:token, like a sending worker's id.
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int]
    # Where the pages listen, host:port.
    address: Mapped[str] = mapped_column(String(300), default="")
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(default=utcnow)
    scheduler_running: Mapped[bool] = mapped_column(default=False)
    workers: Mapped[int] = mapped_column(default=0)
    workers_alive: Mapped[int] = mapped_column(default=0)


# APScheduler's SQLAlchemy job store keeps the service's timers here. Declared with
# the models (the same columns the job store declares) so that migrations create it
# once, under their lock, rather than two services racing to create it at start-up.
scheduler_jobs = Table(
    "scheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


class TaskFailure(Base):
    """Work accepted after its answer went out (a sign-up, a notice) that finally failed.

    Written after every retry has failed, so that staff see it in `newsletter
    status` rather than only in a log. It holds the kind of work and the kind
    of error, and a masked address at most: never the address itself.
    """

    __tablename__ = "task_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # What the work was: "subscribe", …
    task: Mapped[str] = mapped_column(String(100))
    # The error's kind and a short reason, never its full message (it may quote data).
    error: Mapped[str] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(default=1)
    detail: Mapped[str] = mapped_column(Text, default="")
