"""`newsletter send`, `status`, `deliveries`, `pause`, `resume`, `cancel`, `worker`."""

from __future__ import annotations

import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import FrameType
from typing import Any, TextIO

import click

from newsletter import clicks, dispatch
from newsletter.cli.context import AppContext, pass_context
from newsletter.cli.output import echo_json, echo_record, echo_table, json_option
from newsletter.dispatch import Progress, RunReport, SendOutcome
from newsletter.errors import OperationFailed

detach_option = click.option(
    "--detach",
    is_flag=True,
    help="Do not send from this process: leave it to `newsletter worker` or the service.",
)
DELIVERY_COLUMNS = [
    "id", "address", "status", "attempts", "sent_at", "last_response", "events", "reason",
]  # fmt: skip
# `deliveries --failed`: who did not get it, and why in one column.
FAILED_COLUMNS = ["id", "address", "status", "attempts", "sent_at", "reason"]
# Plain progress lines (when the output is not a terminal) come this often.
LINE_EVERY = 5.0


# --- progress on the terminal ------------------------------------------------------


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return str(timedelta(seconds=round(seconds)))


def progress_line(progress: Progress, *, named: bool = True) -> str:
    c = progress.counts
    line = (
        (f"campaign {progress.campaign_id}: " if named else "")
        + f"{progress.done}/{progress.total} done "
        f"(sent {c.get('sent', 0)}, failed {c.get('failed', 0)}, retry {c.get('retry', 0)}), "
        f"{progress.rate:.0f}/s, ETA {_duration(progress.eta_seconds)}"
    )
    if progress.waiting:
        line += f"; {progress.waiting}"
    return line


_COUNTDOWN = re.compile(r"\s*\(in \d+s\)")


class ProgressDisplay:
    """A progress bar on an interactive terminal; plain lines every few seconds otherwise.

    Progress goes to stderr, so that stdout carries only the result (and --json).
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty()
        self._bar: Any = None
        self._done = 0
        self._waiting = ""
        self._last_line = 0.0

    def __call__(self, progress: Progress) -> None:
        if not self.interactive:
            now = time.monotonic()
            # What the send waits for is news; its countdown ("in 42s") is not, or a
            # log would get a line every second while a retry is due.
            waiting = _COUNTDOWN.sub("", progress.waiting)
            news = waiting != self._waiting and bool(waiting)
            self._waiting = waiting
            if news or now - self._last_line >= LINE_EVERY or progress.remaining == 0:
                self._last_line = now
                click.echo(progress_line(progress), file=self.stream)
            return
        if self._bar is None:
            self._bar = click.progressbar(
                length=max(progress.total, 1),
                label=f"Campaign {progress.campaign_id}",
                file=self.stream,
                show_eta=True,
                show_pos=True,
                item_show_func=lambda text: text,
            )
            self._bar.__enter__()
        c = progress.counts
        status = progress.waiting or (
            f"{progress.rate:.0f}/s  failed {c.get('failed', 0)}  retry {c.get('retry', 0)}"
        )
        self._bar.update(progress.done - self._done, status)
        self._done = progress.done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


@contextmanager
def stop_on_sigterm() -> Iterator[threading.Event]:
    """SIGTERM (systemd, docker stop) asks the send to stop cleanly: claims are given back."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, handle)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_send(
    ctx: AppContext, campaign_id: int, *, detach: bool, as_json: bool, processes: int = 1
) -> None:
    display = None if as_json else ProgressDisplay()
    # Progress reads the ledger's counts: once a second for a bar, less often for a log.
    every = 1.0 if display is not None and display.interactive else LINE_EVERY
    with stop_on_sigterm() as stop:
        try:
            outcome = dispatch.send_campaign(
                ctx.app,
                campaign_id,
                detach=detach,
                on_progress=display,
                progress_every=every,
                stop=stop,
                processes=processes,
                actor=ctx.actor,
            )
        finally:
            if display is not None:
                display.close()
    _report(outcome, as_json)


def _outcome_record(outcome: SendOutcome) -> dict[str, Any]:
    progress = outcome.progress
    return {
        "id": outcome.campaign_id,
        "status": outcome.status,
        "reason": outcome.reason,
        "transport": outcome.transport,
        "written": outcome.written,
        "sent": outcome.sent,
        "failed": outcome.failed,
        "retried": outcome.retried,
        "bounced": outcome.bounced,
        "seconds": round(outcome.seconds, 2),
        "note": outcome.note,
        "deliveries": progress.counts if progress else {},
    }


