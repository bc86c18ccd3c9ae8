"""Joining: subscribe (double opt-in where a list asks for it) and confirm.

The subscriber pages (newsletter.web) are a thin shell over these functions.
Rules that hold whatever the caller:

- A stranger can type anyone's address, so a subscribe request changes nothing
  about a person who is already known: no name, language or topic is
  overwritten, and a new list is joined only through the confirmation link
  sent to the address (or at once for a single opt-in list, when the address
  has never asked to stop). Whether an address was known shows only in which
  email its owner receives, never in what the caller gets back.
- Sending that email is not done here: the outcome names the notice it calls
  for (`SubscribeOutcome.notice`) and the caller asks newsletter.notices to
  send it, so that the audience never depends on how messages are composed.
- Until a subscription is confirmed, no campaign reaches it: the audience takes
  confirmed subscriptions only.
- A later confirmed subscription (the owner clicking the link we sent) lifts
  an "unsubscribed" suppression, and no other kind: an address that bounced,
  complained, was blocked by staff or erased stays out whatever is asked.
- The consent record of each subscription keeps the time, the list, the wording
  shown and where it was given; the IP address only when
  `privacy.store_ip_addresses` is on.

Leaving is newsletter.audience.leaving; the preferences page is
newsletter.audience.preferences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter import links
from newsletter.app import Newsletter
from newsletter.audience.addresses import Address, normalise_address
from newsletter.audience.consent import Consent
from newsletter.audience.suppression import hash_key, lift_suppression, suppression_reason
from newsletter.audience.topics import Topics
from newsletter.errors import InputError
from newsletter.models import MailingList, Subscriber, Subscription, utcnow

# Statuses (and suppression reasons) that no request of the person can undo.
BLOCKED_STATUSES = frozenset({"bounced", "complained", "blocklisted"})
LIFTABLE_REASON = "unsubscribed"
# A name is a name: longer input is cut here, and the forms say so with their maxlength.
NAME_MAX = 100


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
# The notice (newsletter.notices) each action calls for; the others call for none.
NOTICE_OF_ACTION = {"confirmation_sent": "confirm", "already_subscribed": "already_subscribed"}


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
    # No name: the notices greet neutrally until the owner of the address has confirmed,
    # so that a name typed by a stranger never reaches anyone's mailbox.

    @property
    def notice(self) -> str | None:
        """The name of the notice this outcome calls for (see newsletter.notices), if any."""
        if self.subscriber_id is None:
            return None
        return NOTICE_OF_ACTION.get(self.action)


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
) -> SubscribeOutcome:
    """Subscribe an address to public lists, with double opt-in where the list asks for it.

    A new address becomes a subscriber whose subscriptions wait for
    confirmation (double opt-in) or are confirmed at once (single opt-in); when
    anything waits, the outcome calls for the "confirm" notice. A known address
    keeps its details; lists it is not on yet are asked about in a confirmation
    email; when it is on every list already, the outcome calls for the
    "already_subscribed" notice instead. An address that bounced, complained or
    was blocked gets nothing. The caller sends the notice
    (newsletter.notices.send_signup_notice), which limits how many reach one
    address a day. `wording` is the consent text the
    person was shown; `source` says where (a page's path, "api", "embed").
    """
    request = check_signup(app, email, name, language, list_names, topics)
    try:
        outcome = _subscribe_once(app, request, wording, ip, source)
    except IntegrityError:
        # Another process created this subscriber or subscription between our look and
        # our insert (the same form sent twice to two servers); the second try finds it.
        outcome = _subscribe_once(app, request, wording, ip, source)
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
        )
    return outcome


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


def one_line(value: str) -> str:
    """A name as one line of ordinary text: no line breaks or control characters."""
    cleaned = "".join(" " if ch.isspace() or ord(ch) < 32 or ord(ch) == 127 else ch for ch in value)
    return " ".join(cleaned.split())
