"""The preferences page's service: a subscriber's details and list choices, and saving them.

The link in the person's own mailbox proves the address is theirs, so lists
ticked here are joined at once; lists unticked are left as by
newsletter.audience.leaving.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.app import Newsletter
from newsletter.audience.consent import Consent
from newsletter.audience.joining import (
    BLOCKED_STATUSES,
    LIFTABLE_REASON,
    NAME_MAX,
    SignupError,
    one_line,
    public_lists,
)
from newsletter.audience.leaving import leave
from newsletter.audience.suppression import lift_suppression, suppression_reason
from newsletter.audience.topics import Topics
from newsletter.models import MailingList, Subscriber, Subscription, utcnow


@dataclass(frozen=True)
class ListChoice:
    name: str
    title: str
    description: str
    subscribed: bool


@dataclass(frozen=True)
class Preferences:
    subscriber_id: int
    masked_email: str
    name: str
    language: str
    topics: tuple[str, ...]
    status: str
    lists: tuple[ListChoice, ...] = field(default=())

    @property
    def can_join(self) -> bool:
        """Whether the person may join lists (not when their address bounced or was blocked)."""
        return self.status not in BLOCKED_STATUSES


def get_preferences(app: Newsletter, subscriber_id: int) -> Preferences | None:
    """A subscriber's details and list choices: the public lists and those they are on.

    None when there is no such subscriber (erased since).
    """
    with app.session() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return None
        return _preferences(session, subscriber, Topics.from_config(app.config.web))


def _preferences(
    session: Session, subscriber: Subscriber, _topics: Topics | None = None
) -> Preferences:
    on = {
        sub.list_id: sub.status
        for sub in session.scalars(
            select(Subscription).where(Subscription.subscriber_id == subscriber.id)
        )
    }
    candidates = {lst.id: lst for lst in public_lists(session)}
    own_ids = [list_id for list_id, status in on.items() if status == "confirmed"]
    if own_ids:
        for lst in session.scalars(select(MailingList).where(MailingList.id.in_(own_ids))):
            candidates[lst.id] = lst
    choices = sorted(
        (
            ListChoice(
                name=lst.name,
                title=lst.title or lst.name,
                description=lst.description,
                subscribed=on.get(lst.id) == "confirmed",
            )
            for lst in candidates.values()
        ),
        key=lambda choice: (choice.title.casefold(), choice.name),
    )
    _topics = _topics or Topics({}, {})
    topics = subscriber.attributes.get("topics") or []
    return Preferences(
        subscriber_id=subscriber.id,
        masked_email=mask_email(subscriber.email),
        name=subscriber.name,
        language=subscriber.language,
        # Slugs, as the page's boxes name them, even for a topic stored as its label.
        topics=tuple(_topics.to_slugs(str(t) for t in topics)) if isinstance(topics, list) else (),
        status=subscriber.status,
        lists=tuple(choices),
    )


def update_preferences(
    app: Newsletter,
    subscriber_id: int,
    *,
    name: str,
    language: str,
    topics: Sequence[str],
    list_names: Sequence[str],
    wording: str = "",
    ip: str | None = None,
    source: str = "preferences",
) -> Preferences | None:
    """Save what the preferences page sends: details, topics, and the lists to be on.

    The link in the person's own mailbox proves the address is theirs, so a
    list ticked here is joined at once, double opt-in or not, with `wording`
    as its consent record (and lifts an earlier unsubscription from
    everything). Unticked lists are left as by `unsubscribe`; no list left
    means leaving everything. Lists other than the public ones and those the
    person is on cannot be joined. None when the subscriber is gone.
    """
    web = app.config.web
    language = language.strip().lower()
    if language not in web.languages:
        raise SignupError(
            "language", f"language {language!r} is not one of: {', '.join(web.languages)}"
        )
    named = Topics.from_config(web)
    ticked = named.to_slugs(topics)
    unknown_topics = [t for t in ticked if t not in web.topics]
    if unknown_topics:
        raise SignupError("topics", f"unknown topic {', '.join(map(repr, unknown_topics))}")
    now = utcnow()
    with app.session() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return None
        before = _preferences(session, subscriber, named)
        subscriber.name = one_line(name)[:NAME_MAX]
        subscriber.language = language
        # The page offers only the configured topics: others the person has (from an
        # import) stay, so that saving an unchanged form changes nothing.
        stored = subscriber.attributes.get("topics")
        stored = stored if isinstance(stored, list) else []
        kept = [t for t in named.to_slugs(map(str, stored)) if t not in web.topics]
        wanted_topics = list(dict.fromkeys([*ticked, *kept]))
        if set(wanted_topics) != set(named.to_slugs(map(str, stored))):
            attributes = dict(subscriber.attributes or {})
            attributes["topics"] = wanted_topics
            subscriber.attributes = attributes
        offered = {choice.name: choice for choice in before.lists}
        wanted = {n for n in list_names if n in offered}
        joining = [n for n in wanted if not offered[n].subscribed] if before.can_join else []
        leaving = [n for n, choice in offered.items() if choice.subscribed and n not in wanted]
        if joining:
            reason = suppression_reason(session, app.suppression_key, subscriber.email)
            if reason == LIFTABLE_REASON:
                lift_suppression(session, app.suppression_key, subscriber.email)
            if reason in (None, LIFTABLE_REASON):
                subscriber.status = "active"
                _join_confirmed(session, subscriber, joining, wording, ip, source, now, app)
            else:
                joining = []
        session.flush()
        if leaving:
            staying = {n for n, choice in offered.items() if choice.subscribed} - set(leaving)
            # Unticking the last list is leaving everything (see the module's rules).
            everything = not (staying or joining)
            leave(app, session, subscriber, None if everything else leaving, source, None)
        session.flush()
        session.expire_all()
        subscriber = session.get_one(Subscriber, subscriber_id)
        return _preferences(session, subscriber, named)


def _join_confirmed(
    session: Session,
    subscriber: Subscriber,
    list_names: Sequence[str],
    wording: str,
    ip: str | None,
    source: str,
    now: datetime,
    app: Newsletter,
) -> None:
    lists = list(session.scalars(select(MailingList).where(MailingList.name.in_(list_names))))
    existing = {
        sub.list_id: sub
        for sub in session.scalars(
            select(Subscription).where(Subscription.subscriber_id == subscriber.id)
        )
    }
    columns = Consent(
        method="form",
        source=source,
        text=wording,
        ip=ip,
        note="joined from the preferences link in the subscriber's own mailbox",
        at=now,
    ).columns(keep_ip=app.config.privacy.store_ip_addresses)
    for mailing_list in lists:
        current = existing.get(mailing_list.id)
        if current is None:
            session.add(
                Subscription(
                    subscriber_id=subscriber.id,
                    list_id=mailing_list.id,
                    status="confirmed",
                    **columns,
                )
            )
            continue
        for column, value in columns.items():
            setattr(current, column, value)
        current.status = "confirmed"
        current.unsubscribed_at = None


def mask_email(email: str) -> str:
    """Enough of an address for its owner to recognise it, too little for anyone else.

    'ana.lopez@example.org' → 'a…@e….org'. The pages a signed link opens show
    this rather than the address, as links get forwarded with the message.
    """
    local, _, domain = email.rpartition("@")
    host, dot, tld = domain.rpartition(".")
    if not host:
        host, tld, dot = domain, "", ""
    return f"{local[:1]}…@{host[:1]}…{dot}{tld}"
