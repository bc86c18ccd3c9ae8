"""`newsletter check`: what a receiving server or a phone will hold against a message.

Two checks, one shape of result (a `Finding` each):

- `check_edition(app, campaign_id, language=None)` (edition.py): the message
  one subscriber would get, composed exactly as the send composes it, read
  the way a receiver reads it: its size, images, links, parts and headers,
  and the config that decides whether it is signed and can be unsubscribed
  from in one click.
- `check_domain(app, domain=None)` (domain.py): the From domain's SPF, DKIM
  and DMARC records in DNS, with what to publish when one is missing or wrong.

A finding is an "error" when it would break delivery (a receiver rejects or
spam-folders the message, or the reader cannot unsubscribe) and a "warning"
when it spoils the message without stopping it. The command exits 1 when
there is at least one error.
"""

from newsletter.checks.domain import DomainReport, check_domain
from newsletter.checks.edition import EditionReport, check_edition
from newsletter.checks.findings import Finding

__all__ = ["DomainReport", "EditionReport", "Finding", "check_domain", "check_edition"]
