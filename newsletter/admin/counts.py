"""Exact audience counts made in the background for the console's pages.

Pages never wait for a count of a million subscribers: they ask for one here
and show what is stored (newsletter.audience.counting) until it is done. One
thread counts, one subject at a time, and a subject already waiting or being
counted is not queued twice, so reloading a page does not pile up work. The
counts themselves are stored in the database, so any process serving the
console shows them; only the queue lives in this process's memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from flask import current_app

log = logging.getLogger(__name__)


class CountJobs:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="console-count")
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    def start(self, subject: str, count: Callable[[], object]) -> None:
        """Count `subject` in the background unless it is already queued."""
        with self._lock:
            if subject in self._pending:
                return
            self._pending.add(subject)

        def run() -> None:
            try:
                count()
            except Exception:  # a failed count leaves the last stored one; the log says why
                log.exception("counting %s failed", subject)
            finally:
                with self._lock:
                    self._pending.discard(subject)

        self._pool.submit(run)

    def pending(self, subject: str) -> bool:
        with self._lock:
            return subject in self._pending


def count_jobs() -> CountJobs:
    """The console's one queue of background counts."""
    jobs = current_app.extensions.get("count_jobs")
    if jobs is None:
        jobs = current_app.extensions["count_jobs"] = CountJobs()
    assert isinstance(jobs, CountJobs)
    return jobs
