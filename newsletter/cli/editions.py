"""`newsletter edition …`, `announce`, `campaigns …`, `approve`: building and approving."""

from __future__ import annotations

import click

from newsletter import editing, editions
from newsletter.cli.context import AppContext, pass_context
from newsletter.cli.output import as_record, echo_json, echo_record, echo_table, json_option
from newsletter.models import CAMPAIGN_STATUSES

CAMPAIGN_COLUMNS = ["id", "kind", "status", "month", "subject", "lists", "segment", "items"]

list_option = click.option(
    "--list",
    "lists",
    multiple=True,
    metavar="NAME",
    help="Send to this list (repeatable). Default: editions.default_lists, else every list.",
)
segment_option = click.option(
    "--segment", metavar="NAME", help="Narrow the audience to a saved segment."
)
subject_option = click.option("--subject", help="Subject line (default: from the config pattern).")
intro_option = click.option(
    "--intro-file",
    type=click.Path(dir_okay=False),
    help="A UTF-8 text file whose paragraphs open the email.",
)
transport_option = click.option(
    "--transport", metavar="NAME", help="A named transport from the config (default: its default)."
)


def _print_created(result: editions.CampaignSummary, as_json: bool) -> None:
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        echo_json(result)
        return
    audience = ", ".join(result.lists) or "-"
    if result.segment:
        audience += f" (segment {result.segment})"
    click.echo(f"Created {result.kind} {result.id} ({result.status}): {result.subject}")
    click.echo(f"  {result.items} item(s); audience: {audience}")
    click.echo(f"  Next: newsletter preview {result.id} --out preview/   "
               f"then: newsletter approve {result.id}")  # fmt: skip


@click.group("edition")
def edition_group() -> None:
    """Build monthly bulletins."""


@edition_group.command("new")
@click.option("--month", required=True, metavar="YYYY-MM", help="The month the bulletin covers.")
@list_option
@segment_option
@subject_option
@intro_option
@click.option("--language", metavar="LANG", help="Language of the edition (default: config).")
@transport_option
@json_option
@pass_context
def edition_new(
    ctx: AppContext,
    month: str,
    lists: tuple[str, ...],
    segment: str | None,
    subject: str | None,
    intro_file: str | None,
    language: str | None,
    transport: str | None,
    as_json: bool,
) -> None:
    """Build the bulletin for a month as a draft, from that month's items grouped by kind.

    Example: newsletter edition new --month 2019-06 --list members --intro-file intro.txt
    """
    result = editions.new_bulletin(
        ctx.app,
        month,
        lists=lists,
        segment=segment,
        subject=subject,
        intro_file=intro_file,
        language=language,
        transport=transport,
        actor=ctx.actor,
    )
    _print_created(result, as_json)


@click.command("announce")
@click.argument("item_id", type=int)
@list_option
@segment_option
@subject_option
@intro_option
@transport_option
@json_option
@pass_context
def announce(
    ctx: AppContext,
    item_id: int,
    lists: tuple[str, ...],
    segment: str | None,
    subject: str | None,
    intro_file: str | None,
    transport: str | None,
    as_json: bool,
) -> None:
    """Build a one-item announcement as a draft.

    Example: newsletter announce 12 --list members --list partners
    """
    result = editions.new_announcement(
        ctx.app,
        item_id,
        lists=lists,
        segment=segment,
        subject=subject,
        intro_file=intro_file,
        transport=transport,
        actor=ctx.actor,
    )
    _print_created(result, as_json)


@click.group("campaigns")
def campaigns_group() -> None:
    """List and inspect campaigns (bulletins and announcements)."""


@campaigns_group.command("list")
@click.option("--status", type=click.Choice(CAMPAIGN_STATUSES), help="Only this status.")
@json_option
@pass_context
def campaigns_list(ctx: AppContext, status: str | None, as_json: bool) -> None:
    """List campaigns, oldest first.

    Example: newsletter campaigns list --status draft
    """
    rows = editions.list_campaigns(ctx.app, status=status)
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo("No campaigns yet. Build one with: newsletter edition new --month YYYY-MM")
    else:
        echo_table(rows, CAMPAIGN_COLUMNS)


@campaigns_group.command("show")
@click.argument("campaign_id", type=int)
@json_option
@pass_context
def campaigns_show(ctx: AppContext, campaign_id: int, as_json: bool) -> None:
    """Show one campaign: status, audience, items and deliveries.

    Example: newsletter campaigns show 1 --json
    """
    result = editions.show_campaign(ctx.app, campaign_id)
    if as_json:
        echo_json(result)
        return
    record = {k: v for k, v in as_record(result).items() if k not in ("item_list", "deliveries")}
    record["deliveries"] = (
        ", ".join(f"{k} {v}" for k, v in sorted(result.deliveries.items())) or "none yet"
    )
    echo_record(record)
    click.echo("")
    echo_table(result.item_list, ["id", "kind", "date", "title"])


