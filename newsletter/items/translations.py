"""Language versions of items: the same piece in several languages is one item.

An item may be a *version* of another, its *original* (`Item.original_id`).
A version is never an item of its own in an edition: the edition lists
originals, and a reader sees each original's version in their language where
one exists, else the original marked with its language (newsletter.render).
Because versions are looked up when an edition is rendered, a version added or
corrected after the edition was built is used by the next render.

Versions are linked:

- by the source, when it says so: a Markdown file whose front matter has
  `translation_of: <other file>` (its path in the folder, with or without
  `.md`), or files that share a `key:`; feed entries with the same link and
  another language;
- by staff: `newsletter items link ORIGINAL VERSION…` (`link_items`).

The original of a group the source links by key or link is the one in the
default language, else the oldest. One version per language: linking a second
version in a language an original has already is refused (staff) or reported
as a warning and left unlinked (a source).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter import audit
from newsletter.app import Newsletter
from newsletter.errors import InputError, NotFound
from newsletter.items.parsed import Problem
from newsletter.locale import base_language
from newsletter.models.items import Item

# An item or a frozen one (newsletter.snapshot): anything with a language.
T = TypeVar("T")


@dataclass(frozen=True)
class Version:
    id: int
    language: str
    title: str


@dataclass(frozen=True)
class LinkReport:
    """An original and its language versions after `link_items`."""

    id: int
    language: str
    title: str
    versions: tuple[Version, ...]


def language_versions(session: Session, original_ids: Sequence[int]) -> dict[int, list[Item]]:
    """The versions of each original, by original id: one query for a whole edition.

    Excluded versions are left out, as excluded items are from editions.
    """
    found: dict[int, list[Item]] = {}
    if not original_ids:
        return found
    query = (
        select(Item)
        .where(Item.original_id.in_(list(original_ids)), Item.excluded.is_(False))
        .order_by(Item.id)
    )
    for item in session.scalars(query):
        if item.original_id is not None:
            found.setdefault(item.original_id, []).append(item)
    return found


def version_for(original: T, versions: Iterable[Item], language: str) -> T | Item:
    """What a reader of `language` sees of `original`: its version in that language, if any.

    `original` is an Item or an item as approved (newsletter.snapshot.FrozenItem).
    """
    own = base_language(getattr(original, "language", ""))
    if own == language:
        return original
    for version in versions:
        if base_language(version.language) == language:
            return version
    return original


def link_items(
    app: Newsletter, original_id: int, version_ids: Sequence[int], *, actor: str
) -> LinkReport:
    """Make items language versions of `original_id` (staff's `newsletter items link`).

    Refused, with nothing changed, when an id is unknown, the original is itself
    a version, or two items would be in one language. A version that had
    versions of its own hands them to the new original.
    """
    if not version_ids:
        raise InputError("name at least one item to link as a version of the original")
    if original_id in version_ids:
        raise InputError(f"item {original_id} cannot be a version of itself")
    with app.session() as session:
        original = session.get(Item, original_id)
        if original is None:
            raise NotFound(f"no item with id {original_id}")
        if original.original_id is not None:
            raise InputError(
                f"item {original_id} is a version of item {original.original_id}; "
                f"link to {original.original_id} instead"
            )
        versions = []
        for version_id in dict.fromkeys(version_ids):
            version = session.get(Item, version_id)
            if version is None:
                raise NotFound(f"no item with id {version_id}")
            versions.append(version)
        # The group after linking: the original, its versions, the new ones and theirs.
        group = {item.id: item for item in _versions_of(session, [original.id])}
        for version in versions:
            group[version.id] = version
            for inner in _versions_of(session, [version.id]):
                group[inner.id] = inner
        group.pop(original.id, None)
        _check_languages(original, group.values())
        for item in group.values():
            item.original_id = original.id
        session.flush()
        linked = ", ".join(str(item.id) for item in versions)
        audit.record(session, actor, "link", "item", original.id, f"versions {linked}")
        return _report(session, original)


def link_imported(
    session: Session,
    source: str,
    item_ids: Sequence[int],
    rows: Sequence[dict[str, Any]],
    default_language: str,
    problems: list[Problem],
    *,
    by_link: bool,
) -> None:
    """Link the versions a source declared, inside the import's transaction.

    `rows` are the import's rows in the order of `item_ids`; each may carry
    `translation_of` (a Markdown file's other file) and `translation_key`.
    `by_link` groups items of this source that share a link (a feed).
    """
    items = [session.get_one(Item, item_id) for item_id in item_ids]
    by_source_id = {item.source_id: item for item in items}
    for item, row in zip(items, rows, strict=True):
        target_name = str(row.get("translation_of") or "").strip()
        if not target_name:
            continue
        target = _find_in_source(session, source, target_name, by_source_id)
        if target is None or target.id == item.id:
            problems.append(
                Problem(
                    row.get("where") or item.source_id,
                    f"translation_of {target_name!r}: no other file of this folder has that "
                    "name; the item was imported on its own",
                    "warning",
                )
            )
            continue
        original = _original_of(session, target)
        _join(session, original, [item], problems)
    keys = {item.translation_key for item in items if item.translation_key}
    for key in sorted(keys):
        group = list(
            session.scalars(select(Item).where(Item.translation_key == key).order_by(Item.id))
        )
        _join_group(session, group, default_language, problems)
    if by_link:
        links: dict[str, list[Item]] = {}
        for item in items:
            if item.link:
                links.setdefault(item.link, []).append(item)
        for group in links.values():
            if len({base_language(item.language) for item in group}) > 1:
                _join_group(session, group, default_language, problems)


def _join_group(
    session: Session, group: list[Item], default_language: str, problems: list[Problem]
) -> None:
    if len(group) < 2:
        return
    linked = [item for item in group if item.original_id is not None]
    # A group already linked (by staff or an earlier import) keeps its original.
    if linked:
        original = _original_of(session, linked[0])
    else:
        in_default = [i for i in group if base_language(i.language) == default_language]
        original = (in_default or group)[0]
    _join(session, original, [item for item in group if item.id != original.id], problems)


def _join(session: Session, original: Item, items: list[Item], problems: list[Problem]) -> None:
    taken = {base_language(original.language)} | {
        base_language(v.language) for v in _versions_of(session, [original.id])
    }
    for item in items:
        if item.original_id == original.id or item.id == original.id:
            continue
        language = base_language(item.language)
        if language in taken:
            problems.append(
                Problem(
                    item.source_id,
                    f"item {original.id} already has a version in {language!r}; this one was "
                    "imported on its own",
                    "warning",
                )
            )
            continue
        item.original_id = original.id
        taken.add(language)
    session.flush()


def _find_in_source(session: Session, source: str, name: str, here: dict[str, Item]) -> Item | None:
    candidates = [name, f"{name}.md", f"{name}.markdown"]
    for candidate in candidates:
        if candidate in here:
            return here[candidate]
    return session.scalar(
        select(Item).where(Item.source == source, Item.source_id.in_(candidates)).limit(1)
    )


def _original_of(session: Session, item: Item) -> Item:
    if item.original_id is None:
        return item
    return session.get(Item, item.original_id) or item


def _versions_of(session: Session, ids: Sequence[int]) -> list[Item]:
    return list(session.scalars(select(Item).where(Item.original_id.in_(list(ids)))))


def _check_languages(original: Item, versions: Iterable[Item]) -> None:
    seen = {base_language(original.language): original.id}
    for version in versions:
        language = base_language(version.language)
        if language in seen:
            raise InputError(
                f"items {seen[language]} and {version.id} are both in {language!r}; an item "
                "has one version per language"
            )
        seen[language] = version.id


def _report(session: Session, original: Item) -> LinkReport:
    versions = sorted(_versions_of(session, [original.id]), key=lambda v: v.language)
    return LinkReport(
        id=original.id,
        language=original.language,
        title=original.title,
        versions=tuple(Version(v.id, v.language, v.title) for v in versions),
    )
