"""The sending engine: one worker's send of one campaign.

Three kinds of thread work together, joined by two queues:

    coordinator ──claims──► work queue ──► sender × connections ──► outcome queue ──► recorder
    (this thread: claims,                  (compose, rate-limit,                      (executemany
     leases, status checks,                 send on its own                            UPDATEs, one
     progress, finishing)                   connection)                                transaction)

The coordinator claims a batch of deliveries whenever fewer than a batch are
queued, so at most two batches are held in memory whatever the campaign's size.
Each sender thread owns one connection of the transport; the run has one
Composer (stage 1 of rendering done once, stage 2 per recipient), so nothing
is rebuilt per recipient. The recorder writes outcomes in groups: whatever
arrived while the previous group was being committed.

Crash safety
------------
Kill the sending process at any moment (SIGKILL, the OOM killer, a crash) and
start the send again: every recipient still gets the message, and at most
`connections × in_flight_per_connection` of them get it twice. A crash of the
database (a power cut) may also undo the last recorded outcomes: SQLite runs
with synchronous=NORMAL (see db.py), and on PostgreSQL the outcome writer
commits with synchronous_commit off unless `dispatch.wait_for_disk` (see
ledger.OutcomeWriter); those messages would then be sent again, never lost.

Why: a delivery is claimed (status `sending`, our worker id, a lease) before it
is sent, and is marked `sent` only after the server accepted it. Each sender
thread may have at most `in_flight_per_connection` messages that the server
may have accepted but the ledger has not yet recorded: before sending another
it waits until the recorder has committed the outcome of its earlier ones. So
when the process dies, the deliveries still `sending` are of two kinds: those
never handed to the server (claimed, queued), which are simply sent after the
restart, and at most `in_flight_per_connection` per connection that the server
may have taken; those are the only possible duplicates. (SMTP itself cannot do
better: a connection lost after the final "." leaves it unknown whether the
server kept the message.) With a transport that takes batches (an API's batch
form, `SendLimits.batch_size`), each of those units is one batch, so the bound
is multiplied by the batch size; SMTP and the maildir send one message a call.
With the defaults (4 connections, 1 in flight each) a crash resends at most 4
messages; tests/test_dispatch_smtp.py kills a real `newsletter send` with
SIGKILL halfway and checks exactly this, and tests/test_dispatch.py checks the
per-connection window at every send.

A restarted sender on the same host reclaims the dead
worker's claims at once (its process is gone); a worker on another host takes
them over when their lease (`dispatch.lease_seconds`) lapses. A worker that is
alive keeps renewing its lease, so a slow send never loses its claims; one that
is frozen for longer than the lease may lose them, and its in-flight messages
may then be sent twice as well.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from newsletter import lifecycle
from newsletter.actors import WORKER
from newsletter.app import Newsletter
from newsletter.dispatch import ledger, rates, workers
from newsletter.dispatch.progress import Progress, campaign_progress
from newsletter.dispatch.retry import RetryPolicy
from newsletter.errors import OperationFailed, UserError
from newsletter.message import Composer, Recipient, finishing_steps
from newsletter.models import utcnow
from newsletter.transports.base import SendResult, Transport
from newsletter.transports.rate import RateLimiter

log = logging.getLogger(__name__)

# How often a sender looks at the campaign's status (pause, cancel take effect
# within this plus the message on the wire).
STATUS_EVERY = 0.5
# How often it looks for claims of dead workers.
RECLAIM_EVERY = 5.0
# The largest group of outcomes written in one transaction.
RECORD_GROUP = 2000
# Attempts to write a group of outcomes before giving up on the database.
RECORD_TRIES = 6


@dataclass
class RunReport:
    """How one run of the engine ended."""

    campaign_id: int
    worker_id: str
    # finished: every delivery is final and the campaign is sent;
    # paused / cancelled: someone changed the campaign's status;
    # failing: the engine paused the campaign after too many failures in a row;
    # idle: nothing to send now (only with wait_for_retries=False);
    # stopped: asked to stop (SIGTERM, a worker shutting down).
    reason: str = "stopped"
    sent: int = 0
    failed: int = 0
    retried: int = 0
    bounced: int = 0
    note: str = ""
    seconds: float = 0.0
    # For idle runs: when the earliest retry is due.
    next_retry_at: datetime | None = None


class HeldConnection:
    """One database connection kept by one thread for the whole run.

    Taking a connection from the pool for every group of outcomes would add a
    pool round trip and a reset (a ROLLBACK) to every transaction; the engine's
    hot path runs thousands of them a minute. After a database error the
    connection is thrown away and the next transaction opens a new one.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.engine.connect()
        try:
            with self._conn.begin():
                yield self._conn
        except DBAPIError:
            self.close()
            raise

    def close(self) -> None:
        if self._conn is not None:
            with suppress(DBAPIError):
                self._conn.close()
            self._conn = None


