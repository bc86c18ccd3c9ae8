"""An in-memory transport: the engine's stand-in for a server in fast tests.

It keeps every message it accepted and answers as a script says, so a test can
make any recipient fail, retry or bounce, slow the wire down, or throttle.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

from newsletter.transports.base import OutgoingMessage, SendLimits, SendResult

# Given a message and how many times this recipient was tried before, the answer.
Script = Callable[[OutgoingMessage, int], SendResult]


def accept_all(message: OutgoingMessage, tries: int) -> SendResult:
    return SendResult("sent", f"250 ok {message.message_id}")


class MemoryTransport:
    # Like SMTP: the engine's tests see messages finished as a server would get them.
    relays_raw = True

    def __init__(
        self,
        name: str = "memory",
        *,
        script: Script = accept_all,
        limits: SendLimits | None = None,
        delay: float = 0.0,
    ) -> None:
        self.name = name
        self.limits = limits or SendLimits()
        self.script = script
        # Seconds each message takes on the "wire", to make sends last long enough to watch.
        self.delay = delay
        self.sent: list[OutgoingMessage] = []
        self.tries: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._threads: set[int] = set()
        self.closed = False

    def describe(self) -> str:
        return f"memory {self.name}"

    @property
    def concurrent_threads(self) -> int:
        """How many different threads have called send (the pool's real width)."""
        return len(self._threads)

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        results = []
        for message in messages:
            if self.delay:
                time.sleep(self.delay)
            with self._lock:
                self._threads.add(threading.get_ident())
                tries = self.tries[message.recipient]
                self.tries[message.recipient] += 1
            result = self.script(message, tries)
            if result.outcome == "sent":
                with self._lock:
                    self.sent.append(message)
            results.append(result)
        return results

    def received(self) -> Counter[str]:
        """Messages accepted per recipient address."""
        with self._lock:
            return Counter(message.recipient for message in self.sent)

    def close(self) -> None:
        self.closed = True
