"""GET /metrics: Prometheus' text format, when `[metrics] enabled = true`.

Off by default (a 404, as if there were no such page). The figures come from
the database at each scrape (newsletter.metrics); none of them names a
subscriber. When the variable named by `metrics.token_env` is set, a request
must carry `Authorization: Bearer <token>`; in any case, serve it only where
the monitoring can reach it (see the README's Deployment section).
"""

from __future__ import annotations

import hmac
from functools import cache
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import CollectorRegistry
from werkzeug.exceptions import NotFound
from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from newsletter.app import Newsletter
from newsletter.metrics import DatabaseCollector

if TYPE_CHECKING:
    from newsletter.web.app import View, WebApp


@cache
def _registry(app: Newsletter) -> CollectorRegistry:
    # Our own registry, not the library's global one: one per application, holding
    # only what the database says (no process metrics of whichever process serves).
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(app))
    return registry


def metrics(web: WebApp, request: Request) -> Response:
    config = web.config.metrics
    if not config.enabled:
        raise NotFound()
    token = web.app.env.get(config.token_env, "")
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return Response(
                "a token is needed: Authorization: Bearer <token>\n",
                status=401,
                mimetype="text/plain",
                headers={"WWW-Authenticate": "Bearer"},
            )
    body = generate_latest(_registry(web.app))
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def routes() -> list[tuple[Rule, View]]:
    return [(Rule("/metrics", endpoint="metrics", methods=["GET"]), metrics)]
