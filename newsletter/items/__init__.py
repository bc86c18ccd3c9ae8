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
  kind      the kind of items whose source does not say, instead of inferring it.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter.app import Newsletter
from newsletter.errors import InputError, NotFound
from newsletter.items import queries
from newsletter.items.classify import infer_kind, normalise_kind
from newsletter.items.dates import month_range, parse_item_date, parse_month
from newsletter.items.detect import source_key, source_type
from newsletter.items.parsed import ParsedItem, ParseResult, Problem, normalise_language
from newsletter.items.prose import shorten
from newsletter.items.store import ImportReport, upsert
from newsletter.items.translations import link_imported
from newsletter.models.items import ITEM_KINDS, Item

__all__ = [
    "DETAIL_FIELDS",
    "LIST_FIELDS",
    "ImportReport",
    "Problem",
    "edit_item",
    "exclude_item",
    "get_item",
    "import_source",
    "items_for_month",
    "list_items",
]

# The fields `list_items` and `get_item` return, in the order tables show them.
LIST_FIELDS = ("id", "date", "kind", "title", "language", "excluded")
DETAIL_FIELDS = (
    "id",
    "kind",
    "kind_origin",
    "title",
    "date",
    "summary",
    "link",
    "link_text",
    "language",
    "tags",
    "image",
    "image_alt",
    "excluded",
    "edited_fields",
    "source",
    "source_id",
    "body_text",
    "body_html",
    "created_at",
    "updated_at",
)
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
    source_name: str | None = None,
) -> ImportReport:
    """Read a source and store its items: new ones added, changed ones updated.

    Items are stored under the source's absolute path or address, so that a
    re-import finds them; `source_name` gives a name that does not depend on
    where the file lies (the demo's bundled listing moves with the installation).

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
    parsed = _parse(kind_of_source, source, first_day)

    report = ImportReport(source=key, source_type=kind_of_source, problems=list(parsed.problems))
    rows = _rows(
        parsed.items,
        kind=given_kind,
        language=given_language or app.config.editions.default_language,
        problems=report.problems,
    )
    # What each entry says of its language versions, in the order of `rows`.
    declared = [{"translation_of": p.translation_of, "where": p.where} for p in parsed.items]
    # Two imports of the same source at once may both insert an item; the loser
    # of that race tries again and then finds the winner's rows to update.
    for attempt in (1, 2):
        report.added = report.updated = report.unchanged = 0
        try:
            with app.session() as session:
                upsert(session, key, rows, report)
                link_imported(
                    session,
                    key,
                    report.item_ids,
                    declared,
                    app.config.editions.default_language,
                    report.problems,
                    by_link=kind_of_source == "feed",
                )
            break
        except IntegrityError:
            if attempt == 2:
                raise
    return report


def _parse(kind_of_source: str, source: str, month: date | None) -> ParseResult:
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

    return parse_listing(Path(source).expanduser(), label=source, month=month)


def _rows(
    items: list[ParsedItem], *, kind: str | None, language: str, problems: list[Problem]
) -> list[dict[str, Any]]:
    """Complete parsed items into table rows: kind, language, sizes, unique source ids."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
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
        rows.append(
            {
                "source_id": _unique(_fit_id(parsed.source_id), seen),
                "kind": item_kind,
                "kind_origin": origin,
                "title": shorten(parsed.title, _TITLE_MAX),
                "date": parsed.date,
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
            }
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


def item_record(item: Item, fields: tuple[str, ...] = DETAIL_FIELDS) -> dict[str, Any]:
    return {name: getattr(item, name) for name in fields}


def list_items(
    app: Newsletter,
    month: str | None = None,
    kind: str | None = None,
    include_excluded: bool = False,
) -> list[dict[str, Any]]:
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
        return [item_record(item, LIST_FIELDS) for item in session.scalars(query)]


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


def get_item(app: Newsletter, item_id: int) -> dict[str, Any]:
    """One item with every field (DETAIL_FIELDS); NotFound when there is none."""
    with app.session() as session:
        return item_record(_load(session, item_id))


def edit_item(app: Newsletter, item_id: int, **changes: Any) -> dict[str, Any]:
    """Change fields of an item by hand; a re-import never overwrites them afterwards.

    Accepts title, kind, summary, date (a date, `YYYY-MM-DD` or `YYYY-MM`), link,
    link_text, language and tags; None means "leave as is".
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
        for name, value in cleaned.items():
            setattr(item, name, value)
        if "kind" in cleaned:
            item.kind_origin = "edited"
        # A new list, not an in-place change, so that the JSON column is written.
        item.edited_fields = sorted(set(item.edited_fields or []) | set(cleaned))
        session.flush()
        return item_record(item)


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


def exclude_item(app: Newsletter, item_id: int, excluded: bool = True) -> dict[str, Any]:
    """Keep an item out of editions (or, with excluded=False, let it back in)."""
    with app.session() as session:
        item = _load(session, item_id)
        item.excluded = excluded
        session.flush()
        return item_record(item)
