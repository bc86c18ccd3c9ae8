"""Serving the pages with werkzeug's own server, for development and small installs.

The stock request log prints the client's address and the full path, and a
path here may carry a signed link token: both stay out of this log. A line
says the method, the page family (`/u/…`), the status and nothing else.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

log = logging.getLogger("newsletter.web")
# The first segment of a path is kept; everything after it may be a token or an address.
# A log line from a stranger's request is bounded: the first segment is cut at this length.
MAX_SEGMENT = 40
_TAIL = re.compile(r"^(/[^/?]*)(/[^?]*)?(\?.*)?$")


if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication


def redact_path(path: str) -> str:
    """'/u/eyJ…?lang=ru' → '/u/…': no token and no query string reaches the log."""
    match = _TAIL.match(path)
    if not match:
        return "/…"
    head, tail, query = match.groups()
    if len(head) > MAX_SEGMENT:
        head = head[:MAX_SEGMENT] + "…"
    return head + ("/…" if tail and tail != "/" else "") + ("?…" if query else "")


class PrivateRequestHandler(WSGIRequestHandler):
    """werkzeug's handler, logging without client addresses or tokens."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        method = str(getattr(self, "command", "-"))[:10]
        path = redact_path(getattr(self, "path", ""))
        log.info("%s %s %s", method, path, getattr(code, "value", code))

    def log_error(self, format: str, *args: Any) -> None:
        log.warning("request failed: %s", (format % args).split(":")[0][: MAX_SEGMENT * 2])

    def log_message(self, format: str, *args: Any) -> None:
        # werkzeug's other messages (e.g. startup) carry no client data; bounded all the same.
        log.info("%s", (format % args)[: MAX_SEGMENT * 5])


def make_web_server(web: WSGIApplication, host: str, port: int) -> BaseWSGIServer:
    """A threaded server for `web` on host:port (0 picks a free port; see .server_port).

    `web` is the pages, or the pages with the console mounted beside them.
    """
    return make_server(host, port, web, threaded=True, request_handler=PrivateRequestHandler)
