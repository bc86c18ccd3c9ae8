"""HTTP API providers: SendGrid, Mailgun, Postmark and Amazon SES, behind the Transport protocol.

Each provider is one module with its transport class and its DSN builder;
`http` holds what they share (a `requests.Session` per sending thread,
timeouts, Retry-After and rate-limit headers, what an HTTP status means for
the messages of a request) and `parts` turns a finished message into the
fields a JSON API wants. The builders are registered in
newsletter.transports.factory.SCHEMES.
"""

from newsletter.transports.providers.mailgun import build_mailgun
from newsletter.transports.providers.postmark import build_postmark
from newsletter.transports.providers.sendgrid import build_sendgrid
from newsletter.transports.providers.ses import build_ses

__all__ = ["build_mailgun", "build_postmark", "build_sendgrid", "build_ses"]