@click.command("approve")
@click.argument("campaign_id", type=int)
@click.option(
    "--by",
    metavar="NAME",
    help="Who approves, as the audit trail records it (cli:NAME; default: cli:<login name>).",
)
@json_option
@pass_context
def approve(ctx: AppContext, campaign_id: int, by: str | None, as_json: bool) -> None:
    """Approve a draft so that it can be sent or scheduled.

    Example: newsletter approve 1 --by "Comms team"
    """
    result = editions.approve(ctx.app, campaign_id, actor=ctx.actor_named(by))
    if as_json:
        echo_json(result)
    else:
        click.echo(f"Campaign {campaign_id} approved. Send it with: newsletter send {campaign_id}")


def _ids(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(part) for part in value.replace(" ", "").split(",") if part]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a list of item ids such as 3,1,2") from None


@edition_group.command("edit")
@click.argument("campaign_id", type=int)
@click.option("--subject", help="New subject line.")
@click.option("--preheader", help="New inbox preview line.")
@intro_option
@click.option(
    "--greeting",
    help='The line above the intro: "none", "auto" (the language\'s own, left out when the '
    'intro already greets), or your own such as "Hi {name},".',
)
@click.option("--add", "add_items", type=int, multiple=True, metavar="ITEM", help="Add an item.")
@click.option(
    "--remove", "remove_items", type=int, multiple=True, metavar="ITEM", help="Remove an item."
)
@click.option(
    "--order", callback=_ids, metavar="ID,ID,…", help="The items' new reading order, every id once."
)
@click.option(
    "--list",
    "lists",
    multiple=True,
    metavar="NAME",
    help="Send to these lists instead (repeatable).",
)
@segment_option
@click.option("--no-segment", is_flag=True, help="Remove the segment: the whole lists.")
@json_option
@pass_context
def edition_edit(
    ctx: AppContext,
    campaign_id: int,
    subject: str | None,
    preheader: str | None,
    intro_file: str | None,
    greeting: str | None,
    add_items: tuple[int, ...],
    remove_items: tuple[int, ...],
    order: list[int] | None,
    lists: tuple[str, ...],
    segment: str | None,
    no_segment: bool,
    as_json: bool,
) -> None:
    """Correct a draft or approved edition; an approved one goes back to draft.

    The result is rendered before it is saved: an edit that breaks the
    template changes nothing. Every edit is in the audit trail.

    Example: newsletter edition edit 3 --subject "June news" --remove 12 --order 5,4,7
    """
    edited = editing.edit_edition(
        ctx.app,
        campaign_id,
        actor=ctx.actor,
        subject=subject,
        preheader=preheader,
        intro_file=intro_file,
        greeting=greeting,
        add_items=add_items,
        remove_items=remove_items,
        order=order,
        lists=lists or None,
        segment=segment,
        no_segment=no_segment,
    )
    if as_json:
        echo_json(edited)
        return
    click.echo(f"Campaign {campaign_id} edited: {', '.join(edited.changed) or 'nothing changed'}.")
    if edited.unapproved:
        click.echo(f"It is a draft again; approve it with: newsletter approve {campaign_id}")


@campaigns_group.command("duplicate")
@click.argument("campaign_id", type=int)
@json_option
@pass_context
def campaigns_duplicate(ctx: AppContext, campaign_id: int, as_json: bool) -> None:
    """Copy a campaign (any status) into a new draft with the same content and audience.

    Example: newsletter campaigns duplicate 3
    """
    _print_created(editing.duplicate_campaign(ctx.app, campaign_id, actor=ctx.actor), as_json)


@campaigns_group.command("delete")
@click.argument("campaign_id", type=int)
@json_option
@pass_context
def campaigns_delete(ctx: AppContext, campaign_id: int, as_json: bool) -> None:
    """Delete a draft; approved and sent campaigns stay (cancel them instead).

    The deletion is recorded in the audit trail (`newsletter audit`).

    Example: newsletter campaigns delete 4
    """
    deleted = editing.delete_campaign(ctx.app, campaign_id, actor=ctx.actor)
    if as_json:
        echo_json(deleted)
    else:
        click.echo(f"Campaign {campaign_id} deleted ({deleted.subject}).")


@edition_group.command(
    "text",
    epilog="Example: newsletter edition text 3 --language ru --subject 'Бюллетень — июнь 2019' "
    "--intro-file intro.ru.txt",
)
@click.argument("campaign_id", type=int)
@click.option("--language", required=True, metavar="LANG", help="The language of these texts.")
@subject_option
@intro_option
@click.option("--preheader", help="The preview line mail programs show after the subject.")
@json_option
@pass_context
def edition_text(
    ctx: AppContext,
    campaign_id: int,
    language: str,
    subject: str | None,
    intro_file: str | None,
    preheader: str | None,
    as_json: bool,
) -> None:
    """Give an edition its subject, intro and preheader in another language.

    Readers of that language see them; what is not given reads in the edition's
    own language. An approved edition goes back to draft.
    """
    result = editions.set_text(
        ctx.app,
        campaign_id,
        language,
        actor=ctx.actor,
        subject=subject,
        intro_file=intro_file,
        preheader=preheader,
    )
    if as_json:
        echo_json(result)
    else:
        echo_record(result)
