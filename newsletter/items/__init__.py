"""Items: collecting what the organisation published, and keeping it ready for editions.

The front door of the items stage. Sources are read by one parser each
(`listing` for plain-text news listings, `markdown_folder`, `feed`), chosen by
`detect`; every parser returns items and problems and never raises over one bad
entry. `import_source` then fills in what the source left open (kind by the
rule in `classify`, language), and stores everything in one transaction, so a
source that fails leaves nothing half-written.

What the importer may give, and where it applies:
  month     the date of items their source does not date (the first item of a
            listing that lost its date line, a Markdown file or feed entry
            without a date);
  language  the language of items whose source does not say;
  kind      the kind of items whose source does not say, instead of inferring it;
  encoding  the text encoding of a listing that is not UTF-8.

Identity (how a re-import recognises an item; the full rule is in `identity`):
a feed entry by its guid, else its link, wherever the feed was read from; a
listing item or Markdown file by its link when it has one, else by its month
and its normalised title, with a tolerance for small edits (a similarity ratio
of at least 0.88 over the normalised titles). Never by the file's path or its
exact first words. A new item that resembles a stored one (ratio 0.6 to 0.88)
is added and reported as "looks like item N"; `merge_items` and `delete_item`
settle what the rule cannot. Fields edited with `edit_item` survive re-imports.

A call to action without a link ("Read the full statement" where the export
lost the address) is reported at import as a warning naming the item, until
the item has a link (`items edit ID --link URL`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter import audit
from newsletter.app import Newsletter
from newsletter.errors import InputError, InvalidState, NotFound
from newsletter.items import identity as identities
from newsletter.items import queries
from newsletter.items.classify import infer_kind, normalise_kind
from newsletter.items.dates import (
    month_key,
    month_range,
    names_only_a_month,
    parse_item_date,
    parse_month,
)
from newsletter.items.detect import source_key, source_type
from newsletter.items.parsed import ParsedItem, ParseResult, Problem, normalise_language
from newsletter.items.prose import shorten
from newsletter.items.store import ImportReport, LookAlike, StoredRow, upsert
from newsletter.items.translations import link_imported
from newsletter.models.campaigns import CampaignItem
from newsletter.models.items import ITEM_KINDS, Item, ItemIdentity
from newsletter.snapshot import reopen

__all__ = [
    "DETAIL_FIELDS",
    "LIST_FIELDS",
    "ImportReport",
    "LookAlike",
    "Problem",
    "delete_item",
    "edit_item",
    "exclude_item",
    "get_item",
    "import_source",
    "items_for_month",
    "list_items",
    "merge_items",
]


@dataclass(frozen=True, slots=True)
class ItemLine:
    """An item as `items list` and the console's items page show it."""

    id: int
    date: date
    kind: str
    title: str
    language: str
    excluded: bool


@dataclass(frozen=True)
class ItemDetail:
    """Every field of an item, as `items show` prints it."""

    id: int
    kind: str
    kind_origin: str
    title: str
    date: date
    date_is_month: bool
    summary: str
    link: str
    link_text: str
    language: str
    tags: list[str]
    image: str
    image_alt: str
    excluded: bool
    edited_fields: list[str]
    source: str
    source_id: str
    body_text: str
    body_html: str
    created_at: datetime
    updated_at: datetime


# The fields `list_items` and `get_item` return, in the order tables show them.
LIST_FIELDS = tuple(f.name for f in fields(ItemLine))
DETAIL_FIELDS = tuple(f.name for f in fields(ItemDetail))
EDITABLE_FIELDS = (
    "title",
    "kind",
    "summary",
    "date",
    "link",
    "link_text",
    "language",
    "tags",
    "image_alt",
)

# Column sizes of the items table (models/items.py); values are fitted to them
# here so that PostgreSQL never rejects an import halfway.
_TITLE_MAX = 500
_LINK_MAX = 2000
_LINK_TEXT_MAX = 500
_SOURCE_ID_MAX = 500
_SOURCE_MAX = 1000


