"""Work the subscribe pages hand off, so that every answer takes the same time.

Whether an address is new, waiting for confirmation, already subscribed or
suppressed decides what the database and the mail server are asked to do, and
each path takes its own time. If the browser waited for that work, the time of
the answer would tell a stranger whether an address is known. So the page
answers as soon as the request is checked (CSRF, honeypot, rate limit, address
syntax) and one worker thread does the rest.

The queue lives in memory. A task that fails for a reason that may pass (the
database busy beyond its timeout, the mail server down) is tried again, as a
whole, after a growing wait; a task that still fails, or fails for any other
reason, is reported to `on_failure`, which the pages use to record it where
staff see it (newsletter.failures: `newsletter status`, the log). A request
accepted just before the process is killed may still be lost with the queue;
a clean stop (SIGTERM) runs every queued task first.
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import DBAPIError

from newsletter import db
from newsletter.errors import OperationFailed

log = logging.getLogger(__name__)

Task = Callable[[], object]
FailureHandler = Callable[[str, BaseException, int, str], None]
# Waits before the second, third… attempt of a task, in seconds: about a minute in all,
# on top of each attempt's own wait for the database's lock.
RETRY_WAITS = (1.0, 4.0, 15.0, 40.0)


@dataclass(frozen=True)
class _Job:
    task: Task
    kind: str
    detail: str


def may_pass(exc: BaseException) -> bool:
    """Whether trying the same work again later may succeed."""
    if isinstance(exc, DBAPIError):
        return db.is_transient(exc)
    return isinstance(exc, OperationFailed | OSError | TimeoutError)


class BackgroundTasks:
    """One daemon thread running tasks in order; started on first use."""

    def __init__(
        self,
        name: str = "newsletter-web-tasks",
        *,
        on_failure: FailureHandler | None = None,
        retry_waits: tuple[float, ...] = RETRY_WAITS,
    ) -> None:
        self._name = name
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._on_failure = on_failure
        self._waits = retry_waits

    def submit(self, task: Task, *, kind: str = "task", detail: str = "") -> None:
        """Run `task` soon. `kind` and `detail` (nothing personal) name it if it fails."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._queue.put(_Job(task, kind, detail))

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                self._attempt(job)
            finally:
                self._queue.task_done()

    def _attempt(self, job: _Job) -> None:
        attempts = 0
        while True:
            attempts += 1
            try:
                job.task()
                return
            except Exception as exc:
                last = attempts > len(self._waits) or self._closing.is_set()
                if may_pass(exc) and not last:
                    wait = self._waits[attempts - 1]
                    log.warning(
                        "a background task (%s) failed: %s; trying again in %.0fs",
                        job.kind,
                        type(exc).__name__,
                        wait,
                    )
                    self._closing.wait(wait)
                    continue
                self._failed(job, exc, attempts)
                return

    def _failed(self, job: _Job, exc: Exception, attempts: int) -> None:
        # The log gets the kind of error and where it happened, not its message: a
        # database error's message quotes the statement's parameters, which would put an
        # address in the log.
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        log.error(
            "a background task (%s) failed after %d attempt(s): %s at %s:%s",
            job.kind,
            attempts,
            type(exc).__name__,
            frame.filename,
            frame.lineno,
        )
        if self._on_failure is not None:
            try:
                self._on_failure(job.kind, exc, attempts, job.detail)
            except Exception as again:  # the handler logs its own trouble; never stop the queue
                log.error("recording a failed background task failed: %s", type(again).__name__)

    def join(self) -> None:
        """Wait until every submitted task has run (tests, and a clean shutdown)."""
        self._queue.join()

    def close(self) -> None:
        """Run what is queued (retries without waiting), then stop the thread."""
        self._closing.set()
        with self._lock:
            thread = self._thread
            self._thread = None
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            # Each queued task gets at most its current attempt and one more.
            thread.join(timeout=300)
