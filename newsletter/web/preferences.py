"""Preferences: GET /p/<token> shows the person's choices; POST saves them or leaves all.

The link comes from the person's own mailbox, so it proves the address is
theirs: lists ticked here are joined at once (the consent record keeps the
wording shown under the form), unticked ones are left at once, and "Leave all
lists" unsubscribes from everything. The page shows the address only masked
(newsletter.audience.preferences.mask_email), since messages get forwarded with
their links.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from newsletter import links
from newsletter.audience.joining import SignupError
from newsletter.audience.leaving import unsubscribe
from newsletter.audience.preferences import Preferences, get_preferences, update_preferences
from newsletter.web.csrf import FIELD as CSRF_FIELD
from newsletter.web.subscribe import language_choices, topic_choices

if TYPE_CHECKING:
    from newsletter.web.app import View, WebApp


def routes() -> list[tuple[Rule, View]]:
    return [(Rule("/p/<token>", endpoint="preferences", methods=["GET", "POST"]), preferences_page)]


def preferences_page(web: WebApp, request: Request, token: str) -> Response:
    app = web.app
    try:
        subscriber_id = links.load_preferences_token(app.signing_key, token)
    except links.InvalidToken:
        return web.error_page(request, 400)
    if subscriber_id is None:
        lang = web.language(request)
        _ = web.translator(lang)
        return _message(web, request, lang, _("preferences.title"), _("preferences.test"))
    prefs = get_preferences(app, subscriber_id)
    if prefs is None:
        # Erased since the message was sent: the link leads nowhere, like a forged one.
        return web.error_page(request, 400)
    lang = web.language(request, stored=prefs.language)
    _ = web.translator(lang)
    form_name = f"preferences:{token}"
    if request.method != "POST":
        return _form(web, request, lang, prefs, form_name)
    form = request.form
    if not web.csrf.check(form_name, form.get(CSRF_FIELD)):
        return _form(web, request, lang, prefs, form_name, status=400, form_error=_("form.expired"))
    if form.get("action") == "leave":
        unsubscribe(app, subscriber_id, everything=True, source="preferences")
        return _message(web, request, lang, _("preferences.left_title"), _("preferences.left"))
    try:
        saved = update_preferences(
            app,
            subscriber_id,
            name=form.get("name", ""),
            language=form.get("language", prefs.language),
            topics=form.getlist("topics"),
            list_names=form.getlist("lists"),
            wording=_("preferences.consent", org=web.config.org.name),
            ip=request.remote_addr if app.config.privacy.store_ip_addresses else None,
        )
    except SignupError as exc:
        message = _("form.invalid_topics") if exc.field == "topics" else _("form.invalid_language")
        return _form(web, request, lang, prefs, form_name, status=400, errors={exc.field: message})
    if saved is None:
        return web.error_page(request, 400)
    # The page now speaks the language just chosen, when the pages have it.
    if saved.language in web.page_languages():
        lang = saved.language
    _ = web.translator(lang)
    return _form(web, request, lang, saved, form_name, saved_note=_("preferences.saved"))


def _form(
    web: WebApp,
    request: Request,
    lang: str,
    prefs: Preferences,
    form_name: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form_error: str = "",
    saved_note: str = "",
) -> Response:
    _ = web.translator(lang)
    return web.render(
        request,
        "preferences.html",
        lang=lang,
        status=status,
        prefs=prefs,
        csrf_token=web.csrf.issue(form_name),
        errors=errors or {},
        form_error=form_error,
        saved=saved_note,
        languages=language_choices(web),
        topics=topic_choices(web, _),
        wording=_("preferences.consent", org=web.config.org.name),
    )


def _message(web: WebApp, request: Request, lang: str, heading: str, text: str) -> Response:
    return web.render(
        request, "message.html", lang=lang, heading=heading, paragraphs=[text], items=[], link=None
    )
