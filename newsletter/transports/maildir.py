"""The maildir outbox: every message becomes a file, nothing leaves the machine.

The default transport, for the demo, for previews and for anyone who hands the
files to another program. Messages are written the standard maildir way (the
`mailbox` module: a unique name in `tmp/`, then a rename into `new/`), so a
reader never sees half a message, and with local line endings as mail readers
expect of files. The reply kept on the delivery is the file's name in `new/`.

A send killed while writing leaves a partial file in `tmp/`, which no reader
looks at but which would stay forever. Opening the outbox removes the files in
`tmp/` whose writer is gone: written on this host by a process that no longer
runs (the name holds the host and the process id), or older than 36 hours (the
maildir convention, for files from other hosts or of unknown names). A file a
running process is writing is never touched.
"""

from __future__ import annotations

import mailbox
import os
import re
import socket
import threading
import time
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
        self.cleaned = clean_tmp(path / "tmp")

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


# mailbox.Maildir's names: seconds.M<microseconds>P<pid>Q<counter>.<host>, with "/" and
# ":" in the host written as \057 and \072.
_TMP_NAME = re.compile(r"^\d+\.M\d+P(?P<pid>\d+)Q\d+\.(?P<host>.+)$")
STALE_TMP_SECONDS = 36 * 3600


def clean_tmp(tmp: Path, *, now: float | None = None) -> int:
    """Remove the partial files of writers that are gone (see the module docstring)."""
    now = time.time() if now is None else now
    host = socket.gethostname().replace("/", r"\057").replace(":", r"\072")
    removed = 0
    try:
        entries = list(tmp.iterdir())
    except OSError:
        return 0
    for entry in entries:
        match = _TMP_NAME.match(entry.name)
        try:
            stale = now - entry.stat().st_mtime > STALE_TMP_SECONDS
            mine_and_gone = (
                match is not None
                and match["host"] == host
                and not _process_alive(int(match["pid"]))
            )
            if stale or mine_and_gone:
                entry.unlink()
                removed += 1
        except OSError:
            continue  # gone already, or not ours to remove
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
