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

from newsletter.config import Config
from newsletter.errors import ConfigError
from newsletter.transports.base import OutgoingMessage, SendLimits, SendResult
from newsletter.transports.dsn import DSN


def maildir_folder(config: Config, dsn: DSN) -> Path:
    """The one rule for where a maildir DSN points: `maildir:PATH` or `maildir://PATH`
    (the "host" is then the path's first segment), relative to the config file's folder
    unless absolute."""
    raw = dsn.host + dsn.path if dsn.host else dsn.path
    if not raw.strip():
        raise ConfigError(f"{dsn.where}: a maildir DSN needs a path, e.g. maildir:outbox")
    return config.resolve_path(raw)


class MaildirTransport:
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
