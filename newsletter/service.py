"""`newsletter serve`: the pages, the scheduler and the sending workers in one process.

    Service(app, host=…, port=…, workers=N).run()

runs until SIGTERM or SIGINT, then stops in an order that loses nothing:

1. the scheduler's clock (a sweep that is running finishes; what it started
   is in the database, complete, and will be sent by whichever worker looks);
2. the sending workers: each stops claiming, lets its in-flight messages
   finish, records their outcomes and gives every other claimed delivery back
   to the ledger (the engine's `stop`), so that a restart, here or on another
   host, sends the rest with no duplicates;
3. the web pages, last, so that a load balancer sees the service up until
   the end.

Health: every few seconds the service writes a heartbeat row
(`ServiceInstance`: scheduler running, workers alive, where it listens).
`service_health(app)` reads those rows and the queue from the database, so
that `newsletter status` answers from any process, and `GET /health` of the
service answers the same (without host names), with status 503 when this
service's scheduler or a worker has stopped.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select, update

from newsletter import db
from newsletter.app import Newsletter
from newsletter.dispatch import counters
from newsletter.dispatch.service import log_run_report, run_event_name, run_worker
from newsletter.dispatch.workers import host_name, new_worker_id, process_alive
from newsletter.failures import RecentFailures, recent_failures
from newsletter.logs import log_event
from newsletter.models import Campaign, ServiceInstance, utcnow

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment
    from werkzeug.serving import BaseWSGIServer

    from newsletter.dispatch import RunReport
    from newsletter.schedule.driver import ScheduleDriver
    from newsletter.web import WebApp

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
# A service that has not written its heartbeat for this long is taken to be gone.
STALE_AFTER = timedelta(seconds=HEARTBEAT_SECONDS * 3)
# Heartbeats of services gone this long are deleted.
FORGET_AFTER = timedelta(days=1)
# How often an idle worker looks for a campaign that started sending.
WORKER_POLL_SECONDS = 1.0
# A worker whose loop failed (the database went away) tries again after this long.
WORKER_RESTART_SECONDS = 5.0
HEALTH_PATH = "/health"


@dataclass(frozen=True)
class LocalHealth:
    """A service as it sees itself: what its heartbeat writes and /health answers."""

    status: str
    scheduler_running: bool
    last_sync: datetime | None
    workers: int
    workers_alive: int


class Service:
    """One running `newsletter serve`."""

    def __init__(
        self,
        app: Newsletter,
        *,
        host: str | None = None,
        port: int | None = None,
        workers: int | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:

        self.app = app
        self.host = app.config.web.host if host is None else host
        self.port = app.config.web.port if port is None else port
        self.workers = app.config.service.workers if workers is None else workers
        if self.workers < 1:
            raise ValueError("a service needs at least one worker")
        self.clock = clock
        self.instance_id = new_worker_id()
        self.host_name = host_name()
        self.stop_requested = threading.Event()
        # Set when the workers must stop (after the scheduler has).
        self._stop_workers = threading.Event()
        self._worker_threads: list[threading.Thread] = []
        self._web_thread: threading.Thread | None = None
        self.web: WebApp | None = None
        self.server: BaseWSGIServer | None = None
        self.driver: ScheduleDriver | None = None
        self.address = ""
        self._logged: set[tuple[int, str, str]] = set()
        self._logged_lock = threading.Lock()

    # -- running ----------------------------------------------------------------------------

    def run(self) -> None:
        """Start, serve until SIGTERM or SIGINT, and stop cleanly."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        # `kill -USR1 <pid>` writes every thread's stack to stderr: what a service that
        # will not stop, or seems stuck, is doing, without stopping it.
        if hasattr(signal, "SIGUSR1"):
            faulthandler.register(signal.SIGUSR1, all_threads=True, chain=False)
        try:
            self.start()
            while not self.stop_requested.wait(HEARTBEAT_SECONDS):
                self._beat()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.stop_requested.is_set():
            log_event("service.stopping", signal=signal.Signals(signum).name)
        self.stop_requested.set()

    def start(self) -> None:
        # The scheduler, the web server and the console are imported when the service
        # starts: other commands that read the service's health do not need them
        # (start-up time).
        from newsletter.admin import mount
        from newsletter.schedule.driver import ScheduleDriver
        from newsletter.web import make_wsgi_app
        from newsletter.web.server import make_web_server

        # The database first: a wrong URL or an old schema stops us before anything runs.
        self.app.engine  # noqa: B018
        self.web = make_wsgi_app(self.app)
        # The staff console is mounted at /admin beside the subscriber pages.
        pages = mount(self.app, self.web)
        # A port in use: werkzeug says so on stderr and exits with status 1.
        self.server = make_web_server(HealthRoute(pages, self), self.host, self.port)
        self.address = f"{self.server.server_address[0]!s}:{self.server.server_port}"
        self._web_thread = threading.Thread(
            target=self.server.serve_forever, name="web", daemon=True
        )
        self._web_thread.start()
        self.driver = ScheduleDriver(self.app, clock=self.clock)
        self.driver.start()
        for number in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"worker-{number}", daemon=True)
            thread.start()
            self._worker_threads.append(thread)
        self._beat()
        log_event(
            "service.started",
            instance=self.instance_id,
            address=self.address,
            workers=self.workers,
            timezone=self.app.config.schedule.timezone,
            rules=len(self.app.config.schedules),
        )

    def stop(self) -> None:
        """Stop the clock, then the workers (in-flight sends finish), then the pages."""
        self.stop_requested.set()
        if self.driver is not None:
            self.driver.stop()
        self._stop_workers.set()
        for thread in self._worker_threads:
            thread.join()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self._web_thread is not None:
            self._web_thread.join()
            self._web_thread = None
        if self.web is not None:
            self.web.close()
            self.web = None
        try:
            with self.app.session() as session:
                mine = ServiceInstance.id == self.instance_id
                session.execute(delete(ServiceInstance).where(mine))
        except Exception as exc:  # the row then goes stale and is forgotten later
            log.warning("could not remove this service's heartbeat: %s", exc)
        if self._worker_threads or self.driver is not None:
            log_event("service.stopped", instance=self.instance_id)
        self._worker_threads = []
        self.driver = None

    # -- the workers -------------------------------------------------------------------------

    def _work(self) -> None:

        while not self._stop_workers.is_set():
            try:
                run_worker(
                    self.app,
                    stop=self._stop_workers,
                    on_report=self._on_report,
                    poll_seconds=WORKER_POLL_SECONDS,
                )
            except Exception as exc:
                log_event("worker.error", level=logging.ERROR, error=repr(exc))
                self._stop_workers.wait(WORKER_RESTART_SECONDS)

    def _on_report(self, report: RunReport) -> None:
        """One line per campaign that finished, paused or was cancelled (once per service)."""
        name = run_event_name(report)
        if name is None:
            return
        key = (report.campaign_id, name, report.note)
        with self._logged_lock:
            if key in self._logged:
                return
            self._logged.add(key)
        log_run_report(self.app, report)

    # -- health ---------------------------------------------------------------------------

    def workers_alive(self) -> int:
        return sum(thread.is_alive() for thread in self._worker_threads)

    def local_health(self) -> LocalHealth:
        """This service as it sees itself: what the heartbeat writes."""
        driver = self.driver.health() if self.driver is not None else None
        running = driver is not None and driver.running
        alive = self.workers_alive()
        return LocalHealth(
            status="ok" if running and alive == self.workers else "degraded",
            scheduler_running=running,
            last_sync=driver.last_sync if driver is not None else None,
            workers=self.workers,
            workers_alive=alive,
        )

    def _beat(self) -> None:
        """Write this service's heartbeat; forget services long gone."""
        health = self.local_health()
        now = utcnow()
        values = {
            "last_seen": now,
            "address": self.address,
            "scheduler_running": health.scheduler_running,
            "workers": self.workers,
            "workers_alive": health.workers_alive,
        }
        try:
            with self.app.session() as session:
                result = session.execute(
                    update(ServiceInstance)
                    .where(ServiceInstance.id == self.instance_id)
                    .values(**values)
                )
                if db.rows_changed(result) == 0:
                    session.add(
                        ServiceInstance(
                            id=self.instance_id,
                            host=self.host_name,
                            pid=os.getpid(),
                            started_at=now,
                            **values,
                        )
                    )
                session.execute(
                    delete(ServiceInstance).where(ServiceInstance.last_seen < now - FORGET_AFTER)
                )
        except Exception as exc:
            log_event("service.heartbeat_failed", level=logging.WARNING, error=repr(exc))


