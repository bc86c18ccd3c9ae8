"""`newsletter lists|subscribers|segments …`, `suppress`, `person …`: the audience.

Thin shells over newsletter.audience: each command parses, calls one service
function, and prints a table, a summary or JSON.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from newsletter import audience
from newsletter.audience.columns import parse_attribute_option
from newsletter.audience.files import private_output
from newsletter.audience.imports import default_reject_path
from newsletter.audience.lists import ListEnsured
from newsletter.audience.suppression import lift_address, suppress_address
from newsletter.cli.context import AppContext, pass_context
from newsletter.cli.output import as_record, echo_json, echo_record, echo_table, json_option
from newsletter.errors import InputError, UserError

LIST_COLUMNS = ["name", "title", "optin", "visibility", "confirmed", "unconfirmed", "unsubscribed"]
SUBSCRIBER_COLUMNS = ["email", "name", "language", "status"]
SEGMENT_COLUMNS = ["name", "rules", "description"]
# `erased` is given only by `person erase`, which also deletes the data.
ADMIN_SUPPRESSION_REASONS = [r for r in audience.SUPPRESSION_REASONS if r != "erased"]


# --- lists -------------------------------------------------------------------------


@click.group("lists")
def lists_group() -> None:
    """Mailing lists: create, list, show, archive."""


@lists_group.command("create")
@click.argument("name")
@click.option("--title", default="", help="Title shown to subscribers (default: from NAME).")
@click.option("--description", default="", help="What the list is for.")
@click.option(
    "--optin",
    type=click.Choice(["single", "double"]),
    default="double",
    show_default=True,
    help="Whether people who subscribe on the web must confirm by email.",
)
@click.option("--public", is_flag=True, help="Offer the list on the public subscribe page.")
@click.option("--exist-ok", is_flag=True, help="Succeed, changing nothing, if the list exists.")
@json_option
@pass_context
def lists_create(
    ctx: AppContext,
    name: str,
    title: str,
    description: str,
    optin: str,
    public: bool,
    exist_ok: bool,
    as_json: bool,
) -> None:
    """Create a list; NAME is a slug (lower-case letters, digits, '-' and '_').

    Example: newsletter lists create members --title "Members" --optin double
    """
    options: dict[str, Any] = dict(title=title, description=description, optin=optin, public=public)
    if exist_ok:
        result = audience.ensure_list(ctx.app, name, **options, actor=ctx.actor)
    else:
        created = audience.create_list(ctx.app, name, **options, actor=ctx.actor)
        result = ListEnsured(**as_record(created), created=True)
    if as_json:
        echo_json(result)
    elif result.created:
        click.echo(f"Created list {result.name} ({result.optin} opt-in, {result.visibility}).")
        click.echo(f"  Next: newsletter subscribers import FILE.csv --list {result.name}")
    else:
        click.echo(f"List {result.name} exists already; nothing changed.")


@lists_group.command("list")
@click.option("--all", "include_archived", is_flag=True, help="Include archived lists.")
@json_option
@pass_context
def lists_list(ctx: AppContext, include_archived: bool, as_json: bool) -> None:
    """List the mailing lists with their members counted by status.

    Example: newsletter lists list --all
    """
    rows = audience.list_lists(ctx.app, include_archived=include_archived)
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo("No lists yet. Create one with: newsletter lists create NAME")
    else:
        echo_table(rows, [*LIST_COLUMNS, "archived"] if include_archived else LIST_COLUMNS)


@lists_group.command("show")
@click.argument("name")
@json_option
@pass_context
def lists_show(ctx: AppContext, name: str, as_json: bool) -> None:
    """Show a list, its members by status and how many a campaign would reach.

    Example: newsletter lists show members
    """
    result = audience.show_list(ctx.app, name)
    if as_json:
        echo_json(result)
    else:
        echo_record(result)


@lists_group.command("archive")
@click.argument("name")
@json_option
@pass_context
def lists_archive(ctx: AppContext, name: str, as_json: bool) -> None:
    """Archive a list: its members stay on record, but no campaign reaches them through it.

    Example: newsletter lists archive old-partners
    """
    result = audience.archive_list(ctx.app, name, actor=ctx.actor)
    if as_json:
        echo_json(result)
    else:
        click.echo(f"Archived list {name}; {result.confirmed} confirmed member(s) kept on record.")


# --- subscribers -------------------------------------------------------------------


@click.group("subscribers")
def subscribers_group() -> None:
    """Subscribers: add, show, search, unsubscribe, remove, import, export."""


@subscribers_group.command("add")
@click.argument("email")
@click.option("--list", "list_name", required=True, metavar="NAME", help="The list to join.")
@click.option("--name", default="", help="The person's name.")
@click.option("--language", default=None, metavar="LANG", help="en, ru, fr, es, …")
@click.option(
    "--attr",
    "attrs",
    multiple=True,
    metavar="KEY=VALUE",
    help="An attribute (repeatable), e.g. region=Eurasia; topics take 'a; b'.",
)
@click.option("--consent-text", default=None, help="The wording the person agreed to.")
@click.option(
    "--unconfirmed", is_flag=True, help="Leave the subscription waiting for confirmation."
)
@click.option(
    "--force-resubscribe",
    is_flag=True,
    help="Subscribe even an address that left this list or is suppressed (recorded).",
)
@json_option
@pass_context
def subscribers_add(
    ctx: AppContext,
    email: str,
    list_name: str,
    name: str,
    language: str | None,
    attrs: tuple[str, ...],
    consent_text: str | None,
    unconfirmed: bool,
    force_resubscribe: bool,
    as_json: bool,
) -> None:
    """Add one person to a list, confirmed: you vouch that they agreed.

    Example: newsletter subscribers add ana@example.org --list members --attr region=Europe
    """
    # Imported when the command runs, not when `--help` lists it: start-up time.
    from newsletter.audience.columns import clean_name, normalise_language

    try:
        language = normalise_language(language) if language else None
    except ValueError as exc:
        raise InputError(f"--language: {exc}") from None
    result = audience.add_subscriber(
        ctx.app,
        email,
        list_name,
        name=clean_name(name),
        language=language,
        attributes=dict(parse_attribute_option(a) for a in attrs),
        consent_text=consent_text,
        confirmed=not unconfirmed,
        force=force_resubscribe,
        actor=ctx.actor,
    )
    if as_json:
        echo_json(result)
        return
    verb = "Added" if result.created else "Subscribed"
    click.echo(f"{verb} {result.email} to {result.list} ({result.status}).")
    if result.forced:
        click.echo(f"  Forced over: {result.forced} (recorded in the consent note).")


@subscribers_group.command("show")
@click.argument("email")
@json_option
@pass_context
def subscribers_show(ctx: AppContext, email: str, as_json: bool) -> None:
    """Show a subscriber: profile, subscriptions with their consent, suppression.

    Example: newsletter subscribers show ana@example.org
    """
    result = audience.show_subscriber(ctx.app, email)
    if as_json:
        echo_json(result)
        return
    profile = {k: v for k, v in as_record(result).items() if k != "subscriptions"}
    profile["attributes"] = "; ".join(
        f"{k}={', '.join(v) if isinstance(v, list) else v}" for k, v in result.attributes.items()
    )
    echo_record(profile)
    if result.subscriptions:
        click.echo("")
        echo_table(
            result.subscriptions,
            ["list", "status", "consent_at", "consent_method", "consent_source", "consent_note"],
        )


@subscribers_group.command("search")
@click.argument("query")
@click.option("--list", "list_name", metavar="NAME", help="Only members of this list.")
@click.option("--limit", default=50, show_default=True, help="At most this many results.")
@json_option
@pass_context
def subscribers_search(
    ctx: AppContext, query: str, list_name: str | None, limit: int, as_json: bool
) -> None:
    """Find subscribers whose address or name contains QUERY (any case).

    Example: newsletter subscribers search example.net --list partners
    """
    rows = audience.search_subscribers(ctx.app, query, list_name=list_name, limit=limit)
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo("No subscriber matches.")
    else:
        echo_table(rows, SUBSCRIBER_COLUMNS)


@subscribers_group.command("unsubscribe")
@click.argument("email")
@click.option("--list", "list_name", metavar="NAME", help="Only this list (default: all).")
@json_option
@pass_context
def subscribers_unsubscribe(
    ctx: AppContext, email: str, list_name: str | None, as_json: bool
) -> None:
    """Record that a person left a list, or everything (then the address is suppressed).

    Their deliveries still waiting in campaigns being sent are cancelled. Leaving
    the last list is leaving everything.

    Example: newsletter subscribers unsubscribe ana@example.org --list partners
    """
    result = audience.unsubscribe_address(ctx.app, email, list_name=list_name, actor=ctx.actor)
    if as_json:
        echo_json(result)
        return
    if result.already:
        where = f"on {list_name}" if list_name else "on any list"
        click.echo(f"{result.email} was not subscribed {where}; nothing changed.")
        return
    click.echo(f"Unsubscribed {result.email} from {', '.join(result.left) or 'no list'}.")
    if result.everything:
        click.echo("  No list is left: the address is suppressed, so no campaign reaches it.")


@subscribers_group.command("remove")
@click.argument("email")
@click.option("--list", "list_name", metavar="NAME", help="Remove only from this list.")
@json_option
@pass_context
def subscribers_remove(ctx: AppContext, email: str, list_name: str | None, as_json: bool) -> None:
    """Delete a membership, or the whole subscriber, as if never added (undo a mistake).

    To honour a request to leave, use `subscribers unsubscribe` (it is remembered, so no
    import brings the person back); for an erasure request, use `person erase`.

    Example: newsletter subscribers remove typo@example.org
    """
    result = audience.remove_subscriber(ctx.app, email, list_name=list_name, actor=ctx.actor)
    if as_json:
        echo_json(result)
    elif list_name:
        click.echo(f"Removed {result.email} from {list_name}.")
    else:
        click.echo(f"Removed subscriber {result.email} and all their subscriptions.")


@subscribers_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--list", "list_name", required=True, metavar="NAME", help="The list to fill.")
@click.option(
    "--mode",
    type=click.Choice(audience.IMPORT_MODES),
    default="add",
    show_default=True,
    help="add: new people only; update: also update people in the file; sync: also "
    "unsubscribe members not in the file.",
)
@click.option("--dry-run", is_flag=True, help="Check and count everything; write nothing.")
@click.option(
    "--reject-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where rejected rows go (default: FILE's name + -rejected.csv, in this folder).",
)
@click.option("--encoding", help="The file's encoding when it is not UTF-8, e.g. cp1252.")
@click.option("--consent-text", help="The wording people agreed to, kept as consent record.")
@click.option(
    "--force-resubscribe",
    is_flag=True,
    help="Subscribe again addresses that left the list or are suppressed (recorded).",
)
@click.option("--unconfirmed", is_flag=True, help="New members wait for confirmation.")
@json_option
@pass_context
def subscribers_import(
    ctx: AppContext,
    file: Path,
    list_name: str,
    mode: str,
    dry_run: bool,
    reject_file: Path | None,
    encoding: str | None,
    consent_text: str | None,
    force_resubscribe: bool,
    unconfirmed: bool,
    as_json: bool,
) -> None:
    """Import people from a CSV file into a list (the format: subscribers/README.md).

    Example: newsletter subscribers import members.csv --list members --dry-run
    """
    show_progress = not as_json and sys.stderr.isatty()

    def progress(rows: int) -> None:
        click.echo(f"\r  {rows:,} rows read…", nl=False, err=True)

    report = audience.import_subscribers(
        ctx.app,
        file,
        list_name=list_name,
        mode=mode,
        dry_run=dry_run,
        # A dry run writes no file unless asked to; a real one keeps the rejects by default.
        reject_path=reject_file or (None if dry_run else default_reject_path(file)),
        encoding=encoding,
        consent_text=consent_text,
        force_resubscribe=force_resubscribe,
        unconfirmed=unconfirmed,
        progress=progress if show_progress else None,
        actor=ctx.actor,
    )
    if show_progress and report.rows >= 10_000:
        click.echo("", err=True)
    if as_json:
        echo_json(report.as_dict())
        return
    counts = report.counts()
    if mode != "sync":
        counts.pop("removed")
    summary = ", ".join(f"{n} {what}" for what, n in counts.items())
    if dry_run:
        click.echo(f"Dry run, nothing written. {file} ({report.format}) into {list_name}:")
    else:
        click.echo(f"Imported {file} ({report.format}) into {list_name}:")
    click.echo(f"  {report.rows} rows: {summary}")
    if report.forced:
        click.echo(f"  {report.forced} re-subscription(s) forced (recorded in the consent notes)")
    for note in report.notes:
        click.echo(f"  note: {note}")
    if report.skipped or report.rejected:
        for reject in report.rejects:
            click.echo(f"  line {reject['line']}: {reject['reason']}")
        more = report.skipped + report.rejected - len(report.rejects)
        if more > 0:
            click.echo(f"  … and {more} more")
        if report.reject_file:
            click.echo(f"  Rejected and skipped rows, with the reason: {report.reject_file}")


@subscribers_group.command("export")
@click.option("--list", "list_name", metavar="NAME", help="Export this list's members.")
@click.option("--segment", "segment_name", metavar="NAME", help="Export a segment's subscribers.")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (readable by you only) instead of the screen.",
)
@pass_context
def subscribers_export(
    ctx: AppContext, list_name: str | None, segment_name: str | None, fmt: str, out: Path | None
) -> None:
    """Export a list's members or a segment's subscribers, in the import format.

    Example: newsletter subscribers export --list members --out members-export.csv
    """
    if (list_name is None) == (segment_name is None):
        raise InputError("give either --list NAME or --segment NAME")
    options: dict[str, Any] = dict(list_name=list_name, segment_name=segment_name, fmt=fmt)
    if out is None:
        audience.export_subscribers(ctx.app, sys.stdout, **options)
        return
    with private_output(out) as handle:
        count = audience.export_subscribers(ctx.app, handle, **options)
    click.echo(f"Exported {count} subscriber(s) to {out}.", err=True)


# --- segments ----------------------------------------------------------------------


@click.group("segments")
def segments_group() -> None:
    """Segments: saved filters over language, lists, status and attributes."""


@segments_group.command("create")
@click.argument("name")
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A .toml or .json file with the rules.",
)
@click.option("--definition", "text", metavar="RULES", help="The rules inline, JSON or TOML.")
@click.option("--description", default=None, help="What the segment is for.")
@click.option("--replace", is_flag=True, help="Redefine the segment if it exists.")
@json_option
@pass_context
def segments_create(
    ctx: AppContext,
    name: str,
    path: Path | None,
    text: str | None,
    description: str | None,
    replace: bool,
    as_json: bool,
) -> None:
    """Save a segment from rules in a file or inline (the rules are checked now).

    Rules: {"all"|"any": [rule, …]}, {"not": rule}, or {"field": F, "op": OP, "value": V}
    with OP one of eq, in, contains, exists; F one of language, status, name, domain,
    list, or an attribute (region, country, topics, …). eq, in and contains compare
    text in any case; a topic may be named by its slug or its label. Inline:
    --definition '{"field": "topics", "op": "contains", "value": "drug policy"}'

    Example: newsletter segments create ru-eurasia --file ru-eurasia.toml
    """
    if (path is None) == (text is None):
        raise InputError("give the rules with either --file F or --definition RULES")
    result = audience.save_segment(
        ctx.app,
        name,
        text=text,
        path=path,
        description=description,
        replace=replace,
        actor=ctx.actor,
    )
    if as_json:
        echo_json(result)
        return
    click.echo(f"Saved segment {result.name}: {result.rules}")
    click.echo(f"  {result.matching} matching subscriber(s), {result.reachable} reachable.")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)


@segments_group.command("edit")
@click.argument("name")
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="New rules from a .toml or .json file.",
)
@click.option("--definition", "text", metavar="RULES", help="New rules inline, JSON or TOML.")
@click.option("--description", default=None, help="A new description.")
@json_option
@pass_context
def segments_edit(
    ctx: AppContext,
    name: str,
    path: Path | None,
    text: str | None,
    description: str | None,
    as_json: bool,
) -> None:
    """Change a segment's rules or description (the new rules are checked now).

    Campaigns that use the segment see the new rules, except those whose ledger
    is already written (sending, sent).

    Example: newsletter segments edit ru-eurasia --file ru-eurasia.toml --description "RU"
    """
    if path is not None and text is not None:
        raise InputError("give the rules with either --file F or --definition RULES, not both")
    if path is None and text is None and description is None:
        raise InputError("nothing to change; give --file, --definition or --description")
    result = audience.save_segment(
        ctx.app,
        name,
        text=text,
        path=path,
        description=description,
        replace=True,
        must_exist=True,
        actor=ctx.actor,
    )
    if as_json:
        echo_json(result)
        return
    click.echo(f"Saved segment {result.name}: {result.rules}")
    click.echo(f"  {result.matching} matching subscriber(s), {result.reachable} reachable.")
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)


@segments_group.command("delete")
@click.argument("name")
@json_option
@pass_context
def segments_delete(ctx: AppContext, name: str, as_json: bool) -> None:
    """Delete a segment; refused while a campaign that has not gone out uses it.

    Example: newsletter segments delete ru-eurasia
    """
    deleted = audience.delete_segment(ctx.app, name, actor=ctx.actor)
    if as_json:
        echo_json(deleted)
    else:
        click.echo(f"Segment {name} deleted.")


@segments_group.command("list")
@json_option
@pass_context
def segments_list(ctx: AppContext, as_json: bool) -> None:
    """List the saved segments and their rules.

    Example: newsletter segments list
    """
    rows = audience.list_segments(ctx.app)
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo("No segments yet. Create one with: newsletter segments create NAME --file F")
    else:
        echo_table(rows, SEGMENT_COLUMNS, max_width=80)


@segments_group.command("show")
@click.argument("name")
@click.option("--sample", default=5, show_default=True, help="How many members to show.")
@json_option
@pass_context
def segments_show(ctx: AppContext, name: str, sample: int, as_json: bool) -> None:
    """Show a segment: its rules, how many it matches and reaches, and a few members.

    Example: newsletter segments show ru-eurasia
    """
    result = audience.show_segment(ctx.app, name, sample=sample)
    if as_json:
        echo_json(result)
        return
    record = as_record(result)
    echo_record({k: record[k] for k in ("name", "description", "rules", "matching", "reachable")})
    if result.languages:
        languages = ", ".join(f"{code} {count}" for code, count in result.languages.items())
        click.echo(f"languages: {languages}")
    if result.sample:
        click.echo("")
        echo_table(result.sample, ["email", "name", "language"])


# --- suppression -------------------------------------------------------------------


@click.command("suppress")
@click.argument("address")
@click.option(
    "--reason",
    type=click.Choice(ADMIN_SUPPRESSION_REASONS),
    help="Why this address must never be mailed.",
)
@click.option("--note", default="", help="A note for other admins (avoid personal details).")
@click.option("--lift", is_flag=True, help="Take the address off the suppression list instead.")
@json_option
@pass_context
def suppress_command(
    ctx: AppContext, address: str, reason: str | None, note: str, lift: bool, as_json: bool
) -> None:
    """Put an address on the suppression list: it is never mailed again.

    Only a keyed hash of the address is kept. A subscriber with that address is
    marked (bounced, complained, blocklisted or unsubscribed).

    Example: newsletter suppress someone@example.org --reason manual
    """
    if lift:
        if reason:
            raise InputError("--lift takes no --reason")
        lifted = lift_address(ctx.app, address, actor=ctx.actor)
        if as_json:
            echo_json(lifted)
        elif lifted.lifted:
            click.echo(f"Lifted the suppression of {lifted.address} ({lifted.lifted}).")
        else:
            click.echo(f"{lifted.address} was not suppressed.")
        return
    if not reason:
        raise InputError(f"give --reason ({', '.join(ADMIN_SUPPRESSION_REASONS)})")
    result = suppress_address(ctx.app, address, reason, note, actor=ctx.actor)
    if as_json:
        echo_json(result)
    elif result.added:
        click.echo(f"Suppressed {result.address} ({reason}).")
    else:
        click.echo(f"{result.address} was already suppressed ({result.reason}).")


# --- data-protection requests ------------------------------------------------------


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


@click.group("person")
def person_group() -> None:
    """Data-protection requests: export or erase what is held on a person."""


@person_group.command("export")
@click.argument("address")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the JSON to this file (readable by you only).",
)
@pass_context
def person_export(ctx: AppContext, address: str, out: Path | None) -> None:
    """Print everything held on a person as JSON: profile, subscriptions, consent,
    deliveries, events and suppression.

    Example: newsletter person export ana@example.org --out ana.json
    """
    document = audience.export_person(ctx.app, address)
    if document.subscriber is None and not document.events:
        click.echo(f"note: no subscriber data is held on {address}", err=True)
    if out is None:
        echo_json(document)
        return
    with private_output(out) as handle:
        json.dump(as_record(document), handle, ensure_ascii=False, indent=2, default=_iso)
        handle.write("\n")
    click.echo(f"Wrote {out}.", err=True)


@person_group.command("erase")
@click.argument("address")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@pass_context
def person_erase(ctx: AppContext, address: str, yes: bool, as_json: bool) -> None:
    """Delete a person's data everywhere; keep only the suppression entry (a keyed hash).

    The address is never mailed again. On SQLite the database file is rebuilt so
    that the deleted bytes are gone from it too.

    Example: newsletter person erase ana@example.org --yes
    """
    if not yes:
        if not sys.stdin.isatty():
            raise UserError("erasing cannot be undone: add --yes to erase without a question")
        document = audience.export_person(ctx.app, address)
        held = (
            f"{len(document.subscriptions)} subscription(s), "
            f"{len(document.deliveries)} delivery record(s), {len(document.events)} event(s)"
        )
        found = "a subscriber" if document.subscriber else "no subscriber"
        click.confirm(f"Erase {address}: {found}, {held}?", abort=True)
    report = audience.erase_person(ctx.app, address, actor=ctx.actor)
    if as_json:
        echo_json(report)
    else:
        removed = ", ".join(f"{n} {table}" for table, n in report.removed.items())
        who = "Erased" if report.found else "No subscriber found for"
        click.echo(f"{who} {report.address}: removed {removed}.")
        click.echo("  Kept: the suppression entry (a keyed hash), so it is never mailed again.")
        if report.storage:
            click.echo(f"  {report.storage}.")
    for place in report.outbox_copies:
        click.echo(
            f"note: sent messages to this address remain in the maildir outbox {place}; "
            "delete them if the outbox is kept",
            err=True,
        )
    if report.remaining:
        for place in report.remaining:
            click.echo(f"warning: the address still appears in {place}", err=True)
        click.get_current_context().exit(1)