def _report(outcome: SendOutcome, as_json: bool) -> None:
    cid = outcome.campaign_id
    if as_json:
        echo_json(_outcome_record(outcome))
    elif outcome.reason == "detached":
        left = outcome.progress.remaining if outcome.progress else outcome.written
        written = f"{outcome.written} deliveries written, " if outcome.written else ""
        click.echo(
            f"Campaign {cid} is sending: {written}{left} to send. "
            "`newsletter worker` (or the service) sends them; "
            f"watch with `newsletter status {cid}`."
        )
    else:
        counts = outcome.progress.counts if outcome.progress else {}
        rate = outcome.sent / outcome.seconds if outcome.seconds else 0.0
        click.echo(
            f"Campaign {cid} {outcome.status}: this run sent {outcome.sent}, failed "
            f"{outcome.failed} ({outcome.bounced} hard bounces suppressed), "
            f"{outcome.retried} to retry, in {outcome.seconds:.1f}s ({rate:.0f}/s) via "
            f"{outcome.transport}."
        )
        click.echo(
            f"Ledger: {_counts_text(counts)}" if any(counts.values()) else "Ledger: no recipients."
        )
        if outcome.note:
            click.echo(f"Note: {outcome.note}")
        if counts.get("failed"):
            click.echo(f"Who did not get it and why: newsletter deliveries {cid} --failed")
        if outcome.reason == "paused":
            click.echo(f"Continue with: newsletter resume {cid}")
    if outcome.reason == "failing":
        raise OperationFailed(f"campaign {cid} {outcome.note}")
    if outcome.reason == "stopped":
        raise OperationFailed(
            f"stopped before the end; campaign {cid} is still sending: run `newsletter send "
            f"{cid}` again or `newsletter worker` to continue"
        )


# --- commands ------------------------------------------------------------------------


@click.command("send")
@click.argument("campaign_id", type=int)
@click.option(
    "--to",
    "to",
    metavar="ADDRESS",
    help="Send one test message to ADDRESS through the transport; nothing is recorded.",
)
@click.option(
    "--language",
    metavar="LANG",
    help="With --to: the language of the test message (default: the campaign's).",
)
@click.option("--dry-run", is_flag=True, help="Count the recipients and show a few; send nothing.")
@click.option(
    "--processes",
    type=click.IntRange(min=0),
    default=None,
    help="Processes to send from, sharing the transport's connections; 0 for one per CPU "
    "core (default: dispatch.processes). Campaigns under 2,000 recipients send from one.",
)
@detach_option
@json_option
@pass_context
def send(
    ctx: AppContext,
    campaign_id: int,
    to: str | None,
    language: str | None,
    dry_run: bool,
    processes: int | None,
    detach: bool,
    as_json: bool,
) -> None:
    """Send a campaign to its audience, until every delivery is sent or failed.

    The campaign must be approved (or scheduled). Sending writes one delivery per
    recipient first, so that it can be paused, resumed, watched and, after a
    crash, simply started again: nobody already sent to gets it twice. Run it
    again on a campaign that is sending to continue it.

    Example: newsletter send 3 --to me@example.org --language ru && newsletter send 3
    """
    if processes is not None and (to or dry_run or detach):
        raise click.UsageError("--processes is for a send; not with --to, --dry-run or --detach")
    if language and not to:
        raise click.UsageError("--language goes with --to (a test message in that language)")
    if to and (dry_run or detach):
        raise click.UsageError("--to sends one test message; it cannot go with --dry-run/--detach")
    if dry_run and detach:
        raise click.UsageError("--dry-run sends nothing; it cannot go with --detach")
    app = ctx.app
    if to:
        test = dispatch.send_test(app, campaign_id, to, language=language)
        if as_json:
            echo_json(
                {
                    "id": campaign_id,
                    "to": test.address,
                    "transport": test.transport,
                    "message_id": test.message_id,
                    "response": test.result.response,
                }
            )
        else:
            click.echo(
                f"Sent a test of campaign {campaign_id} to {test.address} via {test.transport}: "
                f"{test.result.response}"
            )
        return
    if dry_run:
        preview = dispatch.dry_run(app, campaign_id)
        if as_json:
            echo_json(
                {
                    "id": campaign_id,
                    "status": preview.status,
                    "recipients": preview.recipients,
                    "transport": preview.transport,
                    "sample": preview.sample,
                }
            )
            return
        click.echo(
            f"Campaign {campaign_id} ({preview.status}) would go to {preview.recipients} "
            f"recipients via {preview.transport}. Nothing was sent."
        )
        if preview.sample:
            echo_table(preview.sample, ["id", "email", "name", "language"])
        return
    if processes is None:
        processes = app.config.dispatch.processes
    _run_send(ctx, campaign_id, detach=detach, processes=processes, as_json=as_json)


