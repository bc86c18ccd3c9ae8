"""`newsletter demo`: the whole pipeline on the bundled content."""

from __future__ import annotations

from dataclasses import asdict

import click

from newsletter.cli.context import AppContext, pass_context
from newsletter.cli.output import echo_json, echo_table


@click.command("demo")
@click.option("--json", "as_json", is_flag=True, help="Print what the demo did as JSON.")
@pass_context
def demo(ctx: AppContext, as_json: bool) -> None:
    """Import the sample items and lists, build the March and June 2019 bulletins
    and deliver them to the outbox.

    With no config file this uses ./newsletter.db and the ./outbox maildir.
    Running it again duplicates nothing.

    Example: newsletter demo && ls outbox/new | head
    """
    # Imported here: the demo pulls in every stage, which other commands need not load
    # (start-up time).
    from newsletter.demo import run_demo

    report = run_demo(ctx.app)
    if as_json:
        echo_json(asdict(report))
        return
    click.echo(
        f"Items: {report.items_added} added, {report.items_updated} updated, "
        f"{report.items_unchanged} unchanged."
    )
    for name, counts in report.subscribers.items():
        summary = ", ".join(f"{value} {key}" for key, value in counts.items())
        click.echo(f"List {name}: {summary}.")
    click.echo("")
    rows = [
        {**row, "deliveries": ", ".join(f"{k} {v}" for k, v in sorted(row["deliveries"].items()))}
        for row in report.campaigns
    ]
    echo_table(rows, ["id", "month", "status", "items", "recipients", "sent_now", "deliveries"])
    click.echo("")
    click.echo(f"Database: {report.database}")
    click.echo(f"Messages: {report.outbox}")
    first = report.campaigns[0]["id"] if report.campaigns else 1
    click.echo("")
    click.echo("Look at a message:")
    if report.outbox.startswith("maildir "):
        folder = report.outbox.removeprefix("maildir ")
        click.echo(f"  ls {folder} | head -3    # one RFC 5322 file per message")
    click.echo(f"  newsletter preview {first} --out preview/    # HTML, text and .eml side by side")
    click.echo(f"  newsletter deliveries {first}                 # who got it")
