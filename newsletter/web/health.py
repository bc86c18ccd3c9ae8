"""GET /healthz: a JSON answer for load balancers and monitors.

`newsletter serve` extends it with the scheduler's and workers' state; here
it says only that the pages answer. It reveals nothing and touches nothing.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from newsletter.web.app import View, WebApp


def healthz(web: WebApp, request: Request) -> Response:
    return Response(json.dumps({"status": "ok"}), mimetype="application/json")


def routes() -> list[tuple[Rule, View]]:
    return [(Rule("/healthz", endpoint="healthz", methods=["GET"]), healthz)]
