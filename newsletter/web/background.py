"""Work the subscribe pages hand off, so that every answer takes the same time.

Whether an address is new, waiting for confirmation, already subscribed or
suppressed decides what the database and the mail server are asked to do, and
each path takes its own time. If the browser waited for that work, the time of
the answer would tell a stranger whether an address is known. So the page
answers as soon as the request is checked (CSRF, honeypot, rate limit, address
syntax) and one worker thread does the rest.

The queue lives in memory: a request accepted just before the process stops
may be lost, which costs the person a second try, never a wrong email.
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from collections.abc import Callable

log = logging.getLogger(__name__)

Task = Callable[[], object]


class BackgroundTasks:
    """One daemon thread running tasks in order; started on first use."""

    def __init__(self, name: str = "newsletter-web-tasks") -> None:
        self._name = name
        self._queue: queue.Queue[Task | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, task: Task) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._queue.put(task)

    def _run(self) -> None:
        while True:
            task = self._queue.get()
            try:
                if task is None:
                    return
                task()
            except Exception as exc:
                # A failed task must not stop the ones behind it. The log gets the kind of
                # error and where it happened, not its message: a database error's message
                # quotes the statement's parameters, which would put an address in the log.
                frame = traceback.extract_tb(exc.__traceback__)[-1]
                log.error(
                    "a background task failed: %s at %s:%s",
                    type(exc).__name__,
                    frame.filename,
                    frame.lineno,
                )
            finally:
                self._queue.task_done()

    def join(self) -> None:
        """Wait until every submitted task has run (tests, and a clean shutdown)."""
        self._queue.join()

    def close(self) -> None:
        with self._lock:
            thread = self._thread
            self._thread = None
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout=30)
