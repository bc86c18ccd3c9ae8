"""`newsletter schedule ID --at …`, `schedule list`, `unschedule`, `serve`; service health."""

from __future__ import annotations

from typing import Any

import click

from newsletter.cli.context import AppContext, pass_context
from newsletter.cli.output import as_record, echo_json, echo_record, echo_table, json_option

SEND_COLUMNS = ["id", "status", "at", "subject", "lists", "rule"]
RULE_COLUMNS = ["name", "cron", "timezone", "action", "lists", "next", "last"]


class ScheduleGroup(click.Group):
    """`schedule ID --at …` schedules; `schedule list` lists: an ID is not a subcommand."""

    default_command = "campaign"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


@click.group(
    "schedule",
    cls=ScheduleGroup,
    epilog='Example: newsletter schedule 3 --at "2019-07-01 09:00" --tz Europe/London',
)
def schedule_group() -> None:
    """Schedule an approved campaign (schedule ID --at TIME), or list what is scheduled.

    `newsletter serve` sends each scheduled campaign at its time, once, and runs
    the recurring rules of the config ([[schedules]]).
    """


@schedule_group.command("campaign")
@click.argument("campaign_id", type=int)
@click.option(
    "--at",
    "at",
    required=True,
    metavar="TIME",
    help='When it goes out, "YYYY-MM-DD HH:MM" in --tz (seconds and a +HH:MM offset allowed).',
)
@click.option(
    "--tz",
    "tz",
    metavar="ZONE",
    help="The time zone of --at, e.g. Europe/London (default: schedule.timezone).",
)
@click.option(
    "--by", metavar="NAME", help="Who schedules it, for the audit trail (default: the login name)."
)
@json_option
@pass_context
def schedule_campaign_command(
    ctx: AppContext, campaign_id: int, at: str, tz: str | None, by: str | None, as_json: bool
) -> None:
    """Put an approved campaign on the clock (the same as `newsletter schedule ID --at …`).

    The time is kept in UTC and shown in the configured zone. A time the zone
    skips when the clocks go forward is refused; one that happens twice when
    they go back means its first occurrence. Scheduling a scheduled (or missed)
    campaign again moves it.

    Example: newsletter schedule 3 --at "2019-07-01 09:00"
    """
    # Imported when the command runs, not when `--help` lists it: start-up time.
    from newsletter.schedule import describe_instant, parse_local_time, schedule_campaign

    app = ctx.app
    zone = tz or app.config.schedule.timezone
    when = parse_local_time(at, zone)
    record = schedule_campaign(app, campaign_id, when, actor=ctx.actor_named(by))
    if as_json:
        echo_json(record)
        return
    shown = describe_instant(when, zone, app.config.schedule.timezone)
    click.echo(f"Campaign {campaign_id} is scheduled for {shown}: {record.subject}")
    click.echo(f"  `newsletter serve` sends it then. Undo: newsletter unschedule {campaign_id}")
    _warn_without_service(app)


def _warn_without_service(app: Any) -> None:
    # Imported when the command runs, not when `--help` lists it: start-up time.
    from newsletter.service import service_health

    if service_health(app, detail=False).status == "down":
        click.echo("  Note: no `newsletter serve` is running now; start one before then.", err=True)


@schedule_group.command("list")
@json_option
@pass_context
def schedule_list(ctx: AppContext, as_json: bool) -> None:
    """Show scheduled (and missed) campaigns, and recurring rules with their next runs.

    Example: newsletter schedule list --json
    """
    # Imported when the command runs, not when `--help` lists it: start-up time.
    from newsletter.schedule import schedule_overview

    overview = schedule_overview(ctx.app)
    if as_json:
        echo_json(overview)
        return
    click.echo(f"Times in {overview.timezone} (rules: in their own zone).")
    click.echo("")
    if overview.sends:
        echo_table(overview.sends, SEND_COLUMNS)
    else:
        click.echo("No campaign is scheduled. Schedule one with: newsletter schedule ID --at TIME")
    click.echo("")
    if overview.rules:
        echo_table(overview.rules, RULE_COLUMNS)
        for rule in overview.rules:
            if rule.last_note and rule.last_outcome in ("failed", "missed", "empty"):
                click.echo(f"  {rule.name}: {rule.last_note}")
    else:
        click.echo("No recurring rules: add [[schedules]] entries to the config.")


