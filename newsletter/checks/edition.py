"""`newsletter check ID`: an edition's message as a receiver will judge it, per language.

The message is composed by the same code as a real send (newsletter.message),
for a made-up sample subscriber, and read back from its bytes: what the check
sees is what a receiving server and a mail app get. What it looks for:

- size: Gmail clips an HTML part over 102 KB behind a "[Message clipped]" link,
  taking the footer and its unsubscribe link with it (warning);
- images without an ``alt`` attribute: screen readers and the many apps that
  block images show nothing (warning; ``alt=""`` marks a decorative image and
  is fine);
- ``http://`` links and images: browsers warn, some apps block (warning);
- links or images pointing at localhost or a private address while the base
  URL is public: they work on the sender's machine and nowhere else (error);
- no text part, or an empty one (error: spam filters score HTML-only mail);
- no List-Unsubscribe or List-Unsubscribe-Post header (error: Gmail and Yahoo
  require one-click unsubscribe from bulk senders, RFC 8058);
- a From domain without a DKIM signature of ours when the campaign goes out
  over SMTP (error: unauthenticated bulk mail is rejected); API providers and
  the maildir outbox are left alone, since they or the program reading the
  files sign;
- a base URL that is not https (error: RFC 8058 one-click needs https);
- an item whose call to action has words but no usable URL, so the button
  silently disappears (warning).
"""

from __future__ import annotations

import email
import ipaddress
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from html.parser import HTMLParser
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.app import Newsletter
from newsletter.audience.resolve import recipients_query
from newsletter.checks.findings import ERROR, WARNING, Finding
from newsletter.errors import NotFound
from newsletter.locale import base_language
from newsletter.message import Composer, Recipient
from newsletter.models import Campaign, Subscriber
from newsletter.notices import SAMPLE_RECIPIENT_EMAIL, SAMPLE_RECIPIENT_NAME
from newsletter.render import SAFE_LINK_SCHEMES
from newsletter.transports.dsn import parse_dsn
from newsletter.transports.factory import dsn_source

# Gmail clips a message whose HTML is larger than this many bytes.
GMAIL_CLIP_BYTES = 102 * 1024
# Transports whose messages only we can sign: the rest sign themselves (API providers)
# or hand files to a program that may (the maildir outbox).
SIGNED_BY_US = ("smtp", "smtps")
# Host names that never leave the machine or the local network.
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


@dataclass(frozen=True)
class EditionReport:
    campaign_id: int
    languages: tuple[str, ...]
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> int:
        return sum(1 for finding in self.findings if finding.severity == ERROR)


def check_edition(app: Newsletter, campaign_id: int, language: str | None = None) -> EditionReport:
    """Every finding of one campaign, rendered in `language`, else in every language its
    audience will read it in (the campaign's own, and each offered language present)."""
    with app.session() as session:
        campaign = session.get(Campaign, campaign_id)
        if campaign is None:
            raise NotFound(f"no campaign with id {campaign_id} (see `newsletter campaigns list`)")
        languages = (language,) if language else _audience_languages(app, session, campaign)
        transport_name = campaign.transport or app.config.default_transport
        # The words of a call to action with nowhere to go: the template drops the button.
        lost_actions = [
            item.title
            for item in campaign.items
            if item.link_text.strip()
            and not item.link.strip().lower().startswith(SAFE_LINK_SCHEMES)
        ]
        # An item image is always shown with an alt attribute, empty when staff gave none;
        # an empty one says "decoration", which an item's picture is not.
        image_findings = [
            Finding(
                WARNING,
                "image-alt",
                f"item {item.id} ({item.title!r}) has an image without alt text: "
                f"newsletter items edit {item.id} --image-alt '…'",
            )
            for item in campaign.items
            if item.image and not item.image_alt.strip()
        ]
    findings: list[Finding] = []
    findings += config_findings(app, transport_name)
    findings += image_findings
    # Said once, not per language: it is the item's, whatever language it is read in.
    findings += [
        Finding(
            WARNING,
            "cta-without-url",
            f"item {title!r} has a call to action but no http(s) or mailto link; "
            "the button is left out: add the item's url",
        )
        for title in lost_actions
    ]
    # One composer renders each language once (stage 1), as a send does.
    composer = Composer(app, campaign_id)
    for lang in languages:
        recipient = Recipient(None, SAMPLE_RECIPIENT_EMAIL, SAMPLE_RECIPIENT_NAME, lang)
        message = composer.compose(recipient, lang)
        findings += message_findings(message.data, app.config.web.base_url, lang)
    return EditionReport(campaign_id, languages, tuple(findings))


def _audience_languages(app: Newsletter, session: Session, campaign: Campaign) -> tuple[str, ...]:
    """The edition languages the campaign's audience reads: one DISTINCT over the audience
    query (set-based, so a million recipients never pass through Python), each mapped as the
    composer maps a reader (an offered language, else the campaign's own)."""
    offered = {base_language(code) for code in app.config.web.languages}
    own = base_language(campaign.language) or campaign.language
    audience = recipients_query(session, campaign).subquery()
    present = session.scalars(
        select(Subscriber.language)
        .where(Subscriber.id.in_(select(audience.c.subscriber_id)))
        .distinct()
    )
    found = {own}
    for code in present:
        base = base_language(code)
        if base and base in offered:
            found.add(base)
    return (own, *sorted(found - {own}))


