"""`newsletter bounces fetch`: read the bounce mailbox, record what bounced, tidy the mailbox.

What happens to each unread message:

- a bounce (RFC 3464 or a format flufl.bounce knows): its failures are
  recorded as hard or soft bounces of the delivery named by the VERP address
  it came back to (`[bounces] return_path`, newsletter.return_path: found in
  Delivered-To, X-Original-To, Envelope-To or To), else of the delivery whose
  Message-ID it quotes,
  and the message is marked read (or deleted, with
  `feedback.mailbox_delete_processed`). A bounce that quotes no Message-ID of
  ours is recorded with its address but acts on nobody, and is kept: anyone
  can write to a bounce address, so only a bounce of a message we really
  sent may suppress a subscriber.
- a delay notice ("still trying") and an auto-reply (out of office): not
  bounces and counted for nothing; marked read and kept, since a person may
  want to read an auto-reply ("I have a new address").
- anything else: left unread, untouched, and reported, for a person to look at.

Taking the same message in twice (a crash before it was marked) records
nothing twice: each bounce's receipt key is the digest of the message.
"""

from __future__ import annotations

import email
import hashlib
from dataclasses import dataclass, field
from email import policy

from newsletter.app import Newsletter
from newsletter.errors import ConfigError, InputError
from newsletter.feedback.bounce_mailbox import BounceMailbox, ImapBox, MaildirBox
from newsletter.feedback.classify import classify
from newsletter.feedback.events import FeedbackEvent
from newsletter.feedback.rules import record_feedback
from newsletter.return_path import delivery_from_addresses

# Where the address a bounce came back to is found: the delivering server's
# envelope headers first, then To, which bouncing servers set to the return path.
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")


@dataclass
class FetchReport:
    mailbox: str
    read: int = 0
    hard_bounces: int = 0
    soft_bounces: int = 0
    unmatched: int = 0
    duplicates: int = 0
    suppressed: int = 0
    delays: int = 0
    auto_replies: int = 0
    # Messages left unread because they are no bounce we can read (their mailbox keys).
    left_unread: list[str] = field(default_factory=list)


def open_mailbox(
    app: Newsletter, maildir: str | None = None, imap: str | None = None
) -> BounceMailbox:
    """The mailbox named on the command line, else the one in the config."""
    config = app.config.feedback
    if maildir and imap:
        raise InputError("give either --maildir or --imap, not both")
    if not maildir and not imap:
        maildir, imap = config.mailbox_maildir or None, config.mailbox_imap_url or None
    if imap:
        return ImapBox(imap, app.env.get(config.mailbox_password_env, ""))
    if maildir:
        return MaildirBox(app.config.resolve_path(maildir))
    raise ConfigError(
        f"{app.config.source}: no bounce mailbox: set feedback.mailbox_maildir or "
        "feedback.mailbox_imap_url, or give --maildir PATH or --imap URL"
    )


def fetch_bounces(app: Newsletter, box: BounceMailbox) -> FetchReport:
    report = FetchReport(mailbox=box.describe())
    delete = app.config.feedback.mailbox_delete_processed
    for key, data in list(box.unread()):
        report.read += 1
        message = email.message_from_bytes(data, policy=policy.compat32)
        found = classify(message)
        if found.kind == "unknown":
            report.left_unread.append(key)
            continue
        if found.kind in ("delay", "auto_reply"):
            if found.kind == "delay":
                report.delays += 1
            else:
                report.auto_replies += 1
            box.mark_read(key)
            continue
        digest = hashlib.sha256(data).hexdigest()
        verp_delivery = delivery_from_addresses(
            app.signing_key,
            [str(v) for name in _ENVELOPE_HEADERS for v in message.get_all(name, [])],
        )
        events = [
            FeedbackEvent(
                type="hard_bounce" if failure.hard else "soft_bounce",
                source="mailbox",
                address=failure.address,
                delivery_id=verp_delivery,
                message_id=found.original_message_id,
                key=f"mailbox:{digest}:{number}",
                match_by_address=False,
                detail={
                    "status": failure.status,
                    "diagnostic": failure.diagnostic[:500],
                    "parser": found.parser,
                },
            )
            for number, failure in enumerate(found.failures)
        ]
        recorded = record_feedback(app, events)
        report.hard_bounces += sum(1 for f in found.failures if f.hard)
        report.soft_bounces += sum(1 for f in found.failures if not f.hard)
        report.unmatched += recorded.unmatched
        report.duplicates += recorded.duplicates
        report.suppressed += recorded.suppressed
        if delete and not recorded.unmatched:
            box.delete(key)
        else:
            box.mark_read(key)
    return report