def import_source(
    app: Newsletter,
    source: str,
    *,
    month: str | None = None,
    language: str | None = None,
    kind: str | None = None,
    actor: str,
    source_name: str | None = None,
    encoding: str | None = None,
) -> ImportReport:
    """Read a source and store its items: new ones added, changed ones updated.

    The audit trail names `actor` and what the import did, in the import's own
    transaction.

    Items are recognised by their identity (see this module's docstring), not by
    where the source lies; the source's absolute path or address, or
    `source_name`, is kept with each item for people to see. `encoding` names a
    listing's text encoding when it is not UTF-8.

    Raises InputError naming the source when it cannot be read at all (missing
    file, unreachable address, malformed feed) or an option is invalid; problems
    with single entries are in the report, and the other entries are imported.
    """
    source = source.strip()
    first_day = parse_month(month, what="--date") if month else None
    if language is not None and normalise_language(language) is None:
        raise InputError(f"language {language!r} is not a language code such as 'en'")
    if kind is not None and normalise_kind(kind) is None:
        raise InputError(f"kind {kind!r} is not one of {', '.join(ITEM_KINDS)}")
    given_kind = normalise_kind(kind) if kind else None
    given_language = normalise_language(language) if language else None

    kind_of_source = source_type(source)
    key = source_name or source_key(source)
    if len(key) > _SOURCE_MAX:
        raise InputError(
            f"{source[:80]}…: the source's name is longer than {_SOURCE_MAX} characters"
        )
    if encoding is not None and kind_of_source != "listing":
        raise InputError(
            f"{source}: --encoding applies to text listings; a {kind_of_source} source "
            "declares its own"
        )
    parsed = _parse(kind_of_source, source, first_day, encoding or "utf-8")

    report = ImportReport(source=key, source_type=kind_of_source, problems=list(parsed.problems))
    rows = _rows(
        parsed.items,
        kind=given_kind,
        language=given_language or app.config.editions.default_language,
        problems=report.problems,
    )
    problems_of_rows = report.problems[len(parsed.problems) :]
    # What each entry says of its language versions, in the order of `rows`.
    declared = [{"translation_of": p.translation_of, "where": p.where} for p in parsed.items]
    # Two imports of the same source at once may both insert an item; the loser
    # of that race tries again and then finds the winner's rows to update.
    for attempt in (1, 2):
        report.added = report.updated = report.unchanged = 0
        report.look_alikes.clear()
        report.problems[:] = list(parsed.problems) + problems_of_rows
        try:
            with app.session() as session:
                upsert(session, key, rows, report)
                report.problems.extend(_missing_links(session, report.item_ids, rows))
                link_imported(
                    session,
                    key,
                    report.item_ids,
                    declared,
                    app.config.editions.default_language,
                    report.problems,
                    by_link=kind_of_source == "feed",
                )
                audit.record(session, actor, "items.import", "source", key,
                             f"{report.added} added, {report.updated} updated")  # fmt: skip
            break
        except IntegrityError:
            if attempt == 2:
                raise
    return report


def _parse(kind_of_source: str, source: str, month: date | None, encoding: str) -> ParseResult:
    # The parsers are imported when a source needs them: requests, feedparser
    # and the Markdown stack take a tenth of a second to load, which every
    # other command would otherwise pay at start-up.
    if kind_of_source == "markdown":
        from newsletter.items.markdown_folder import parse_markdown_folder

        return parse_markdown_folder(Path(source).expanduser(), label=source, month=month)
    if kind_of_source == "feed":
        from newsletter.items.feed import read_feed

        return read_feed(source, label=source, month=month)
    from newsletter.items.listing import parse_listing

    return parse_listing(Path(source).expanduser(), label=source, month=month, encoding=encoding)


def _missing_links(session: Session, item_ids: list[int], rows: list[StoredRow]) -> list[Problem]:
    """A warning for each item with a call to action but no link to go with it."""
    problems = []
    for item_id, row in zip(item_ids, rows, strict=True):
        item = session.get_one(Item, item_id)
        if item.link_text and not item.link:
            problems.append(
                Problem(
                    row.where,
                    f"item {item_id} has a call to action ({item.link_text!r}) but no link; "
                    f"add one with `newsletter items edit {item_id} --link URL`",
                    "warning",
                )
            )
    return problems