def config_findings(app: Newsletter, transport_name: str) -> list[Finding]:
    """What the config decides for every edition: the base URL and DKIM."""
    config = app.config
    findings = []
    if not config.web.base_url.lower().startswith("https://"):
        findings.append(
            Finding(
                ERROR,
                "base-url-not-https",
                f"web.base_url {config.web.base_url} is not https: one-click unsubscribe "
                "(RFC 8058) needs an https link; serve the pages over https and set it",
            )
        )
    table = config.transport(transport_name)
    scheme = parse_dsn(table.dsn, dsn_source(app, transport_name)).scheme
    from_domain = config.mail.from_address.rpartition("@")[2].lower()
    if scheme in SIGNED_BY_US and not aligned(from_domain, config.dkim.domain.lower()):
        why = (
            f"[dkim] signs for {config.dkim.domain}, which is not the From domain"
            if config.dkim.domain
            else "no [dkim] key is configured"
        )
        findings.append(
            Finding(
                ERROR,
                "no-dkim",
                f"messages from {from_domain} go out over SMTP unsigned ({why}): receivers "
                "reject unauthenticated bulk mail; run `newsletter dkim keygen` and set [dkim]",
            )
        )
    return findings


def message_findings(data: bytes, base_url: str, language: str) -> list[Finding]:
    """What a receiver holds against one composed message (its bytes)."""
    message = email.message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    findings: list[Finding] = []

    def found(severity: str, code: str, text: str) -> None:
        findings.append(Finding(severity, code, text, language))

    unsubscribe = str(message.get("List-Unsubscribe", ""))
    if "<https://" not in unsubscribe and "<http://" not in unsubscribe:
        found(
            ERROR,
            "no-list-unsubscribe",
            "no List-Unsubscribe header with a web link: Gmail and Yahoo require one",
        )
    if str(message.get("List-Unsubscribe-Post", "")).strip() != "List-Unsubscribe=One-Click":
        found(
            ERROR,
            "no-one-click",
            "no List-Unsubscribe-Post: List-Unsubscribe=One-Click header (RFC 8058)",
        )

    text_part = message.get_body(preferencelist=("plain",))
    if text_part is None or not str(text_part.get_content()).strip():
        found(
            ERROR,
            "no-text-part",
            "no text part, or an empty one: spam filters score HTML-only mail; check the "
            ".txt template",
        )
    html_part = message.get_body(preferencelist=("html",))
    if html_part is None:
        return findings
    html = str(html_part.get_content())
    size = len(html.encode("utf-8"))
    if size > GMAIL_CLIP_BYTES:
        found(
            WARNING,
            "size",
            f"the HTML is {size / 1024:.0f} KB: Gmail clips it after 102 KB, hiding the "
            "rest and the unsubscribe link; use fewer or shorter items",
        )

    page = _Page()
    page.feed(html)
    page.close()
    for src in page.images_without_alt:
        found(
            WARNING,
            "image-alt",
            f'image {_short(src)} has no alt text: add image_alt (or alt="" if it is decoration)',
        )
    public_base = not _is_local(urlsplit(base_url).hostname or "")
    seen: set[str] = set()
    for url in page.urls:
        if url in seen:
            continue
        seen.add(url)
        parts = urlsplit(url)
        # Our own links are covered by the base URL's finding.
        if parts.scheme.lower() == "http" and not url.startswith(base_url.rstrip("/") + "/"):
            found(WARNING, "http-link", f"{_short(url)} is http://, not https://")
        host = parts.hostname or ""
        if public_base and parts.scheme.lower() in ("http", "https") and _is_local(host):
            found(
                ERROR,
                "private-link",
                f"{_short(url)} points at {host}, which only this network can reach, while "
                f"the base URL {base_url} is public",
            )
    return findings


def aligned(from_domain: str, signing_domain: str) -> bool:
    """DMARC's relaxed alignment, nearly: one domain is the other or a parent of it."""
    if not signing_domain:
        return False
    return (
        from_domain == signing_domain
        or from_domain.endswith("." + signing_domain)
        or signing_domain.endswith("." + from_domain)
    )


def _is_local(host: str) -> bool:
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_private or address.is_loopback or address.is_link_local


def _short(url: str) -> str:
    return url if len(url) <= 80 else url[:77] + "…"


class _Page(HTMLParser):
    """The links and images of an HTML part."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self.images_without_alt: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            src = values.get("src") or ""
            self.urls.append(src)
            if "alt" not in values:
                self.images_without_alt.append(src)
        # v:roundrect is the Outlook (VML) form of a button.
        elif tag in ("a", "area", "v:roundrect") and values.get("href"):
            self.urls.append(values["href"] or "")
