"""The subscriber pages as one WSGI application: `make_wsgi_app(app)`.

A thin shell, like the CLI: each view parses the request, calls one service
function (newsletter.audience.consent, newsletter.render, newsletter.links)
and renders a small page. What every response shares lives here: routing,
the page language, rendering with autoescaping Jinja2, the security headers,
and turning errors into plain pages (a forged link is a 400 in the reader's
language, never a traceback).

The pages set no cookie and store no client address: rate limiting keeps
addresses in memory only (newsletter.web.ratelimit), and CSRF tokens need no
session (newsletter.web.csrf).
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable, Iterable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jinja2
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response

from newsletter import db, failures
from newsletter.audience.joining import NAME_MAX
from newsletter.locale import Translator, language_name, shipped_languages, translator
from newsletter.web import (
    archive,
    clicks,
    confirm,
    headers,
    health,
    metrics,
    preferences,
    subscribe,
    unsubscribe,
    webhooks,
)
from newsletter.web.background import BackgroundTasks
from newsletter.web.csrf import CsrfTokens
from newsletter.web.i18n import choose_language
from newsletter.web.ratelimit import TokenBucket

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from newsletter.app import Newsletter

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
View = Callable[..., Response]
MAX_REQUEST_BYTES = 64 * 1024
# Errors that have a page of their own in the catalogues.
PAGED_ERRORS = frozenset({400, 404, 405, 413, 415, 429, 500, 503})
# What a 503 asks the client (a browser, a mail provider's one-click POST) to wait.
RETRY_AFTER_SECONDS = 30

# Every page family contributes its rules; the endpoint names the view function.
PAGE_MODULES = (
    health,
    metrics,
    subscribe,
    confirm,
    unsubscribe,
    preferences,
    archive,
    clicks,
    webhooks,
)


class WebApp:
    """The WSGI callable: routes a request to its view and gives every response its headers."""

    def __init__(self, app: Newsletter) -> None:
        self.app = app
        self.config = app.config
        self.url_map = Map(
            [Rule("/static/<path:filename>", endpoint="static", methods=["GET"])],
            strict_slashes=False,
        )
        self.views: dict[str, View] = {"static": self.static}
        for module in PAGE_MODULES:
            for rule, view in module.routes():
                self.url_map.add(rule)
                self.views[rule.endpoint] = view
        web = self.config.web
        self.rate_limit = TokenBucket(
            max(1, web.subscribe_burst), max(1, web.subscribe_per_hour) / 3600
        )
        self.tasks = BackgroundTasks(on_failure=self._task_failed)
        hops = web.proxy_hops
        # Behind reverse proxies the client address (used only for rate limiting) comes
        # from X-Forwarded-For, trusted for exactly `proxy_hops` hops.
        self._wsgi: Callable[[WSGIEnvironment, StartResponse], Iterable[bytes]] = (
            ProxyFix(self._serve, x_for=hops, x_proto=0, x_host=0) if hops else self._serve
        )

    # Lazily built, so that building the app touches neither the database nor the disk.

    @cached_property
    def csrf(self) -> CsrfTokens:
        return CsrfTokens(self.app.signing_key)

    @cached_property
    def templates(self) -> jinja2.Environment:
        env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=jinja2.select_autoescape(("html", "xml"), default_for_string=True),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.globals["org"] = self.config.org
        # The footer says what is not collected only while the config keeps it so.
        env.globals["privacy"] = self.config.privacy
        # The forms' maxlength for a name: the length the service keeps.
        env.globals["name_max"] = NAME_MAX
        return env

    @cached_property
    def edition_pages(self) -> archive.EditionPages:
        return archive.EditionPages(self.app)

    # WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self._wsgi(environ, start_response)

    def _serve(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        # Every form here is a few short fields; a body larger than this is refused with a
        # 413 before any view reads it.
        request.max_content_length = MAX_REQUEST_BYTES
        request.max_form_memory_size = MAX_REQUEST_BYTES
        response = self.dispatch(request)
        return headers.apply(response)(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
            return self.views[endpoint](self, request, **args)
        except NotFound:
            return self.error_page(request, 404)
        except MethodNotAllowed as exc:
            response = self.error_page(request, 405)
            response.headers["Allow"] = ", ".join(exc.valid_methods or ())
            return response
        except RequestRedirect as exc:
            # Routing's own redirects (a doubled slash merged): to a path on this site,
            # never to the Host header's idea of it, which anyone can set.
            parts = urlsplit(exc.new_url)
            # One leading slash: "//host" would be read as another site.
            target = "/" + parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
            return Response("", status=308, headers={"Location": target})
        except HTTPException as exc:
            if exc.code in PAGED_ERRORS:
                # A body too large, a malformed request: the same plain page as ours.
                return self.error_page(request, exc.code or 400)
            # Redirects from routing (a trailing slash) and the like.
            return exc.get_response(request.environ)  # type: ignore[return-value,unused-ignore]
        except RecursionError:
            # A body nested thousands deep (JSON, most likely) that a parser could not
            # follow: the request is unreadable, not our failure.
            return self.error_page(request, 400)
        except DBAPIError as exc:
            if not db.is_transient(exc):
                return self._failed(request, exc)
            # The database is busy or unreachable for now: nothing was done, and the
            # client may try again (a retryable 503, never a 500).
            log.warning("page /%s: database busy: %s", _first_segment(request), type(exc).__name__)
            return self.unavailable(request)
        except Exception as exc:
            return self._failed(request, exc)

    def _failed(self, request: Request, exc: Exception) -> Response:
        # The log names the error's kind and place, not its message, which may quote
        # an address or a token (see newsletter.web.background for the same rule).
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        log.error(
            "page /%s failed: %s at %s:%s",
            _first_segment(request),
            type(exc).__name__,
            frame.filename,
            frame.lineno,
        )
        return self.error_page(request, 500)

    @staticmethod
    def static(web: WebApp, request: Request, filename: str) -> Response:
        try:
            path = (STATIC / filename).resolve()
            found = STATIC in path.parents and path.is_file()
        except (ValueError, OSError):
            # A NUL byte or a name too long for the file system: no such file.
            found = False
        if not found:
            raise NotFound()
        response = send_file(path, request.environ, max_age=3600)
        return headers.mark(response, headers.HeaderPolicy(cacheable=True))

    # Pages --------------------------------------------------------------------------------

    def language(self, request: Request, *, stored: str | None = None) -> str:
        """The page's language: ?lang=, then the form's ui_lang, then stored, then browser."""
        explicit = request.args.get("lang") or (
            request.form.get("ui_lang") if request.method == "POST" else None
        )
        return choose_language(explicit=explicit, stored=stored, accept=request.accept_languages)

    def translator(self, language: str) -> Translator:
        return translator(language)

    def render(
        self,
        request: Request,
        template: str,
        *,
        lang: str,
        status: int = 200,
        policy: headers.HeaderPolicy | None = None,
        **context: Any,
    ) -> Response:
        _ = translator(lang)
        page = self.templates.get_template(template).render(
            _=_,
            lang=_.language,
            direction=_.direction,
            path=request.path,
            language_links=[
                (code, language_name(code)) for code in self.page_languages() if code != lang
            ],
            **context,
        )
        response = Response(page, status=status, mimetype="text/html")
        response.headers["Content-Language"] = _.language
        return headers.mark(response, policy) if policy is not None else response

    def page_languages(self) -> list[str]:
        """Languages the pages can be read in: those with a catalogue."""
        return list(shipped_languages())

    def close(self) -> None:
        """Finish the background tasks (the subscribe work still queued)."""
        self.tasks.close()

    def _task_failed(self, kind: str, exc: BaseException, attempts: int, detail: str) -> None:
        # Work the pages accepted and could not do: staff see it in `newsletter status`.
        failures.record_failure(self.app, kind, exc, attempts=attempts, detail=detail)

    def unavailable(self, request: Request) -> Response:
        """503 with Retry-After: the request was not carried out and may be sent again."""
        response = self.error_page(request, 503)
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    def error_page(
        self, request: Request, status: int, *, lang: str | None = None, reason: str = ""
    ) -> Response:
        """A plain page for an error, in the reader's language; JSON for the API."""
        lang = lang or choose_language(
            explicit=request.args.get("lang"), accept=request.accept_languages
        )
        _ = translator(lang)
        if request.path.startswith("/api/"):
            body = {"error": reason or _(f"error.{status}.title")}
            return Response(
                json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json"
            )
        try:
            return self.render(
                request, "error.html", lang=lang, status=status, status_code=status, reason=reason
            )
        except Exception:
            # The page of last resort, when even the error page cannot be rendered.
            return Response(_(f"error.{status}.title"), status=status, mimetype="text/plain")


def _first_segment(request: Request) -> str:
    """The first part of the path, bounded: a log line never carries a stranger's long path."""
    return request.path.split("/")[1][:40] if "/" in request.path else ""


def make_wsgi_app(app: Newsletter) -> WebApp:
    """The subscriber pages of `app` as a WSGI application (a `WebApp`).

    `newsletter web` serves it alone; `newsletter serve` mounts it beside the
    scheduler and the workers. Call `.close()` when done, to let the
    background tasks finish.
    """
    return WebApp(app)
