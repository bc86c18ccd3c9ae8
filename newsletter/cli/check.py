"""`newsletter check`: an edition's message, or the From domain's DNS, as receivers judge them."""

from __future__ import annotations

import dataclasses

import click

from newsletter import checks
from newsletter.cli.context import AppContext, pass_context
from newsletter.cli.output import echo_json
from newsletter.errors import InputError, OperationFailed


@click.command(
    "check",
    epilog="Example: newsletter check 12   (also: newsletter check 12 --language ru; "
    "newsletter check --domain example.org)",
)
@click.argument("campaign_id", type=int, required=False)
@click.option(
    "--language", metavar="L", help="Render the campaign in this language (default: its own)."
)
@click.option(
    "--domain", "domain", is_flag=False, flag_value="", default=None, metavar="[DOMAIN]",
    help="Check a domain's SPF, DKIM and DMARC records instead (default: the From domain).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
@pass_context
def check(
    ctx: AppContext,
    campaign_id: int | None,
    language: str | None,
    domain: str | None,
    as_json: bool,
) -> None:
    """What a receiving server or a phone will hold against a campaign, before approval.

    One line per finding. An "error" would break delivery (a receiver rejects or
    spam-folders the message, or one-click unsubscribe cannot work): the command
    then exits 1. A "warning" spoils the message without stopping it.

    For a campaign: the size against Gmail's 102 KB clipping, images without alt
    text, http:// links, links to localhost or private addresses when the base URL
    is public, a missing text part or List-Unsubscribe header, a From domain that
    is not DKIM-signed over SMTP, a base URL that is not https, and calls to
    action without a URL. With --domain: the SPF, DKIM (the [dkim] selector) and
    DMARC records, and what to publish.
    """
    report: checks.EditionReport | checks.DomainReport
    if domain is not None:
        if campaign_id is not None or language:
            raise InputError("give either a campaign ID or --domain, not both")
        report = checks.check_domain(ctx.app, domain or None)
        what = f"domain {report.domain}"
    elif campaign_id is None:
        raise InputError("give a campaign ID, or --domain (see `newsletter check --help`)")
    else:
        report = checks.check_edition(ctx.app, campaign_id, language)
        what = f"campaign {campaign_id} ({', '.join(report.languages)})"
    if as_json:
        echo_json({**dataclasses.asdict(report), "errors": report.errors})
    else:
        for finding in report.findings:
            click.echo(finding.line())
        if not report.findings:
            click.echo(f"No findings for {what}.")
    if report.errors:
        # Exit 1, with the summary as the one line on stderr; the findings are on stdout.
        raise OperationFailed(f"{what}: {report.errors} finding(s) would break delivery")