class HealthRoute:
    """The service's pages, plus GET /health: the service's health as JSON."""

    def __init__(self, pages: WSGIApplication, service: Service) -> None:
        self.pages = pages
        self.service = service

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != HEALTH_PATH:
            return self.pages(environ, start_response)
        # Imported here for start-up time, like the pages in start(): `newsletter status`
        # imports this module and never serves a page.
        from werkzeug.wrappers import Response

        from newsletter.web import headers

        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            response = Response("", status=405, headers={"Allow": "GET, HEAD"})
            return headers.apply(response)(environ, start_response)
        here = self.service.local_health()
        status = here.status
        services = 0
        try:
            health = service_health(self.service.app, detail=False)
            services = health.services
        except Exception as exc:
            # The database is down: say so, rather than fail to answer.
            log.warning("health: cannot read the database: %s", type(exc).__name__)
            status = "degraded"
        # Anyone who reaches the pages may read this: whether the service is up, and no
        # more. Queue depths, schedules, host names and times are for `newsletter status`.
        body = {
            "status": status,
            "services": services,
            "this": {
                "status": status,
                "scheduler_running": here.scheduler_running,
                "workers": here.workers,
                "workers_alive": here.workers_alive,
            },
        }
        response = Response(
            json.dumps(body), status=200 if status == "ok" else 503, mimetype="application/json"
        )
        # The same security headers as every page (no-store, nosniff, no framing).
        return headers.apply(response)(environ, start_response)


