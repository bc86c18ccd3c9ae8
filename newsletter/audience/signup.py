"""What subscribers do themselves: subscribe, confirm, unsubscribe, change preferences.

The subscriber pages (newsletter.web) are a thin shell over these functions;
so is anything else that acts for a subscriber (a mailto: unsubscribe, a
provider's unsubscribe webhook).

Rules that hold whatever the caller:

- A stranger can type anyone's address, so a subscribe request changes nothing
  about a person who is already known: no name, language or topic is
  overwritten, and a new list is joined only through the confirmation link
  sent to the address (or at once for a single opt-in list, when the address
  has never asked to stop). Whether an address was known shows only in which
  email its owner receives, never in what the caller gets back.
- Until a subscription is confirmed, no campaign reaches it: the audience takes
  confirmed subscriptions only.
- An unsubscription takes effect at once: the subscriptions end in the same
  transaction, and the person's deliveries that are still waiting (pending or
  due for a retry) in campaigns whose audience no longer includes them are
  cancelled, so that no later send reaches them. A message a worker has
  already claimed may still go out.
- Leaving the last list is leaving everything: the address is then suppressed
  (reason "unsubscribed"), which also keeps segment-only campaigns away. A
  later confirmed subscription (the owner clicking the link we sent) lifts
  exactly that suppression, and no other kind: an address that bounced,
  complained, was blocked by staff or erased stays out whatever is asked.
- The consent record of each subscription keeps the time, the list, the wording
  shown and where it was given; the IP address only when
  `privacy.store_ip_addresses` is on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter import db, links
from newsletter.app import Newsletter
from newsletter.audience.addresses import Address, normalise_address
from newsletter.audience.consent import Consent
from newsletter.audience.resolve import recipients_query
from newsletter.audience.subscribers import end_subscriptions
from newsletter.audience.suppression import hash_key, lift_suppression, suppression_reason
from newsletter.audience.topics import Topics
from newsletter.errors import InputError, OperationFailed
from newsletter.models import (
    Campaign,
    Delivery,
    Event,
    MailingList,
    Subscriber,
    Subscription,
    utcnow,
)
from newsletter.transports.base import OutgoingMessage

# Statuses (and suppression reasons) that no request of the person can undo.
BLOCKED_STATUSES = frozenset({"bounced", "complained", "blocklisted"})
LIFTABLE_REASON = "unsubscribed"
NAME_MAX = 300
# Deliveries that have not reached a worker yet, and so can still be stopped.
WAITING_DELIVERIES = ("pending", "retry")


class SignupError(InputError):
    """A subscribe request that cannot be accepted as given.

    `field` names the part that was wrong ("email", "lists", "language",
    "topics"), so that a page can say so in its reader's language.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# Subscribing -------------------------------------------------------------------------


@dataclass(frozen=True)
class SignupRequest:
    """A subscribe request checked for form, before anything about the address is looked up."""

    address: Address
    name: str
    language: str
    list_names: tuple[str, ...]
    topics: tuple[str, ...]


Action = Literal["confirmation_sent", "confirmed", "already_subscribed", "refused"]


@dataclass(frozen=True)
class SubscribeOutcome:
    """What a subscribe request did. For the caller's logic and tests; a page that shows
    any of it to the person who typed the address would tell them whether it was known."""

    action: Action
    subscriber_id: int | None
    # The lists the confirmation email asks about, or that were joined at once.
    list_ids: tuple[int, ...] = ()
    list_titles: tuple[str, ...] = ()
    language: str = "en"
    email: str = ""
    name: str = ""


def public_lists(session: Session) -> list[MailingList]:
    """The lists anyone may join from the pages: public and not archived, by title."""
    return list(
        session.scalars(
            select(MailingList)
            .where(MailingList.visibility == "public", MailingList.archived.is_(False))
            .order_by(MailingList.title, MailingList.name)
        )
    )