def _counts_text(counts: dict[str, int]) -> str:
    """Deliveries by state in the ledger's order of states: "pending 4, failed 2"."""
    # Imported when used, not when `--help` lists the commands: start-up time.
    from newsletter.models import DELIVERY_STATUSES

    shown = [f"{state} {counts[state]}" for state in DELIVERY_STATUSES if counts.get(state)]
    return ", ".join(shown) or "none"


def _status_record(progress: Progress) -> dict[str, Any]:
    c = progress.counts
    return {
        "campaign": progress.campaign_id,
        "status": progress.status,
        "note": progress.note or None,
        "total": progress.total,
        **{state: c.get(state, 0) for state in c},
        "rate": f"{progress.rate:.1f}/s",
        "eta": _duration(progress.eta_seconds) if progress.eta_seconds else None,
        "next_retry_at": progress.next_retry_at,
        "started_at": progress.started_at,
        "finished_at": progress.finished_at,
    }


@click.command("status")
@click.argument("campaign_id", type=int, required=False)
@click.option(
    "--recount",
    is_flag=True,
    help="Count the campaign's ledger again and repair its counters if they differ "
    "(after someone changed deliveries by hand); then show the status.",
)
@json_option
@pass_context
def status(ctx: AppContext, campaign_id: int | None, recount: bool, as_json: bool) -> None:
    """Show how far a campaign's send has got: deliveries by state, rate and ETA.

    Without an ID: the service's health (scheduler, workers, queue depth).

    Example: newsletter status 3 --json
    """
    if recount and campaign_id is None:
        raise click.UsageError("--recount needs a campaign ID")
    repaired = None
    if recount and campaign_id is not None:
        fixed = dispatch.recount_campaign(ctx.app, campaign_id)
        repaired = fixed.repaired
        if not as_json:
            if fixed.repaired:
                click.echo(
                    f"Counters of campaign {campaign_id} repaired from the ledger: were "
                    f"{_counts_text(fixed.before)}; now {_counts_text(fixed.after)}."
                )
            else:
                click.echo(f"Counters of campaign {campaign_id} match the ledger.")
    if campaign_id is None:
        # Imported when the command runs, not when `--help` lists it: start-up time.
        from newsletter.cli.schedule import echo_health

        echo_health(ctx.app, as_json)
        return
    progress = dispatch.campaign_status(ctx.app, campaign_id)
    # Imported when the command runs, not when `--help` lists it: start-up time.
    from newsletter.feedback import campaign_feedback

    came_back = campaign_feedback(ctx.app, campaign_id)
    # Counted only with privacy.count_clicks; never who clicked.
    counted = clicks.campaign_clicks(ctx.app, campaign_id)
    if as_json:
        record = {
            "id": campaign_id,
            **progress.as_dict(),
            "feedback": came_back,
            "clicks": counted,
        }
        if repaired is not None:
            record["repaired"] = repaired
        echo_json(record)
        return
    record = _status_record(progress)
    record["bounces"] = (
        f"{came_back.hard_bounces + came_back.soft_bounces} "
        f"({came_back.bounce_rate_percent:.2f}% of sent; {came_back.hard_bounces} hard, "
        f"{came_back.soft_bounces} soft)"
    )
    record["complaints"] = f"{came_back.complaints} ({came_back.complaint_rate_percent:.3f}%)"
    record["unsubscribes"] = came_back.unsubscribes
    if counted:
        record["clicks"] = f"{sum(link.clicks for link in counted)} on {len(counted)} links"
    echo_record(record)
    for link in counted:
        click.echo(f"  {link.clicks:>6}  {link.url}")
    if came_back.warning:
        click.echo(f"warning: {came_back.warning}", err=True)


@click.command("deliveries")
@click.argument("campaign_id", type=int)
@click.option(
    "--failed",
    "failed_only",
    is_flag=True,
    help="Only those who did not get it: failed, waiting to retry, cancelled, or sent but "
    "bounced or complained about afterwards; with the reason.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many.")
