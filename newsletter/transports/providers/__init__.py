"""HTTP API providers: SendGrid, Mailgun, Postmark and Amazon SES, behind the Transport protocol.

Each provider is one module with its transport class and its DSN builder;
`http` holds what they share (a `requests.Session` per sending thread,
timeouts, Retry-After and rate-limit headers, what an HTTP status means for
the messages of a request) and `parts` turns a finished message into the
fields a JSON API wants. The builders are registered in
newsletter.transports.factory.SCHEMES.
"""

from typing import TYPE_CHECKING

from newsletter.lazy import lazy_exports

if TYPE_CHECKING:
    from newsletter.transports.providers.mailgun import build_mailgun
    from newsletter.transports.providers.postmark import build_postmark
    from newsletter.transports.providers.sendgrid import build_sendgrid
    from newsletter.transports.providers.ses import build_ses

# Each name is loaded from its submodule on first use (see newsletter/lazy.py).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "build_mailgun": "mailgun",
        "build_postmark": "postmark",
        "build_sendgrid": "sendgrid",
        "build_ses": "ses",
    },
)

__all__ = ["build_mailgun", "build_postmark", "build_sendgrid", "build_ses"]
