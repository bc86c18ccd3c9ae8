"""Is the transport working? One short message to a staff member, and the exact answer.

    check_transport(app, "me@example.org") -> TransportCheck

The console's settings page offers it as "send a test to me": the answer is
what the server or provider said (the SMTP reply, the API's response), so
that staff can tell a wrong password from a refused sender.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

from newsletter.app import Newsletter
from newsletter.audience.addresses import normalise_address
from newsletter.models import utcnow
from newsletter.transports.base import OutgoingMessage
from newsletter.transports.factory import open_transport


@dataclass(frozen=True)
class TransportCheck:
    address: str
    transport: str
    outcome: str
    response: str


def check_transport(app: Newsletter, address: str, name: str | None = None) -> TransportCheck:
    """Send one plain message to `address` through the named (or default) transport."""
    to = normalise_address(address).email
    mail = app.config.mail
    domain = mail.message_id_domain or mail.from_address.rpartition("@")[2]
    message_id = f"{uuid.uuid4().hex}@{domain}"
    message = EmailMessage()
    message["From"] = f"{mail.from_name} <{mail.from_address}>"
    message["To"] = to
    message["Subject"] = f"{app.config.org.name}: a test of the sending setup"
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = f"<{message_id}>"
    message.set_content(
        "This message was sent from the console's settings page to check that mail goes "
        "out. Nothing else was sent.\n"
    )
    outgoing = OutgoingMessage(
        sender=mail.from_address,
        recipient=to,
        data=message.as_bytes(policy=message.policy.clone(linesep="\r\n")),
        message_id=message_id,
    )
    transport = open_transport(app, name)
    try:
        result = transport.send([outgoing])[0]
        description = transport.describe()
    finally:
        transport.close()
    return TransportCheck(
        address=to, transport=description, outcome=result.outcome, response=result.response
    )
