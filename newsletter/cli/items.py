"""`newsletter items …`: collect items from sources, look at them, correct them."""

from __future__ import annotations

import re

import click

from newsletter import items
from newsletter.cli.context import AppContext, pass_context
from newsletter.cli.output import as_record, echo_json, echo_record, echo_table, json_option
from newsletter.items.translations import link_items
from newsletter.models.items import ITEM_KINDS

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_DAY = re.compile(r"^\d{4}-(0[1-9]|1[0-2])(-\d{2})?$")

kind_choice = click.Choice(ITEM_KINDS, case_sensitive=False)


def _month(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _MONTH.match(value):
        raise click.BadParameter(f"{value!r} is not a month; write it as YYYY-MM, e.g. 2019-06")
    return value


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _DAY.match(value):
        raise click.BadParameter(f"{value!r} is not a date; write YYYY-MM-DD or YYYY-MM")
    return value


# Sources staff keep themselves: an entry or file that could not be imported is theirs
# to fix, so the import exits 1 (a feed's entries are the publisher's).
OWN_SOURCES = ("listing", "markdown")


@click.group("items")
def items_group() -> None:
    """Collect items (reports, statements, tributes, news) and correct them."""


@items_group.command("import")
@click.argument("source")
@click.option(
    "--date",
    "month",
    metavar="YYYY-MM",
    callback=_month,
    help="Month of items the source does not date (e.g. a listing's first item that lost "
    "its date line).",
)
@click.option("--language", metavar="LANG", help="Language of items whose source does not say.")
@click.option("--kind", type=kind_choice, help="Kind of items whose source does not say.")
@click.option(
    "--encoding",
    metavar="NAME",
    help="Text encoding of a listing that is not UTF-8 (cp1252, latin-1, utf-16 …).",
)
@json_option
@pass_context
def items_import(
    ctx: AppContext,
    source: str,
    month: str | None,
    language: str | None,
    kind: str | None,
    encoding: str | None,
    as_json: bool,
) -> None:
    """Import items from SOURCE; importing it again only updates what changed.

    SOURCE is a plain-text news listing (items under 'Month YYYY' lines), a
    folder of Markdown files with front matter, or an RSS/Atom feed (a file or
    an http(s) address). Fields changed with `items edit` are kept.

    A re-import recognises an item by what the source says about it: a feed
    entry's guid or link, a listing item's link, else its month and title
    (small edits tolerated), never by the file's path. A new item that only
    resembles a stored one is added and reported as "looks like item N";
    `items merge` settles it. A call to action without a link is reported.

    Each problem is printed on stderr as SOURCE:LINE: severity: message. Exit
    status: 0 when everything was imported (warnings allowed); 1 when items of
    a listing or a Markdown folder were imported but some entries or files were
    not (their errors are printed, then a summary line; a feed's unreadable
    entries are reported but leave it 0); 2 when the source cannot be read at
    all or no item in it could be imported.

    Example: newsletter items import news.txt --date 2019-06
    """
    report = items.import_source(
        ctx.app,
        source,
        month=month,
        language=language,
        kind=kind,
        encoding=encoding,
        actor=ctx.actor,
    )
    for problem in report.problems:
        click.echo(str(problem), err=True)
    if as_json:
        echo_json(report.as_dict())
    else:
        skipped = sum(1 for p in report.problems if p.severity == "error")
        click.echo(
            f"{source}: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged"
            + (f", {skipped} not imported (see above)" if skipped else "")
            + "."
        )
    if report.imported == 0:
        click.get_current_context().exit(2)
    failed = sum(1 for p in report.problems if p.severity == "error")
    if failed and report.source_type in OWN_SOURCES:
        # Some of it is in, some is not: a script must be able to tell (exit 1). Only for
        # files staff keep themselves: a feed's empty entry is the publisher's to fix, and
        # a nightly import would fail over it every night.
        click.echo(
            f"failed: {failed} not imported from {source} (see above), "
            f"{report.imported} imported; fix them and import again",
            err=True,
        )
        click.get_current_context().exit(1)


@items_group.command("list")
@click.option("--month", metavar="YYYY-MM", callback=_month, help="Only items of this month.")
@click.option("--kind", type=kind_choice, help="Only items of this kind.")
@click.option("--all", "include_excluded", is_flag=True, help="Include excluded items.")
@json_option
@pass_context
def items_list(
    ctx: AppContext, month: str | None, kind: str | None, include_excluded: bool, as_json: bool
) -> None:
    """List items by date (excluded ones only with --all).

    Example: newsletter items list --month 2019-06 --kind report
    """
    rows = items.list_items(ctx.app, month=month, kind=kind, include_excluded=include_excluded)
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo("No items. Import some with: newsletter items import SOURCE")
    else:
        echo_table(rows, items.LIST_FIELDS)


@items_group.command("show")
@click.argument("item_id", type=int)
@json_option
@pass_context
def items_show(ctx: AppContext, item_id: int, as_json: bool) -> None:
    """Show every field of one item.

    Example: newsletter items show 3 --json
    """
    record = items.get_item(ctx.app, item_id)
    if as_json:
        echo_json(record)
    else:
        echo_record(record)


@items_group.command("edit")
@click.argument("item_id", type=int)
@click.option("--title", help="New title.")
@click.option("--kind", type=kind_choice, help="New kind.")
@click.option("--summary", help="New summary.")
@click.option("--date", "day", metavar="YYYY-MM-DD", callback=_day, help="New date (or YYYY-MM).")
@click.option("--link", metavar="URL", help="New link (http, https or mailto; '' for none).")
@click.option("--link-text", help="New call to action shown with the link.")
@click.option("--language", metavar="LANG", help="New language code (en, ru, fr, es …).")
@click.option("--tags", metavar="A,B", help="New tags, comma-separated.")
@click.option("--image-alt", help="What the item's image shows, for readers who cannot see it.")
@click.option(
    "--apply-to-campaigns",
    is_flag=True,
    help="Also change approved campaigns that hold the item: they go back to draft, to be "
    "approved again. Without it they send what was approved.",
)
@json_option
@pass_context
def items_edit(
    ctx: AppContext,
    item_id: int,
    title: str | None,
    kind: str | None,
    summary: str | None,
    day: str | None,
    link: str | None,
    link_text: str | None,
    language: str | None,
    tags: str | None,
    image_alt: str | None,
    apply_to_campaigns: bool,
    as_json: bool,
) -> None:
    """Correct an item by hand; a later re-import leaves the edited fields alone.

    Approval froze what an approved campaign sends: an edit of one of its items
    does not reach it, and a warning names it; with --apply-to-campaigns it goes
    back to draft with the edit. Sent campaigns (and their archive) never change.

    Example: newsletter items edit 3 --kind statement --title "Statement to the CND"
    """
    edited = items.edit_item(
        ctx.app,
        item_id,
        apply_to_campaigns=apply_to_campaigns,
        actor=ctx.actor,
        title=title,
        kind=kind,
        summary=summary,
        date=day,
        link=link,
        link_text=link_text,
        language=language,
        tags=tags,
        image_alt=image_alt,
    )
    for warning in edited.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        echo_json(
            {
                **as_record(edited.item),
                "warnings": list(edited.warnings),
                "frozen_campaigns": list(edited.frozen_campaigns),
                "reopened_campaigns": list(edited.reopened_campaigns),
                "sent_campaigns": list(edited.sent_campaigns),
            }
        )
    else:
        click.echo(f"Item {item_id} updated; edited by hand: {', '.join(edited.edited_fields)}.")


@items_group.command("merge")
@click.argument("keep_id", type=int)
@click.argument("drop_id", type=int)
@json_option
@pass_context
def items_merge(ctx: AppContext, keep_id: int, drop_id: int, as_json: bool) -> None:
    """Make two items one: DROP_ID goes, its campaign entries move to KEEP_ID.

    For the "looks like item N" an import reports: a later re-import that names
    the dropped item finds the kept one.

    Example: newsletter items merge 12 15
    """
    merged = items.merge_items(ctx.app, keep_id, drop_id)
    if as_json:
        echo_json(merged)
        return
    moved = ", ".join(map(str, merged.campaigns)) or "none"
    click.echo(f"Item {drop_id} merged into item {keep_id}; campaigns moved: {moved}.")


@items_group.command("delete")
@click.argument("item_id", type=int)
@json_option
@pass_context
def items_delete(ctx: AppContext, item_id: int, as_json: bool) -> None:
    """Delete an item; refused while an approved, scheduled or sent campaign holds it.

    Draft campaigns lose the item. A re-import of a source that still lists it
    adds it again: `items exclude ID` keeps it out of new bulletins for good.

    Example: newsletter items delete 15
    """
    deleted = items.delete_item(ctx.app, item_id)
    if as_json:
        echo_json(deleted)
        return
    drafts = f"; taken out of draft campaign {', '.join(map(str, deleted.drafts))}"
    click.echo(f"Item {item_id} deleted" + (drafts if deleted.drafts else "") + ".")


def _set_excluded(ctx: AppContext, item_id: int, excluded: bool, as_json: bool) -> None:
    record = items.exclude_item(ctx.app, item_id, excluded=excluded, actor=ctx.actor)
    if as_json:
        echo_json({"id": record.id, "excluded": record.excluded})
    elif excluded:
        click.echo(
            f"Item {item_id} is excluded from editions. Undo: newsletter items include {item_id}"
        )
    else:
        click.echo(f"Item {item_id} is included in editions again.")


@items_group.command("exclude")
@click.argument("item_id", type=int)
@json_option
@pass_context
def items_exclude(ctx: AppContext, item_id: int, as_json: bool) -> None:
    """Keep an item out of bulletins built from now on.

    Example: newsletter items exclude 7
    """
    _set_excluded(ctx, item_id, True, as_json)


@items_group.command("include")
@click.argument("item_id", type=int)
@json_option
@pass_context
def items_include(ctx: AppContext, item_id: int, as_json: bool) -> None:
    """Let an excluded item into bulletins again.

    Example: newsletter items include 7
    """
    _set_excluded(ctx, item_id, False, as_json)


@items_group.command(
    "link",
    epilog="Example: newsletter items link 12 13 14   (13 and 14 translate item 12)",
)
@click.argument("original_id", type=int)
@click.argument("version_ids", type=int, nargs=-1, required=True)
@json_option
@pass_context
def items_link(
    ctx: AppContext, original_id: int, version_ids: tuple[int, ...], as_json: bool
) -> None:
    """Make items language versions of ORIGINAL_ID (one per language).

    An edition lists the original; each reader sees its version in their
    language where there is one. Editions already built use the versions too.
    """
    report = link_items(ctx.app, original_id, version_ids, actor=ctx.actor)
    if as_json:
        echo_json(report)
        return
    echo_record({"id": report.id, "language": report.language, "title": report.title})
    echo_table(
        [{"id": v.id, "language": v.language, "title": v.title} for v in report.versions],
        ("id", "language", "title"),
    )