class Outcome:
    """One delivery's result on its way to the recorder."""

    __slots__ = ("bounce", "kind", "params", "slot")

    def __init__(
        self,
        kind: str,
        params: dict[str, Any],
        slot: threading.Semaphore,
        bounce: tuple[int, int, str, str] | None = None,
    ) -> None:
        self.kind = kind
        self.params = params
        self.slot = slot
        # (delivery id, subscriber id, address, reply) of a hard bounce.
        self.bounce = bounce


@dataclass
class EngineOptions:
    batch_size: int = 200
    lease_seconds: float = 300.0
    in_flight_per_connection: int = 1
    pause_after_consecutive_failures: int = 50
    wait_for_disk: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    @classmethod
    def from_app(cls, app: Newsletter) -> EngineOptions:
        config = app.config.dispatch
        return cls(
            batch_size=config.batch_size,
            lease_seconds=float(config.lease_seconds),
            in_flight_per_connection=max(1, config.in_flight_per_connection),
            pause_after_consecutive_failures=config.pause_after_consecutive_failures,
            wait_for_disk=config.wait_for_disk,
            retry=RetryPolicy.from_config(config),
        )


class CampaignSender:
    """Sends one campaign until it is done, paused, cancelled or told to stop."""

    def __init__(
        self,
        app: Newsletter,
        campaign_id: int,
        transport: Transport,
        *,
        wait_for_retries: bool = True,
        on_progress: Callable[[Progress], None] | None = None,
        progress_every: float = 1.0,
        stop: threading.Event | None = None,
        options: EngineOptions | None = None,
        composer_factory: Callable[[Newsletter, int], Any] | None = None,
        campaign_rate: bool = False,
    ) -> None:
        self.app = app
        self.campaign_id = campaign_id
        self.transport = transport
        self.wait_for_retries = wait_for_retries
        self.on_progress = on_progress
        self.progress_every = progress_every
        self.options = options or EngineOptions.from_app(app)
        self.worker_id = workers.new_worker_id()
        self.report = RunReport(campaign_id=campaign_id, worker_id=self.worker_id)
        self._composer_factory = composer_factory
        # Progress shows the campaign's rate (every worker's, from its counters) rather
        # than this sender's: when other processes send the same campaign beside it.
        self._campaign_rate = campaign_rate
        # Set by anyone who wants the run to end: a signal handler, a failing thread.
        self._stop = stop or threading.Event()
        self._own_stop = threading.Event()
        self._wake = threading.Event()
        limits = transport.limits
        self._connections = max(1, limits.connections)
        # The per-second rate is the provider account's: shared with every other worker
        # through the database (see dispatch/rates.py).
        shared = (
            rates.SharedRate(app.engine, transport.name, limits.rate_per_second)
            if limits.rate_per_second
            else None
        )
        # So is the hourly limit: every worker takes its allowance from the database.
        hourly = (
            rates.SharedHour(app.engine, transport.name, limits.rate_per_hour)
            if limits.rate_per_hour
            else None
        )
        self.limiter = RateLimiter(
            limits.rate_per_second, limits.rate_per_hour, shared=shared, hourly=hourly
        )
        self._throttles_counted = 0
        # The shared throttling count at our last look (None: not looked yet), and what we
        # added to it since: the rest was heard by other workers.
        self._throttles_seen: int | None = None
        self._throttles_unseen = 0
        self._work: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._queued = 0
        self._outcomes: queue.SimpleQueue[Outcome | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        # Claimed deliveries whose outcome is not yet committed.
        self._outstanding = 0
        self._consecutive_failures = 0
        self._last_failure = ""
        self._failing_note = ""
        self._error: BaseException | None = None
        self._rate_samples: deque[tuple[float, int]] = deque(maxlen=64)
        # The coordinator's connection; the recorder has its own. Its pure reads (the
        # status polled twice a second, counts, progress) go through a second one that
        # never takes SQLite's write lock, so that they never make the pages wait.
        self._db = HeldConnection(app.engine)
        self._reads = HeldConnection(app.read_engine)

    # -- the coordinator ----------------------------------------------------------

    def run(self) -> RunReport:
        started = time.monotonic()
        # Read now: it may come from the database, which must not be asked for it
        # inside the recorder's write transaction.
        self._suppression_key = self.app.suppression_key
        # Stage 1 of rendering, once for this run; compose() is safe from several threads.
        self._composer = self._make_composer()
        if self.transport.limits.rate_per_hour:
            self._seed_hourly_window()
        workers.register(self.worker_id)
        threads = [
            threading.Thread(target=self._sender, name=f"sender-{i}", daemon=True)
            for i in range(self._connections)
        ]
        recorder = threading.Thread(target=self._recorder, name="recorder", daemon=True)
        for thread in [*threads, recorder]:
            thread.start()
        try:
            self._coordinate()
        except DBAPIError as exc:
            self._fail(
                OperationFailed(f"sending campaign {self.campaign_id}: database error: {exc}")
            )
        finally:
            self._shutdown(threads, recorder)
            self.report.seconds = time.monotonic() - started
            workers.unregister(self.worker_id)
        if self._error is not None:
            raise self._error
        return self.report

    @property
    def stopping(self) -> bool:
        return self._stop.is_set() or self._own_stop.is_set()

    def _coordinate(self) -> None:
        options = self.options
        low_water = max(1, options.batch_size)
        next_status = next_reclaim = next_progress = 0.0
        next_renew = time.monotonic() + options.lease_seconds / 3
        waiting = shown = ""
        next_due: datetime | None = None
        while True:
            now = time.monotonic()
            if self._error is not None:
                return
            if self._stop.is_set():
                self.report.reason = "stopped"
                return
            if self._failing_note:
                self._pause_for_failures()
                return
            if now >= next_status:
                next_status = now + STATUS_EVERY
                if not self._still_sending():
                    return
                self._count_throttling()
                self._follow_throttling()
            if now >= next_reclaim:
                next_reclaim = now + RECLAIM_EVERY
                self._reclaim()
            if now >= next_renew:
                next_renew = now + options.lease_seconds / 3
                with self._db.begin() as conn:
                    ledger.renew_lease(conn, self.campaign_id, self.worker_id, self._lease_until())

            claimed = 0
            if self._queued < low_water:
                claimed = self._claim()
            if claimed:
                waiting = ""
            elif self._outstanding == 0:
                # Nothing of ours is in flight and nothing is claimable now.
                done, waiting, next_due = self._nothing_to_claim()
                if done:
                    return
                if not self.wait_for_retries:
                    self.report.reason = "idle"
                    self.report.next_retry_at = next_due
                    return
            note = waiting or self._hourly_note()
            if now >= next_progress or note != shown:
                # On the tick, and at once when what we wait for changes.
                next_progress = now + self.progress_every
                shown = note
                self._emit_progress(note)
            if claimed and self._queued < low_water:
                continue
            pause = 0.25
            if waiting and not self._outstanding:
                # Waiting for retries: look again when the first is due, at least once a
                # second (a pause or cancel must still take effect promptly).
                pause = 1.0
                if next_due is not None:
                    pause = min(1.0, max(0.02, (next_due - utcnow()).total_seconds()))
            self._wake.wait(pause)
            self._wake.clear()

    def _hourly_note(self) -> str:
        """What the progress says while the transport's hourly limit holds the send."""
        seconds = self.limiter.hourly_wait()
        if not seconds:
            return ""
        # To the minute: the line changes when the news does, not every second.
        when = (utcnow() + timedelta(seconds=seconds + 59)).astimezone().strftime("%H:%M")
        per_hour = self.transport.limits.rate_per_hour
        return f"waiting for the hourly limit ({per_hour} an hour): more may go from {when}"

    def _count_throttling(self) -> None:
        """Add the throttling replies heard since the last time to the shared counter."""
        count = self.limiter.throttle_count - self._throttles_counted
        if count <= 0:
            return
        with self._db.begin() as conn:
            rates.ensure_row(conn, self.transport.name)
            rates.add_throttled(conn, self.transport.name, count)
        self._throttles_counted += count
        self._throttles_unseen += count

    def _follow_throttling(self) -> None:
        """Slow down when other workers on this transport were throttled since the last look.

        The shared counter grows by every worker's replies; what it grew by beyond our
        own (`_throttles_unseen`, written since the last look) was heard by others.
        """
        with self._reads.begin() as conn:
            total = rates.throttled_total(conn, self.transport.name)
        if (
            self._throttles_seen is not None
            and total > self._throttles_seen + self._throttles_unseen
        ):
            self.limiter.throttled(heard=False)
        self._throttles_seen = total
        self._throttles_unseen = 0

    def _seed_hourly_window(self) -> None:
        """Fill in the transport's last hour from the ledger, if no worker has counted it.

        The first send through a transport with an hourly limit (after an upgrade, or
        after an hour of quiet) must not start a fresh hour: what the ledger says was
        sent in it counts.
        """
        name = self.transport.name
        now = utcnow()
        with self._reads.begin() as conn:
            times = ledger.sent_through_transport(
                conn,
                name,
                is_default=name == self.app.config.default_transport,
                since=now - timedelta(hours=1),
            )
        with self._db.begin() as conn:
            rates.ensure_row(conn, name)
            rates.seed_hours(conn, name, [sent_at.timestamp() for sent_at in times])

    def _lease_until(self) -> datetime:
        return ledger.later(utcnow(), self.options.lease_seconds)

    def _claim(self) -> int:
        if self.stopping:
            return 0
        now = utcnow()
        with self._db.begin() as conn:
            claims = ledger.claim(
                conn,
                self.campaign_id,
                self.worker_id,
                self.options.batch_size,
                now,
                ledger.later(now, self.options.lease_seconds),
            )
        if claims:
            with self._lock:
                self._outstanding += len(claims)
                self._queued += len(claims)
            for item in claims:
                self._work.put(item)
        return len(claims)

    def _still_sending(self) -> bool:
        with self._reads.begin() as conn:
            state = ledger.campaign_state(conn, self.campaign_id)
        if state is None:
            self.report.reason = "cancelled"
            self.report.note = "the campaign was deleted"
            return False
        status, note = state
        if status == "sending":
            return True
        self.report.reason = "finished" if status == "sent" else status
        self.report.note = note
        return False

    def _reclaim(self) -> None:
        with self._reads.begin() as conn:
            holders = ledger.claim_holders(conn, self.campaign_id)
        dead = [h for h in holders if h and h != self.worker_id and workers.is_dead(h)]
        with self._db.begin() as conn:
            freed = ledger.reclaim(conn, self.campaign_id, utcnow(), dead)
        if freed:
            log.info(
                "campaign %s: took over %d deliveries of stopped workers", self.campaign_id, freed
            )

    def _nothing_to_claim(self) -> tuple[bool, str, datetime | None]:
        """Finish the campaign if every delivery is final; else say what we wait for."""
        with self._reads.begin() as conn:
            counts = ledger.counts(conn, self.campaign_id)
            next_due = ledger.next_retry_at(conn, self.campaign_id) if counts.get("retry") else None
        if not any(counts.get(status) for status in ledger.OPEN_STATUSES):
            try:
                with self.app.session() as session:
                    finished = ledger.finish(session, self.campaign_id)
            except ledger.StillOpen:
                return False, "", None
            self.report.reason = "finished"
            if not finished:
                # Someone else finished it, or changed its status; the next check says which.
                self._still_sending()
            self._emit_progress("")
            return True, "", None
        parts = []
        if counts.get("retry"):
            when = next_due.astimezone().strftime("%H:%M:%S") if next_due else "?"
            seconds = max(0, int((next_due - utcnow()).total_seconds())) if next_due else 0
            parts.append(f"{counts['retry']} retries, the next due at {when} (in {seconds}s)")
        if counts.get("sending"):
            parts.append(f"{counts['sending']} deliveries held by other senders")
        if counts.get("pending"):
            parts.append(f"{counts['pending']} pending")
        return False, "waiting for " + " and ".join(parts), next_due

    def _emit_progress(self, waiting: str) -> None:
        if self.on_progress is None:
            return
        with self._reads.begin() as conn:
            rate = None if self._campaign_rate else self._current_rate()
            progress = campaign_progress(conn, self.campaign_id, rate=rate, waiting=waiting)
        self.on_progress(progress)

    def _current_rate(self) -> float:
        """Messages per second recorded by this worker over the last few seconds."""
        now = time.monotonic()
        total = self.report.sent + self.report.failed
        self._rate_samples.append((now, total))
        while len(self._rate_samples) > 2 and now - self._rate_samples[0][0] > 5.0:
            self._rate_samples.popleft()
        first_time, first_total = self._rate_samples[0]
        if now - first_time < 0.5:
            return 0.0
        return (total - first_total) / (now - first_time)

    def _pause_for_failures(self) -> None:
        note = self._failing_note
        with self.app.session() as session:
            paused = lifecycle.try_apply(session, self.campaign_id, "halt", WORKER, note=note)
        self.report.reason = "failing" if paused else self.report.reason
        self.report.note = note
        log.warning("campaign %s: %s", self.campaign_id, note)

    def _shutdown(self, threads: list[threading.Thread], recorder: threading.Thread) -> None:
        """Stop the senders, let the recorder write every outcome, give back the rest."""
        self._own_stop.set()
        for _ in threads:
            self._work.put(None)
        for thread in threads:
            thread.join()
        self._outcomes.put(None)
        recorder.join()
        try:
            self._count_throttling()
            self.limiter.close()
            with self._reads.begin() as conn:
                state = ledger.campaign_state(conn, self.campaign_id)
            cancelled = state is None or state[0] == "cancelled"
            with self._db.begin() as conn:
                ledger.release(conn, self.campaign_id, self.worker_id, cancelled=cancelled)
        except DBAPIError as exc:
            # Our claims then lapse with their lease (or at once, once this process is gone).
            log.warning("campaign %s: could not release claims: %s", self.campaign_id, exc)
        finally:
            self._db.close()
            self._reads.close()

    # -- the senders ----------------------------------------------------------------

    def _sender(self) -> None:
        # A batching transport takes up to `batch` messages per call; each message still
        # holds one slot until its outcome is recorded.
        batch = max(1, self.transport.limits.batch_size)
        slot = threading.Semaphore(self.options.in_flight_per_connection * batch)
        composer = self._composer
        try:
            while True:
                claim = self._work.get()
                if claim is None or self.stopping:
                    return
                claims = self._take_queued(claim, batch)
                if self.stopping:
                    return
                with self._lock:
                    self._queued -= len(claims)
                    low = self._queued < self.options.batch_size
                if low:
                    self._wake.set()
                for _ in claims:
                    # The ledger must have caught up with this connection's earlier messages:
                    # this is what bounds the duplicates a crash can cause.
                    while not slot.acquire(timeout=0.2):
                        if self.stopping:
                            return
                    if not self.limiter.acquire(self._own_stop) or self._stop.is_set():
                        return
                for outcome in self._deliver(composer, claims, slot):
                    self._outcomes.put(outcome)
        except BaseException as exc:
            self._fail(exc)

    def _take_queued(self, first: ledger.Claim, batch: int) -> list[ledger.Claim]:
        """`first` and whatever else is queued now, up to one batch (no waiting for more)."""
        claims = [first]
        while len(claims) < batch:
            try:
                item = self._work.get_nowait()
            except queue.Empty:
                break
            if item is None:
                # The stop marker: this thread ends (shutdown has set `stopping`).
                break
            claims.append(item)
        return claims

    def _make_composer(self) -> Any:
        if self._composer_factory is not None:
            return self._composer_factory(self.app, self.campaign_id)
        steps = finishing_steps(self.app, self.transport)
        return Composer(self.app, self.campaign_id, steps=steps)

    def _deliver(
        self, composer: Any, claims: list[ledger.Claim], slot: threading.Semaphore
    ) -> list[Outcome]:
        """Compose the claims' messages and hand them to the transport in one call."""
        results: list[SendResult | None] = [None] * len(claims)
        message_ids: list[str | None] = [None] * len(claims)
        messages, positions = [], []
        for position, claim in enumerate(claims):
            recipient = Recipient(
                subscriber_id=claim.subscriber_id,
                email=claim.email,
                name=claim.name,
                language=claim.language,
                delivery_id=claim.delivery_id,
            )
            try:
                message = composer.compose(recipient)
            except Exception as exc:
                # One recipient whose message cannot be built never stops the campaign.
                results[position] = SendResult("failed", f"cannot compose the message: {exc}")
            else:
                message_ids[position] = message.message_id
                messages.append(message)
                positions.append(position)
        if messages:
            try:
                answers = self.transport.send(messages)
                if len(answers) != len(messages):
                    raise RuntimeError(f"{len(answers)} results for {len(messages)} messages")
            except Exception as exc:
                log.exception("transport %s failed", self.transport.name)
                answers = [SendResult("retry", f"the transport failed: {exc!r}")] * len(messages)
            for position, answer in zip(positions, answers, strict=True):
                results[position] = answer
        final = [result for result in results if result is not None]
        if any(result.throttled for result in final):
            self.limiter.throttled()
        self._count_failures(final)
        return [
            self._outcome(claim, result, message_id, slot)
            for claim, result, message_id in zip(claims, final, message_ids, strict=True)
        ]

    def _outcome(
        self,
        claim: ledger.Claim,
        result: SendResult,
        message_id: str | None,
        slot: threading.Semaphore,
    ) -> Outcome:
        params: dict[str, Any] = {
            "b_id": claim.delivery_id,
            "b_worker": self.worker_id,
            "b_response": result.response[:2000],
            "b_message_id": message_id,
        }
        if result.outcome == "sent":
            params["b_at"] = utcnow()
            params["b_provider_id"] = result.provider_message_id
            return Outcome("sent", params, slot)
        # A throttled attempt is the server refusing to take anything now, not a
        # verdict on this recipient: it does not count towards giving up.
        attempts = claim.attempts + (0 if result.throttled or result.fatal else 1)
        params["b_attempts"] = attempts
        if result.fatal:
            # The transport's setup is at fault, not this recipient: the campaign pauses
            # and the message goes first when it is resumed.
            params["b_next"] = utcnow()
            return Outcome("retry", params, slot)
        if result.outcome == "retry":
            policy = self.options.retry
            if not policy.gives_up(attempts):
                wait = policy.delay(max(attempts, 1), result.retry_after)
                params["b_next"] = ledger.later(utcnow(), wait)
                return Outcome("retry", params, slot)
            params["b_response"] = f"gave up after {attempts} attempts: {result.response}"[:2000]
        bounce = None
        if result.hard_bounce:
            bounce = (claim.delivery_id, claim.subscriber_id, claim.email, result.response)
        return Outcome("failed", params, slot, bounce)

    def _count_failures(self, results: list[SendResult]) -> None:
        """A dead server shows as failures in a row; one bad address does not.

        One call of the transport counts once, whatever the size of its batch: an API
        that refused a batch of a thousand failed once, not a thousand times. A
        fatal answer (a bad API key) pauses the campaign at once.
        """
        if not results:
            return
        with self._lock:
            fatal = next((result for result in results if result.fatal), None)
            if fatal is not None:
                if not self._failing_note:
                    self._failing_note = (
                        f"paused: {fatal.response}. Fix the transport's settings, then "
                        f"`newsletter resume {self.campaign_id}`."
                    )
                    self._own_stop.set()
                    self._wake.set()
                return
            if any(result.outcome == "sent" or result.hard_bounce for result in results):
                self._consecutive_failures = 0
                return
            result = results[-1]
            self._consecutive_failures += 1
            self._last_failure = result.response
            limit = self.options.pause_after_consecutive_failures
            if limit and self._consecutive_failures >= limit and not self._failing_note:
                self._failing_note = (
                    f"paused after {self._consecutive_failures} failures in a row; the last: "
                    f"{result.response}. Fix the cause, then `newsletter resume "
                    f"{self.campaign_id}`."
                )
                self._own_stop.set()
                self._wake.set()

    def _fail(self, exc: BaseException) -> None:
        with self._lock:
            if self._error is None:
                if isinstance(exc, UserError | OperationFailed):
                    self._error = exc
                else:
                    log.exception("campaign %s: sending stopped", self.campaign_id, exc_info=exc)
                    self._error = OperationFailed(
                        f"sending campaign {self.campaign_id} stopped: {exc!r}"
                    )
        self._own_stop.set()
        self._wake.set()

    # -- the recorder -------------------------------------------------------------

    def _recorder(self) -> None:
        self._recorder_db = HeldConnection(self.app.engine)
        self._writer = ledger.OutcomeWriter(
            self.app.engine, self.campaign_id, wait_for_disk=self.options.wait_for_disk
        )
        try:
            self._record_until_done()
        finally:
            self._writer.close()
            self._recorder_db.close()

    def _record_until_done(self) -> None:
        finished = False
        while not finished:
            first = self._outcomes.get()
            group: list[Outcome] = []
            if first is None:
                finished = True
            else:
                group.append(first)
            while len(group) < RECORD_GROUP:
                try:
                    item = self._outcomes.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    finished = True
                    continue
                group.append(item)
            if not group:
                continue
            try:
                self._write(group)
            except BaseException as exc:
                # The senders wait for slots that will now never be given back: they stop,
                # and at most one group of sent messages is unrecorded (the crash bound).
                self._fail(
                    OperationFailed(
                        f"cannot record the outcome of {len(group)} deliveries "
                        f"in the database: {exc}"
                    )
                )
                return
            sent = failed = retried = bounced = 0
            for outcome in group:
                outcome.slot.release()
                if outcome.kind == "sent":
                    sent += 1
                elif outcome.kind == "retry":
                    retried += 1
                else:
                    failed += 1
                    bounced += outcome.bounce is not None
            with self._lock:
                self._outstanding -= len(group)
                report = self.report
                report.sent += sent
                report.failed += failed
                report.retried += retried
                report.bounced += bounced
                if self._outstanding == 0:
                    self._wake.set()

    def _write(self, group: list[Outcome]) -> None:
        by_kind: dict[str, list[dict[str, Any]]] = {"sent": [], "retry": [], "failed": []}
        bounces = []
        for outcome in group:
            by_kind[outcome.kind].append(outcome.params)
            if outcome.bounce is not None:
                bounces.append(outcome.bounce)
        for attempt in range(RECORD_TRIES):
            try:
                if bounces:
                    # Suppressed first: doing it twice is harmless, missing it is not.
                    with self._recorder_db.begin() as conn:
                        self._record_bounces(conn, bounces)
                    bounces = []
                self._writer.write(by_kind)
                return
            except (DBAPIError, ledger.LedgerWriteError) as exc:
                if attempt == RECORD_TRIES - 1:
                    raise
                log.warning("recording outcomes failed (%s); trying again", exc)
                time.sleep(0.2 * 2**attempt)

    def _record_bounces(self, conn: Any, bounces: list[tuple[int, int, str, str]]) -> None:
        key = self._suppression_key
        with Session(bind=conn) as session:
            for delivery_id, subscriber_id, email, response in bounces:
                ledger.record_hard_bounce(
                    session,
                    key,
                    campaign_id=self.campaign_id,
                    delivery_id=delivery_id,
                    subscriber_id=subscriber_id,
                    email=email,
                    response=response,
                )
            session.flush()