def _rows(
    items: list[ParsedItem], *, kind: str | None, language: str, problems: list[Problem]
) -> list[StoredRow]:
    """Complete parsed items into table rows: kind, language, sizes, identities."""
    rows: list[StoredRow] = []
    seen: set[str] = set()
    seen_identities: set[str] = set()
    # A link several items share is a home page, not any one item's (rule in `identity`).
    links = Counter(identities.normalise_link(p.link) for p in items if p.link)
    for parsed in items:
        if parsed.kind is not None:
            item_kind, origin = parsed.kind, "source"
        elif kind is not None:
            item_kind, origin = kind, "source"
        else:
            item_kind = infer_kind(parsed.title, parsed.summary, parsed.link_text)
            origin = "inferred"
        link = parsed.link
        if len(link) > _LINK_MAX:
            problems.append(
                Problem(
                    parsed.where,
                    f"link longer than {_LINK_MAX} characters left out",
                    "warning",
                )
            )
            link = ""
        title = shorten(parsed.title, _TITLE_MAX)
        month = month_key(parsed.date)
        if parsed.guid:
            identity = identities.guid_identity(parsed.guid)
        elif link and links[identities.normalise_link(link)] == 1:
            own = parsed.language or language
            identity = identities.link_identity(link, "" if own == language else own)
        else:
            identity = identities.title_identity(month, title)
        rows.append(
            StoredRow(
                values={
                    "source_id": _unique(_fit_id(parsed.source_id), seen),
                    "kind": item_kind,
                    "kind_origin": origin,
                    "title": title,
                    "date": parsed.date,
                    "date_is_month": parsed.month_only,
                    "summary": parsed.summary,
                    "body_html": parsed.body_html,
                    "body_text": parsed.body_text,
                    "link": link,
                    "link_text": shorten(parsed.link_text, _LINK_TEXT_MAX),
                    "language": parsed.language or language,
                    "tags": list(parsed.tags),
                    "translation_key": parsed.translation_key,
                    "image": parsed.image,
                    "image_alt": shorten(parsed.image_alt, _LINK_TEXT_MAX),
                    "image_width": parsed.image_width,
                    "image_height": parsed.image_height,
                },
                identity=_unique(identity, seen_identities),
                title_words=identities.normalise_title(title),
                month=month,
                dated_by_source=parsed.dated_by_source,
                where=parsed.where,
            )
        )
    return rows


def _fit_id(source_id: str) -> str:
    if len(source_id) <= _SOURCE_ID_MAX - 10:
        return source_id
    digest = hashlib.sha1(source_id.encode()).hexdigest()
    return f"{source_id[: _SOURCE_ID_MAX - 60]}#{digest}"


def _unique(source_id: str, seen: set[str]) -> str:
    """The id itself the first time; then id~2, id~3 … in reading order."""
    candidate, number = source_id, 1
    while candidate in seen:
        number += 1
        candidate = f"{source_id}~{number}"
    seen.add(candidate)
    return candidate


def item_detail(item: Item) -> ItemDetail:
    return ItemDetail(**{name: getattr(item, name) for name in DETAIL_FIELDS})


def list_items(
    app: Newsletter,
    month: str | None = None,
    kind: str | None = None,
    include_excluded: bool = False,
) -> list[ItemLine]:
    """Items (LIST_FIELDS), optionally of one `YYYY-MM` month and one kind, in date order."""
    first = following = None
    if month is not None:
        first, following = month_range(month)
    if kind is not None:
        if normalise_kind(kind) is None:
            raise InputError(f"kind {kind!r} is not one of {', '.join(ITEM_KINDS)}")
        kind = normalise_kind(kind)
    query = queries.listed_items(
        first=first, following=following, kind=kind, include_excluded=include_excluded
    )
    with app.session() as session:
        return [
            ItemLine(**{name: getattr(item, name) for name in LIST_FIELDS})
            for item in session.scalars(query)
        ]


def items_for_month(session: Session, month: str) -> list[Item]:
    """The items of a `YYYY-MM` month that editions may use: not excluded, by date then id."""
    first, following = month_range(month)
    # Language versions are not items of their own: they stand in for their original.
    query = queries.listed_items(first=first, following=following)
    return list(session.scalars(query.where(Item.original_id.is_(None))))


def _load(session: Session, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"no item with id {item_id}")
    return item


def get_item(app: Newsletter, item_id: int) -> ItemDetail:
    """One item with every field (DETAIL_FIELDS); NotFound when there is none."""
    with app.session() as session:
        return item_detail(_load(session, item_id))


# Campaign statuses whose content is frozen (approval took a snapshot) but not yet sent:
# an edit of their items does not reach them unless applied, which sends them back to
# draft for approval again.
_FROZEN_UNSENT = ("approved", "scheduled")
# Statuses where the campaign has gone out, or is going out, as approved.
_GONE_OUT = ("sending", "paused", "sent", "cancelled", "missed")


@dataclass(frozen=True)
class ItemEdited:
    """An edit of an item, and what it meant for the campaigns that hold the item."""

    id: int
    edited_fields: tuple[str, ...]
    item: ItemDetail
    # Approved or scheduled campaigns the edit does not reach (they send their snapshot).
    frozen_campaigns: tuple[int, ...] = ()
    # Campaigns sent back to draft so that they carry the edit (--apply-to-campaigns).
    reopened_campaigns: tuple[int, ...] = ()
    # Campaigns already sent or sending: their messages and archive keep what was sent.
    sent_campaigns: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()


