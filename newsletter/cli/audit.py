"""`newsletter audit`: who did what, and when."""

from __future__ import annotations

import click

from newsletter import audit
from newsletter.cli.context import AppContext, pass_context
from newsletter.cli.output import echo_json, echo_table, json_option

COLUMNS = ["id", "at", "actor", "action", "object_type", "object_id", "detail"]


@click.command("audit")
@click.option("--campaign", "campaign_id", type=int, metavar="ID", help="Only this campaign.")
@click.option(
    "--type",
    "object_type",
    metavar="TYPE",
    help="Only this kind of object (campaign, item, list, subscriber, segment, user, person).",
)
@click.option("--actor", metavar="ACTOR", help="Only this actor, e.g. cli:ana or schedule.")
@click.option(
    "--limit", type=click.IntRange(1, 10_000), default=200, show_default=True, help="How many."
)
@click.option("--before", "before_id", type=int, metavar="ID", help="Older than this line.")
@json_option
@pass_context
def audit_command(
    ctx: AppContext,
    campaign_id: int | None,
    object_type: str | None,
    actor: str | None,
    limit: int,
    before_id: int | None,
    as_json: bool,
) -> None:
    """List the audit trail, newest first: every state change with its actor.

    Actors: cli:<login name> (a command), user:<email> (the staff console),
    schedule, worker, webhook:<provider>, bounces, page (the subscriber pages), demo.

    Example: newsletter audit --campaign 3 --json
    """
    events = audit.list_events(
        ctx.app,
        campaign_id=campaign_id,
        object_type=object_type,
        actor=actor,
        limit=limit,
        before_id=before_id,
    )
    if as_json:
        echo_json(events)
    elif not events:
        click.echo("Nothing in the audit trail yet.")
    else:
        echo_table(events, COLUMNS)