def check_signup(
    app: Newsletter,
    email: str,
    name: str = "",
    language: str = "",
    list_names: Sequence[str] = (),
    topics: Sequence[str] = (),
) -> SignupRequest:
    """Check a subscribe request's form: the same work whoever the address belongs to.

    A SignupError names the field that was wrong. Lists must be public and
    open; topics and languages must be among those the config offers.
    """
    web = app.config.web
    try:
        address = normalise_address(email)
    except InputError as exc:
        raise SignupError("email", str(exc)) from None
    wanted = tuple(dict.fromkeys(n.strip() for n in list_names if n and n.strip()))
    if not wanted:
        raise SignupError("lists", "choose at least one list")
    with app.session() as session:
        open_names = {lst.name for lst in public_lists(session)}
    unknown = [n for n in wanted if n not in open_names]
    if unknown:
        raise SignupError("lists", f"no public list named {', '.join(repr(n) for n in unknown)}")
    language = (language or "").strip().lower() or app.config.editions.default_language
    if language not in web.languages:
        raise SignupError(
            "language", f"language {language!r} is not one of: {', '.join(web.languages)}"
        )
    # A topic may come as its slug or a label; it is kept as its slug (audience.topics).
    named = Topics.from_config(web)
    chosen_topics = tuple(named.to_slugs(t for t in topics if t and t.strip()))
    unknown_topics = [t for t in chosen_topics if t not in web.topics]
    if unknown_topics:
        raise SignupError(
            "topics",
            f"unknown topic {', '.join(repr(t) for t in unknown_topics)} "
            f"(offered: {', '.join(web.topics)})",
        )
    return SignupRequest(
        address=address,
        name=one_line(name)[:NAME_MAX],
        language=language,
        list_names=wanted,
        topics=chosen_topics,
    )


def subscribe(
    app: Newsletter,
    email: str,
    name: str = "",
    language: str = "",
    list_names: Sequence[str] = (),
    topics: Sequence[str] = (),
    wording: str = "",
    ip: str | None = None,
    *,
    source: str = "form",
    send: bool = True,
) -> SubscribeOutcome:
    """Subscribe an address to public lists, with double opt-in where the list asks for it.

    A new address becomes a subscriber whose subscriptions wait for
    confirmation (double opt-in) or are confirmed at once (single opt-in), and
    a confirmation email goes to it when anything waits. A known address keeps
    its details; lists it is not on yet are asked about in a confirmation
    email; when it is on every list already, the outcome says so (the pages
    then send a "you are already subscribed" notice). An address that bounced,
    complained or was blocked gets nothing. `wording` is the consent text the
    person was shown; `source` says where (a page's path, "api", "embed").
    """
    request = check_signup(app, email, name, language, list_names, topics)
    try:
        outcome = _subscribe_once(app, request, wording, ip, source)
    except IntegrityError:
        # Another process created this subscriber or subscription between our look and
        # our insert (the same form sent twice to two servers); the second try finds it.
        outcome = _subscribe_once(app, request, wording, ip, source)
    if send and outcome.action == "confirmation_sent":
        send_confirmation(app, outcome)
    return outcome