def edit_item(
    app: Newsletter,
    item_id: int,
    *,
    actor: str,
    apply_to_campaigns: bool = False,
    **changes: Any,
) -> ItemEdited:
    """Change fields of an item by hand; a re-import never overwrites them afterwards.

    Accepts title, kind, summary, date (a date, `YYYY-MM-DD` or `YYYY-MM`), link,
    link_text, language and tags; None means "leave as is".

    An approved (or scheduled) campaign holding the item keeps sending what was
    approved: the result names it in a warning. With `apply_to_campaigns`, each
    approved one goes back to draft, carrying the edit, to be approved again
    (a scheduled one must be unscheduled first). Sent campaigns never change.
    """
    values = {name: value for name, value in changes.items() if value is not None}
    unknown = sorted(set(values) - set(EDITABLE_FIELDS))
    if unknown:
        raise InputError(
            f"cannot edit {', '.join(unknown)}; editable: {', '.join(EDITABLE_FIELDS)}"
        )
    if not values:
        raise InputError(f"nothing to change; give one of {', '.join(EDITABLE_FIELDS)}")
    cleaned = {name: _checked(name, value) for name, value in values.items()}
    with app.session() as session:
        item = _load(session, item_id)
        holding = queries.campaigns_holding(session, item_id)
        scheduled = [cid for cid, status in holding if status == "scheduled"]
        if apply_to_campaigns and scheduled:
            raise InvalidState(
                f"item {item_id} is in scheduled campaign {scheduled[0]}; unschedule it first "
                f"(`newsletter unschedule {scheduled[0]}`), then edit with --apply-to-campaigns"
            )
        for name, value in cleaned.items():
            setattr(item, name, value)
        if "kind" in cleaned:
            item.kind_origin = "edited"
        if "date" in cleaned:
            item.date_is_month = names_only_a_month(values["date"])
        # A new list, not an in-place change, so that the JSON column is written.
        item.edited_fields = sorted(set(item.edited_fields or []) | set(cleaned))
        frozen = tuple(cid for cid, status in holding if status in _FROZEN_UNSENT)
        gone = tuple(cid for cid, status in holding if status in _GONE_OUT)
        reopened: tuple[int, ...] = ()
        warnings: list[str] = []
        if apply_to_campaigns:
            for cid in frozen:
                reopen(session, cid, actor=actor, why=f"item {item_id} was edited")
            reopened, frozen = frozen, ()
            warnings += [
                f"campaign {cid} is back to draft with this edit; approve it again with "
                f"`newsletter approve {cid}`"
                for cid in reopened
            ]
        warnings += [
            f"campaign {cid} was approved before this edit and will send the approved text; "
            "to send the edit, edit again with --apply-to-campaigns (it goes back to draft)"
            for cid in frozen
        ]
        warnings += [
            f"campaign {cid} has gone out; its messages and archive keep what was sent"
            for cid in gone
        ]
        audit.record(session, actor, "item.edit", "item", item_id,
                     "changed " + ", ".join(sorted(cleaned)))  # fmt: skip
        session.flush()
        return ItemEdited(
            id=item_id,
            edited_fields=tuple(item.edited_fields),
            item=item_detail(item),
            frozen_campaigns=frozen,
            reopened_campaigns=reopened,
            sent_campaigns=gone,
            warnings=tuple(warnings),
        )


def _checked(name: str, value: Any) -> Any:
    """A hand-edited value, validated; InputError saying what is wrong."""
    if name == "kind":
        kind = normalise_kind(str(value))
        if kind is None:
            raise InputError(f"kind {value!r} is not one of {', '.join(ITEM_KINDS)}")
        return kind
    if name == "date":
        day = parse_item_date(value)
        if day is None:
            raise InputError(f"date {value!r} is not a date; write YYYY-MM-DD or YYYY-MM")
        return day
    if name == "language":
        language = normalise_language(str(value))
        if language is None:
            raise InputError(f"language {value!r} is not a language code such as 'en'")
        return language
    if name == "tags":
        if isinstance(value, str):
            return [t.strip() for t in value.split(",") if t.strip()]
        return [str(t).strip() for t in value if str(t).strip()]
    text = " ".join(str(value).split()) if name != "summary" else str(value).strip()
    if name == "title":
        if not text:
            raise InputError("title cannot be empty")
        if len(text) > _TITLE_MAX:
            raise InputError(f"title is longer than {_TITLE_MAX} characters")
    if name == "link":
        if text and not text.lower().startswith(("http://", "https://", "mailto:")):
            raise InputError(f"link {text!r} must start with http://, https:// or mailto:")
        if len(text) > _LINK_MAX:
            raise InputError(f"link is longer than {_LINK_MAX} characters")
    if name == "link_text" and len(text) > _LINK_TEXT_MAX:
        raise InputError(f"link text is longer than {_LINK_TEXT_MAX} characters")
    return text


