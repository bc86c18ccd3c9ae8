"""The staff console: a Flask app under /admin/, over the same service layer as the CLI.

    console = create_app(app)             # a Flask app
    wsgi = mount(app, pages)              # the subscriber pages with the console at /admin

One blueprint per area (auth, dashboard, items, campaigns, audience, feedback,
users, settings), each view a thin shell: it parses the form, calls one
service function and renders a template from newsletter/admin/templates/.
What a role may do is newsletter.roles; newsletter.admin.security checks it
next to each route. Errors are pages: a missing campaign is a 404, an action
its status does not allow a 409 with the reason, a bad form field is marked
next to the field (newsletter.admin.forms).

The console is server-rendered and works without JavaScript; its one small
script only refreshes live figures. The subscriber pages stay cookie-free: the
console's session cookie is scoped to /admin.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import traceback
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix

from newsletter.admin import (
    audience,
    auth,
    campaigns,
    dashboard,
    feedback,
    items,
    security,
    settings,
    users,
)
from newsletter.admin.throttle import LoginThrottle
from newsletter.errors import InvalidState, NotFound, OperationFailed, UserError

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from newsletter.app import Newsletter

log = logging.getLogger(__name__)

PREFIX = "/admin"
BLUEPRINTS = (auth, dashboard, items, campaigns, audience, feedback, users, settings)
# Console pages: their own script and stylesheet, framed previews from the console itself.
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Uploads (a listing, a feed, a CSV of subscribers) may be large; forms are small.
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
ERROR_TITLES = {
    400: "Bad request",
    401: "Sign in first",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Not possible now",
    413: "Too large",
    429: "Too many attempts",
    500: "Something went wrong",
    502: "The other end refused",
}


def create_app(app: Newsletter) -> Flask:
    """The console as a Flask app, to be served under /admin (see `mount`)."""
    flask_app = Flask(__name__, static_folder="static", static_url_path="/static")
    flask_app.config["NEWSLETTER"] = app
    flask_app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES
    # The session key is derived from the installation's signing key, so it survives
    # restarts and is shared by every process, but is never the link-signing key itself.
    flask_app.secret_key = hmac.new(
        app.signing_key.encode(), b"newsletter-console-session", hashlib.sha256
    ).hexdigest()
    admin = app.config.admin
    security.configure(flask_app, app.config.web.base_url, admin.idle_minutes)
    flask_app.extensions["login_throttle"] = LoginThrottle(
        per_account=admin.login_attempts,
        per_client=admin.login_attempts * 4,
        window_seconds=admin.login_window_minutes * 60,
    )
    flask_app.jinja_env.trim_blocks = True
    flask_app.jinja_env.lstrip_blocks = True
    flask_app.jinja_env.globals["org"] = app.config.org
    for module in BLUEPRINTS:
        flask_app.register_blueprint(module.blueprint)
    _register_errors(flask_app)
    flask_app.after_request(_headers)
    hops = app.config.web.proxy_hops
    if hops:
        # The client address (for throttling only) from X-Forwarded-For, as the pages do.
        flask_app.wsgi_app = ProxyFix(flask_app.wsgi_app, x_for=hops)  # type: ignore[method-assign]
    return flask_app


def mount(app: Newsletter, pages: WSGIApplication) -> WSGIApplication:
    """The subscriber pages with the console mounted at /admin beside them."""
    return DispatcherMiddleware(pages, {PREFIX: create_app(app)})


def _headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONSOLE_CSP)
    if "frame-ancestors 'self'" not in response.headers["Content-Security-Policy"]:
        response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def error_page(status: int, reason: str = "") -> tuple[str, int]:
    return (
        render_template(
            "error.html", status=status, title=ERROR_TITLES.get(status, "Error"), reason=reason
        ),
        status,
    )


def _register_errors(flask_app: Flask) -> None:
    @flask_app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if exc.code in (301, 302, 303, 307, 308) or exc.code is None:
            return exc
        reason = exc.description if exc.code in (400, 409, 429) else ""
        return error_page(exc.code, reason or "")

    @flask_app.errorhandler(NotFound)
    def not_found(exc: NotFound) -> Any:
        return error_page(404, str(exc))

    @flask_app.errorhandler(InvalidState)
    def invalid_state(exc: InvalidState) -> Any:
        return error_page(409, str(exc))

    @flask_app.errorhandler(UserError)
    def user_error(exc: UserError) -> Any:
        return error_page(400, str(exc))

    @flask_app.errorhandler(OperationFailed)
    def operation_failed(exc: OperationFailed) -> Any:
        return error_page(502, str(exc))

    @flask_app.errorhandler(Exception)
    def failure(exc: Exception) -> Any:
        # Named by kind and place, not message, which may quote an address (as the pages do).
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        log.error(
            "console %s %s failed: %s at %s:%s",
            request.method,
            request.endpoint,
            type(exc).__name__,
            frame.filename,
            frame.lineno,
        )
        g.setdefault("user", None)
        return error_page(500)
