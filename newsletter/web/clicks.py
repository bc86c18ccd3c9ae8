"""GET /l/<token>: a counted link (privacy.count_clicks) — count one click, then redirect.

The address comes from the campaign's link row the signed token names
(newsletter.clicks.follow), so the page cannot be used to send anyone
anywhere else. The token names no subscriber, and the page stores nothing
about the request: no address, no time beyond the count itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from werkzeug.routing import Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from newsletter import clicks, links
from newsletter.errors import NotFound

if TYPE_CHECKING:
    from newsletter.web.app import View, WebApp


def follow_link(web: WebApp, request: Request, token: str) -> Response:
    try:
        url = clicks.follow(web.app, token)
    except links.InvalidToken:
        return web.error_page(request, 400)
    except NotFound:
        return web.error_page(request, 404)
    # 302, not 301: a browser must come back (and count) next time, not remember it.
    return redirect(url, code=302)


def routes() -> list[tuple[Rule, View]]:
    return [(Rule("/l/<token>", endpoint="follow_link", methods=["GET"]), follow_link)]