def exclude_item(app: Newsletter, item_id: int, excluded: bool = True, *, actor: str) -> ItemDetail:
    """Keep an item out of editions (or, with excluded=False, let it back in), in the audit
    trail with `actor`."""
    with app.session() as session:
        item = _load(session, item_id)
        item.excluded = excluded
        audit.record(
            session, actor, "item.exclude" if excluded else "item.include", "item", item_id
        )
        session.flush()
        return item_detail(item)


@dataclass(frozen=True)
class ItemsMerged:
    """`merge_items`: the kept item, the dropped one and the campaigns that moved."""

    id: int
    dropped: int
    identities: tuple[str, ...]
    campaigns: tuple[int, ...]


def merge_items(app: Newsletter, keep_id: int, drop_id: int) -> ItemsMerged:
    """Make two items one: `drop_id`'s campaign entries and identities move to `keep_id`.

    For what the identity rule cannot decide ("looks like item N"): a later
    re-import that names the dropped item finds the kept one. A campaign that
    held both keeps one entry, in the better place. Approved and sent campaigns
    send and show their snapshot, so the merge changes nothing they show.
    """
    if keep_id == drop_id:
        raise InputError(f"cannot merge item {keep_id} with itself")
    with app.session() as session:
        _load(session, keep_id)
        drop = _load(session, drop_id)
        kept_in = dict(
            session.execute(
                select(CampaignItem.campaign_id, CampaignItem.position).where(
                    CampaignItem.item_id == keep_id
                )
            ).all()
        )
        moved: list[int] = []
        for entry in list(
            session.scalars(select(CampaignItem).where(CampaignItem.item_id == drop_id))
        ):
            moved.append(entry.campaign_id)
            if entry.campaign_id in kept_in:
                if entry.position < kept_in[entry.campaign_id]:
                    session.execute(
                        update(CampaignItem)
                        .where(
                            CampaignItem.campaign_id == entry.campaign_id,
                            CampaignItem.item_id == keep_id,
                        )
                        .values(position=entry.position)
                    )
                session.delete(entry)
            else:
                session.execute(
                    update(CampaignItem)
                    .where(
                        CampaignItem.campaign_id == entry.campaign_id,
                        CampaignItem.item_id == drop_id,
                    )
                    .values(item_id=keep_id)
                )
        session.flush()
        moved_identities = list(
            session.scalars(select(ItemIdentity).where(ItemIdentity.item_id == drop_id))
        )
        for row in moved_identities:
            row.item_id = keep_id
        session.flush()
        session.expire_all()
        session.delete(session.get_one(Item, drop.id))
        return ItemsMerged(
            id=keep_id,
            dropped=drop_id,
            identities=tuple(row.identity for row in moved_identities),
            campaigns=tuple(sorted(set(moved))),
        )


@dataclass(frozen=True)
class ItemDeleted:
    id: int
    title: str
    # Draft campaigns the item was taken out of.
    drafts: tuple[int, ...]


def delete_item(app: Newsletter, item_id: int) -> ItemDeleted:
    """Delete an item; refused while a campaign that is not a draft holds it.

    An approved, scheduled or sent campaign must keep what it was approved
    with, so the item stays (exclude it to keep it out of future bulletins);
    drafts lose the item. A re-import of a source that still lists the item
    adds it again: `items exclude` keeps it out for good.
    """
    with app.session() as session:
        item = _load(session, item_id)
        holding = queries.campaigns_holding(session, item_id)
        held = [f"{cid} ({status})" for cid, status in holding if status != "draft"]
        if held:
            raise InvalidState(
                f"item {item_id} is in campaign {', '.join(held)}; it cannot be deleted. "
                f"Keep it out of new bulletins with `newsletter items exclude {item_id}`"
            )
        title = item.title
        session.delete(item)
        return ItemDeleted(id=item_id, title=title, drafts=tuple(cid for cid, _status in holding))
