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

The per-second limit may be shared by several processes (workers on several
hosts sending through one provider account): given a `SlotSource`, the
limiter takes runs of slots from it (newsletter/dispatch/rates.py keeps them in
the database) and starts each message no earlier than its slot, besides its
own spacing. A slot missed by more than one interval (or 20 ms) is dropped,
never spent late: late slots spent together would be a burst above the shared
rate. The hourly limit may be shared the same way: given an `HourSource`, the
limiter takes runs of allowance from it instead of counting its own window, and
gives back what it did not use (`close`). The adaptive rate is this limiter's,
but a worker that learns (through the database) that another was throttled
halves its own too (`throttled(heard=False)`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

# The slowest an adaptive slow-down goes: one message every five seconds.
MIN_ADAPTIVE_RATE = 0.2
# Growth of the adaptive rate per second without throttling.
RECOVERY_PER_SECOND = 1.25
# Seconds of history used to measure the rate actually achieved.
OBSERVE_SECONDS = 5
HOUR = 3600
# How late a shared slot may still be used (or one interval, if longer): a thread
# woken a few milliseconds late on a busy machine keeps its turn, and a second
# holds at most (1 + LATE_SLOT) × rate + 1 messages.
LATE_SLOT = 0.02
# `_reserve`'s answer when the shared run is used up and more slots must be taken.
NEED_SLOTS = -1.0
# `_reserve`'s answer when the shared hourly allowance taken is used up.
NEED_HOURS = -2.0
# The longest a limiter waits before asking for hourly allowance again: another
# worker may have given some back.
HOURLY_RECHECK = 30.0


class SlotSource(Protocol):
    """Where shared slots come from: runs of slots `interval` seconds apart."""

    interval: float

    def reserve(self) -> tuple[float, int]:
        """(start of the run on time.monotonic(), number of slots)."""
        ...


class HourSource(Protocol):
    """Where shared hourly allowance comes from (dispatch/rates.py's SharedHour)."""

    def take(self) -> tuple[int, float]:
        """(messages granted, seconds until more may be free when none was)."""
        ...

    def give_back(self, count: int) -> None:
        """Return allowance taken and not used."""
        ...


class RateLimiter:
    def __init__(
        self,
        per_second: float = 0.0,
        per_hour: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
        shared: SlotSource | None = None,
        hourly: HourSource | None = None,
    ) -> None:
        self.per_second = per_second
        # Shared slots apply only to a configured per-second rate.
        self.shared = shared if per_second else None
        self._shared_next = 0.0
        self._shared_left = 0
        # One thread at a time takes new slots (a database round trip), outside _lock.
        self._refill_lock = threading.Lock()
        self.per_hour = per_hour
        # Shared allowance applies only to a configured hourly limit.
        self.hourly = hourly if per_hour else None
        self._hour_left = 0
        self._hour_wait_until = 0.0
        # When the shared allowance was said to have room again (0: it has room now).
        self._hour_free_at = 0.0
        self._clock = clock
        self._lock = threading.Lock()
        # The earliest moment the next message may start (per-second spacing).
        self._next_slot = 0.0
        # (whole second, messages started in it), oldest first.
        self._buckets: deque[list[int]] = deque()
        self._in_window = 0
        # The hour's window is counted here only when nobody shares it.
        self._window = HOUR if per_hour and self.hourly is None else OBSERVE_SECONDS
        # None: no adaptive limit in force.
        self._adaptive: float | None = None
        self._adaptive_since = 0.0
        self._last_halving = float("-inf")
        self._ceiling = 0.0
        self._first = float("inf")
        self.throttle_count = 0
        # Slow-downs taken because another worker was throttled.
        self.followed = 0

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
            if wait == NEED_SLOTS:
                self._refill()
                continue
            if wait == NEED_HOURS:
                self._refill_hours()
                continue
            if wait <= 0:
                return True
            if stop.wait(min(wait, 0.5)):
                return False

    def _refill(self) -> None:
        assert self.shared is not None
        with self._refill_lock:
            with self._lock:
                if self._shared_left:
                    return  # another thread took a run meanwhile
            start, count = self.shared.reserve()
            with self._lock:
                self._shared_next, self._shared_left = start, count

    def _refill_hours(self) -> None:
        assert self.hourly is not None
        with self._refill_lock:
            with self._lock:
                if self._hour_left or self._clock() < self._hour_wait_until:
                    return  # another thread took a run meanwhile, or nothing is free yet
            granted, wait = self.hourly.take()
            with self._lock:
                self._hour_left = granted
                self._hour_free_at = 0.0 if granted else self._clock() + wait
                if not granted:
                    self._hour_wait_until = self._clock() + min(wait, HOURLY_RECHECK)

    def hourly_wait(self) -> float:
        """Seconds until the shared hourly limit has room again; 0 unless it holds us."""
        with self._lock:
            if self.hourly is None or self._hour_left or not self._hour_free_at:
                return 0.0
            return max(self._hour_free_at - self._clock(), 0.0)

    def close(self) -> None:
        """Give back the hourly allowance taken and not used (the send is stopping)."""
        if self.hourly is None:
            return
        with self._refill_lock, self._lock:
            left, self._hour_left = self._hour_left, 0
        self.hourly.give_back(left)

    def throttled(self, *, heard: bool = True) -> None:
        """A server asked us to slow down: halve the rate (once a second at most).

        `heard=False`: another worker sending through the same account was told to
        slow down (the provider throttles the account, not one connection); this
        limiter follows, without counting a reply it did not hear.
        """
        with self._lock:
            now = self._clock()
            if heard:
                self.throttle_count += 1
            else:
                self.followed += 1
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
        if self.shared is not None and self._adaptive is None:
            # The shared slots space the messages; spacing them again here would add
            # each late wake-up to every later message and fall behind the slots.
            limit = None
        if limit is not None:
            start = max(now, self._next_slot)
            if start > now:
                return start - now
        if self.shared is not None:
            wait = self._shared_wait(now)
            if wait:
                return wait
        if self.hourly is not None:
            if not self._hour_left:
                if now < self._hour_wait_until:
                    return self._hour_wait_until - now
                return NEED_HOURS
        elif self.per_hour:
            self._expire(now)
            if self._in_window >= self.per_hour:
                # The oldest bucket leaves the window at its second + one hour.
                return max(self._buckets[0][0] + HOUR - now, 0.01)
        if limit is not None:
            self._next_slot = max(now, self._next_slot) + 1.0 / limit
        if self.shared is not None:
            self._shared_next += self.shared.interval
            self._shared_left -= 1
        if self.hourly is not None:
            self._hour_left -= 1
        self._count(now)
        return 0.0

    def _shared_wait(self, now: float) -> float:
        """0 when the next shared slot has come; else how long to wait, or NEED_SLOTS."""
        assert self.shared is not None
        interval = self.shared.interval
        late = now - self._shared_next
        if self._shared_left and late > max(interval, LATE_SLOT):
            # Missed slots are dropped: others may be sending in them now.
            missed = min(self._shared_left, int(late / interval))
            self._shared_next += missed * interval
            self._shared_left -= missed
        if not self._shared_left:
            return NEED_SLOTS
        return max(self._shared_next - now, 0.0)

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
