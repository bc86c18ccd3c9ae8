"""Confirming a subscription: GET /c/<token> shows one button, POST confirms.

A GET changes nothing, here as on the unsubscribe page: mail filters open the
links in incoming messages to scan them, and a confirmation that a scanner can
give is no proof that the address's owner wants the list. Confirming twice is
harmless and says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from newsletter import links
from newsletter.audience.joining import ConfirmOutcome, confirm, confirmation_state
from newsletter.web.csrf import FIELD as CSRF_FIELD

if TYPE_CHECKING:
    from newsletter.web.app import View, WebApp


def routes() -> list[tuple[Rule, View]]:
    return [(Rule("/c/<token>", endpoint="confirm", methods=["GET", "POST"]), confirm_page)]


def confirm_page(web: WebApp, request: Request, token: str) -> Response:
    app = web.app
    try:
        state = confirmation_state(app, token)
    except links.ExpiredToken:
        return _expired(web, request)
    except links.InvalidToken:
        return web.error_page(request, 400)
    lang = web.language(request, stored=state.language if state.subscriber_id else None)
    form_name = f"confirm:{token}"
    if state.state != "pending":
        return _result(web, request, lang, state)
    if request.method != "POST":
        return _question(web, request, lang, state, form_name)
    if not web.csrf.check(form_name, request.form.get(CSRF_FIELD)):
        _ = web.translator(lang)
        return _question(web, request, lang, state, form_name, 400, _("form.expired"))
    return _result(web, request, lang, confirm(app, token))


def _question(
    web: WebApp,
    request: Request,
    lang: str,
    state: ConfirmOutcome,
    form_name: str,
    status: int = 200,
    form_error: str = "",
) -> Response:
    return web.render(
        request,
        "confirm.html",
        lang=lang,
        status=status,
        list_titles=state.list_titles,
        csrf_token=web.csrf.issue(form_name),
        form_error=form_error,
    )


def _result(web: WebApp, request: Request, lang: str, outcome: ConfirmOutcome) -> Response:
    _ = web.translator(lang)
    link = None
    if outcome.subscriber_id is not None and outcome.state != "nothing":
        token = links.preferences_token(web.app.signing_key, outcome.subscriber_id)
        link = {"href": f"/p/{token}", "text": _("confirm.preferences")}
    if outcome.state == "confirmed":
        heading, paragraphs = _("confirm.done_title"), [_("confirm.done")]
        items = list(outcome.list_titles)
    elif outcome.state == "already_confirmed":
        heading, paragraphs, items = _("confirm.already_title"), [_("confirm.already")], []
    else:
        heading, paragraphs, items = _("confirm.title"), [_("confirm.nothing")], []
        link = {"href": "/subscribe", "text": _("confirm.subscribe_again")}
    return web.render(
        request,
        "message.html",
        lang=lang,
        heading=heading,
        paragraphs=paragraphs,
        items=items,
        link=link,
    )


def _expired(web: WebApp, request: Request) -> Response:
    lang = web.language(request)
    _ = web.translator(lang)
    return web.render(
        request,
        "message.html",
        lang=lang,
        status=400,
        heading=_("confirm.expired_title"),
        paragraphs=[_("confirm.expired", days=web.config.web.token_max_age_days)],
        items=[],
        link={"href": "/subscribe", "text": _("confirm.subscribe_again")},
    )
