"""Transactional notices: the emails that are not campaigns, looked up by name and language.

    confirm              the double opt-in email: one link that confirms the lists asked for
    already_subscribed   to a known address that asked again: nothing changed, here are
                         your preferences (the form itself never says whether it was known)
    edition_test         a campaign as staff preview it or test-send it: `compose_test`,
                         `build_preview`

Each notice is composed here and nowhere else, in the language asked for
(words from newsletter.locale's catalogues, templates from the templates
folder, which staff may override like the editions'). The audience code does
not send mail: a subscribe outcome names the notice it calls for
(`SubscribeOutcome.notice`) and its caller asks `send_signup_notice` to send it.

Abuse of the subscribe form: anyone may type anyone's address, so the form
could be used to mail a stranger again and again. Whatever the source, at most
`web.notices_per_address_per_day` notices reach one address in 24 hours; the
count is kept under the address's keyed hash (table notices_sent), never the
address. And nothing typed at the form reaches the message: the notices greet
neutrally and never print the name given, which only the confirmed owner of
the address can be addressed by.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from newsletter import links, locale
from newsletter.app import Newsletter
from newsletter.audience import recipients_query
from newsletter.audience.joining import SubscribeOutcome
from newsletter.audience.suppression import hash_key
from newsletter.errors import NotFound, OperationFailed
from newsletter.message import Composer, MessageFrame, Recipient, Step, finishing_steps
from newsletter.models import Campaign, NoticeSent, Subscriber, utcnow
from newsletter.render import CONFIRMATION_FIELDS, render_notice
from newsletter.transports import Transport, open_transport
from newsletter.transports.base import OutgoingMessage

log = logging.getLogger(__name__)

SAMPLE_RECIPIENT_NAME = "Sam Sample"
SAMPLE_RECIPIENT_EMAIL = "sample.subscriber@example.org"
LIMIT_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class Notice:
    """A notice's templates (`<template>.html` and `.txt`) and its subject's catalogue id."""

    name: str
    template: str
    subject: str
    # Fields left open for each recipient (stage 2); none for a notice rendered per person.
    fields: tuple[str, ...] = ()


NOTICES: Mapping[str, Notice] = {
    notice.name: notice
    for notice in (
        Notice("confirm", "confirm", "email.confirm.subject", CONFIRMATION_FIELDS),
        Notice("already_subscribed", "already_subscribed", "email.already.subject"),
    )
}


def notice(name: str) -> Notice:
    try:
        return NOTICES[name]
    except KeyError:
        raise NotFound(f"no notice named {name!r} (known: {', '.join(NOTICES)})") from None


# Composing ---------------------------------------------------------------------------------


def compose(
    app: Newsletter,
    name: str,
    language: str,
    *,
    subscriber_id: int,
    email: str,
    **context: Any,
) -> OutgoingMessage:
    """The notice `name` for one address, in `language`.

    `context` is what the notice's templates print besides the common fields:
    `list_ids` and `list_titles` for both notices here. Not a campaign, so no
    List-* headers: nobody is subscribed yet, or nothing changes.
    """
    spec = notice(name)
    config = app.config
    _ = locale.translator(language)
    subject = _(spec.subject, org=config.org.name)
    list_titles = list(context.get("list_titles", ()))
    if name == "confirm":
        token = links.confirm_token(app.signing_key, subscriber_id, list(context["list_ids"]))
        values = {
            # Neutral until confirmed: see the module's docstring.
            "name": "",
            "greeting": _("email.greeting.anonymous"),
            "email": email,
            "confirm_url": links.confirm_url(config, token),
        }
        rendered = render_notice(
            config, spec.template, spec.fields, _.language, subject, lists=list_titles
        )
    else:
        token = links.preferences_token(app.signing_key, subscriber_id)
        values = {}
        preferences_url = links.preferences_url(config, token)
        rendered = render_notice(
            config,
            spec.template,
            spec.fields,
            _.language,
            subject,
            list_titles=list_titles,
            preferences_url=preferences_url,
        )
    recipient = Recipient(subscriber_id, email, "", _.language)
    return MessageFrame(config, rendered, list_headers=False).message(recipient, values, b"")


def compose_confirmation(
    app: Newsletter,
    subscriber_id: int,
    email: str,
    list_ids: Sequence[int],
    list_titles: Sequence[str],
    language: str,
) -> OutgoingMessage:
    """The double opt-in email (the "confirm" notice)."""
    return compose(
        app,
        "confirm",
        language,
        subscriber_id=subscriber_id,
        email=email,
        list_ids=list(list_ids),
        list_titles=list(list_titles),
    )


# Sending -----------------------------------------------------------------------------------


def send_signup_notice(app: Newsletter, outcome: SubscribeOutcome) -> bool:
    """Send the notice a subscribe outcome calls for, unless the address had its day's share.

    Returns whether a notice was sent. The limit is checked and counted in one
    transaction before sending, so that a flood of requests cannot slip past it.
    """
    name = outcome.notice
    if name is None or outcome.subscriber_id is None:
        return False
    if not _take_allowance(app, outcome.email, name):
        log.warning("notice %s not sent: the address had its share for today", name)
        return False
    message = compose(
        app,
        name,
        outcome.language,
        subscriber_id=outcome.subscriber_id,
        email=outcome.email,
        list_ids=list(outcome.list_ids),
        list_titles=list(outcome.list_titles),
    )
    deliver(app, message)
    return True


def deliver(app: Newsletter, message: OutgoingMessage, transport: Transport | None = None) -> None:
    """Send one message now (through the default transport unless one is given).

    A refusal is an OperationFailed naming the transport.
    """
    opened = transport is None
    transport = transport or open_transport(app)
    try:
        # DKIM-signed like a campaign's messages: receivers judge a confirmation email too.
        # (Its VERP return path is the plain one: it belongs to no delivery.)
        for step in finishing_steps(app, transport):
            message = step(message)
        (result,) = transport.send([message])
    finally:
        if opened:
            transport.close()
    if result.outcome != "sent":
        raise OperationFailed(f"transport {transport.name}: {result.outcome}: {result.response}")


def _take_allowance(app: Newsletter, email: str, name: str) -> bool:
    limit = app.config.web.notices_per_address_per_day
    digest = hash_key(app.suppression_key, email.strip().casefold())
    now = utcnow()
    with app.session() as session:
        return _allowance(session, digest, name, now, limit)


def _allowance(session: Session, digest: str, name: str, now: Any, limit: int) -> bool:
    # Housekeeping first: only the last day's notices count, older rows are of no use.
    session.execute(
        delete(NoticeSent).where(
            NoticeSent.recipient_hash == digest, NoticeSent.sent_at < now - LIMIT_WINDOW
        )
    )
    sent = session.scalar(
        select(func.count()).select_from(NoticeSent).where(NoticeSent.recipient_hash == digest)
    )
    if (sent or 0) >= limit:
        return False
    session.add(NoticeSent(recipient_hash=digest, notice=name, sent_at=now))
    return True


# Staff previews and test messages ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Preview:
    """One recipient's message as files would hold it: for `newsletter preview`."""

    campaign_id: int
    subject: str
    language: str
    recipient: Recipient
    html: str
    text: str
    eml: bytes


