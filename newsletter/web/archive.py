"""The public archive and the view-in-browser page of an edition.

    GET /archive                         the public lists that have an archive
    GET /archive/<list>                  the editions sent to a public list
    GET /archive/<list>/<campaign_id>    one of them
    GET /v/<token>                       an edition from its "view online" link

An edition is rendered with every personal field neutral (no name, no
address, no personal link), so the page is the same for everyone and can be
cached and shared. It is shown in the reader's language where the edition is
rendered in it (`web.languages`): `?lang=` (the view-online link of each
language's email carries its own), else the browser's Accept-Language, else
the edition's own language. Only sent editions of public lists are in the archive; the
signed view-online link opens any edition it was made for, since only the
people it was sent to have it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from newsletter import links
from newsletter.errors import NotFound
from newsletter.models import Campaign, MailingList, campaign_lists
from newsletter.render import greeting, render_campaign
from newsletter.web import headers
from newsletter.web.i18n import choose_language

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from newsletter.app import Newsletter
    from newsletter.web.app import View, WebApp

# Rendered editions kept in memory: rendering one costs tens of milliseconds.
CACHE_SIZE = 32


@dataclass(frozen=True)
class EditionLink:
    id: int
    subject: str
    date: date | None


# The largest id the database holds (64-bit): a larger number in an address is no
# edition, a 404, rather than a query the database refuses.
MAX_ID = 2**63 - 1


def routes() -> list[tuple[Rule, View]]:
    return [
        (Rule("/archive", endpoint="archive_index", methods=["GET"]), archive_index),
        (Rule("/archive/<list_name>", endpoint="archive_list", methods=["GET"]), archive_list),
        (
            Rule(
                f"/archive/<list_name>/<int(max={MAX_ID}):campaign_id>",
                endpoint="archive_edition",
                methods=["GET"],
            ),
            archive_edition,
        ),
        (Rule("/v/<token>", endpoint="view_online", methods=["GET"]), view_online),
    ]


def archive_index(web: WebApp, request: Request) -> Response:
    lang = web.language(request)
    with web.app.reading() as session:
        lists = [
            {"name": lst.name, "title": lst.title or lst.name, "description": lst.description}
            for lst in session.scalars(
                select(MailingList)
                .where(MailingList.visibility == "public")
                .order_by(MailingList.title, MailingList.name)
            )
        ]
    response = web.render(request, "archive_index.html", lang=lang, lists=lists)
    return headers.mark(response, headers.HeaderPolicy(cacheable=True))


def archive_list(web: WebApp, request: Request, list_name: str) -> Response:
    lang = web.language(request)
    with web.app.reading() as session:
        mailing_list = _public_list(session, list_name)
        if mailing_list is None:
            return web.error_page(request, 404, lang=lang)
        rows = session.execute(
            select(Campaign.id, Campaign.subject, Campaign.finished_at, Campaign.started_at)
            .join(campaign_lists, campaign_lists.c.campaign_id == Campaign.id)
            .where(campaign_lists.c.list_id == mailing_list.id, Campaign.status == "sent")
            .order_by(Campaign.finished_at.desc(), Campaign.id.desc())
        )
        editions = [
            EditionLink(cid, subject, _day(finished or started))
            for cid, subject, finished, started in rows
        ]
        view = {
            "name": mailing_list.name,
            "title": mailing_list.title or mailing_list.name,
            "description": mailing_list.description,
        }
        open_for_signup = not mailing_list.archived
    response = web.render(
        request,
        "archive_list.html",
        lang=lang,
        mailing_list=view,
        editions=editions,
        open_for_signup=open_for_signup,
    )
    return headers.mark(response, headers.HeaderPolicy(cacheable=True))


def archive_edition(web: WebApp, request: Request, list_name: str, campaign_id: int) -> Response:
    with web.app.reading() as session:
        mailing_list = _public_list(session, list_name)
        found = mailing_list is not None and session.scalar(
            select(Campaign.id)
            .join(campaign_lists, campaign_lists.c.campaign_id == Campaign.id)
            .where(
                Campaign.id == campaign_id,
                Campaign.status == "sent",
                campaign_lists.c.list_id == mailing_list.id,
            )
        )
    if not found:
        return web.error_page(request, 404)
    return _edition_page(web, request, campaign_id)


def view_online(web: WebApp, request: Request, token: str) -> Response:
    try:
        campaign_id = links.load_view_online_token(web.app.signing_key, token)
    except links.InvalidToken:
        return web.error_page(request, 400)
    return _edition_page(web, request, campaign_id)


def _edition_page(web: WebApp, request: Request, campaign_id: int) -> Response:
    language = choose_language(
        explicit=request.args.get("lang"),
        accept=request.accept_languages,
        available=web.config.web.languages,
        default="",
    )
    try:
        html = web.edition_pages.page(campaign_id, language or None)
    except NotFound:
        return web.error_page(request, 404)
    response = Response(html, mimetype="text/html")
    return headers.mark(response, headers.HeaderPolicy(csp=headers.EDITION_CSP, cacheable=True))


class EditionPages:
    """Each edition rendered once with neutral personal fields, kept while it is unchanged."""

    def __init__(self, app: Newsletter, size: int = CACHE_SIZE) -> None:
        self.app = app
        self.size = size
        self._pages: OrderedDict[tuple[int, str], tuple[datetime | None, str]] = OrderedDict()
        self._lock = threading.Lock()

    def page(self, campaign_id: int, language: str | None = None) -> str:
        app = self.app
        key = (campaign_id, language or "")
        with app.reading() as session:
            campaign = session.get(Campaign, campaign_id)
            if campaign is None:
                raise NotFound(f"no campaign with id {campaign_id}")
            changed = campaign.updated_at
        with self._lock:
            cached = self._pages.get(key)
            if cached is not None and cached[0] == changed:
                self._pages.move_to_end(key)
                return cached[1]
        html = render_public(app, campaign_id, language)
        with self._lock:
            self._pages[key] = (changed, html)
            self._pages.move_to_end(key)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)
        return html


def render_public(app: Newsletter, campaign_id: int, language: str | None = None) -> str:
    """An edition's HTML in `language` (default: its own) with nothing personal in it: no
    name, address or personal link."""
    rendered = render_campaign(app, campaign_id, language, public=True)
    base = app.config.web.base_url.rstrip("/")
    html, _text = rendered.personalise(
        {
            "name": "",
            "greeting": greeting("", rendered.language),
            "email": "",
            # The public copy's footer offers the subscribe page instead of personal links.
            "unsubscribe_url": f"{base}/subscribe",
            "preferences_url": f"{base}/subscribe",
            "view_online_url": rendered.view_online_url,
        }
    )
    return html


def _public_list(session: Session, name: str) -> MailingList | None:
    return session.scalar(
        select(MailingList).where(MailingList.name == name, MailingList.visibility == "public")
    )


def _day(moment: datetime | None) -> date | None:
    return moment.date() if moment else None
