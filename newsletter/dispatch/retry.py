"""When to try a delivery again after a temporary failure, and when to give up.

Exponential backoff with jitter: the n-th retry waits retry_initial × 2^(n-1)
seconds, at most retry_max, and then a random part of that wait is taken off
("equal jitter": between half and all of it), so that many deliveries that failed
together (a server restart) do not all come back in the same second.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from newsletter.config import DispatchConfig


@dataclass(frozen=True)
class RetryPolicy:
    initial_seconds: float = 60.0
    max_seconds: float = 3600.0
    max_attempts: int = 5

    @classmethod
    def from_config(cls, config: DispatchConfig) -> RetryPolicy:
        return cls(
            initial_seconds=config.retry_initial_seconds,
            max_seconds=config.retry_max_seconds,
            max_attempts=config.retry_max_attempts,
        )

    def gives_up(self, attempts: int) -> bool:
        """Whether a delivery that has now been tried `attempts` times is failed for good."""
        return attempts >= self.max_attempts

    def delay(self, attempts: int, asked: float | None = None) -> float:
        """Seconds to wait before the next try, after `attempts` tries (at least 1)."""
        exponent = max(attempts, 1) - 1
        full = min(self.max_seconds, self.initial_seconds * 2 ** min(exponent, 30))
        wait = full / 2 + random.uniform(0, full / 2)
        # A server that said how long to wait is listened to.
        return max(wait, asked or 0.0)