# --- health, from any process -----------------------------------------------------------------


def _alive(row: ServiceInstance, now: datetime) -> bool:

    if row.last_seen < now - STALE_AFTER:
        return False
    # On this host a killed service is known gone at once, without waiting for staleness.
    return row.host != host_name() or process_alive(row.pid)


@dataclass(frozen=True)
class QueueDepth:
    campaigns_sending: int
    deliveries_waiting: int
    deliveries_in_flight: int


@dataclass(frozen=True)
class InstanceHealth:
    """One `newsletter serve` as its last heartbeat described it."""

    id: str
    host: str
    pid: int
    address: str
    started_at: datetime
    last_seen: datetime
    alive: bool
    scheduler_running: bool
    workers: int
    workers_alive: int


@dataclass(frozen=True)
class ServiceHealth:
    """`newsletter status` with no campaign (and its --json): the services, their queue."""

    status: str
    services: int
    scheduler_running: bool
    workers: int
    workers_alive: int
    queue: QueueDepth
    scheduled: int
    next_send_at: datetime | None
    timezone: str
    # With `detail` only (never over HTTP): failed background work and each service.
    failed_tasks: RecentFailures | None = None
    instances: list[InstanceHealth] | None = None


def service_health(
    app: Newsletter, *, now: datetime | None = None, detail: bool = True
) -> ServiceHealth:
    """Is a service running, is its scheduler, how many workers, how deep is the queue.

    Read from the database (heartbeats, campaigns and their send counters), so that any
    process can ask. `detail` adds each service's id, host and address (left
    out of the HTTP answer, which anyone who reaches the pages may read).
    """
    now = now or utcnow()
    with app.reading() as session:
        rows = list(session.scalars(select(ServiceInstance).order_by(ServiceInstance.started_at)))
        sending = session.scalar(select(func.count()).where(Campaign.status == "sending")) or 0
        waiting, in_flight = counters.queued(session.connection())
        scheduled, next_send = session.execute(
            select(func.count(), func.min(Campaign.scheduled_at)).where(
                Campaign.status == "scheduled"
            )
        ).one()
    live = [row for row in rows if _alive(row, now)]
    workers = sum(row.workers for row in live)
    workers_alive = sum(row.workers_alive for row in live)
    scheduler_running = any(row.scheduler_running for row in live)
    if not live:
        status = "down"
    elif scheduler_running and workers_alive == workers:
        status = "ok"
    else:
        status = "degraded"
    health = ServiceHealth(
        status=status,
        services=len(live),
        scheduler_running=scheduler_running,
        workers=workers,
        workers_alive=workers_alive,
        queue=QueueDepth(
            campaigns_sending=sending,
            deliveries_waiting=waiting,
            deliveries_in_flight=in_flight,
        ),
        scheduled=scheduled,
        next_send_at=next_send,
        timezone=app.config.schedule.timezone,
    )
    if not detail:
        return health
    instances = [
        InstanceHealth(
            id=row.id,
            host=row.host,
            pid=row.pid,
            address=row.address,
            started_at=row.started_at,
            last_seen=row.last_seen,
            alive=row in live,
            scheduler_running=row.scheduler_running,
            workers=row.workers,
            workers_alive=row.workers_alive,
        )
        for row in rows
    ]
    return replace(health, failed_tasks=recent_failures(app, now=now), instances=instances)
