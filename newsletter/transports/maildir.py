"""The maildir outbox: every message becomes a file, nothing leaves the machine.

The default transport, for the demo, for previews and for anyone who hands the
files to another program. Messages are written the standard maildir way (the
`mailbox` module: a unique name in `tmp/`, then a rename into `new/`), so a
reader never sees half a message, and with local line endings as mail readers
expect of files. The reply kept on the delivery is the file's name in `new/`.
"""

from __future__ import annotations

import mailbox
import threading
from collections.abc import Sequence
from pathlib import Path

from newsletter.errors import ConfigError
from newsletter.transports.base import OutgoingMessage, SendLimits, SendResult


class MaildirTransport:
    relays_raw = True

    def __init__(self, name: str, path: Path, limits: SendLimits | None = None) -> None:
        self.name = name
        self.path = path
        self.limits = limits or SendLimits()
        try:
            for folder in ("tmp", "new", "cur"):
                (path / folder).mkdir(parents=True, exist_ok=True)
            self._box = mailbox.Maildir(path, factory=None, create=False)
        except OSError as exc:
            raise ConfigError(
                f"transport {name!r}: cannot create the maildir {path}: {exc}"
            ) from None
        # mailbox.Maildir names files with a class-wide counter that is not thread-safe.
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"maildir {self.path / 'new'}"

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        results = []
        for message in messages:
            data = message.data.replace(b"\r\n", b"\n")
            try:
                with self._lock:
                    key = self._box.add(data)
            except OSError as exc:
                # A full disk or a lost mount: the message may go later.
                results.append(SendResult("retry", f"cannot write to {self.path}: {exc}"))
            else:
                results.append(SendResult("sent", key))
        return results

    def close(self) -> None:
        self._box.close()
