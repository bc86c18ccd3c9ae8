"""`newsletter users …`: the console's staff accounts."""

from __future__ import annotations

import sys

import click

from newsletter import staff
from newsletter.cli.context import AppContext, pass_context
from newsletter.cli.output import echo_json, echo_record, echo_table
from newsletter.roles import ROLE_NAMES

USER_COLUMNS = ["id", "email", "name", "role", "disabled", "last_login_at"]
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
role_choice = click.Choice(ROLE_NAMES)


def _actor(ctx: AppContext) -> str:
    return ctx.actor


def _read_password(from_stdin: bool) -> str:
    """From standard input (one line), else a hidden prompt typed twice."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password"))


def _print(record: staff.StaffUserRecord, as_json: bool, verb: str) -> None:
    if as_json:
        echo_json(record)
    else:
        click.echo(
            f"{verb} {record.email} ({record.role}{', disabled' if record.disabled else ''})"
        )


@click.group("users")
def users_group() -> None:
    """Staff accounts that sign in to the console at /admin/.

    Roles: viewer (reads everything; subscribers' addresses masked), editor
    (items, drafts, previews, test sends), publisher (also approve, schedule,
    send, pause, resume, cancel), admin (also the audience, erasure, users and
    settings).
    """


@users_group.command("add", epilog="Example: newsletter users add ana@example.org --role editor")
@click.argument("email")
@click.option("--role", type=role_choice, required=True, help="What the account may do.")
@click.option("--name", default="", help="The person's name, shown in the console.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (one line)."
)
@json_option
@pass_context
def users_add(
    ctx: AppContext, email: str, role: str, name: str, password_stdin: bool, as_json: bool
) -> None:
    """Create a staff account (the password is asked for, hidden, twice)."""
    password = _read_password(password_stdin)
    record = staff.add_user(
        ctx.app, email, role=role, password=password, name=name, actor=_actor(ctx)
    )
    _print(record, as_json, "Added")


@users_group.command("list", epilog="Example: newsletter users list --json")
@json_option
@pass_context
def users_list(ctx: AppContext, as_json: bool) -> None:
    """Every staff account, with its role and last sign-in."""
    records = staff.list_users(ctx.app)
    if as_json:
        echo_json(records)
    else:
        echo_table(records, USER_COLUMNS)


@users_group.command(
    "set-role", epilog="Example: newsletter users set-role ana@example.org publisher"
)
@click.argument("email")
@click.argument("role", type=role_choice)
@json_option
@pass_context
def users_set_role(ctx: AppContext, email: str, role: str, as_json: bool) -> None:
    """Change what an account may do (the last enabled admin stays an admin)."""
    _print(staff.set_role(ctx.app, email, role, actor=_actor(ctx)), as_json, "Changed")


@users_group.command("disable", epilog="Example: newsletter users disable ana@example.org")
@click.argument("email")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
@json_option
@pass_context
def users_disable(ctx: AppContext, email: str, enable: bool, as_json: bool) -> None:
    """Stop an account from signing in; its open sessions end at their next request."""
    record = staff.set_disabled(ctx.app, email, disabled=not enable, actor=_actor(ctx))
    _print(record, as_json, "Enabled" if enable else "Disabled")


@users_group.command(
    "reset-password",
    epilog="Example: newsletter users reset-password ana@example.org   (asks for it twice)",
)
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@json_option
@pass_context
def users_reset_password(ctx: AppContext, email: str, password_stdin: bool, as_json: bool) -> None:
    """Give an account a new password."""
    password = _read_password(password_stdin)
    record = staff.reset_password(ctx.app, email, password, actor=_actor(ctx))
    if as_json:
        echo_json(record)
    else:
        echo_record({"email": record.email, "password": "changed"})
