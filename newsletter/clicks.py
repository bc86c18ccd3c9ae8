"""Counting clicks without tracking anyone (`[privacy] count_clicks`, off by default).

Opens are never tracked: a tracking pixel follows a person, and Apple Mail's
privacy protection loads every image anyway, so an open count is fiction.
Clicks, when an admin turns counting on, are counted per campaign and link
and nothing else:

- stage 1 (newsletter.render) hands the rendered HTML to `count_links`, which
  gives each distinct web link of the campaign a `campaign_links` row and
  replaces the address with ``/l/<token>``; the token signs (campaign id, link
  id), so every recipient gets the same address and none can be told apart;
- our own pages (unsubscribe, preferences, view online, the archive: anything
  under ``web.base_url``) and ``mailto:`` links are left as they are, and so is
  the text part, where a reader sees the real address;
- `follow` (the ``/l/<token>`` page) counts one click and returns the address
  the row holds: the redirect can only go where the signed token says, never
  to an address someone put in a URL (no open redirect);
- `campaign_clicks` gives the counts per link, for `newsletter status` and
  the staff console.

A count is what it is: mail scanners that follow links add to it, and one
reader clicking twice counts twice. It says which links interest readers,
not who read what.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from newsletter import links
from newsletter.app import Newsletter
from newsletter.errors import NotFound
from newsletter.models import CampaignLink

# An href of an <a> or <area> (and a VML button's), double-quoted as premailer writes it.
_HREF = re.compile(r'(<(?:a|area|v:roundrect)\b[^>]*?\bhref=")(https?://[^"]+)(")', re.IGNORECASE)


@dataclass(frozen=True)
class LinkClicks:
    """How often one link of a campaign was followed."""

    link_id: int
    url: str
    clicks: int


def count_links(
    app: Newsletter, session: Session, campaign_id: int, literals: tuple[str, ...]
) -> tuple[str, ...]:
    """Rendered HTML (its literal chunks) with each web link of the campaign counted.

    The link rows are made in the caller's transaction (the render's): on SQLite a second
    write transaction opened here would wait on the first until it timed out."""
    own = links.archive_url(app.config).rsplit("/", 1)[0] + "/"
    # href values are HTML-escaped (&amp;); the rows keep the addresses themselves.
    found = {
        href: html.unescape(href)
        for literal in literals
        for _, href, _ in _HREF.findall(literal)
        if not html.unescape(href).startswith(own)
    }
    if not found:
        return literals
    ids = _link_ids(session, campaign_id, sorted(set(found.values())))
    key = app.signing_key
    targets = {
        href: links.click_url(app.config, links.click_token(key, campaign_id, ids[url]))
        for href, url in found.items()
    }

    def swap(match: re.Match[str]) -> str:
        target = targets.get(match.group(2))
        return match.group(1) + target + match.group(3) if target else match.group(0)

    return tuple(_HREF.sub(swap, literal) for literal in literals)


def follow(app: Newsletter, token: str) -> str:
    """Count one click of a counted link and return its address.

    InvalidToken for a token that is not genuine; NotFound when the campaign
    (and so its links) was deleted.
    """
    campaign_id, link_id = links.load_click_token(app.signing_key, token)
    with app.session() as session:
        # One UPDATE … RETURNING: the count goes up by one however many clicks arrive
        # at once, and the address comes from the row the token names, nowhere else.
        url = session.execute(
            update(CampaignLink)
            .where(CampaignLink.id == link_id, CampaignLink.campaign_id == campaign_id)
            .values(clicks=CampaignLink.clicks + 1)
            .returning(CampaignLink.url)
        ).scalar()
    if url is None:
        raise NotFound(f"no counted link {link_id} in campaign {campaign_id}")
    return url


def campaign_clicks(app: Newsletter, campaign_id: int) -> list[LinkClicks]:
    """Each counted link of a campaign with its clicks, most followed first."""
    with app.session() as session:
        rows = session.execute(
            select(CampaignLink.id, CampaignLink.url, CampaignLink.clicks)
            .where(CampaignLink.campaign_id == campaign_id)
            .order_by(CampaignLink.clicks.desc(), CampaignLink.id)
        ).all()
    return [LinkClicks(link_id=i, url=url, clicks=n) for i, url, n in rows]


def _link_ids(session: Session, campaign_id: int, urls: list[str]) -> dict[str, int]:
    """The id of each link of the campaign, its row made on first sight."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    hashes = {url: hashlib.sha256(url.encode("utf-8")).hexdigest() for url in urls}
    # INSERT … ON CONFLICT DO NOTHING: workers rendering the same campaign at once
    # (or a resumed send rendering it again) find the same rows and never fail.
    session.execute(
        insert(CampaignLink)
        .values(
            [
                {"campaign_id": campaign_id, "url": u, "url_hash": h, "clicks": 0}
                for u, h in hashes.items()
            ]
        )
        .on_conflict_do_nothing(index_elements=["campaign_id", "url_hash"])
    )
    rows = session.execute(
        select(CampaignLink.url_hash, CampaignLink.id).where(
            CampaignLink.campaign_id == campaign_id,
            CampaignLink.url_hash.in_(list(hashes.values())),
        )
    ).all()
    by_hash = dict(rows)
    return {url: by_hash[digest] for url, digest in hashes.items()}