@click.command("unschedule")
@click.argument("campaign_id", type=int)
@click.option(
    "--by",
    metavar="NAME",
    help="Who unschedules it, for the audit trail (default: the login name).",
)
@json_option
@pass_context
def unschedule(ctx: AppContext, campaign_id: int, by: str | None, as_json: bool) -> None:
    """Take a scheduled campaign off the clock; it stays approved.

    Example: newsletter unschedule 3
    """
    # Imported when the command runs, not when `--help` lists it: start-up time.
    from newsletter.schedule import unschedule_campaign

    record = unschedule_campaign(ctx.app, campaign_id, actor=ctx.actor_named(by))
    if as_json:
        echo_json(record)
        return
    click.echo(
        f"Campaign {campaign_id} is no longer scheduled (still approved). "
        f"Schedule it again with: newsletter schedule {campaign_id} --at TIME"
    )


@click.command("serve")
@click.option("--host", default=None, help="Address the pages listen on (default: web.host).")
@click.option(
    "--port", type=int, default=None, help="Port (default: web.port; 0 picks a free one)."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Sending workers in this process (default: service.workers).",
)
@pass_context
def serve(ctx: AppContext, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the service: subscriber pages, the scheduler and sending workers, until stopped.

    Scheduled campaigns go out at their time and recurring rules run, once each
    however many services share the database. SIGTERM or Ctrl-C stops it
    cleanly: messages on the wire finish, the rest go back to the ledger for
    the next start. Logs are one line per event on stderr (service.log_format);
    GET /health answers with the service's health.

    Example: newsletter serve --port 8080 --workers 2
    """
    # Imported when the command runs, not when `--help` lists it: start-up time.
    from newsletter.logs import configure_logging
    from newsletter.service import Service

    app = ctx.app
    configure_logging(app.config.service.log_format)
    Service(app, host=host, port=port, workers=workers).run()


# --- `newsletter status` with no campaign: the service's health ---------------------------


def echo_health(app: Any, as_json: bool) -> None:
    """Print the service's health (called by `newsletter status` without an ID)."""
    # Imported when the command runs, not when `--help` lists it: start-up time.
    from newsletter.schedule import format_local
    from newsletter.service import STALE_AFTER, service_health

    health = service_health(app)
    if as_json:
        echo_json(health)
        return
    queue = health.queue
    tz = health.timezone
    live = health.services
    echo_record(
        {
            "service": f"{health.status} ({live} running)"
            if live
            else "down: no `newsletter serve` has reported in the last "
            f"{int(STALE_AFTER.total_seconds())} seconds",
            "scheduler": "running" if health.scheduler_running else "not running",
            "workers": f"{health.workers_alive} of {health.workers} alive",
            "sending": f"{queue.campaigns_sending} campaign(s), "
            f"{queue.deliveries_waiting} deliveries waiting, "
            f"{queue.deliveries_in_flight} in flight",
            "scheduled": f"{health.scheduled} campaign(s)"
            + (f", next {format_local(health.next_send_at, tz)}" if health.scheduled else ""),
        }
    )
    failed = health.failed_tasks
    if failed is not None and failed.count:
        # Work the pages accepted (a sign-up, a notice) that every retry failed to do.
        click.echo(
            f"warning: {failed.count} accepted request(s) could not be carried out in the "
            f"last 7 days; the last at {format_local(failed.last_at, tz)}: "
            f"{failed.last_task}: {failed.last_error} (see the service log)",
            err=True,
        )
    instances = [row for row in health.instances or [] if row.alive]
    if instances:
        click.echo("")
        echo_table(
            [
                {
                    **as_record(row),
                    "started": format_local(row.started_at, tz),
                    "last_seen": format_local(row.last_seen, tz),
                    "workers": f"{row.workers_alive}/{row.workers}",
                }
                for row in instances
            ],
            ["id", "address", "started", "last_seen", "workers"],
        )
