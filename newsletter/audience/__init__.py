"""Audience: who receives what. Subscribers, lists, segments, imports, suppression, privacy.

The front door for other stages:

- `recipients_query(session, campaign)` and `count_recipients(session, campaign)`:
  who a campaign goes to, as one SELECT of `subscriber_id` (for INSERT … SELECT);
- `suppress(session, key, email, reason)` (also marks the subscriber bounced,
  complained, … ), `is_suppressed`, `suppression_hash`, `lift_suppression`;
- `add_to_list`, `end_subscriptions`: one person's subscriptions, inside the
  caller's transaction (what people do themselves on the web is in `joining`,
  `leaving` and `preferences`);
- whole admin operations, each its own transaction: `create_list`,
  `ensure_list`, `import_subscribers`, `export_subscribers`, `save_segment`,
  `export_person`, `erase_person`, …

Functions that other stages compose take a `Session`; whole operations take the
`Newsletter` app.
"""

from typing import TYPE_CHECKING

from newsletter.lazy import lazy_exports

if TYPE_CHECKING:
    from newsletter.audience.addresses import Address, InvalidAddress, normalise_address
    from newsletter.audience.consent import Consent
    from newsletter.audience.exports import export_subscribers
    from newsletter.audience.imports import IMPORT_MODES, ImportReport, import_subscribers
    from newsletter.audience.joining import confirm, subscribe
    from newsletter.audience.leaving import unsubscribe, unsubscribe_address
    from newsletter.audience.lists import (
        archive_list,
        create_list,
        ensure_list,
        get_list,
        list_lists,
        show_list,
    )
    from newsletter.audience.preferences import get_preferences, update_preferences
    from newsletter.audience.privacy import ErasureReport, erase_person, export_person, find_address
    from newsletter.audience.resolve import (
        audience_query,
        count_recipients,
        recipients_query,
        segment_condition,
    )
    from newsletter.audience.segments import (
        delete_segment,
        get_segment,
        list_segments,
        save_segment,
        show_segment,
    )
    from newsletter.audience.subscribers import (
        add_subscriber,
        add_to_list,
        end_subscriptions,
        remove_subscriber,
        search_subscribers,
        show_subscriber,
    )
    from newsletter.audience.suppression import (
        SUPPRESSION_REASONS,
        is_suppressed,
        lift_suppression,
        suppress,
        suppression_hash,
        suppression_reason,
    )

# Each name is loaded from its submodule on first use (see newsletter/lazy.py).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Address": "addresses",
        "InvalidAddress": "addresses",
        "normalise_address": "addresses",
        "Consent": "consent",
        "export_subscribers": "exports",
        "IMPORT_MODES": "imports",
        "ImportReport": "imports",
        "import_subscribers": "imports",
        "archive_list": "lists",
        "create_list": "lists",
        "ensure_list": "lists",
        "get_list": "lists",
        "list_lists": "lists",
        "show_list": "lists",
        "ErasureReport": "privacy",
        "erase_person": "privacy",
        "export_person": "privacy",
        "find_address": "privacy",
        "audience_query": "resolve",
        "count_recipients": "resolve",
        "recipients_query": "resolve",
        "segment_condition": "resolve",
        "delete_segment": "segments",
        "get_segment": "segments",
        "list_segments": "segments",
        "save_segment": "segments",
        "show_segment": "segments",
        "confirm": "joining",
        "subscribe": "joining",
        "unsubscribe": "leaving",
        "unsubscribe_address": "leaving",
        "get_preferences": "preferences",
        "update_preferences": "preferences",
        "add_subscriber": "subscribers",
        "add_to_list": "subscribers",
        "end_subscriptions": "subscribers",
        "remove_subscriber": "subscribers",
        "search_subscribers": "subscribers",
        "show_subscriber": "subscribers",
        "SUPPRESSION_REASONS": "suppression",
        "is_suppressed": "suppression",
        "lift_suppression": "suppression",
        "suppress": "suppression",
        "suppression_hash": "suppression",
        "suppression_reason": "suppression",
    },
)

__all__ = [
    "IMPORT_MODES",
    "SUPPRESSION_REASONS",
    "Address",
    "Consent",
    "ErasureReport",
    "ImportReport",
    "InvalidAddress",
    "add_subscriber",
    "add_to_list",
    "archive_list",
    "audience_query",
    "confirm",
    "count_recipients",
    "create_list",
    "delete_segment",
    "end_subscriptions",
    "ensure_list",
    "erase_person",
    "export_person",
    "export_subscribers",
    "find_address",
    "get_list",
    "get_preferences",
    "get_segment",
    "import_subscribers",
    "is_suppressed",
    "lift_suppression",
    "list_lists",
    "list_segments",
    "normalise_address",
    "recipients_query",
    "remove_subscriber",
    "save_segment",
    "search_subscribers",
    "segment_condition",
    "show_list",
    "show_segment",
    "show_subscriber",
    "subscribe",
    "suppress",
    "suppression_hash",
    "suppression_reason",
    "unsubscribe",
    "unsubscribe_address",
    "update_preferences",
]