def _subscribe_once(
    app: Newsletter, request: SignupRequest, wording: str, ip: str | None, source: str
) -> SubscribeOutcome:
    """The transaction of `subscribe`."""
    keep_ip = app.config.privacy.store_ip_addresses
    now = utcnow()
    with app.session() as session:
        lists = {
            lst.name: lst
            for lst in session.scalars(
                select(MailingList).where(MailingList.name.in_(request.list_names))
            )
        }
        reason = suppression_reason(session, app.suppression_key, request.address.email)
        subscriber = session.scalar(
            select(Subscriber).where(Subscriber.email_key == request.address.key)
        )
        if (reason is not None and reason != LIFTABLE_REASON) or (
            subscriber is not None and subscriber.status in BLOCKED_STATUSES
        ):
            return SubscribeOutcome("refused", subscriber.id if subscriber else None)
        if subscriber is None:
            subscriber = Subscriber(
                email=request.address.email,
                email_key=request.address.key,
                email_hash=hash_key(app.suppression_key, request.address.key),
                name=request.name,
                language=request.language,
                attributes={"topics": list(request.topics)} if request.topics else {},
                status="unsubscribed" if reason == LIFTABLE_REASON else "active",
            )
            session.add(subscriber)
            session.flush()
        # Someone who asked to stop must show again that the address is theirs.
        must_confirm = reason == LIFTABLE_REASON or subscriber.status != "active"
        existing = {
            sub.list_id: sub
            for sub in session.scalars(
                select(Subscription).where(Subscription.subscriber_id == subscriber.id)
            )
        }
        to_confirm: list[MailingList] = []
        joined: list[MailingList] = []
        for list_name in request.list_names:
            mailing_list = lists[list_name]
            current = existing.get(mailing_list.id)
            if current is not None and current.status == "confirmed":
                continue
            if current is not None and current.status == "unconfirmed":
                # Asked again before confirming: the same question goes out again.
                to_confirm.append(mailing_list)
                continue
            left_before = current is not None and current.status == "unsubscribed"
            confirm_now = mailing_list.optin == "single" and not must_confirm and not left_before
            note = ""
            if left_before and current is not None and current.unsubscribed_at is not None:
                note = f"asked again after unsubscribing on {current.unsubscribed_at:%Y-%m-%d}"
            columns = Consent(
                method="form", source=source, text=wording, ip=ip, note=note, at=now
            ).columns(keep_ip=keep_ip)
            if current is None:
                session.add(
                    Subscription(
                        subscriber_id=subscriber.id,
                        list_id=mailing_list.id,
                        status="confirmed" if confirm_now else "unconfirmed",
                        **columns,
                    )
                )
            else:
                # A list they left stays "unsubscribed" until the owner of the address
                # confirms: a stranger's request must not turn the record of their leaving
                # into a pending subscription that an import could then confirm. The
                # request's time, later than the unsubscription, marks it as waiting.
                for column, value in columns.items():
                    setattr(current, column, value)
            (joined if confirm_now else to_confirm).append(mailing_list)
        session.flush()
        if to_confirm:
            action: Action = "confirmation_sent"
            chosen = to_confirm
        elif joined:
            action, chosen = "confirmed", joined
        else:
            action, chosen = "already_subscribed", [lists[n] for n in request.list_names]
        outcome = SubscribeOutcome(
            action=action,
            subscriber_id=subscriber.id,
            list_ids=tuple(lst.id for lst in chosen),
            list_titles=tuple(lst.title or lst.name for lst in chosen),
            # The email goes out in the language just chosen, even to a known address:
            # the person at the form reads that language, whoever the address belongs to.
            language=request.language,
            email=subscriber.email,
            name=subscriber.name,
        )
    return outcome


def send_confirmation(app: Newsletter, outcome: SubscribeOutcome, subject: str = "") -> None:
    """Send the double opt-in email of a subscribe outcome through the default transport."""
    from newsletter.message import Recipient, compose_confirmation

    recipient = Recipient(outcome.subscriber_id, outcome.email, outcome.name, outcome.language)
    message = compose_confirmation(
        app,
        recipient,
        list(outcome.list_ids),
        list(outcome.list_titles),
        subject=subject or None,
        language=outcome.language,
    )
    deliver(app, message)


def deliver(app: Newsletter, message: OutgoingMessage) -> None:
    """Send one transactional message now; a failure is an OperationFailed naming the transport."""
    from newsletter.message import finishing_steps
    from newsletter.transports import open_transport

    transport = open_transport(app)
    try:
        # DKIM-signed like a campaign's messages: receivers judge a confirmation email too.
        # (Its VERP return path is the plain one: it belongs to no delivery.)
        for step in finishing_steps(app, transport):
            message = step(message)
        (result,) = transport.send([message])
    finally:
        transport.close()
    if result.outcome != "sent":
        raise OperationFailed(f"transport {transport.name}: {result.outcome}: {result.response}")


# Confirming --------------------------------------------------------------------------

ConfirmState = Literal["pending", "confirmed", "already_confirmed", "nothing"]


@dataclass(frozen=True)
class ConfirmOutcome:
    state: ConfirmState
    subscriber_id: int | None = None
    language: str = "en"
    list_titles: tuple[str, ...] = ()


def confirmation_state(app: Newsletter, token: str) -> ConfirmOutcome:
    """What confirming this link would do, without doing it (for the page a GET shows).

    InvalidToken or ExpiredToken (newsletter.links) when the link is not genuine
    or too old.
    """
    return _confirm(app, token, apply=False)


