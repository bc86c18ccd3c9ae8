"""The "you are already subscribed" email.

A subscribe form must not tell the person at it whether an address is known,
so when a known address asks again, its owner learns it by email instead,
with the link to their preferences. The message is built like every other
(newsletter.message.MessageFrame: UTF-8, multipart text and HTML, headers safe
from injection); its words come from the pages' catalogue, so it is in the
language chosen on the form, and its two small templates are in
`templates/email/` beside the pages.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from newsletter import links
from newsletter.web.i18n import Translator

if TYPE_CHECKING:
    from newsletter.app import Newsletter
    from newsletter.audience.signup import SubscribeOutcome
    from newsletter.transports.base import OutgoingMessage

TEMPLATES = Path(__file__).resolve().parent / "templates" / "email"


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(("html",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def already_subscribed(
    app: Newsletter, outcome: SubscribeOutcome, _: Translator
) -> OutgoingMessage:
    """The notice for a known address that asked to subscribe to lists it is on already."""
    from newsletter.message import MessageFrame, Recipient
    from newsletter.render import PersonalTemplate, RenderedEmail

    if outcome.subscriber_id is None:
        raise ValueError("an already-subscribed notice needs the subscriber's id")
    config = app.config
    token = links.preferences_token(app.signing_key, outcome.subscriber_id)
    context: dict[str, Any] = {
        "_": _,
        "lang": _.language,
        "direction": _.direction,
        "org": config.org,
        "subject": _("email.already.subject", org=config.org.name),
        "list_titles": outcome.list_titles,
        "preferences_url": links.preferences_url(config, token),
    }
    env = _environment()
    html = env.get_template("already_subscribed.html").render(context)
    text = env.get_template("already_subscribed.txt").render(context)
    # Rendered for this one recipient already: no personal field is left open.
    rendered = RenderedEmail(
        subject=context["subject"],
        language=_.language,
        html=PersonalTemplate((html,), ()),
        text=PersonalTemplate((text,), ()),
        template_names=("already_subscribed.html", "already_subscribed.txt"),
    )
    recipient = Recipient(outcome.subscriber_id, outcome.email, outcome.name, _.language)
    return MessageFrame(config, rendered, list_headers=False).message(recipient, {}, b"")
