"""One send spread over several processes: a large campaign uses more than one core.

One Python process sends at most what one core composes and writes: the
engine's threads share one interpreter lock, and a profile of a 20,000
message send shows its CPU time per message equal to its wall time per
message (bench/README.md). So `newsletter send` on a large campaign forks
helper processes, each a `CampaignSender` of its own, sharing the work the way
separate `newsletter worker`s do: through the ledger's claims and leases.

What a helper shares with the process that forked it, and what it does not:

- the Composer (stage 1 of rendering: the edition rendered once, before the
  fork, copied into every helper by the fork itself);
- not the database connections: a helper throws away its copy of the pools
  and opens its own;
- not the transport's connections: the transport's `connections` are split
  between the processes (4 connections over 2 processes: 2 each), so the
  server sees no more connections than configured, and the crash bound stays
  `connections × in_flight_per_connection` for the send as a whole.

Rates: the per-second and hourly limits are shared through the database
(dispatch/rates.py) whatever the number of processes. A platform without
`fork` sends from one process.

Stopping: SIGTERM or Ctrl-C reaches the helpers (the parent passes SIGTERM on;
a terminal's Ctrl-C goes to the whole process group), and each gives its
claims back as a single process does. A helper that dies leaves claims that
the others (or the next send) take over at once: its pid is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

from newsletter.app import Newsletter
from newsletter.dispatch.engine import CampaignSender, RunReport

log = logging.getLogger(__name__)

# prctl(2): the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1

# Below this many deliveries left to send a campaign is sent by one process: starting
# helpers costs a fork each and a few database connections, worth it only when the
# send lasts seconds rather than a blink.
SPREAD_FROM = 2000


def can_fork() -> bool:
    """Forking is what makes helpers cheap (no second start-up, no second render)."""
    return "fork" in multiprocessing.get_all_start_methods() and hasattr(os, "fork")


def process_count(wanted: int, *, connections: int, remaining: int, cpus: int | None = None) -> int:
    """How many processes send: `wanted` (0 for one per core), within what makes sense.

    Never more than the transport's connections (each process needs one of its
    own), and one when the campaign is small or the platform cannot fork.
    """
    if remaining < SPREAD_FROM or not can_fork():
        return 1
    if wanted <= 0:
        wanted = cpus if cpus is not None else (os.cpu_count() or 1)
    return max(1, min(wanted, connections))


def split_connections(connections: int, processes: int) -> list[int]:
    """The transport's connections shared out: [3, 2, 2] for 7 over 3; the first is ours."""
    base, extra = divmod(connections, processes)
    return [base + (1 if number < extra else 0) for number in range(processes)]


class Helpers:
    """The helper processes of one send: started after stage 1, stopped with the send."""

    def __init__(
        self,
        app: Newsletter,
        campaign_id: int,
        make_sender: Callable[[int, threading.Event], CampaignSender],
        shares: list[int],
    ) -> None:
        self.app = app
        self.campaign_id = campaign_id
        self._make_sender = make_sender
        self._shares = shares
        self._context = multiprocessing.get_context("fork")
        self._processes: list[tuple[BaseProcess, Connection]] = []

    def start(self) -> None:
        if not self._shares:
            return  # a send from one process: nothing to fork
        # No database connection may cross the fork: a SQLite handle closed in a child
        # can drop the locks of the child's own connections to the file, and a PostgreSQL
        # socket used from two processes garbles both. The parent reopens on next use.
        for engine in (self.app.engine, self.app.read_engine):
            engine.dispose()
        for connections in self._shares:
            ours, theirs = self._context.Pipe(duplex=False)
            process = self._context.Process(
                target=_helper,
                args=(self.app, self._make_sender, connections, theirs, os.getpid()),
                name=f"send-{self.campaign_id}-helper",
                daemon=True,
            )
            process.start()
            theirs.close()
            self._processes.append((process, ours))

    def stop(self) -> None:
        """Ask every helper to stop cleanly (SIGTERM: they give their claims back)."""
        for process, _ in self._processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)

    def join(self) -> list[RunReport]:
        """Wait for every helper; the reports of those that finished their run."""
        reports = []
        for process, pipe in self._processes:
            answer: Any = None
            # Blocks until the helper sends its report or exits without one (EOF).
            with contextlib.suppress(EOFError, OSError):
                answer = pipe.recv()
            process.join()
            pipe.close()
            if isinstance(answer, RunReport):
                reports.append(answer)
            else:
                # Its claims are freed at once (its pid is gone) and sent by the others.
                why = answer if isinstance(answer, str) else f"exit code {process.exitcode}"
                log.warning("campaign %s: a sending process stopped: %s", self.campaign_id, why)
        self._processes = []
        return reports


def _helper(
    app: Newsletter,
    make_sender: Callable[[int, threading.Event], CampaignSender],
    connections: int,
    pipe: Connection,
    parent: int,
) -> None:
    """A helper's whole life: its own database connections, one sender, its report."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _stop_with_parent(parent)
    # The parent emptied its pools before forking; should anything have been opened
    # since, it is the parent's: dropped here unclosed, and this process opens its own.
    for engine in (app.engine, app.read_engine):
        engine.dispose(close=False)
    try:
        sender = make_sender(connections, stop)
        try:
            pipe.send(sender.run())
        finally:
            sender.transport.close()
    except Exception as exc:  # told to the parent, which logs it; no traceback here
        pipe.send(str(exc) or repr(exc))
    finally:
        pipe.close()


def _stop_with_parent(parent: int) -> None:
    """SIGTERM this helper when the parent dies, even by SIGKILL (Linux's prctl).

    Otherwise a `kill -9` of the send would leave its helpers sending on: harmless
    to the ledger, but not what whoever killed it meant. Elsewhere, or should the
    call fail, the helper still stops when it finds nothing left to claim.
    """
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # it died before the call above took effect
        os.kill(os.getpid(), signal.SIGTERM)
