"""What an SMTP reply means for a delivery: sent, retry later, or failed for good.

The rules, from RFC 5321 and RFC 3463 (enhanced status codes):

- 2xx: the server took the message.
- Throttling: retry, and slow the whole send down. 421 always (the server is
  busy and closes the connection); 450/451/452/454 when the reply says it is
  about the sender's rate, by an enhanced code 4.7.x or in words ("rate
  limit", "too many messages", "throttled", "slow down"), as providers do.
- Any other 4xx: a temporary failure of this recipient (a full mailbox, a
  lookup failure, greylisting); retry it with backoff, and keep the pace for
  everyone else.
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

THROTTLING_CODES = frozenset({421})
MAYBE_THROTTLING_CODES = frozenset({450, 451, 452, 454})
RATE_WORDS_RE = re.compile(
    r"rate|throttl|too many|slow down|limit|exceeded|too fast|busy", re.IGNORECASE
)
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


def is_throttling(code: int, detail: str, enhanced: str | None) -> bool:
    """Whether a temporary failure is the server asking the sender to slow down."""
    if code in THROTTLING_CODES:
        return True
    if code not in MAYBE_THROTTLING_CODES:
        return False
    if enhanced is not None and enhanced.startswith("4.7."):
        return True
    return RATE_WORDS_RE.search(detail) is not None


def classify(code: int, message: bytes | str) -> SendResult:
    """The outcome of a delivery whose transaction ended with this reply."""
    text = reply_text(code, message)
    if 200 <= code < 300:
        return SendResult("sent", text)
    detail = text[4:]
    enhanced = enhanced_code(detail)
    if not 500 <= code < 600:
        # 4xx, and anything a confused server says that is not a known answer.
        return SendResult("retry", text, throttled=is_throttling(code, detail, enhanced))
    if enhanced is not None:
        hard = enhanced in HARD_BOUNCE_ENHANCED
    else:
        hard = code in (550, 551, 553) and NO_SUCH_USER_RE.search(detail) is not None
    return SendResult("failed", text, hard_bounce=hard)
