"""What each provider's webhook payload means, as FeedbackEvents: one function per provider.

Only feedback is kept: bounces, complaints and unsubscribes. Deliveries,
deferrals (the provider is still trying), opens and clicks are read and
dropped: the ledger already says what was sent, and the project does not
track reading.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from newsletter.feedback.events import FeedbackEvent
from newsletter.transports.replies import HARD_BOUNCE_ENHANCED


class PayloadError(Exception):
    """A verified request whose body is not what the provider sends."""


# Ids are 64-bit in the database; a larger number cannot name a delivery, and binding it
# would make the query itself fail.
_MAX_ID = 2**63 - 1


def _delivery_id(value: Any) -> int | None:
    if isinstance(value, list):  # SES tags are lists of values
        value = value[0] if value else None
    if not isinstance(value, str | int) or isinstance(value, bool) or len(str(value)) > 19:
        return None
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if 0 < number <= _MAX_ID else None


def load_json(body: bytes | str) -> Any:
    """A JSON body; ValueError for one that is not JSON or is nested too deeply to read.

    json.loads recurses once per level, so a body of a few thousand "[" raises
    RecursionError, which must not escape as a server error.
    """
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("the JSON is nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ValueError(str(exc)) from None


def _json(body: bytes) -> Any:
    try:
        return load_json(body)
    except ValueError as exc:
        raise PayloadError(f"the body is not JSON: {str(exc)[:200]}") from None


def content_key(item: Any) -> str:
    """A stable key for an event that carries no id of its own: a hash of its content, so
    that the same event sent twice is taken once and two different events are both taken."""
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:40]


# --- SendGrid -------------------------------------------------------------------------

SENDGRID_DROPPED = {
    "Bounced Address": "hard_bounce",
    "Invalid": "hard_bounce",
    "Spam Reporting Address": "complaint",
    "Unsubscribed Address": "unsubscribe",
}


def sendgrid_events(body: bytes) -> list[FeedbackEvent]:
    items = _json(body)
    if not isinstance(items, list):
        raise PayloadError("SendGrid posts a JSON array of events")
    events = []
    for item in items:
        if not isinstance(item, dict):
            raise PayloadError("an event is not a JSON object")
        name = item.get("event")
        kind = None
        if name == "bounce":
            status = str(item.get("status", ""))
            hard = item.get("type") != "blocked" and (
                status in HARD_BOUNCE_ENHANCED
                or item.get("bounce_classification") == "Invalid Address"
            )
            kind = "hard_bounce" if hard else "soft_bounce"
        elif name == "dropped":
            kind = SENDGRID_DROPPED.get(str(item.get("reason", "")))
        elif name == "spamreport":
            kind = "complaint"
        elif name in ("unsubscribe", "group_unsubscribe"):
            kind = "unsubscribe"
        if kind is None:
            continue
        events.append(
            FeedbackEvent(
                type=kind,
                source="sendgrid",
                address=str(item.get("email", "")),
                delivery_id=_delivery_id(item.get("delivery_id")),
                provider_message_id=str(item.get("sg_message_id", "")).split(".", 1)[0],
                key=f"sendgrid:{item['sg_event_id']}" if item.get("sg_event_id") else "",
                detail={
                    "event": name,
                    "reason": str(item.get("reason", ""))[:500],
                    "status": str(item.get("status", "")),
                },
            )
        )
    return events


# --- Mailgun --------------------------------------------------------------------------


def mailgun_events(payload: dict[str, Any]) -> list[FeedbackEvent]:
    data = payload.get("event-data")
    if not isinstance(data, dict):
        raise PayloadError("a Mailgun webhook has an event-data object")
    name = data.get("event")
    reason = str(data.get("reason", ""))
    kind = None
    if name == "failed":
        if reason == "suppress-complaint":
            kind = "complaint"
        elif reason == "suppress-unsubscribe":
            kind = "unsubscribe"
        elif data.get("severity") == "permanent" and reason in ("bounce", "suppress-bounce"):
            kind = "hard_bounce"
        else:
            kind = "soft_bounce"
    elif name == "complained":
        kind = "complaint"
    elif name == "unsubscribed":
        kind = "unsubscribe"
    if kind is None:
        return []
    status = data.get("delivery-status") or {}
    headers = (data.get("message") or {}).get("headers") or {}
    variables = data.get("user-variables") or {}
    return [
        FeedbackEvent(
            type=kind,
            source="mailgun",
            address=str(data.get("recipient", "")),
            delivery_id=_delivery_id(variables.get("delivery_id")),
            provider_message_id=str(headers.get("message-id", "")).strip("<>"),
            key=f"mailgun:{data['id']}" if data.get("id") else "",
            detail={
                "event": name,
                "severity": str(data.get("severity", "")),
                "reason": reason,
                "code": str(status.get("code", "")),
                "message": str(status.get("message") or status.get("description") or "")[:500],
            },
        )
    ]


# --- Postmark -------------------------------------------------------------------------

POSTMARK_HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "AddressChange"}
POSTMARK_SOFT = {"SoftBounce", "Transient", "DnsError", "Blocked", "SMTPApiError", "Undeliverable"}
POSTMARK_SUPPRESSION = {
    "HardBounce": "hard_bounce",
    "SpamComplaint": "complaint",
    "ManualSuppression": "unsubscribe",
}


def postmark_events(body: bytes) -> list[FeedbackEvent]:
    item = _json(body)
    if not isinstance(item, dict):
        raise PayloadError("Postmark posts one JSON object")
    record = item.get("RecordType")
    kind = None
    if record == "Bounce":
        bounce = str(item.get("Type", ""))
        if bounce in POSTMARK_HARD:
            kind = "hard_bounce"
        elif bounce in POSTMARK_SOFT:
            kind = "soft_bounce"
        elif bounce in ("SpamNotification", "SpamComplaint"):
            kind = "complaint"
        elif bounce == "Unsubscribe":
            kind = "unsubscribe"
        address, key = item.get("Email", ""), f"postmark:bounce:{_postmark_id(item)}"
    elif record == "SpamComplaint":
        kind = "complaint"
        address, key = item.get("Email", ""), f"postmark:complaint:{_postmark_id(item)}"
    elif record == "SubscriptionChange":
        if item.get("SuppressSending"):
            kind = POSTMARK_SUPPRESSION.get(str(item.get("SuppressionReason", "")))
        address = item.get("Recipient", "")
        if item.get("MessageID") and item.get("ChangedAt"):
            key = f"postmark:change:{item['MessageID']}:{item['ChangedAt']}"
        else:
            key = f"postmark:change:{content_key(item)}"
    else:
        return []
    if kind is None:
        return []
    metadata = item.get("Metadata") or {}
    return [
        FeedbackEvent(
            type=kind,
            source="postmark",
            address=str(address),
            delivery_id=_delivery_id(metadata.get("delivery_id")),
            provider_message_id=str(item.get("MessageID", "")),
            key=key,
            detail={
                "record": str(record),
                "type": str(item.get("Type") or item.get("SuppressionReason") or ""),
                "description": str(item.get("Description") or item.get("Details") or "")[:500],
            },
        )
    ]


def _postmark_id(item: dict[str, Any]) -> str:
    """Postmark's id of the event, else one derived from its content (see content_key)."""
    found = item.get("ID")
    return str(found) if found not in (None, "") else content_key(item)


