"""Who holds a claim: worker ids, and whether the worker behind one is gone.

A worker id is `host:pid:token`. The token tells apart two senders in one
process (and a process from an earlier one that had the same pid). A claim whose
worker is on this host and whose process no longer exists (or is a zombie that
was killed and not yet reaped) is dead at once; a claim from another host is
only known dead when its lease lapses.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from functools import cache

# Worker ids of this process that are still running; ids of this pid that are not
# here belong to senders that stopped (or to an earlier process with this pid).
_running: set[str] = set()
_running_lock = threading.Lock()


@cache
def host_name() -> str:
    # A colon would break the id's format; hosts do not have them, but be safe.
    return socket.gethostname().replace(":", "_") or "localhost"


def new_worker_id() -> str:
    return f"{host_name()}:{os.getpid()}:{secrets.token_hex(4)}"


def register(worker_id: str) -> None:
    with _running_lock:
        _running.add(worker_id)


def unregister(worker_id: str) -> None:
    with _running_lock:
        _running.discard(worker_id)


def is_dead(worker_id: str) -> bool:
    """True when the worker is known to be gone; False when alive or unknowable."""
    host, _, rest = worker_id.partition(":")
    pid_text, _, _token = rest.partition(":")
    if host != host_name() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        with _running_lock:
            return worker_id not in _running
    return not process_alive(pid)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    # A killed process that its parent has not reaped yet is a zombie: gone all the same.
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")
