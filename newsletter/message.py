"""Stage 2 of rendering: one complete message per recipient.

PLACEHOLDER until the rendering work lands: builds a bare text message so that
the dispatcher can be written against the final interface (Recipient, Composer).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from newsletter.app import Newsletter
from newsletter.models import Campaign
from newsletter.transports.base import OutgoingMessage


@dataclass(frozen=True, slots=True)
class Recipient:
    subscriber_id: int
    email: str
    name: str = ""
    language: str = "en"
    delivery_id: int | None = None


class Composer:
    """Renders a campaign once (stage 1) and then one message per recipient (stage 2)."""

    def __init__(self, app: Newsletter, campaign_id: int) -> None:
        self.app = app
        with app.session() as session:
            campaign = session.get_one(Campaign, campaign_id)
            self.subject = campaign.subject
            self.campaign_id = campaign_id

    def compose(self, recipient: Recipient) -> OutgoingMessage:
        mail = self.app.config.mail
        msg = EmailMessage()
        msg["From"] = mail.from_address
        msg["To"] = recipient.email
        msg["Subject"] = self.subject
        message_id = make_msgid(domain=mail.from_address.split("@")[1])
        msg["Message-ID"] = message_id
        msg.set_content(f"Hello {recipient.name}")
        return OutgoingMessage(
            sender=mail.from_address,
            recipient=recipient.email,
            data=msg.as_bytes(policy=msg.policy.clone(linesep="\r\n")),
            message_id=message_id.strip("<>"),
            delivery_id=recipient.delivery_id,
        )
