"""Transports: where finished messages go (a maildir outbox, SMTP, later HTTP APIs).

The front door is `open_transport(app, name)`; the dispatcher sees only the
`Transport` protocol of `base`.
"""

from newsletter.transports.base import (
    OutgoingMessage,
    SendLimits,
    SendResult,
    Transport,
)
from newsletter.transports.factory import SCHEMES, open_transport

__all__ = [
    "SCHEMES",
    "OutgoingMessage",
    "SendLimits",
    "SendResult",
    "Transport",
    "open_transport",
]