def confirm(app: Newsletter, token: str) -> ConfirmOutcome:
    """Confirm the subscriptions a confirmation link was sent for.

    Only subscriptions still waiting are confirmed: a second click is harmless
    and says "already confirmed", and a link clicked after the person left a
    list does not put them back on it. The consent record gets the time of
    confirmation; the request's time stays in its note.
    """
    return _confirm(app, token, apply=True)


def _confirm(app: Newsletter, token: str, *, apply: bool) -> ConfirmOutcome:
    subscriber_id, list_ids = links.load_confirm_token(
        app.signing_key, token, max_age_days=app.config.web.token_max_age_days
    )
    now = utcnow()
    with app.session() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return ConfirmOutcome("nothing")
        language = subscriber.language
        rows = list(
            session.execute(
                select(Subscription, MailingList)
                .join(MailingList, MailingList.id == Subscription.list_id)
                .where(
                    Subscription.subscriber_id == subscriber_id,
                    Subscription.list_id.in_(list_ids),
                )
                .order_by(MailingList.title)
            )
        )
        waiting = [(sub, lst) for sub, lst in rows if is_waiting(sub)]
        confirmed = [lst for sub, lst in rows if sub.status == "confirmed"]
        blocked = subscriber.status in BLOCKED_STATUSES
        if blocked or not (waiting or confirmed):
            return ConfirmOutcome("nothing", subscriber_id, language)
        if not waiting:
            titles = tuple(lst.title or lst.name for lst in confirmed)
            return ConfirmOutcome("already_confirmed", subscriber_id, language, titles)
        titles = tuple(lst.title or lst.name for _, lst in waiting)
        if not apply:
            return ConfirmOutcome("pending", subscriber_id, language, titles)
        reason = suppression_reason(session, app.suppression_key, subscriber.email)
        if reason is not None and reason != LIFTABLE_REASON:
            return ConfirmOutcome("nothing", subscriber_id, language)
        if reason == LIFTABLE_REASON:
            # The owner of the address has just shown that they want to hear from us again.
            lift_suppression(session, app.suppression_key, subscriber.email)
        if subscriber.status == "unsubscribed":
            subscriber.status = "active"
        for sub, _ in waiting:
            requested = f"requested {sub.consent_at:%Y-%m-%d %H:%M} UTC" if sub.consent_at else ""
            note = "; ".join(
                part
                for part in (sub.consent_note, requested, "confirmed through the emailed link")
                if part
            )
            sub.status = "confirmed"
            sub.consent_at = now
            sub.consent_note = note
            sub.unsubscribed_at = None
        return ConfirmOutcome("confirmed", subscriber_id, language, titles)


def is_waiting(subscription: Subscription) -> bool:
    """Whether a subscription waits for its owner's confirmation.

    Either it was never confirmed, or the person left the list and asked for it
    again since (their new request is later than their unsubscription). A
    confirmation link clicked after leaving, with no new request, finds
    nothing waiting.
    """
    if subscription.status == "unconfirmed":
        return True
    return (
        subscription.status == "unsubscribed"
        and subscription.consent_at is not None
        and subscription.unsubscribed_at is not None
        and subscription.consent_at > subscription.unsubscribed_at
    )


# Unsubscribing -----------------------------------------------------------------------


@dataclass(frozen=True)
class UnsubscribeOutcome:
    # Titles of the lists left by this call; empty when there was nothing to leave.
    left: tuple[str, ...] = ()
    # Whether the person is now off every list (and their address suppressed).
    everything: bool = False
    # Whether there was nothing left to do: they had left already.
    already: bool = True
    language: str = "en"


def unsubscribe(
    app: Newsletter,
    subscriber_id: int | None,
    campaign_id: int | None = None,
    lists: Sequence[str] | None = None,
    *,
    everything: bool = False,
    source: str = "page",
) -> UnsubscribeOutcome:
    """Take a subscriber off lists, at once.

    Which lists: `lists` by name when given; else the lists `campaign_id` was
    sent to (the unsubscribe link of a message); else, or with `everything`,
    or when the campaign went to a segment rather than lists, every list.
    Calling it twice is harmless. An unknown subscriber (erased since, or a
    test message's link with no subscriber) is a quiet no-op.
    """
    if subscriber_id is None:
        return UnsubscribeOutcome()
    with app.session() as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return UnsubscribeOutcome()
        campaign = session.get(Campaign, campaign_id) if campaign_id is not None else None
        if campaign is None:
            # A link of a campaign deleted since still unsubscribes (the person asked to
            # leave); the event then cannot point at the campaign.
            campaign_id = None
        if not everything and lists is None and campaign is not None:
            lists = [lst.name for lst in campaign.lists] or None
        outcome = _leave(
            app, session, subscriber, lists if not everything else None, source, campaign_id
        )
        return outcome


