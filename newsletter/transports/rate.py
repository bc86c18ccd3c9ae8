"""Send-rate limits of one transport: per second, per sliding hour, and adaptive.

Every sending thread asks `acquire()` before each message. Three limits apply:

- messages per second: messages are spaced 1/rate apart (no bursts), so a
  provider that counts per second never sees more than it allows;
- messages per hour: a sliding window of one-second buckets (3,600 of them at
  most, so memory does not grow with the size of the send);
- the adaptive rate: when a server throttles (421/451/454), the rate is halved
  (at most once a second, so that one burst of throttling replies from every
  connection counts once), and it grows back by a quarter each second without
  throttling until the configured limit, or no limit, is reached again. This
  is additive-increase/multiplicative-decrease in spirit: back off fast,
  recover steadily.

Limits are per sending process; several worker processes each apply them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

# The slowest an adaptive slow-down goes: one message every five seconds.
MIN_ADAPTIVE_RATE = 0.2
# Growth of the adaptive rate per second without throttling.
RECOVERY_PER_SECOND = 1.25
# Seconds of history used to measure the rate actually achieved.
OBSERVE_SECONDS = 5
HOUR = 3600


class RateLimiter:
    def __init__(
        self,
        per_second: float = 0.0,
        per_hour: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_second = per_second
        self.per_hour = per_hour
        self._clock = clock
        self._lock = threading.Lock()
        # The earliest moment the next message may start (per-second spacing).
        self._next_slot = 0.0
        # (whole second, messages started in it), oldest first.
        self._buckets: deque[list[int]] = deque()
        self._in_window = 0
        self._window = HOUR if per_hour else OBSERVE_SECONDS
        # None: no adaptive limit in force.
        self._adaptive: float | None = None
        self._adaptive_since = 0.0
        self._last_halving = float("-inf")
        self._ceiling = 0.0
        self._first = float("inf")
        self.throttle_count = 0

    @property
    def current_limit(self) -> float | None:
        """Messages per second now allowed; None when unlimited."""
        with self._lock:
            return self._limit(self._clock())

    def acquire(self, stop: threading.Event) -> bool:
        """Wait until one more message may go; False when `stop` was set meanwhile."""
        while True:
            with self._lock:
                now = self._clock()
                wait = self._reserve(now)
            if wait <= 0:
                return True
            if stop.wait(min(wait, 0.5)):
                return False

    def throttled(self) -> None:
        """A server asked us to slow down: halve the rate (once a second at most)."""
        with self._lock:
            now = self._clock()
            self.throttle_count += 1
            if now - self._last_halving < 1.0:
                return
            self._last_halving = now
            current = self._limit(now)
            observed = self._observed(now)
            base = min(current, observed) if current is not None else observed
            self._adaptive = max(MIN_ADAPTIVE_RATE, base / 2)
            self._adaptive_since = now
            # With no configured rate, the slow-down ends once the adaptive rate is well
            # above what the send reached before the server complained.
            self._ceiling = max(observed * 2, 10.0)
            # The next message waits one new interval: the slow-down starts at once.
            self._next_slot = max(self._next_slot, now + 1.0 / self._adaptive)

    def seed(self, timestamps: list[float]) -> None:
        """Count messages sent before this process started (monotonic times) in the hour."""
        with self._lock:
            for moment in sorted(timestamps):
                self._count(moment)

    # -- inside the lock ---------------------------------------------------------

    def _limit(self, now: float) -> float | None:
        configured = self.per_second or None
        if self._adaptive is not None:
            grown = self._adaptive * RECOVERY_PER_SECOND ** (now - self._adaptive_since)
            ceiling = configured if configured is not None else self._ceiling
            if grown >= ceiling:
                self._adaptive = None
            else:
                return grown
        return configured

    def _observed(self, now: float) -> float:
        """Messages per second over the last few seconds (or since the first message)."""
        oldest = int(now) - OBSERVE_SECONDS + 1
        recent = sum(count for second, count in self._buckets if second >= oldest)
        span = max(now - max(self._first, float(oldest)), 0.05)
        return max(recent / span, MIN_ADAPTIVE_RATE)

    def _reserve(self, now: float) -> float:
        """Take a slot if one is free now, else say how long to wait."""
        limit = self._limit(now)
        if limit is not None:
            start = max(now, self._next_slot)
            if start > now:
                return start - now
        if self.per_hour:
            self._expire(now)
            if self._in_window >= self.per_hour:
                # The oldest bucket leaves the window at its second + one hour.
                return max(self._buckets[0][0] + HOUR - now, 0.01)
        if limit is not None:
            self._next_slot = max(now, self._next_slot) + 1.0 / limit
        self._count(now)
        return 0.0

    def _count(self, moment: float) -> None:
        self._first = min(self._first, moment)
        second = int(moment)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += 1
        else:
            self._buckets.append([second, 1])
        self._in_window += 1
        self._expire(moment)

    def _expire(self, now: float) -> None:
        oldest = int(now) - self._window
        while self._buckets and self._buckets[0][0] <= oldest:
            self._in_window -= self._buckets.popleft()[1]
