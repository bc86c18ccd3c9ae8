"""Honest counts: with privacy.count_clicks, links go through /l/<token> addresses that
name a campaign and a link, never a subscriber; the page counts and redirects only to the
signed link. Off by default; opens are never tracked."""

from __future__ import annotations

import email
import json
import re
from email import policy

from sqlalchemy import func, select
from werkzeug.test import Client

from newsletter import links
from newsletter.app import Newsletter
from newsletter.clicks import campaign_clicks
from newsletter.message import Composer, Recipient
from newsletter.models import CampaignLink
from newsletter.web import make_wsgi_app

BASE = "https://news.example.org"
ITEMS = [
    {"kind": "report", "title": "Report", "link": "https://example.org/report?a=1&b=2"},
    {"kind": "statement", "title": "Statement", "link": "https://example.org/statement"},
]


def parts(app: Newsletter, campaign_id: int, subscriber_id: int | None) -> tuple[str, str]:
    data = Composer(app, campaign_id).compose(Recipient(subscriber_id, "a@example.org")).data
    message = email.message_from_bytes(data, policy=policy.default)
    html = message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    text = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    return html, text


def counted_app(make_app) -> Newsletter:
    return make_app({"web": {"base_url": BASE}, "privacy": {"count_clicks": True}})


def test_links_are_counted_per_campaign_and_link_and_name_nobody(make_app, make_campaign) -> None:
    app = counted_app(make_app)
    campaign_id = make_campaign(app, items=ITEMS)
    html, text = parts(app, campaign_id, 7)
    hrefs = re.findall(r'href="([^"]+)"', html)
    counted = [h for h in hrefs if h.startswith(f"{BASE}/l/")]
    # Each item's title and button; the org's website; nothing else.
    assert counted and not any("example.org/report" in h for h in hrefs)
    # Our own pages are never counted: unsubscribe, preferences, view online, archive.
    own = [h for h in hrefs if h.startswith(BASE) and not h.startswith(f"{BASE}/l/")]
    assert {h.split("/")[3] for h in own} >= {"u", "p", "v", "archive"}
    # The text part keeps the real addresses.
    assert "https://example.org/report?a=1&b=2" in text and "/l/" not in text
    # The same addresses for another subscriber: nothing in them tells people apart.
    other_html, _ = parts(app, campaign_id, 8)
    assert re.findall(rf'href="({BASE}/l/[^"]+)"', other_html) == counted
    for href in counted:
        campaign, _link = links.load_click_token(app.signing_key, href.rsplit("/", 1)[1])
        assert campaign == campaign_id
    # Rendering again (a resumed send, another worker) adds no rows.
    with app.session() as session:
        rows = session.scalar(select(func.count()).select_from(CampaignLink))
    parts(app, campaign_id, 9)
    with app.session() as session:
        assert session.scalar(select(func.count()).select_from(CampaignLink)) == rows == 3


def test_the_link_page_counts_and_redirects_only_to_the_signed_link(
    make_app, make_campaign, run_cli
) -> None:
    app = counted_app(make_app)
    campaign_id = make_campaign(app, items=ITEMS)
    html, _ = parts(app, campaign_id, 1)
    by_target = {}
    for row in campaign_clicks(app, campaign_id):
        by_target[row.url] = row.link_id
    report_token = links.click_token(
        app.signing_key, campaign_id, by_target["https://example.org/report?a=1&b=2"]
    )
    assert f"{BASE}/l/{report_token}" in html
    client = Client(make_wsgi_app(app))
    for _ in range(3):
        response = client.get(f"/l/{report_token}?url=https://evil.example")
        assert response.status_code == 302
        assert response.headers["Location"] == "https://example.org/report?a=1&b=2"
        assert "Set-Cookie" not in response.headers
    statement = links.click_token(
        app.signing_key, campaign_id, by_target["https://example.org/statement"]
    )
    assert client.get(f"/l/{statement}").headers["Location"] == "https://example.org/statement"
    # An altered token, or a link id from outside the campaign: no redirect, no count.
    assert client.get(f"/l/{report_token[:-2]}xx").status_code == 400
    stranger = links.click_token(
        app.signing_key, campaign_id + 1, by_target["https://example.org/statement"]
    )
    assert client.get(f"/l/{stranger}").status_code == 404
    counts = {row.url: row.clicks for row in campaign_clicks(app, campaign_id)}
    assert counts == {
        "https://example.org/report?a=1&b=2": 3,
        "https://example.org/statement": 1,
        "https://example.org": 0,
    }


def test_status_shows_the_counts(make_app, make_campaign, run_cli, cli_env) -> None:
    app = make_app({"web": {"base_url": BASE}, "privacy": {"count_clicks": True}})
    campaign_id = make_campaign(app, items=ITEMS)
    parts(app, campaign_id, 1)
    (link,) = [r for r in campaign_clicks(app, campaign_id) if r.url.endswith("/statement")]
    Client(make_wsgi_app(app)).get(
        f"/l/{links.click_token(app.signing_key, campaign_id, link.link_id)}"
    )
    data = json.loads(run_cli("status", str(campaign_id), "--json").stdout)
    assert {"link_id": link.link_id, "url": "https://example.org/statement", "clicks": 1} in data[
        "clicks"
    ]
    shown = run_cli("status", str(campaign_id)).stdout
    assert "1 on 3 links" in shown and "https://example.org/statement" in shown


def test_nothing_is_counted_by_default(make_app, make_campaign) -> None:
    app = make_app({"web": {"base_url": BASE}})
    campaign_id = make_campaign(app, items=ITEMS)
    html, _ = parts(app, campaign_id, 1)
    assert "/l/" not in html and 'href="https://example.org/report?a=1&amp;b=2"' in html
    assert campaign_clicks(app, campaign_id) == []
    # No pixel, no open tracking of any kind: the only images are the ones staff put there.
    assert "<img" not in html
