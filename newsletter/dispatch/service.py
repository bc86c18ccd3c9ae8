"""The dispatcher's front door: send, test-send, watch, pause, resume, cancel, work.

The CLI, the scheduler and the web app call these and nothing deeper. Each
status change goes through newsletter/lifecycle.py, one conditional UPDATE with
its actor, so that two processes racing (two `send` commands, a `pause` during
a send) cannot both win.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select

from newsletter import lifecycle, notices
from newsletter.actors import WORKER
from newsletter.app import Newsletter
from newsletter.dispatch import counters, ledger, workers
from newsletter.dispatch import processes as spreading
from newsletter.dispatch.engine import CampaignSender, EngineOptions, RunReport
from newsletter.dispatch.progress import Progress, campaign_progress
from newsletter.errors import InputError, NotFound, OperationFailed, UserError
from newsletter.feedback.summary import CameBack, came_back, came_back_ids
from newsletter.logs import log_event
from newsletter.message import Composer, finishing_steps
from newsletter.models import Campaign, utcnow
from newsletter.render import render_campaign
from newsletter.transports import SendResult, Transport, open_transport

log = logging.getLogger(__name__)

# The longest a worker leaves a campaign alone that had nothing to send.
WORKER_RECHECK_SECONDS = 30.0


@dataclass
class SendOutcome:
    """What `send_campaign` did."""

    campaign_id: int
    # The campaign's status at the end (sending, sent, paused, cancelled).
    status: str
    # How the send ended: finished, paused, cancelled, failing, stopped, detached.
    reason: str
    transport: str
    # Ledger rows written by this call (0 when the campaign was already sending).
    written: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    bounced: int = 0
    note: str = ""
    seconds: float = 0.0
    progress: Progress | None = None


@dataclass
class DryRun:
    campaign_id: int
    status: str
    recipients: int
    transport: str
    sample: list[ledger.SampleRecipient] = field(default_factory=list)


@dataclass
class TestSend:
    campaign_id: int
    address: str
    transport: str
    message_id: str
    result: SendResult


# --- sending -------------------------------------------------------------------


def send_campaign(
    app: Newsletter,
    campaign_id: int,
    *,
    detach: bool = False,
    transport: Transport | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every: float = 1.0,
    stop: threading.Event | None = None,
    options: EngineOptions | None = None,
    processes: int = 1,
    actor: str,
) -> SendOutcome:
    """Start (or continue) sending a campaign, and send until every delivery is final.

    An approved or scheduled campaign gets its ledger written and becomes
    `sending` in one transaction; a campaign already `sending` (a restart after a
    crash, a second worker) just continues. With `detach`, only the first part
    happens and workers (`newsletter worker`, the service) do the sending.

    `processes`: how many processes send (0: one per core); a large campaign on
    a transport opened here from the config is then spread over forked helpers
    (dispatch/processes.py). Only a command-line send asks for more than one: a
    web or service process never forks.
    """
    opened = transport is None
    if transport is None:
        # Opened first: a transport that cannot work must stop us before the status changes.
        transport = open_transport(app, _campaign_transport_name(app, campaign_id))
    # A fresh start renders the edition first, as a check; the result is the Composer
    # the send then uses, so that stage 1 (Jinja2 and premailer, the costliest step of
    # a send's start) runs once rather than twice.
    composer: Composer | None = None
    try:
        if _status(app, campaign_id) in lifecycle.ACTIONS["start"].allowed_from:
            try:
                composer = Composer(app, campaign_id, steps=finishing_steps(app, transport))
            except InputError as exc:
                note = pause_unrendered(app, campaign_id, "start", actor, str(exc))
                return SendOutcome(
                    campaign_id=campaign_id,
                    status=lifecycle.PAUSED,
                    reason="failing",
                    transport=transport.describe(),
                    note=note,
                )
        written = start_campaign(app, campaign_id, actor=actor)
        outcome = SendOutcome(
            campaign_id=campaign_id,
            status="sending",
            reason="detached",
            transport=transport.describe(),
            written=written,
        )
        if detach:
            outcome.progress = campaign_status(app, campaign_id)
            return outcome
        count = 1
        if opened and processes != 1:
            limits = transport.limits
            count = spreading.process_count(
                processes,
                connections=limits.connections,
                remaining=campaign_status(app, campaign_id).remaining,
            )
        if composer is None:
            composer = Composer(app, campaign_id, steps=finishing_steps(app, transport))
        report = _send_from(
            app,
            campaign_id,
            transport,
            count,
            composer,
            on_progress=on_progress,
            progress_every=progress_every,
            stop=stop,
            options=options,
        )
    finally:
        if opened:
            transport.close()
    outcome.reason = report.reason
    outcome.sent, outcome.failed = report.sent, report.failed
    outcome.retried, outcome.bounced = report.retried, report.bounced
    outcome.note = report.note
    outcome.seconds = report.seconds
    outcome.progress = campaign_status(app, campaign_id)
    outcome.status = outcome.progress.status
    return outcome


def _send_from(
    app: Newsletter,
    campaign_id: int,
    transport: Transport,
    count: int,
    composer: Composer,
    *,
    on_progress: Callable[[Progress], None] | None,
    progress_every: float,
    stop: threading.Event | None,
    options: EngineOptions | None,
) -> RunReport:
    """Send from this process and `count - 1` forked helpers (none when `count` is 1);
    one report for them all.

    Stage 1 of rendering (`composer`) is done before the fork: every process
    composes from it.
    """
    shares = spreading.split_connections(transport.limits.connections, count)
    the_composer = _given(composer)
    # Each helper opens the campaign's transport from the config (a send alone needs none).
    name = _campaign_transport_name(app, campaign_id) if count > 1 else None

    def helper_sender(connections: int, helper_stop: threading.Event) -> CampaignSender:
        own = open_transport(app, name)
        own.limits = replace(own.limits, connections=connections)
        return CampaignSender(
            app,
            campaign_id,
            own,
            # Retries due later are this process's to wait for; a helper leaves.
            wait_for_retries=False,
            stop=helper_stop,
            options=options,
            composer_factory=the_composer,
        )

    helpers = spreading.Helpers(app, campaign_id, helper_sender, shares[1:])
    if count > 1:
        transport.limits = replace(transport.limits, connections=shares[0])
    sender = CampaignSender(
        app,
        campaign_id,
        transport,
        on_progress=on_progress,
        progress_every=progress_every,
        stop=stop,
        options=options,
        composer_factory=the_composer,
        # With helpers, the progress shows every process's rate, from the counters.
        campaign_rate=count > 1,
    )
    helpers.start()
    try:
        report = sender.run()
    finally:
        # Finished, every helper is done or about to be; otherwise they stop as we did.
        helpers.stop()
        theirs = helpers.join()
    for other in theirs:
        report.sent += other.sent
        report.failed += other.failed
        report.retried += other.retried
        report.bounced += other.bounced
    return report


def _given(composer: Composer) -> Callable[[Newsletter, int], Composer]:
    """A composer factory for CampaignSender that hands over one already made."""

    def factory(_app: Newsletter, _campaign_id: int) -> Composer:
        return composer

    return factory


def start_campaign(app: Newsletter, campaign_id: int, *, actor: str) -> int:
    """approved|scheduled → sending with its ledger written; returns the rows written.

    The status change comes first so that, of two processes starting the same
    campaign, only the winner writes the ledger, and both happen in one
    transaction: a campaign is never `sending` without its ledger. A campaign
    already sending (a restart after a crash, a second worker) is left as it is.
    """
    with app.session() as session:
        if lifecycle.try_apply(session, campaign_id, "start", actor, started_at=utcnow(), note=""):
            campaign = session.get_one(Campaign, campaign_id)
            return ledger.write_ledger(session, campaign)
        status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
        if status == lifecycle.SENDING:
            return 0
        lifecycle.refuse(session, campaign_id, "start")


def render_problem(app: Newsletter, campaign_id: int) -> str | None:
    """Why the campaign cannot be rendered (a template or content error), or None."""
    try:
        render_campaign(app, campaign_id)
    except InputError as exc:
        return str(exc)
    return None


def pause_unrendered(
    app: Newsletter, campaign_id: int, action: str, actor: str, problem: str
) -> str:
    """Start a campaign that cannot be rendered straight into `paused`, writing no ledger.

    `action` is how it was starting (`start` by a person, `fire` by the schedule).
    It is paused with the reason rather than left approved, so that whoever
    watches sees why it did not go out; nobody has a pending delivery, and
    `resume` writes the ledger once the edition renders. Returns the note.
    """
    note = (
        f"paused before sending: the edition does not render ({problem}); fix it, then "
        f"`newsletter resume {campaign_id}`"
    )
    with app.session() as session:
        if lifecycle.try_apply(session, campaign_id, action, actor, started_at=utcnow(), note=""):
            lifecycle.apply(session, campaign_id, "halt", actor, note=note)
    return note


def dry_run(app: Newsletter, campaign_id: int, *, sample_size: int = 5) -> DryRun:
    """Who a send would go to, without writing or sending anything.

    The edition is rendered too: a template or content error is raised here
    (InputError naming the template and line), as it would stop the send.
    """
    problem = render_problem(app, campaign_id)
    if problem is not None:
        raise InputError(f"campaign {campaign_id} cannot be sent: {problem}")
    name = _campaign_transport_name(app, campaign_id)
    transport = open_transport(app, name)
    try:
        description = transport.describe()
    finally:
        transport.close()
    with app.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        return DryRun(
            campaign_id=campaign_id,
            status=campaign.status,
            recipients=ledger.audience_count(session, campaign),
            transport=description,
            sample=ledger.audience_sample(session, campaign, sample_size),
        )


def send_test(
    app: Newsletter,
    campaign_id: int,
    address: str,
    *,
    language: str | None = None,
    transport: Transport | None = None,
) -> TestSend:
    """One message of the campaign to `address`, in any status; nothing is written.

    In `language` (default: the campaign's); the message is the "edition_test"
    notice of newsletter.notices.
    """
    try:
        address = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InputError(f"--to {address!r} is not an email address: {exc}") from None
    name = _campaign_transport_name(app, campaign_id)
    opened = transport is None
    transport = transport or open_transport(app, name)
    try:
        # Finished (return path, DKIM) as the campaign's own messages are.
        message = notices.compose_test(
            app, campaign_id, address, language, steps=finishing_steps(app, transport)
        )
        result = transport.send([message])[0]
        description = transport.describe()
    finally:
        if opened:
            transport.close()
    if result.outcome != "sent":
        raise OperationFailed(
            f"the test message to {address} was not accepted ({description}): {result.response}"
        )
    return TestSend(
        campaign_id=campaign_id,
        address=address,
        transport=description,
        message_id=message.message_id,
        result=result,
    )


# --- watching ------------------------------------------------------------------


def campaign_status(app: Newsletter, campaign_id: int) -> Progress:
    with app.read_engine.connect() as conn:
        return campaign_progress(conn, campaign_id)


@dataclass(frozen=True, slots=True)
class Recount:
    """A campaign's send counters before and after counting its ledger again."""

    campaign_id: int
    before: dict[str, int]
    after: dict[str, int]

    @property
    def repaired(self) -> bool:
        return self.before != self.after


def recount_campaign(app: Newsletter, campaign_id: int) -> Recount:
    """Count the campaign's ledger again and set its counters to that.

    The counters move with every statement that moves a delivery; they drift only
    when someone writes to `deliveries` behind the ledger's back (by hand, from a
    restore of part of a backup). A pass over the campaign's ledger, in one
    transaction with the repair, so that a send running meanwhile cannot slip
    between the count and the write.
    """
    with app.session() as session:
        conn = session.connection()
        if ledger.campaign_state(conn, campaign_id) is None:
            raise NotFound(f"no campaign with id {campaign_id} (see `newsletter campaigns list`)")
        before = counters.read(conn, campaign_id).counts
        after = counters.rebuild(conn, campaign_id)
    return Recount(campaign_id=campaign_id, before=before, after=after)


# What `deliveries --failed` shows: everyone who did not get the message, and why.
NOT_DELIVERED = ("failed", "retry", "cancelled")


@dataclass(frozen=True, slots=True)
class DeliveryLine:
    """One recipient of a campaign as `deliveries`, its `--json` and the console show them."""

    id: int
    address: str
    status: str
    attempts: int
    last_response: str
    sent_at: datetime | None
    next_attempt_at: datetime | None
    message_id: str | None
    # What came back afterwards: ["hard_bounce (mailgun)", "complaint (sendgrid)", …].
    events: list[str]
    # Why it did not arrive: the bounce or complaint and its diagnostic, else the
    # server's last reply; "" for a message sent that nothing came back for.
    reason: str


@dataclass(frozen=True)
class DeliveryPage:
    """One page of a campaign's deliveries, in subscriber order (see ledger.deliveries)."""

    campaign_id: int
    rows: list[DeliveryLine]
    # Pass as `after` for the next page; None on the last one.
    next_after: int | None


def delivery_page(
    app: Newsletter,
    campaign_id: int,
    *,
    failed_only: bool = False,
    after: int | None = None,
    limit: int | None = 200,
) -> DeliveryPage:
    """Who got the campaign, who did not and why, a page at a time: each page costs the
    same however large the ledger (the console, its CSV export). `limit` None reads all.

    `failed_only`: those not delivered (failed, waiting to retry, cancelled) and
    those sent whose message bounced or was complained about afterwards. Each
    row's `reason` says why: the bounce or complaint and its diagnostic, else
    the server's last reply.
    """
    _status(app, campaign_id)
    statuses = NOT_DELIVERED if failed_only else None
    with app.read_engine.connect() as conn:
        rows = ledger.deliveries(
            conn,
            campaign_id,
            statuses,
            or_ids=came_back_ids(campaign_id) if failed_only else None,
            after_subscriber=after,
            limit=limit,
        )
    later = came_back(app, campaign_id, [row.id for row in rows])
    nothing = CameBack(events=[], reason="")
    lines = [
        DeliveryLine(
            id=row.id,
            address=row.address,
            status=row.status,
            attempts=row.attempts,
            last_response=row.last_response,
            sent_at=row.sent_at,
            next_attempt_at=row.next_attempt_at,
            message_id=row.message_id,
            events=later.get(row.id, nothing).events,
            reason=later.get(row.id, nothing).reason
            or (row.last_response if row.status != "sent" else ""),
        )
        for row in rows
    ]
    following = rows[-1].subscriber_id if limit and len(rows) == limit else None
    return DeliveryPage(campaign_id=campaign_id, rows=lines, next_after=following)


def list_deliveries(
    app: Newsletter,
    campaign_id: int,
    *,
    failed_only: bool = False,
    limit: int | None = None,
) -> list[DeliveryLine]:
    """Who got the campaign, who did not and why: the first `limit` (else every one) of
    `delivery_page`'s rows, for `newsletter deliveries`."""
    return delivery_page(app, campaign_id, failed_only=failed_only, limit=limit).rows


def describe_transport(app: Newsletter, name: str | None = None) -> str:
    """Where the named (or default) transport delivers, for people."""
    transport = open_transport(app, name)
    try:
        return transport.describe()
    finally:
        transport.close()


# --- pause, resume, cancel -----------------------------------------------------


def pause_campaign(app: Newsletter, campaign_id: int, *, actor: str) -> Progress:
    """sending → paused; every worker stops within a second or two and keeps its place."""
    with app.session() as session:
        lifecycle.apply(session, campaign_id, "pause", actor,
                        note=f"paused by {actor} at {_clock()}")  # fmt: skip
    return campaign_status(app, campaign_id)


def resume_campaign(app: Newsletter, campaign_id: int, *, actor: str) -> Progress:
    """paused → sending; sending goes on from where it stopped (nobody gets it twice).

    A campaign paused before its ledger was written (its edition did not render)
    must render now; its ledger is then written in the same transaction.
    """
    with app.engine.connect() as conn:
        unwritten = not ledger.counts(conn, campaign_id)
    if unwritten:
        problem = render_problem(app, campaign_id)
        if problem is not None:
            raise InputError(f"campaign {campaign_id} still does not render: {problem}")
    with app.session() as session:
        lifecycle.apply(session, campaign_id, "resume", actor, note="")
        if unwritten:
            ledger.write_ledger(session, session.get_one(Campaign, campaign_id))
    return campaign_status(app, campaign_id)


def cancel_campaign(app: Newsletter, campaign_id: int, *, actor: str) -> Progress:
    """Stop a campaign for good: whoever has not got it yet will not."""
    with app.session() as session:
        note = f"cancelled by {actor} at {_clock()}"
        lifecycle.apply(session, campaign_id, "cancel", actor, note=note, finished_at=utcnow())
        conn = session.connection()
        holders = ledger.claim_holders(conn, campaign_id)
        dead = [h for h in holders if h and workers.is_dead(h)]
        ledger.cancel_open(conn, campaign_id, utcnow(), dead)
    return campaign_status(app, campaign_id)


# --- the worker ----------------------------------------------------------------


# How a worker's run of a campaign ended, as the event a log collector sees.
RUN_EVENTS = {
    "finished": "campaign.finished",
    "paused": "campaign.paused",
    "failing": "campaign.paused",
    "cancelled": "campaign.cancelled",
    "error": "worker.error",
}


def run_event_name(report: RunReport) -> str | None:
    """The event a run's end is logged as; None for ends that are not news (stopped)."""
    return RUN_EVENTS.get(report.reason)


def log_run_report(app: Newsletter, report: RunReport) -> None:
    """One log line for how a run ended; a finished campaign with the ledger's totals."""

    name = run_event_name(report)
    if name is None:
        return
    if name == "campaign.finished":
        progress = campaign_status(app, report.campaign_id)
        seconds = None
        if progress.started_at and progress.finished_at:
            seconds = round((progress.finished_at - progress.started_at).total_seconds(), 1)
        log_event(
            name,
            campaign=report.campaign_id,
            sent=progress.counts.get("sent", 0),
            failed=progress.counts.get("failed", 0),
            cancelled=progress.counts.get("cancelled", 0),
            seconds=seconds,
        )
        return
    level = logging.INFO if name == "campaign.cancelled" else logging.WARNING
    log_event(name, level=level, campaign=report.campaign_id, note=report.note or None)


def run_worker(
    app: Newsletter,
    *,
    campaign_id: int | None = None,
    once: bool = False,
    stop: threading.Event | None = None,
    on_report: Callable[[RunReport], None] | None = None,
    poll_seconds: float = 2.0,
    on_progress: Callable[[Progress], None] | None = None,
) -> list[RunReport]:
    """Send every campaign that is `sending` (or just one), until stopped.

    Campaigns are taken in the order they started; each is sent until nothing
    is due, then the next. A campaign that only waits for retries is looked at
    again when the first one is due. With `once`, each campaign gets one such
    pass and the worker exits: for cron, and for tests.
    """
    stop = stop or threading.Event()
    if campaign_id is not None:
        _status(app, campaign_id)
    reports: list[RunReport] = []
    not_before: dict[int, float] = {}
    while not stop.is_set():
        with app.read_engine.connect() as conn:
            campaign_ids = ledger.sending_campaigns(conn, campaign_id)
        for cid in campaign_ids:
            if stop.is_set():
                break
            if not once and not_before.get(cid, 0.0) > time.monotonic():
                continue
            report = _work_on(app, cid, stop, on_progress)
            reports.append(report)
            if on_report is not None:
                on_report(report)
            not_before[cid] = time.monotonic() + _recheck_after(report)
        if once:
            break
        stop.wait(poll_seconds)
    return reports


def _work_on(
    app: Newsletter,
    campaign_id: int,
    stop: threading.Event,
    on_progress: Callable[[Progress], None] | None,
) -> RunReport:
    try:
        transport = open_transport(app, _campaign_transport_name(app, campaign_id))
        try:
            sender = CampaignSender(
                app,
                campaign_id,
                transport,
                wait_for_retries=False,
                stop=stop,
                on_progress=on_progress,
            )
            return sender.run()
        finally:
            transport.close()
    except UserError as exc:
        # A transport or template that cannot work will not start working by itself:
        # pause the campaign and say why, rather than trying again every few seconds.
        note = f"paused by a worker: {exc}"
        with app.session() as session:
            lifecycle.try_apply(session, campaign_id, "halt", WORKER, note=note)
        log.error("campaign %s: %s", campaign_id, note)
        return RunReport(campaign_id=campaign_id, worker_id="", reason="failing", note=note)
    except OperationFailed as exc:
        log.error("campaign %s: %s", campaign_id, exc)
        return RunReport(campaign_id=campaign_id, worker_id="", reason="error", note=str(exc))


def _recheck_after(report: RunReport) -> float:
    if report.reason == "idle" and report.next_retry_at is not None:
        due = (report.next_retry_at - utcnow()).total_seconds()
        return min(max(due, 0.0), WORKER_RECHECK_SECONDS)
    if report.reason == "error":
        return WORKER_RECHECK_SECONDS
    return 0.0


# --- helpers -------------------------------------------------------------------


def _status(app: Newsletter, campaign_id: int) -> str:
    with app.read_engine.connect() as conn:
        state = ledger.campaign_state(conn, campaign_id)
    if state is None:
        raise NotFound(f"no campaign with id {campaign_id} (see `newsletter campaigns list`)")
    return state[0]


def _campaign_transport_name(app: Newsletter, campaign_id: int) -> str | None:
    with app.read_engine.connect() as conn:
        name = conn.scalar(select(Campaign.transport).where(Campaign.id == campaign_id))
        if name is None and ledger.campaign_state(conn, campaign_id) is None:
            raise NotFound(f"no campaign with id {campaign_id} (see `newsletter campaigns list`)")
    return name or None


def _clock() -> str:
    return datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
