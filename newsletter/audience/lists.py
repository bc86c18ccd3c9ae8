"""Mailing lists: named by a slug, single or double opt-in, public or private.

An archived list keeps its members for the record, but no campaign reaches
them through it any more (audience resolution skips archived lists), and no
import or new subscription may add to it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter import audit
from newsletter.app import Newsletter
from newsletter.audience.resolve import audience_query, count_query
from newsletter.errors import InputError, InvalidState, NotFound
from newsletter.models import SUBSCRIPTION_STATUSES, MailingList, Subscription

LIST_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
OPTIN_MODES = ("single", "double")


def check_list_name(name: str) -> str:
    if LIST_NAME_RE.match(name):
        return name
    suggestion = re.sub(r"[^a-z0-9_-]+", "-", name.strip().lower()).strip("-_")[:100]
    hint = f" (for example {suggestion!r})" if suggestion and LIST_NAME_RE.match(suggestion) else ""
    raise InputError(
        f"list name {name!r} is not a slug: use lower-case letters, digits, '-' and '_'{hint}"
    )


def get_list(session: Session, name: str) -> MailingList:
    """The list with this name, or a NotFound that names the lists there are."""
    found = session.scalar(select(MailingList).where(MailingList.name == name))
    if found is not None:
        return found
    known = list(session.scalars(select(MailingList.name).order_by(MailingList.name).limit(20)))
    hint = f"known: {', '.join(known)}" if known else "there are none yet"
    raise NotFound(
        f"no list named {name!r} ({hint}); create it with `newsletter lists create {name}`"
    )


def get_open_list(session: Session, name: str) -> MailingList:
    """A list that may receive new members: it exists and is not archived."""
    found = get_list(session, name)
    if found.archived:
        raise InvalidState(f"list {name!r} is archived; it takes no new members")
    return found


def status_counts(session: Session, list_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    """Members of each list by subscription status, in one grouped query."""
    query = select(Subscription.list_id, Subscription.status, func.count()).group_by(
        Subscription.list_id, Subscription.status
    )
    if list_ids is not None:
        query = query.where(Subscription.list_id.in_(list_ids))
    counts: dict[int, dict[str, int]] = {}
    for list_id, status, count in session.execute(query):
        counts.setdefault(list_id, dict.fromkeys(SUBSCRIPTION_STATUSES, 0))[status] = count
    return counts


@dataclass(frozen=True)
class ListSummary:
    """A list with its members counted by status, as `lists list` and the console show it."""

    id: int
    name: str
    title: str
    description: str
    optin: str
    visibility: str
    archived: bool
    # Members by subscription status (models.SUBSCRIPTION_STATUSES).
    unconfirmed: int
    confirmed: int
    unsubscribed: int
    created_at: datetime


@dataclass(frozen=True)
class ListDetail(ListSummary):
    """`lists show`: the summary and how many a campaign to the list would reach now."""

    reachable: int


@dataclass(frozen=True)
class ListEnsured(ListSummary):
    """`ensure_list`: the list, and whether this call created it."""

    created: bool


def list_summary(mailing_list: MailingList, counts: dict[str, int] | None) -> ListSummary:
    counts = counts or {}
    return ListSummary(
        id=mailing_list.id,
        name=mailing_list.name,
        title=mailing_list.title,
        description=mailing_list.description,
        optin=mailing_list.optin,
        visibility=mailing_list.visibility,
        archived=mailing_list.archived,
        unconfirmed=counts.get("unconfirmed", 0),
        confirmed=counts.get("confirmed", 0),
        unsubscribed=counts.get("unsubscribed", 0),
        created_at=mailing_list.created_at,
    )


def _check_options(optin: str) -> None:
    if optin not in OPTIN_MODES:
        raise InputError(f"opt-in {optin!r} is not one of: {', '.join(OPTIN_MODES)}")


def create_list(
    app: Newsletter,
    name: str,
    *,
    title: str = "",
    description: str = "",
    optin: str = "double",
    public: bool = False,
    actor: str,
) -> ListSummary:
    """Create a list; an InvalidState when one of that name exists."""
    check_list_name(name)
    _check_options(optin)
    try:
        with app.session() as session:
            if session.scalar(select(MailingList.id).where(MailingList.name == name)):
                raise InvalidState(f"a list named {name!r} already exists")
            mailing_list = MailingList(
                name=name,
                title=title or name.replace("-", " ").replace("_", " ").capitalize(),
                description=description,
                optin=optin,
                visibility="public" if public else "private",
            )
            session.add(mailing_list)
            session.flush()
            audit.record(session, actor, "create", "list", name,
                         f"{optin} opt-in, {mailing_list.visibility}")  # fmt: skip
            return list_summary(mailing_list, None)
    except IntegrityError:
        # Another process created it between our look and our insert.
        raise InvalidState(f"a list named {name!r} already exists") from None


def ensure_list(
    app: Newsletter,
    name: str,
    *,
    title: str = "",
    description: str = "",
    optin: str = "double",
    public: bool = False,
    actor: str,
) -> ListEnsured:
    """The list of this name, created when missing (the demo runs twice); never changed."""
    with app.session() as session:
        existing = session.scalar(select(MailingList).where(MailingList.name == name))
        if existing is not None:
            counts = status_counts(session, [existing.id]).get(existing.id)
            return ListEnsured(**asdict(list_summary(existing, counts)), created=False)
    try:
        created = create_list(
            app,
            name,
            title=title,
            description=description,
            optin=optin,
            public=public,
            actor=actor,
        )
    except InvalidState:
        return ensure_list(app, name, actor=actor)
    return ListEnsured(**asdict(created), created=True)


def list_lists(
    app: Newsletter, *, include_archived: bool = False, counts: bool = True
) -> list[ListSummary]:
    """The lists by name, with their members counted by status (all 0 with `counts=False`:
    counting reads every subscription, too slow for a form that only offers the lists)."""
    with app.session() as session:
        query = select(MailingList).order_by(MailingList.name)
        if not include_archived:
            query = query.where(MailingList.archived.is_(False))
        lists = list(session.scalars(query))
        found = status_counts(session, [lst.id for lst in lists]) if counts else {}
        return [list_summary(lst, found.get(lst.id)) for lst in lists]


def show_list(app: Newsletter, name: str) -> ListDetail:
    """A list with its members counted by status, and how many a campaign would reach."""

    with app.session() as session:
        mailing_list = get_list(session, name)
        counts = status_counts(session, [mailing_list.id]).get(mailing_list.id)
        # What a campaign to this list would reach now (nobody, once it is archived).
        reachable = count_query(session, audience_query(session, list_ids=[mailing_list.id]))
        return ListDetail(**asdict(list_summary(mailing_list, counts)), reachable=reachable)


def archive_list(app: Newsletter, name: str, *, actor: str) -> ListSummary:
    with app.session() as session:
        mailing_list = get_list(session, name)
        if mailing_list.archived:
            raise InvalidState(f"list {name!r} is already archived")
        mailing_list.archived = True
        session.flush()
        audit.record(session, actor, "archive", "list", name)
        counts = status_counts(session, [mailing_list.id]).get(mailing_list.id)
        return list_summary(mailing_list, counts)
