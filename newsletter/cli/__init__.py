"""The `newsletter` command: a thin shell over the service functions.

Each command parses its options, calls one service function and formats the
result, as a table or with --json. Errors a user can cause (newsletter.errors.
UserError) become one line on stderr and exit status 2; failures that are not
the user's (OperationFailed) exit with 1. No traceback reaches the user for
either.
"""

from __future__ import annotations

import importlib
import sys

import click

from newsletter import __version__
from newsletter.cli.context import AppContext
from newsletter.errors import OperationFailed, UserError

# Where each command lives, as "module:attribute" under newsletter.cli. A command's
# module is imported only when that command runs (or when help lists it): the
# modules pull in premailer, the web app, the scheduler and more, which would
# double the start-up time of every other command.
COMMANDS = {
    "demo": "demo:demo",
    "db": "database:db_group",
    "items": "items:items_group",
    "edition": "editions:edition_group",
    "announce": "editions:announce",
    "campaigns": "editions:campaigns_group",
    "approve": "editions:approve",
    "preview": "render:preview",
    "lists": "audience:lists_group",
    "subscribers": "audience:subscribers_group",
    "segments": "audience:segments_group",
    "suppress": "audience:suppress_command",
    "person": "audience:person_group",
    "send": "dispatch:send",
    "status": "dispatch:status",
    "deliveries": "dispatch:deliveries",
    "pause": "dispatch:pause",
    "resume": "dispatch:resume",
    "cancel": "dispatch:cancel",
    "worker": "dispatch:worker",
    "schedule": "schedule:schedule_group",
    "unschedule": "schedule:unschedule",
    "serve": "schedule:serve",
    "web": "web:web_command",
    "bounces": "feedback:bounces_group",
    "dkim": "dkim:dkim_group",
    "check": "check:check",
    "audit": "audit:audit_command",
    "users": "users:users_group",
}


class LazyGroup(click.Group):
    """A group that imports a command's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module_name, attribute = COMMANDS[name].split(":")
        module = importlib.import_module(f"newsletter.cli.{module_name}")
        command: click.Command = getattr(module, attribute)
        return command


@click.group(
    cls=LazyGroup,
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
    except Exception as exc:
        # A database that stayed busy or went away under a command: one line, exit 1.
        # Matched by module rather than imported, to keep SQLAlchemy out of start-up.
        if not type(exc).__module__.startswith("sqlalchemy") or not hasattr(exc, "orig"):
            raise
        reason = str(exc.orig).splitlines()[0] if str(exc.orig) else type(exc.orig).__name__
        click.echo(f"failed: the database: {reason}; try again", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
