"""Subscribing: the page for all public lists, a page per list, the embeddable form, the API.

    GET/POST /subscribe            every public list, as checkboxes
    GET/POST /subscribe/<list>     one list
    GET/POST /embed/<list>         the short form other sites show in a frame
    POST     /api/subscribe        the same as JSON

Every one of them answers a valid request in the same way and at once,
whether the address is new, waiting, already subscribed or suppressed: the
checks that do not depend on the address (rate limit, CSRF, honeypot, the
address's syntax, the lists) run in the request, and everything that does
(the database, the confirmation or "already subscribed" email) runs in the
background (newsletter.web.background). The page never echoes the address.

The embeddable form, for another site's page (see newsletter/web/README.md):

    <iframe src="https://news.example.org/embed/members?lang=en"
            title="Subscribe to our bulletin" width="100%" height="330"
            style="border:0;max-width:28rem"></iframe>

It is a frame, not a bare <form> to paste, so that it carries its own CSRF
token and the host site never sees what people type. Which sites may frame
it is `web.embed_frame_ancestors`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from newsletter import notices
from newsletter.audience.joining import (
    NAME_MAX,
    SignupError,
    check_signup,
    public_lists,
    subscribe,
)
from newsletter.audience.preferences import mask_email
from newsletter.locale import Translator, language_name
from newsletter.models import MailingList
from newsletter.web import headers
from newsletter.web.csrf import FIELD as CSRF_FIELD

if TYPE_CHECKING:
    from newsletter.app import Newsletter
    from newsletter.web.app import View, WebApp

HONEYPOT = "homepage"


@dataclass
class FormValues:
    email: str = ""
    name: str = ""
    language: str = ""
    lists: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ListView:
    name: str
    title: str
    description: str
    optin: str


def routes() -> list[tuple[Rule, View]]:
    methods = ["GET", "POST"]
    return [
        (Rule("/", endpoint="home", methods=["GET"]), all_lists_page),
        (Rule("/subscribe", endpoint="subscribe_all", methods=methods), all_lists_page),
        (Rule("/subscribe/<list_name>", endpoint="subscribe_list", methods=methods), list_page),
        (Rule("/embed/<list_name>", endpoint="embed", methods=methods), embed_page),
        (Rule("/api/subscribe", endpoint="api_subscribe", methods=["POST"]), api_subscribe),
    ]


# Views ---------------------------------------------------------------------------------


def all_lists_page(web: WebApp, request: Request) -> Response:
    lists = open_lists(web.app)
    return _form_page(web, request, lists, single=False, scope="*", template="subscribe.html")


def list_page(web: WebApp, request: Request, list_name: str) -> Response:
    lists = open_lists(web.app, list_name)
    if not lists:
        return web.error_page(request, 404)
    return _form_page(web, request, lists, single=True, scope=list_name, template="subscribe.html")


def embed_page(web: WebApp, request: Request, list_name: str) -> Response:
    lists = open_lists(web.app, list_name)
    if not lists:
        return web.error_page(request, 404)
    response = _form_page(
        web, request, lists, single=True, scope=f"embed:{list_name}", template="embed.html"
    )
    return headers.mark(response, headers.embeddable(web.config.web.embed_frame_ancestors))


def api_subscribe(web: WebApp, request: Request) -> Response:
    """JSON in, JSON out: {"email", "name", "language", "lists", "topics", "consent_text"}.

    Needs Content-Type application/json, which a page on another site cannot
    send here without a CORS preflight that this endpoint never grants: that
    is its CSRF protection. The answer to a valid request is always 202.
    """
    lang = web.language(request)
    _ = web.translator(lang)
    limited = _rate_limited(web, request, lang)
    if limited is not None:
        return limited
    if request.mimetype != "application/json":
        return _json({"error": _("error.415.text")}, 415)
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _json({"error": "the body must be a JSON object"}, 400)
    try:
        values = FormValues(
            email=_text(data.get("email")),
            name=_text(data.get("name")),
            language=_text(data.get("language")) or lang,
            lists=_texts(data.get("lists")),
            topics=_texts(data.get("topics")),
        )
        wording = _text(data.get("consent_text")) or _("subscribe.consent", org=web.config.org.name)
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)
    if _text(data.get(HONEYPOT)):
        return _accepted_json(web, _, values.lists)
    try:
        check_signup(
            web.app, values.email, values.name, values.language, values.lists, values.topics
        )
    except SignupError as exc:
        return _json({"error": str(exc), "field": exc.field}, 400)
    _submit(web, values, wording, source="api", ip=request.remote_addr)
    return _accepted_json(web, _, values.lists)


# The form pages ------------------------------------------------------------------------


def _form_page(
    web: WebApp,
    request: Request,
    lists: list[ListView],
    *,
    single: bool,
    scope: str,
    template: str,
) -> Response:
    lang = web.language(request)
    _ = web.translator(lang)
    form_name = f"subscribe:{scope}"
    embed = template == "embed.html"
    if request.method != "POST":
        values = FormValues(language=_default_language(web, lang))
        if single:
            values.lists = [lists[0].name]
        return _render_form(web, request, template, lang, lists, single, form_name, values)

    limited = _rate_limited(web, request, lang)
    if limited is not None:
        return limited
    form = request.form
    values = FormValues(
        email=form.get("email", "").strip()[:320],
        name=form.get("name", "")[:NAME_MAX],
        language=form.get("language", "") or _default_language(web, lang),
        lists=[lists[0].name] if single else form.getlist("lists"),
        topics=form.getlist("topics"),
    )
    if not web.csrf.check(form_name, form.get(CSRF_FIELD)):
        return _render_form(
            web,
            request,
            template,
            lang,
            lists,
            single,
            form_name,
            values,
            status=400,
            form_error=_("form.expired"),
        )
    wording = _("subscribe.consent", org=web.config.org.name)
    done = _done_page(web, request, lang, lists, values.lists, embed=embed)
    if form.get(HONEYPOT, "").strip():
        # A bot: it gets the page a person would, and nothing happens.
        return done
    try:
        check_signup(
            web.app, values.email, values.name, values.language, values.lists, values.topics
        )
    except SignupError as exc:
        message = {
            "email": _("form.invalid_email"),
            "lists": _("form.choose_list"),
            "language": _("form.invalid_language"),
            "topics": _("form.invalid_topics"),
        }.get(exc.field, str(exc))
        return _render_form(
            web,
            request,
            template,
            lang,
            lists,
            single,
            form_name,
            values,
            status=400,
            errors={exc.field: message},
        )
    _submit(web, values, wording, source=request.path, ip=request.remote_addr)
    return done


def _render_form(
    web: WebApp,
    request: Request,
    template: str,
    lang: str,
    lists: list[ListView],
    single: bool,
    form_name: str,
    values: FormValues,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form_error: str = "",
) -> Response:
    _ = web.translator(lang)
    org = web.config.org.name
    heading = _("subscribe.title_list", list=lists[0].title) if single else _("subscribe.title")
    return web.render(
        request,
        template,
        lang=lang,
        status=status,
        heading=heading,
        intro=_("subscribe.intro", org=org),
        lists=lists,
        single_list=single,
        action=request.path,
        csrf_token=web.csrf.issue(form_name),
        values=values,
        errors=errors or {},
        form_error=form_error,
        languages=language_choices(web),
        topics=topic_choices(web, _),
        wording=_("subscribe.consent", org=org),
        done="",
    )


def _done_page(
    web: WebApp,
    request: Request,
    lang: str,
    lists: list[ListView],
    chosen: Sequence[str],
    *,
    embed: bool,
) -> Response:
    """The one answer to every accepted request. It depends on the lists' opt-in modes,
    which are public, and on nothing about the address."""
    _ = web.translator(lang)
    if embed:
        response = web.render(
            request,
            "embed.html",
            lang=lang,
            heading=_("subscribe.done_title"),
            done=_("subscribe.done_embed"),
        )
        return headers.mark(response, headers.embeddable(web.config.web.embed_frame_ancestors))
    return web.render(
        request,
        "message.html",
        lang=lang,
        heading=_("subscribe.done_title"),
        paragraphs=[_done_text(web, _, lists, chosen), _("subscribe.done_not_seen")],
        items=[],
        link=None,
    )


def _done_text(web: WebApp, _: Translator, lists: Sequence[ListView], chosen: Sequence[str]) -> str:
    modes = {lst.optin for lst in lists if lst.name in chosen}
    if modes == {"single"}:
        return _("subscribe.done_single")
    return _("subscribe.done_double", days=web.config.web.token_max_age_days)


def _accepted_json(web: WebApp, _: Translator, chosen: Sequence[str]) -> Response:
    lists = [lst for lst in open_lists(web.app) if lst.name in chosen]
    return _json({"status": "accepted", "message": _done_text(web, _, lists, chosen)}, 202)


# The work done in the background -------------------------------------------------------


def _submit(web: WebApp, values: FormValues, wording: str, *, source: str, ip: str | None) -> None:
    app = web.app
    # The address reaches the consent record only when the config says so; otherwise it
    # is dropped here and never leaves this request.
    kept_ip = ip if app.config.privacy.store_ip_addresses else None

    def task() -> None:
        run_subscribe(app, values, wording, source=source, ip=kept_ip)

    lists = ", ".join(values.lists)[:200]
    web.tasks.submit(task, kind="subscribe", detail=f"{mask_email(values.email)} to {lists}")


def run_subscribe(
    app: Newsletter, values: FormValues, wording: str, *, source: str, ip: str | None
) -> None:
    """Subscribe, then send the one notice the outcome calls for, in the chosen language."""
    outcome = subscribe(
        app,
        values.email,
        values.name,
        values.language,
        values.lists,
        values.topics,
        wording,
        ip,
        source=source,
    )
    notices.send_signup_notice(app, outcome)


# Helpers -------------------------------------------------------------------------------


def open_lists(app: Newsletter, name: str | None = None) -> list[ListView]:
    """The public, open lists (or the one named), as plain values for the templates."""
    with app.session() as session:
        if name is None:
            found = public_lists(session)
        else:
            found = list(
                session.scalars(
                    select(MailingList).where(
                        MailingList.name == name,
                        MailingList.visibility == "public",
                        MailingList.archived.is_(False),
                    )
                )
            )
        return [
            ListView(lst.name, lst.title or lst.name, lst.description, lst.optin) for lst in found
        ]


def language_choices(web: WebApp) -> list[tuple[str, str]]:
    return [(code, language_name(code)) for code in web.config.web.languages]


def topic_choices(web: WebApp, _: Translator) -> list[tuple[str, str]]:
    """(slug, label) of every topic, the label in the page's language when the catalogue has it."""
    choices = []
    for slug, label in web.config.web.topics.items():
        key = f"topic.{slug}"
        translated = _(key)
        choices.append((slug, label if translated == key or _.language == "en" else translated))
    return choices


def _default_language(web: WebApp, page_language: str) -> str:
    offered = web.config.web.languages
    if page_language in offered:
        return page_language
    return web.config.editions.default_language if offered else page_language


def _rate_limited(web: WebApp, request: Request, lang: str) -> Response | None:
    wait = web.rate_limit.take(request.remote_addr or "unknown")
    if wait <= 0:
        return None
    seconds = max(1, math.ceil(wait))
    if request.path.startswith("/api/"):
        response = _json({"error": web.translator(lang)("error.429.text")}, 429)
    else:
        response = web.render(
            request,
            "error.html",
            lang=lang,
            status=429,
            status_code=429,
            reason="",
            retry_after=max(1, math.ceil(seconds / 60)),
        )
    response.headers["Retry-After"] = str(seconds)
    return response


def _json(body: dict[str, Any], status: int) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json"
    )


def _text(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError("email, name, language and consent_text must be strings")
    return value.strip()[:2000]


def _texts(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("lists and topics must be lists of strings")
    return list(value)[:50]
