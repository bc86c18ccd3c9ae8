"""The `newsletter` command: a thin shell over the service functions.

Each command parses its options, calls one service function and formats the
result, as a table or with --json. Errors a user can cause (newsletter.errors.
UserError) become one line on stderr and exit status 2; failures that are not
the user's (OperationFailed) exit with 1. No traceback reaches the user for
either.
"""

from __future__ import annotations

import sys

import click

from newsletter import __version__
from newsletter.cli import (
    audience,
    database,
    demo,
    dispatch,
    editions,
    feedback,
    items,
    render,
    schedule,
    web,
)
from newsletter.cli.context import AppContext
from newsletter.errors import OperationFailed, UserError


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Example: newsletter demo   (builds and delivers the sample bulletins to ./outbox)",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Config file (default: $NEWSLETTER_CONFIG, else ./newsletter.toml, else built-in "
    "defaults).",
)
@click.version_option(__version__, prog_name="newsletter")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Collect items, build bulletins and announcements, and deliver them to subscribers."""
    ctx.obj = AppContext(config_path)
    ctx.call_on_close(ctx.obj.close)


for module in (
    database,
    demo,
    items,
    editions,
    render,
    audience,
    dispatch,
    schedule,
    feedback,
    web,
):
    for command in module.COMMANDS:
        cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    try:
        result = cli.main(args=argv, prog_name="newsletter", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except OperationFailed as exc:
        click.echo(f"failed: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)