def _leave(
    app: Newsletter,
    session: Session,
    subscriber: Subscriber,
    list_names: Sequence[str] | None,
    source: str,
    campaign_id: int | None,
) -> UnsubscribeOutcome:
    """End subscriptions (all when `list_names` is None) and stop waiting deliveries.

    The ending itself is the audience's `end_subscriptions`, the same as an
    admin's; what is added here is the event, leaving-the-last-list-is-leaving-
    everything, and the cancelling of waiting deliveries.
    """
    key = app.suppression_key
    query = (
        select(Subscription.list_id, MailingList.name, MailingList.title)
        .join(MailingList, MailingList.id == Subscription.list_id)
        .where(
            Subscription.subscriber_id == subscriber.id,
            Subscription.status != "unsubscribed",
        )
    )
    active = list(session.execute(query))
    wanted = None if list_names is None else set(list_names)
    leaving = [row for row in active if wanted is None or row.name in wanted]
    everything = len(leaving) == len(active)
    note = f"unsubscribed by the person ({source})"
    newly_suppressed = False
    if everything:
        # Off every list: the address is suppressed too, so that no campaign of any shape
        # (a segment over all subscribers included) reaches it until they come back.
        newly_suppressed = suppression_reason(session, key, subscriber.email) is None
        end_subscriptions(session, key, subscriber.id, None, note=note)
    else:
        for row in leaving:
            end_subscriptions(session, key, subscriber.id, row.list_id, note=note)
    session.flush()
    left = tuple(row.title or row.name for row in leaving)
    if left or newly_suppressed:
        session.add(
            Event(
                subscriber_id=subscriber.id,
                campaign_id=campaign_id,
                type="unsubscribe",
                source=source,
                detail={"lists": [row.name for row in leaving], "everything": everything},
            )
        )
    cancel_waiting_deliveries(session, subscriber.id, everything=everything)
    return UnsubscribeOutcome(
        left=left,
        everything=everything,
        already=not (left or newly_suppressed),
        language=subscriber.language,
    )


def cancel_waiting_deliveries(session: Session, subscriber_id: int, *, everything: bool) -> int:
    """Cancel the subscriber's waiting deliveries that their audience no longer includes.

    A person has few waiting deliveries (one per campaign being sent), so each
    campaign's audience is asked about this one person with the audience's own
    query rather than a rule repeated here. The UPDATE re-checks the status, so
    a row a worker claimed in the meantime is left to that worker.
    """
    waiting = list(
        session.execute(
            select(Delivery.id, Delivery.campaign_id).where(
                Delivery.subscriber_id == subscriber_id,
                Delivery.status.in_(WAITING_DELIVERIES),
            )
        )
    )
    stop: list[int] = []
    for delivery_id, campaign_id in waiting:
        if not everything:
            campaign = session.get(Campaign, campaign_id)
            if campaign is not None:
                audience = recipients_query(session, campaign).subquery()
                still = session.scalar(
                    select(audience.c.subscriber_id).where(
                        audience.c.subscriber_id == subscriber_id
                    )
                )
                if still is not None:
                    continue
        stop.append(delivery_id)
    if not stop:
        return 0
    result = session.execute(
        update(Delivery)
        .where(Delivery.id.in_(stop), Delivery.status.in_(WAITING_DELIVERIES))
        .values(status="cancelled", last_response="unsubscribed before it was sent")
    )
    return db.rows_changed(result) or 0


# Preferences -------------------------------------------------------------------------


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
            _leave(app, session, subscriber, None if everything else leaving, source, None)
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


# Small helpers that belong to this page of the product --------------------------------


def one_line(value: str) -> str:
    """A name as one line of ordinary text: no line breaks or control characters."""
    cleaned = "".join(" " if ch.isspace() or ord(ch) < 32 or ord(ch) == 127 else ch for ch in value)
    return " ".join(cleaned.split())


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
