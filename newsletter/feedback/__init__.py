"""Delivery feedback: bounces, complaints and unsubscribes, from webhooks and a bounce mailbox.

Front door:

- `record_feedback(app, events)`: store events and apply the rules (rules.py);
- `WebhookReceiver(app).receive(provider, request)`: a provider's webhook,
  verified, parsed and recorded (webhooks.py; the web view is newsletter.web.webhooks);
- `open_mailbox(app, maildir=, imap=)` and `fetch_bounces(app, box)`: the
  bounce mailbox of SMTP senders (bounces.py);
- `campaign_feedback(app, campaign_id)` and `came_back(app, campaign_id, ids)`:
  what staff read in `newsletter status` and `newsletter deliveries`.
"""

from typing import TYPE_CHECKING

from newsletter.lazy import lazy_exports

if TYPE_CHECKING:
    from newsletter.feedback.bounces import FetchReport, fetch_bounces, open_mailbox
    from newsletter.feedback.events import FEEDBACK_TYPES, FeedbackEvent
    from newsletter.feedback.rules import FeedbackReport, record_feedback
    from newsletter.feedback.summary import (
        CampaignFeedback,
        came_back,
        campaign_feedback,
    )
    from newsletter.feedback.webhooks import (
        Malformed,
        Refused,
        WebhookReceiver,
        WebhookRequest,
    )

# Each name is loaded from its submodule on first use (see newsletter/lazy.py).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "FetchReport": "bounces",
        "fetch_bounces": "bounces",
        "open_mailbox": "bounces",
        "FEEDBACK_TYPES": "events",
        "FeedbackEvent": "events",
        "FeedbackReport": "rules",
        "record_feedback": "rules",
        "CampaignFeedback": "summary",
        "campaign_feedback": "summary",
        "came_back": "summary",
        "Malformed": "webhooks",
        "Refused": "webhooks",
        "WebhookReceiver": "webhooks",
        "WebhookRequest": "webhooks",
    },
)

__all__ = [
    "FEEDBACK_TYPES",
    "CampaignFeedback",
    "FeedbackEvent",
    "FeedbackReport",
    "FetchReport",
    "Malformed",
    "Refused",
    "WebhookReceiver",
    "WebhookRequest",
    "came_back",
    "campaign_feedback",
    "fetch_bounces",
    "open_mailbox",
    "record_feedback",
]
