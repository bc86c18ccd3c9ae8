"""`newsletter dkim keygen`: make a DKIM key and say which DNS record to publish."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter import dkim
from newsletter.cli.output import echo_json


@click.group("dkim")
def dkim_group() -> None:
    """DKIM keys for the messages sent over SMTP or written to a maildir."""


@dkim_group.command(
    "keygen",
    epilog="Example: newsletter dkim keygen --domain example.org --selector news2026 "
    "--out dkim-news2026.pem",
)
@click.option("--domain", required=True, help="The signing domain, normally the From domain.")
@click.option("--selector", required=True, help="A name for this key, e.g. news2026.")
@click.option(
    "--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path),
    help="The private key file to write (mode 0600; an existing file is never replaced).",
)  # fmt: skip
@click.option(
    "--type", "key_type", type=click.Choice(dkim.KEY_TYPES), default="rsa", show_default=True,
    help="rsa (2048 bits; every receiver checks it) or ed25519 (short; fewer receivers check it).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def keygen(domain: str, selector: str, out: Path, key_type: str, as_json: bool) -> None:
    """Write a new private key and print the DNS TXT record that publishes it.

    Publish the record, then set [dkim] domain, selector and private_key_file in
    the config. A long value is published as several quoted strings of at most
    255 characters in one TXT record; most DNS panels split it themselves.
    """
    made = dkim.generate_key(domain, selector, out, key_type)
    if as_json:
        echo_json(made)
        return
    click.echo(f"Wrote the private key to {made.key_file} (keep it secret).")
    click.echo("Publish this DNS TXT record:")
    click.echo(f"  name:  {made.record_name}")
    click.echo(f"  value: {made.record_value}")
    click.echo(
        f'Then in the config: [dkim] domain = "{domain}", selector = "{selector}", '
        f'private_key_file = "{out}"'
    )
