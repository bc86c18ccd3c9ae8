"""The subscriber pages: subscribe, confirm, unsubscribe, preferences, archive.

`make_wsgi_app(app)` is the front door: a WSGI application over the service
functions of newsletter.audience (joining, leaving, preferences), newsletter.render and
newsletter.links. See newsletter/web/README.md for the pages, the embeddable
form and the security decisions.
"""

from newsletter.web.app import WebApp, make_wsgi_app

__all__ = ["WebApp", "make_wsgi_app"]