# --- Amazon SES (the Message of an SNS notification) ---------------------------------


def ses_events(message_id: str, text: str) -> list[FeedbackEvent]:
    note = _json(text.encode("utf-8"))
    if not isinstance(note, dict):
        raise PayloadError("an SES notification is a JSON object")
    kind = note.get("notificationType") or note.get("eventType")
    mail = note.get("mail") or {}
    tags = mail.get("tags") or {}
    ours = str((mail.get("commonHeaders") or {}).get("messageId", "")).strip("<>")
    common: dict[str, Any] = {
        "source": "ses",
        "delivery_id": _delivery_id(tags.get("delivery_id")),
        "message_id": ours,
        "provider_message_id": str(mail.get("messageId", "")),
    }
    events = []
    if kind == "Bounce":
        bounce = note.get("bounce") or {}
        hard = bounce.get("bounceType") == "Permanent"
        for number, recipient in enumerate(bounce.get("bouncedRecipients") or []):
            events.append(
                FeedbackEvent(
                    type="hard_bounce" if hard else "soft_bounce",
                    address=str(recipient.get("emailAddress", "")),
                    key=f"ses:{message_id}:{number}",
                    detail={
                        "bounce_type": str(bounce.get("bounceType", "")),
                        "bounce_subtype": str(bounce.get("bounceSubType", "")),
                        "status": str(recipient.get("status", "")),
                        "diagnostic": str(recipient.get("diagnosticCode", ""))[:500],
                    },
                    **common,
                )
            )
    elif kind == "Complaint":
        complaint = note.get("complaint") or {}
        for number, recipient in enumerate(complaint.get("complainedRecipients") or []):
            events.append(
                FeedbackEvent(
                    type="complaint",
                    address=str(recipient.get("emailAddress", "")),
                    key=f"ses:{message_id}:{number}",
                    detail={"feedback_type": str(complaint.get("complaintFeedbackType", ""))},
                    **common,
                )
            )
    return events
