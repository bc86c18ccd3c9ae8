"""What an SMTP reply means for a delivery: sent, retry later, or failed for good.

The rules, from RFC 5321 and RFC 3463 (enhanced status codes):

- 2xx: the server took the message.
- 421, 451 and 454 are how servers and providers say "too fast" or "not now"
  (421 also closes the connection): retry, and slow the whole send down.
- Any other 4xx: a temporary failure of this recipient; retry with backoff.
- 5xx: a permanent failure of this recipient. It is a hard bounce (the address
  is suppressed) when the enhanced code says the mailbox or domain does not
  exist (5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10) or is disabled (5.2.1); or, from a
  server without enhanced codes, when a 550/551/553 reply says so in words.
  Policy rejections (5.7.x: relay denied, spam) fail the delivery but keep the
  address: the next campaign may well be accepted.
"""

from __future__ import annotations

import re

from newsletter.transports.base import SendResult

THROTTLING_CODES = frozenset({421, 451, 454})
HARD_BOUNCE_ENHANCED = frozenset({"5.1.1", "5.1.2", "5.1.3", "5.1.6", "5.1.10", "5.2.1"})
ENHANCED_RE = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
NO_SUCH_USER_RE = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient)|"
    r"(mailbox|recipient|address|user) (does not exist|not found|unknown)|"
    r"invalid (recipient|mailbox)",
    re.IGNORECASE,
)


def reply_text(code: int, message: bytes | str) -> str:
    """A reply as one line, as kept on the delivery: `550 5.1.1 No such user`."""
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    return f"{code} {' '.join(message.split())}".strip()


def enhanced_code(message: str) -> str | None:
    """The RFC 3463 code at the start of a reply's text, if the server gave one."""
    match = ENHANCED_RE.match(message)
    return ".".join(match.groups()) if match else None


def classify(code: int, message: bytes | str) -> SendResult:
    """The outcome of a delivery whose transaction ended with this reply."""
    text = reply_text(code, message)
    if 200 <= code < 300:
        return SendResult("sent", text)
    if not 500 <= code < 600:
        # 4xx, and anything a confused server says that is not a known answer.
        return SendResult("retry", text, throttled=code in THROTTLING_CODES)
    detail = text[4:]
    enhanced = enhanced_code(detail)
    if enhanced is not None:
        hard = enhanced in HARD_BOUNCE_ENHANCED
    else:
        hard = code in (550, 551, 553) and NO_SUCH_USER_RE.search(detail) is not None
    return SendResult("failed", text, hard_bounce=hard)
