"""Unsubscribing: GET /u/<token> shows one button; POST unsubscribes at once.

Two kinds of POST reach the same address:

- the page's own form, which carries a CSRF token bound to this link;
- the RFC 8058 one-click request a mail provider sends when someone presses
  its "Unsubscribe" button: the body is exactly `List-Unsubscribe=One-Click`
  (form-encoded or multipart), no CSRF token can exist, and the answer is a
  plain 200 with no page and never a redirect. The signed token in the address
  is what authorises it.

A GET never changes anything: link scanners open every link in a message.
An unsubscription is recorded before the answer is sent; when the database
cannot record it (busy beyond its timeout and two more tries), the answer is
503 with Retry-After, which a provider's one-click request honours.
The token says who and which campaign; the person leaves that campaign's lists
(newsletter.audience.leaving.unsubscribe), which takes effect at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from newsletter import db, links
from newsletter.audience.leaving import UnsubscribeOutcome, unsubscribe
from newsletter.models import Campaign, MailingList, Subscriber, Subscription, campaign_lists
from newsletter.web.csrf import FIELD as CSRF_FIELD

if TYPE_CHECKING:
    from newsletter.web.app import View, WebApp

ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"


def routes() -> list[tuple[Rule, View]]:
    return [(Rule("/u/<token>", endpoint="unsubscribe", methods=["GET", "POST"]), unsubscribe_page)]


def is_one_click(request: Request) -> bool:
    """Whether a POST is exactly RFC 8058's one-click request and nothing else."""
    if request.mimetype == "application/x-www-form-urlencoded":
        body = request.get_data(cache=True, as_text=False).strip()
        return body == f"{ONE_CLICK_FIELD}={ONE_CLICK_VALUE}".encode()
    if request.mimetype == "multipart/form-data":
        form = request.form
        return (
            list(form.keys()) == [ONE_CLICK_FIELD]
            and form.getlist(ONE_CLICK_FIELD) == [ONE_CLICK_VALUE]
            and not request.files
        )
    return False


def unsubscribe_page(web: WebApp, request: Request, token: str) -> Response:
    app = web.app
    try:
        subscriber_id, campaign_id = links.load_unsubscribe_token(app.signing_key, token)
    except links.InvalidToken:
        return web.error_page(request, 400)

    if request.method == "POST" and is_one_click(request):
        # Recorded before the 200 goes out, every time: tried again as a whole when the
        # database is busy, and if it still cannot be, the dispatcher answers a
        # retryable 503 (providers send the POST again), never a 200 that lost it.
        db.retrying(
            lambda: unsubscribe(app, subscriber_id, campaign_id, source="one-click"),
            what="a one-click unsubscribe",
        )
        _ = web.translator(web.language(request))
        return Response(_("unsubscribe.one_click"), mimetype="text/plain")

    stored, titles = _subscriber_view(web, subscriber_id, campaign_id)
    lang = web.language(request, stored=stored)
    _ = web.translator(lang)
    if subscriber_id is None:
        return _message(web, request, lang, _("unsubscribe.title"), [_("unsubscribe.test")])
    form_name = f"unsubscribe:{token}"
    preferences = f"/p/{links.preferences_token(app.signing_key, subscriber_id)}"
    if request.method != "POST" or not web.csrf.check(form_name, request.form.get(CSRF_FIELD)):
        return web.render(
            request,
            "unsubscribe.html",
            lang=lang,
            status=200 if request.method != "POST" else 400,
            list_titles=titles,
            csrf_token=web.csrf.issue(form_name),
            form_error="" if request.method != "POST" else _("form.expired"),
            preferences_url=preferences,
        )
    outcome = db.retrying(
        lambda: unsubscribe(app, subscriber_id, campaign_id, source="page"),
        what="an unsubscribe",
    )
    return _done(web, request, lang, outcome, preferences)


def _subscriber_view(
    web: WebApp, subscriber_id: int | None, campaign_id: int
) -> tuple[str | None, list[str]]:
    """The subscriber's language and the titles of the campaign's lists they are on."""
    if subscriber_id is None:
        return None, []
    with web.app.reading() as session:
        language = session.scalar(select(Subscriber.language).where(Subscriber.id == subscriber_id))
        if language is None or session.get(Campaign, campaign_id) is None:
            return language, []
        titles = session.scalars(
            select(MailingList.title)
            .join(campaign_lists, campaign_lists.c.list_id == MailingList.id)
            .join(Subscription, Subscription.list_id == MailingList.id)
            .where(
                campaign_lists.c.campaign_id == campaign_id,
                Subscription.subscriber_id == subscriber_id,
                Subscription.status != "unsubscribed",
            )
            .order_by(MailingList.title)
        )
        return language, list(titles)


def _done(
    web: WebApp, request: Request, lang: str, outcome: UnsubscribeOutcome, preferences: str
) -> Response:
    _ = web.translator(lang)
    after: list[str] = []
    items: list[Any]
    if outcome.everything:
        paragraphs, items = [_("unsubscribe.done_all")], []
    elif outcome.already:
        paragraphs, items = [_("unsubscribe.already")], []
        after = [_("unsubscribe.other_lists")]
    else:
        paragraphs, items = [_("unsubscribe.done_lists")], list(outcome.left)
        after = [_("unsubscribe.other_lists")]
    return web.render(
        request,
        "message.html",
        lang=lang,
        heading=_("unsubscribe.done_title"),
        paragraphs=paragraphs,
        items=items,
        after=after,
        link={"href": preferences, "text": _("confirm.preferences")},
    )


def _message(
    web: WebApp, request: Request, lang: str, heading: str, paragraphs: list[str]
) -> Response:
    return web.render(
        request,
        "message.html",
        lang=lang,
        heading=heading,
        paragraphs=paragraphs,
        items=[],
        link=None,
    )
