"""Sign-in throttling: failed attempts counted per account and per client address.

Counted in the memory of the process, never in the database: nothing about a
client address is stored, and a restart forgets the counts (an attacker gains
at most one window's attempts per restart). Several processes serving the
console each count their own; with N of them an account gets N times the
attempts, still far too few to guess a password of the minimum length.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class LoginThrottle:
    def __init__(
        self,
        *,
        per_account: int,
        per_client: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = {"account": per_account, "client": per_client}
        self.window = window_seconds
        self.clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, account: str, client: str) -> float:
        """Seconds until this account and client may try again; 0 when they may now."""
        now = self.clock()
        wait = 0.0
        with self._lock:
            for key in (("account", account), ("client", client)):
                times = self._recent(key, now)
                if len(times) >= self.limits[key[0]]:
                    wait = max(wait, times[0] + self.window - now)
        return wait

    def failed(self, account: str, client: str) -> None:
        now = self.clock()
        with self._lock:
            for key in (("account", account), ("client", client)):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, account: str) -> None:
        """A right password clears the account's count (not the client's)."""
        with self._lock:
            self._failures.pop(("account", account), None)