@json_option
@pass_context
def deliveries(
    ctx: AppContext, campaign_id: int, failed_only: bool, limit: int | None, as_json: bool
) -> None:
    """Who got a campaign, who did not, and why (the server's last reply).

    Example: newsletter deliveries 3 --failed
    """
    rows = dispatch.list_deliveries(ctx.app, campaign_id, failed_only=failed_only, limit=limit)
    if as_json:
        echo_json([{column: getattr(row, column) for column in DELIVERY_COLUMNS} for row in rows])
        return
    if not rows:
        click.echo("No deliveries." if not failed_only else "Nobody was missed.")
        return
    echo_table(rows, FAILED_COLUMNS if failed_only else DELIVERY_COLUMNS, max_width=80)


def _changed(ctx: AppContext, progress: Progress, what: str, as_json: bool) -> None:
    if as_json:
        echo_json({"id": progress.campaign_id, **progress.as_dict()})
        return
    click.echo(f"Campaign {progress.campaign_id} {what}: {progress_line(progress, named=False)}")


@click.command("pause")
@click.argument("campaign_id", type=int)
@json_option
@pass_context
def pause(ctx: AppContext, campaign_id: int, as_json: bool) -> None:
    """Pause a campaign that is sending; every worker stops within a second or two.

    Example: newsletter pause 3 && newsletter resume 3
    """
    progress = dispatch.pause_campaign(ctx.app, campaign_id, actor=ctx.actor)
    _changed(ctx, progress, "paused", as_json)
    if not as_json:
        click.echo(f"Continue with: newsletter resume {campaign_id}")


@click.command("resume")
@click.argument("campaign_id", type=int)
@detach_option
@json_option
@pass_context
def resume(ctx: AppContext, campaign_id: int, detach: bool, as_json: bool) -> None:
    """Resume a paused campaign where it stopped, and send the rest from here.

    Nobody who already got the message gets it again.

    Example: newsletter resume 3 --detach
    """
    dispatch.resume_campaign(ctx.app, campaign_id, actor=ctx.actor)
    processes = ctx.app.config.dispatch.processes
    _run_send(ctx, campaign_id, detach=detach, processes=processes, as_json=as_json)


@click.command("cancel")
@click.argument("campaign_id", type=int)
@json_option
@pass_context
def cancel(ctx: AppContext, campaign_id: int, as_json: bool) -> None:
    """Cancel a campaign for good: whoever has not got it yet will not.

    Example: newsletter cancel 3
    """
    progress = dispatch.cancel_campaign(ctx.app, campaign_id, actor=ctx.actor)
    _changed(ctx, progress, "cancelled", as_json)


def _report_line(report: RunReport) -> str:
    line = (
        f"campaign {report.campaign_id}: {report.reason}; sent {report.sent}, failed "
        f"{report.failed}, to retry {report.retried} in {report.seconds:.1f}s"
    )
    return line + (f" ({report.note})" if report.note else "")


@click.command("worker")
@click.option("--campaign", "campaign_id", type=int, help="Only send this campaign.")
@click.option("--once", is_flag=True, help="Send what is due now, then exit (for cron).")
@json_option
@pass_context
def worker(ctx: AppContext, campaign_id: int | None, once: bool, as_json: bool) -> None:
    """Send every campaign that is sending, until stopped (SIGTERM or Ctrl-C).

    Run as many as you like, on one host or several sharing a PostgreSQL database:
    they share the work and never send one delivery twice.

    Example: newsletter worker --once
    """
    app = ctx.app
    reports: list[RunReport] = []

    def on_report(report: RunReport) -> None:
        reports.append(report)
        if not once:
            dispatch.log_run_report(app, report)
        if not as_json:
            click.echo(_report_line(report))

    if not once:
        # A long-running worker is a service: how each campaign's run ended goes to
        # stderr as a log line, in the format `serve` uses, for a log collector.
        # Imported when the command runs, not when `--help` lists it: start-up time.
        from newsletter.logs import configure_logging

        configure_logging(app.config.service.log_format)
        if not as_json:
            click.echo("Worker started; sending campaigns that are sending (Ctrl-C to stop).")
    with stop_on_sigterm() as stop:
        try:
            dispatch.run_worker(app, campaign_id=campaign_id, once=once, stop=stop,
                                on_report=on_report)  # fmt: skip
        except KeyboardInterrupt:
            stop.set()
    if as_json:
        echo_json(
            [
                {
                    "id": r.campaign_id,
                    "reason": r.reason,
                    "sent": r.sent,
                    "failed": r.failed,
                    "retried": r.retried,
                    "seconds": round(r.seconds, 2),
                    "note": r.note,
                }
                for r in reports
            ]
        )
    elif once and not reports:
        click.echo("No campaign is sending.")
