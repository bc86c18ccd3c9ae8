"""Transports: where finished messages go (a maildir outbox, SMTP, later HTTP APIs).

The front door is `open_transport(app, name)`; the dispatcher sees only the
`Transport` protocol of `base`.
"""

from typing import TYPE_CHECKING

from newsletter.lazy import lazy_exports

if TYPE_CHECKING:
    from newsletter.transports.base import (
        OutgoingMessage,
        SendLimits,
        SendResult,
        Transport,
    )
    from newsletter.transports.factory import SCHEMES, open_transport

# Each name is loaded from its submodule on first use (see newsletter/lazy.py).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "OutgoingMessage": "base",
        "SendLimits": "base",
        "SendResult": "base",
        "Transport": "base",
        "SCHEMES": "factory",
        "open_transport": "factory",
    },
)

__all__ = [
    "SCHEMES",
    "OutgoingMessage",
    "SendLimits",
    "SendResult",
    "Transport",
    "open_transport",
]
