"""The subscriber pages: subscribe, confirm, unsubscribe, preferences, archive.

`make_wsgi_app(app)` is the front door: a WSGI application over the service
functions of newsletter.audience (joining, leaving, preferences), newsletter.render and
newsletter.links. See newsletter/web/README.md for the pages, the embeddable
form and the security decisions.
"""

from typing import TYPE_CHECKING

from newsletter.lazy import lazy_exports

if TYPE_CHECKING:
    from newsletter.web.app import WebApp, make_wsgi_app

# Each name is loaded from its submodule on first use (see newsletter/lazy.py).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "WebApp": "app",
        "make_wsgi_app": "app",
    },
)

__all__ = ["WebApp", "make_wsgi_app"]
