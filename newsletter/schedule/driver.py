"""The clock inside `newsletter serve`: APScheduler 3 driving the sweep.

The database decides what is sent and when (`sweep`); APScheduler only says
"now". Three kinds of job:

- `sync`, every `schedule.sync_seconds`, in memory (each service has its own):
  sweeps whatever is due, then brings the timers below in line with the
  database, so that what another process changed (a `newsletter schedule`, a
  second service) is picked up;
- `campaign:ID`, a date trigger at a scheduled campaign's time, so that it
  starts on the second rather than at the next sync;
- `rule:NAME`, a `RuleTrigger` (the rule's cron expression, computed by
  `cron.py`, so that what fires is what `schedule list` shows).

The timers live in APScheduler's SQLAlchemy job store in the program's own
database (table `scheduler_jobs`), so that they survive restarts. Jobs carry
ids and names only, never objects, have explicit ids and are added with
`replace_existing=True`.

APScheduler's FAQ says a job store cannot be shared by several processes, and
here two services may share one. Nothing relies on the store for "once": a
timer firing in two services, or late, or not at all, only calls the sweep,
whose conditional status changes decide. What sharing can do is make one
service change or remove a row the other just removed; `SharedJobStore` takes
that in its stride, and the scheduler's loop survives a database error
(`ResilientScheduler`) instead of dying with it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_RUNNING, STATE_STOPPED
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select

from newsletter.app import Newsletter
from newsletter.logs import log_event
from newsletter.models import Campaign, utcnow
from newsletter.schedule.due import start_due_campaign
from newsletter.schedule.recurring import expression, run_due_rules
from newsletter.schedule.sweeper import sweep

log = logging.getLogger(__name__)

JOBS_TABLE = "scheduler_jobs"
SYNC_JOB = "sync"
CAMPAIGN_JOB = "campaign:"
RULE_JOB = "rule:"
# The jobs' functions, by reference: the job store keeps these strings, not objects.
FIRE_CAMPAIGN = f"{__name__}:fire_campaign"
FIRE_RULE = f"{__name__}:fire_rule"

# The driver of this process. APScheduler's stored jobs can only name module-level
# functions (they are pickled), and those need the running program: this is the one
# process-wide hook, set by `ScheduleDriver.start` and cleared by `stop`.
_active: ScheduleDriver | None = None
_active_lock = threading.Lock()


def fire_campaign(campaign_id: int) -> None:
    """A campaign's timer went off (in whichever service saw it first)."""
    driver = _active
    if driver is not None:
        driver.fire_campaign(campaign_id)


def fire_rule(name: str) -> None:
    """A recurring rule's timer went off."""
    driver = _active
    if driver is not None:
        driver.fire_rule(name)


class RuleTrigger(BaseTrigger):
    """An APScheduler trigger that fires at a recurring rule's occurrences (cron.py)."""

    def __init__(self, cron: str, timezone: str) -> None:
        self.cron = cron
        self.timezone = timezone

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        tz = ZoneInfo(self.timezone)
        after = previous_fire_time or now - timedelta(microseconds=1)
        return expression(self.cron).next_after(after, tz)

    def __getstate__(self) -> dict[str, Any]:
        return {"version": 1, "cron": self.cron, "timezone": self.timezone}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.cron = state["cron"]
        self.timezone = state["timezone"]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RuleTrigger) and (self.cron, self.timezone) == (
            other.cron,
            other.timezone,
        )

    def __hash__(self) -> int:
        return hash((self.cron, self.timezone))

    def __str__(self) -> str:
        return f"rule[{self.cron} {self.timezone}]"

    def __repr__(self) -> str:
        return f"<RuleTrigger {self.cron!r} {self.timezone!r}>"


class SharedJobStore(SQLAlchemyJobStore):
    """APScheduler's SQL job store, at ease with other services writing the same rows.

    A timer another service already ran and removed (or moved) is simply gone:
    updating or removing it again is not an error. The engine is the program's,
    so the store does not dispose of it at shutdown.
    """

    def update_job(self, job: Any) -> None:
        try:
            super().update_job(job)
        except JobLookupError:
            log.debug("job %s was removed by another service", job.id)

    def remove_job(self, job_id: str) -> None:
        try:
            super().remove_job(job_id)
        except JobLookupError:
            log.debug("job %s was already removed", job_id)

    def shutdown(self) -> None:
        pass


class ResilientScheduler(BackgroundScheduler):
    """A scheduler whose loop outlives a database error (it tries again shortly)."""

    def _process_jobs(self) -> float | None:
        try:
            return super()._process_jobs()  # type: ignore[no-any-return,unused-ignore]
        except Exception as exc:
            log_event("scheduler.error", level=logging.ERROR, job="-", error=repr(exc))
            return float(self.jobstore_retry_interval)


@dataclass(frozen=True, slots=True)
class DriverHealth:
    """Whether this process's clock runs, and how its last sync went."""

    running: bool
    last_sync: datetime | None
    last_error: str | None


