"""What a message in the bounce mailbox is: a bounce (hard or soft), an auto-reply, or unknown.

1. RFC 3464 delivery status notifications (multipart/report;
   report-type=delivery-status) are read with the standard `email` package:
   per recipient the Action and Status fields. `failed` with a 5.1.x or 5.2.1
   status (the mailbox does not exist or is disabled; the same list as the
   SMTP transport's, newsletter.transports.replies) is hard, any other
   `failed` is soft; `delayed` is only a warning: the server is still trying.
2. Anything else goes to flufl.bounce, the bounce parser of GNU Mailman,
   which knows the non-standard formats of many mail servers (qmail,
   Exim, old Exchange, Yahoo, …): its permanent failures count as hard, its
   temporary ones as soft.
3. An auto-reply (RFC 3834 Auto-Submitted: auto-replied, the X-Autoreply
   family, Precedence: auto_reply, "Out of office"/"Automatic reply" subjects)
   is not a bounce and counts for nothing.
4. Otherwise the message is unknown and is left where it is.

The original message is found by the Message-ID it quotes: in the returned
headers (text/rfc822-headers or message/rfc822) or, in non-standard bounces,
anywhere in the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from flufl.bounce import all_failures

from newsletter.transports.replies import HARD_BOUNCE_ENHANCED

STATUS_RE = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
MESSAGE_ID_RE = re.compile(r"^\s*Message-ID:\s*<([^<>\s]+)>", re.IGNORECASE | re.MULTILINE)
AUTO_SUBJECT_RE = re.compile(
    r"^(auto(matic)?[ -]?(reply|response)|out of (the )?office|vacation|abwesenheit|"
    r"absence|r[ée]ponse automatique|respuesta autom[áa]tica|автоответ)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Failure:
    address: str
    hard: bool
    status: str = ""
    diagnostic: str = ""


@dataclass(frozen=True)
class Classification:
    # bounce | delay | auto_reply | unknown
    kind: str
    failures: tuple[Failure, ...] = ()
    # The Message-ID of the message that bounced, without angle brackets.
    original_message_id: str = ""
    # Which reader recognised it: "rfc3464" or "flufl.bounce".
    parser: str = ""
    notes: list[str] = field(default_factory=list)


def classify(message: Message) -> Classification:
    report = _delivery_status(message)
    if report is not None:
        return report
    if is_auto_reply(message):
        return Classification("auto_reply")
    temporary, permanent = all_failures(message)
    if temporary or permanent:
        failures = [Failure(_text(a), True) for a in sorted(permanent)]
        failures += [Failure(_text(a), False) for a in sorted(temporary - permanent)]
        return Classification(
            "bounce", tuple(failures), _quoted_message_id(message), "flufl.bounce"
        )
    return Classification("unknown")


def is_auto_reply(message: Message) -> bool:
    auto = str(message.get("Auto-Submitted", "")).strip().lower()
    if auto.startswith("auto-replied"):
        return True
    if any(message.get(name) for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder")):
        return True
    if str(message.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    return AUTO_SUBJECT_RE.match(str(message.get("Subject", "")).strip()) is not None


def _delivery_status(message: Message) -> Classification | None:
    if message.get_content_type() != "multipart/report":
        return None
    if str(message.get_param("report-type", "")).lower() != "delivery-status":
        return None
    failures: list[Failure] = []
    delayed = False
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        for group in _status_groups(part):
            action = group.get("action", "").lower()
            recipient = group.get("final-recipient") or group.get("original-recipient")
            address = _address_field(recipient)
            status_match = STATUS_RE.search(group.get("status", ""))
            status = ".".join(status_match.groups()) if status_match else ""
            if action == "delayed":
                delayed = True
            elif action == "failed" and address:
                hard = status.startswith("5.") and status in HARD_BOUNCE_ENHANCED
                failures.append(Failure(address, hard, status, group.get("diagnostic-code", "")))
    original = _quoted_message_id(message)
    if failures:
        return Classification("bounce", tuple(failures), original, "rfc3464")
    if delayed:
        return Classification("delay", (), original, "rfc3464")
    return None


def _status_groups(part: Message) -> list[dict[str, str]]:
    """The per-message and per-recipient field groups of a message/delivery-status part.

    The email package gives the groups as sub-messages; their fields are read here
    as lower-case names with unfolded values.
    """
    groups: list[dict[str, str]] = []
    payload = part.get_payload()
    blocks: list[Any] = payload if isinstance(payload, list) else []
    if not blocks:
        # Some writers put the fields in a text body; read them line by line.
        text = payload if isinstance(payload, str) else ""
        for chunk in re.split(r"\r?\n\s*\r?\n", text):
            fields: dict[str, str] = {}
            for line in chunk.splitlines():
                name, sep, value = line.partition(":")
                if sep:
                    fields[name.strip().lower()] = value.strip()
            if fields:
                groups.append(fields)
        return groups
    for block in blocks:
        groups.append({k.lower(): " ".join(str(v).split()) for k, v in block.items()})
    return groups


def _address_field(value: str | None) -> str:
    """`rfc822; ana@example.org` → `ana@example.org`."""
    if not value:
        return ""
    return value.split(";", 1)[-1].strip().strip("<>")


def _quoted_message_id(message: Message) -> str:
    """The Message-ID of the original, from its returned headers or quoted text."""
    for part in message.walk():
        content_type = part.get_content_type()
        if content_type in ("text/rfc822-headers", "message/rfc822"):
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                value = payload[0].get("Message-ID")
                if value:
                    return str(value).strip().strip("<>")
            found = MESSAGE_ID_RE.search(_decoded_text(part))
            if found:
                return found.group(1)
    for part in message.walk():
        if part.get_content_maintype() == "text":
            found = MESSAGE_ID_RE.search(_decoded_text(part))
            if found:
                return found.group(1)
    return ""


def _decoded_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(part.get_content_charset() or "utf-8", "replace")
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
