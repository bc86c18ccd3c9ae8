"""`newsletter bounces fetch`: read the bounce mailbox and record what bounced."""

from __future__ import annotations

import click

from newsletter import feedback
from newsletter.cli.context import AppContext, pass_context
from newsletter.cli.output import echo_json


@click.group("bounces")
def bounces_group() -> None:
    """Bounces that come back by mail, for campaigns sent over SMTP."""


@bounces_group.command("fetch")
@click.option("--maildir", metavar="PATH", help="Read this Maildir folder (default: config).")
@click.option(
    "--imap",
    metavar="URL",
    help="Read this IMAP folder: imaps://USER@HOST/FOLDER (password from "
    "feedback.mailbox_password_env).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_context
def fetch(ctx: AppContext, maildir: str | None, imap: str | None, as_json: bool) -> None:
    """Read the unread messages of the bounce mailbox and record every bounce.

    Hard bounces suppress the address at once; soft ones count towards
    feedback.soft_bounce_limit. Bounces are matched to deliveries by the VERP
    address they came back to (bounces.return_path), else by the Message-ID
    they quote. Bounces are marked read (or deleted with
    feedback.mailbox_delete_processed); auto-replies and delay notices are
    marked read and count for nothing; anything that is not a readable bounce is
    left unread for a person to look at.

    Example: newsletter bounces fetch --maildir /var/mail/bounces --json
    """
    app = ctx.app
    box = feedback.open_mailbox(app, maildir, imap)
    try:
        report = feedback.fetch_bounces(app, box)
    finally:
        box.close()
    if as_json:
        echo_json(report)
        return
    click.echo(
        f"Read {report.read} messages from {report.mailbox}: {report.hard_bounces} hard and "
        f"{report.soft_bounces} soft bounces ({report.suppressed} addresses suppressed, "
        f"{report.unmatched} not matched to a delivery, {report.duplicates} seen before), "
        f"{report.auto_replies} auto-replies and {report.delays} delay notices ignored."
    )
    if report.left_unread:
        click.echo(
            f"Left unread, not readable as bounces: {len(report.left_unread)} "
            f"({', '.join(report.left_unread[:5])}{', …' if len(report.left_unread) > 5 else ''})"
        )