class ScheduleDriver:
    """Starts, feeds and stops the APScheduler of one service."""

    def __init__(
        self,
        app: Newsletter,
        *,
        clock: Callable[[], datetime] = utcnow,
        sync_seconds: float | None = None,
    ) -> None:
        self.app = app
        self.clock = clock
        self.sync_seconds = float(sync_seconds or app.config.schedule.sync_seconds)
        self.scheduler: ResilientScheduler | None = None
        self.last_sync: datetime | None = None
        self.last_error = ""
        self._sync_lock = threading.Lock()
        # Set before the scheduler shuts down; a sync that starts after it returns at once.
        self._stopping = threading.Event()

    # -- life ---------------------------------------------------------------------------

    def start(self) -> None:
        global _active
        with _active_lock:
            if _active is not None and _active is not self:
                raise RuntimeError("a schedule driver is already running in this process")
            _active = self
        scheduler = ResilientScheduler(
            jobstores={
                "default": SharedJobStore(engine=self.app.engine, tablename=JOBS_TABLE),
                "local": MemoryJobStore(),
            },
            executors={"default": ThreadPoolExecutor(max_workers=3)},
            job_defaults={
                # Late or not, a timer only asks the sweep, which judges lateness itself.
                "misfire_grace_time": None,
                "coalesce": True,
                "max_instances": 1,
            },
            timezone=UTC,
        )
        scheduler.start()
        self.scheduler = scheduler
        # The first sync runs at once: whatever fell due while no service was running.
        scheduler.add_job(
            self.sync,
            IntervalTrigger(seconds=self.sync_seconds, timezone=UTC),
            id=SYNC_JOB,
            jobstore="local",
            next_run_time=datetime.now(UTC),
            replace_existing=True,
        )

    def stop(self) -> None:
        """Stop the clock; a job that is running finishes first."""
        global _active
        # APScheduler 3's `shutdown(wait=True)` holds the scheduler's job-store lock while
        # it waits for running jobs, and a sync asks the scheduler for its jobs: a sync
        # running then would wait for that lock for ever, and the service with it. So no
        # sync may start from here on, and one already running is waited for first.
        self._stopping.set()
        with self._sync_lock:
            pass
        if self.scheduler is not None:
            if self.scheduler.state != STATE_STOPPED:
                self.scheduler.shutdown(wait=True)
            self.scheduler = None
        with _active_lock:
            if _active is self:
                _active = None

    @property
    def running(self) -> bool:
        scheduler = self.scheduler
        if scheduler is None or scheduler.state != STATE_RUNNING:
            return False
        thread = getattr(scheduler, "_thread", None)
        return thread is not None and thread.is_alive()

    # -- jobs ---------------------------------------------------------------------------

    def sync(self) -> None:
        """Sweep what is due, then make the timers match the database and the config."""
        with self._sync_lock:
            if self._stopping.is_set():
                return
            now = self.clock()
            try:
                sweep(self.app, now)
                self._reconcile(now)
            except Exception as exc:
                self.last_error = repr(exc)
                log_event("scheduler.error", level=logging.ERROR, job=SYNC_JOB, error=repr(exc))
                return
            self.last_sync = now
            self.last_error = ""

    def fire_campaign(self, campaign_id: int) -> None:
        try:
            start_due_campaign(self.app, campaign_id, self.clock())
        except Exception as exc:
            log_event(
                "scheduler.error",
                level=logging.ERROR,
                job=f"{CAMPAIGN_JOB}{campaign_id}",
                error=repr(exc),
            )

    def fire_rule(self, name: str) -> None:
        rules = [rule for rule in self.app.config.schedules if rule.name == name]
        if not rules:
            return  # a timer of a rule another service's config has; that service runs it
        try:
            run_due_rules(self.app, rules, self.clock())
        except Exception as exc:
            log_event(
                "scheduler.error", level=logging.ERROR, job=f"{RULE_JOB}{name}", error=repr(exc)
            )

    def _reconcile(self, now: datetime) -> None:
        """Add, move and remove this database's timers to match what should fire."""
        scheduler = self.scheduler
        if scheduler is None:
            return
        with self.app.engine.connect() as conn:
            upcoming = conn.execute(
                select(Campaign.id, Campaign.scheduled_at).where(
                    Campaign.status == "scheduled", Campaign.scheduled_at > now
                )
            ).all()
        wanted: dict[str, tuple[str, BaseTrigger, list[Any]]] = {}
        for campaign_id, at in upcoming:
            wanted[f"{CAMPAIGN_JOB}{campaign_id}"] = (
                FIRE_CAMPAIGN,
                DateTrigger(run_date=at, timezone=UTC),
                [campaign_id],
            )
        for rule in self.app.config.schedules:
            wanted[f"{RULE_JOB}{rule.name}"] = (
                FIRE_RULE,
                RuleTrigger(rule.cron, rule.timezone),
                [rule.name],
            )
        existing = {job.id: job for job in scheduler.get_jobs(jobstore="default")}
        # Timers of campaigns no longer scheduled, and of rules no longer in the config.
        # (Services with different [[schedules]] on one database would undo each other's
        # rule timers here; harmless, since every sync sweeps the rules anyway.)
        for job_id in existing.keys() - wanted.keys():
            _remove(scheduler, job_id)
        for job_id, (func, trigger, args) in wanted.items():
            job = existing.get(job_id)
            if job is not None and _same_trigger(job.trigger, trigger):
                continue
            scheduler.add_job(
                func,
                trigger,
                args=args,
                id=job_id,
                jobstore="default",
                replace_existing=True,
            )

    # -- health ---------------------------------------------------------------------------

    def health(self) -> DriverHealth:
        return DriverHealth(
            running=self.running, last_sync=self.last_sync, last_error=self.last_error or None
        )


def _same_trigger(current: BaseTrigger, wanted: BaseTrigger) -> bool:
    if isinstance(current, DateTrigger) and isinstance(wanted, DateTrigger):
        return bool(current.run_date == wanted.run_date)
    return current == wanted


def _remove(scheduler: BackgroundScheduler, job_id: str) -> None:
    with contextlib.suppress(JobLookupError):
        scheduler.remove_job(job_id, jobstore="default")
