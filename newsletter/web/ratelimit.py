"""Rate limiting per client: an in-memory token bucket keyed by the client's address.

The address is held in this process's memory only, for as long as its bucket
is not full again, and is never written anywhere (not to the database, not to
a log). Each process of a multi-process server has its own buckets, which is
good enough to slow a bot down; the limit is a courtesy to mail providers and
to the people whose addresses a bot would type in, not an access control.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

# Beyond this many tracked clients, buckets that have refilled are forgotten.
MAX_TRACKED_CLIENTS = 10_000


class TokenBucket:
    """`capacity` requests at once, refilled at `per_second`; thread-safe."""

    def __init__(
        self,
        capacity: float,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_TRACKED_CLIENTS,
    ) -> None:
        if capacity < 1 or per_second <= 0:
            raise ValueError("a token bucket needs a capacity of at least 1 and a positive rate")
        self.capacity = float(capacity)
        self.per_second = float(per_second)
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """Spend one token for `client`: 0.0 when allowed, else the seconds until one is due."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.per_second)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                if len(self._buckets) > self._max_clients:
                    self._forget_full(now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.per_second

    def _forget_full(self, now: float) -> None:
        """Drop the clients whose bucket has refilled: they are as good as new."""
        full = [
            client
            for client, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.per_second >= self.capacity
        ]
        for client in full:
            del self._buckets[client]
        if len(self._buckets) > self._max_clients:
            # Many clients at once (addresses rotated by a bot): forget the longest idle
            # half rather than grow without bound; they merely get a fresh bucket.
            by_age = sorted(self._buckets, key=lambda client: self._buckets[client][1])
            for client in by_age[: len(by_age) // 2]:
                del self._buckets[client]

    def __len__(self) -> int:
        return len(self._buckets)
