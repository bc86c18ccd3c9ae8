"""Audience: who receives what. Subscribers, lists, segments, imports, suppression.

The front door for other stages is `recipients_query` (who a campaign goes to)
and `suppress` (never mail this address again).
"""

from newsletter.audience.resolve import recipients_query
from newsletter.audience.suppression import is_suppressed, suppress, suppression_hash

__all__ = ["is_suppressed", "recipients_query", "suppress", "suppression_hash"]