def compose_test(
    app: Newsletter,
    campaign_id: int,
    address: str,
    language: str | None = None,
    *,
    steps: Sequence[Step] = (),
) -> OutgoingMessage:
    """A campaign's message for staff (a test send, a held edition's preview), in `language`
    (default: the campaign's). Its links are sample links that change nothing; `steps`
    finish it for its transport (newsletter.message.finishing_steps)."""
    composer = Composer(app, campaign_id, language, steps=steps, test=True)
    return composer.compose(
        Recipient(subscriber_id=None, email=address, name="", language=composer.language)
    )


def build_preview(
    app: Newsletter,
    campaign_id: int,
    email: str | None = None,
    language: str | None = None,
    *,
    sample: bool = False,
) -> Preview:
    """A campaign as one subscriber would get it: HTML, text and the complete message.

    The subscriber is the one with address `email`, else the first recipient of
    the campaign's audience, else a made-up sample person (whose links change
    nothing). `language` renders that language's edition instead of the
    subscriber's own. With `sample`, always the made-up person: the console
    shows previews to staff who may not see subscribers' names and addresses.
    """
    if sample:
        recipient = Recipient(None, SAMPLE_RECIPIENT_EMAIL, SAMPLE_RECIPIENT_NAME)
    else:
        recipient = _preview_recipient(app, campaign_id, email)
    composer = Composer(app, campaign_id, language, test=True)
    language = composer.edition_language(language or recipient.language)
    edition = composer.edition_for(language)
    html, text = edition.personalise(composer.personal_values(recipient, language))
    message = composer.compose(recipient, language)
    return Preview(
        campaign_id=campaign_id,
        subject=edition.subject,
        language=language,
        recipient=recipient,
        html=html,
        text=text,
        eml=message.data,
    )


def _preview_recipient(app: Newsletter, campaign_id: int, email: str | None) -> Recipient:
    with app.session() as session:
        if email:
            subscriber = session.scalar(
                select(Subscriber).where(Subscriber.email_key == email.strip().casefold())
            )
            if subscriber is None:
                raise NotFound(f"no subscriber with the address {email}")
        else:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None:
                raise NotFound(f"no campaign with id {campaign_id}")
            audience = recipients_query(session, campaign).subquery()
            first = session.scalar(
                select(audience.c.subscriber_id).order_by(audience.c.subscriber_id).limit(1)
            )
            subscriber = session.get(Subscriber, first) if first is not None else None
        if subscriber is None:
            return Recipient(None, SAMPLE_RECIPIENT_EMAIL, SAMPLE_RECIPIENT_NAME)
        return Recipient(
            subscriber.id, subscriber.email, subscriber.name, subscriber.language or "en"
        )
