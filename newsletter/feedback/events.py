"""Feedback as every source reports it, in one shape: a `FeedbackEvent`.

Webhook parsers (one per provider) and the bounce mailbox turn what they
receive into these; the rules (newsletter.feedback.rules) decide what each
one does. Deciding *that* something bounced is kept apart from deciding
*what to do* about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# hard_bounce: the address does not exist or is disabled; soft_bounce: it could not
# take the message for now (full, blocked, unreachable); complaint: the person marked
# it as spam; unsubscribe: they unsubscribed through the provider.
FEEDBACK_TYPES = ("hard_bounce", "soft_bounce", "complaint", "unsubscribe")


@dataclass(frozen=True)
class FeedbackEvent:
    type: str
    source: str
    # The recipient as the source reports it (may differ in case from ours).
    address: str = ""
    # Ways to find the delivery, best first: our ledger row, our Message-ID, the
    # provider's id (shared by a whole batch at some providers, so with the address).
    delivery_id: int | None = None
    message_id: str = ""
    provider_message_id: str = ""
    # The source's own id of this event, to take it in once however often it is sent.
    key: str = ""
    # Whether the address alone may identify the subscriber. True for verified
    # webhooks; False for the bounce mailbox, which anyone can write to: a bounce
    # there counts only when it quotes the Message-ID of a message we sent.
    match_by_address: bool = True
    detail: dict[str, Any] = field(default_factory=dict)
