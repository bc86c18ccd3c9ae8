"""The console's settings page (DKIM, return path, click counting) and a campaign's clicks."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from consolekit import Console, email_of, make_staff
from werkzeug.test import Client

from newsletter import links, staff
from newsletter.app import Newsletter
from newsletter.clicks import campaign_clicks
from newsletter.dkim import generate_key
from newsletter.web import make_wsgi_app
from tests.test_clicks import BASE, ITEMS, parts

CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staff, "_hasher", lambda: CHEAP_HASHER)


def viewer(app: Newsletter) -> Console:
    make_staff(app, ("viewer",))
    console = Console(app, base=BASE)
    assert console.sign_in(email_of("viewer")).status_code == 302
    return console


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_settings_show_dkim_with_the_record_to_publish(
    make_app, tmp_path: Path, key_type: str
) -> None:
    made = generate_key("example.org", "news2026", tmp_path / "dkim.pem", key_type)
    app = make_app({
        "web": {"base_url": BASE},
        "dkim": {"domain": "example.org", "selector": "news2026",
                 "private_key_file": str(tmp_path / "dkim.pem")},
        "bounces": {"return_path": "bounces@example.org"},
    })  # fmt: skip
    console = viewer(app)
    page = html.unescape(console.get("/admin/settings/").get_data(as_text=True))
    assert f"{key_type}-sha256" in page and "(readable)" in page
    assert made.record_name == "news2026._domainkey.example.org"
    assert f"<code>{made.record_name}</code>" in page
    assert made.record_value in page
    assert "bounces@example.org" in page
    assert "Click counting is <strong>off</strong>" in page
    # A key file gone since start-up: the page says signing is broken, and why.
    (tmp_path / "dkim.pem").unlink()
    page = html.unescape(console.get("/admin/settings/").get_data(as_text=True))
    assert "broken" in page and "cannot read it" in page and "(not readable)" in page
    assert made.record_value not in page


def test_settings_without_dkim_say_it_is_off(make_app) -> None:
    page = viewer(make_app({"web": {"base_url": BASE}})).get("/admin/settings/")
    text = page.get_data(as_text=True)
    assert "Off: messages sent over SMTP" in text and "none: bounces go to the From" in text


def test_a_campaign_shows_its_link_clicks_only_when_counting_is_on(make_app, make_campaign) -> None:
    app = make_app({"web": {"base_url": BASE}, "privacy": {"count_clicks": True}})
    campaign_id = make_campaign(app, items=ITEMS)
    parts(app, campaign_id, 1)
    (link,) = [r for r in campaign_clicks(app, campaign_id) if r.url.endswith("/statement")]
    pages = Client(make_wsgi_app(app))
    for _ in range(2):
        pages.get(f"/l/{links.click_token(app.signing_key, campaign_id, link.link_id)}")
    page = viewer(app).get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Link clicks" in page
    assert '<td>https://example.org/statement</td><td class="num">2</td>' in page


def test_no_click_table_when_counting_is_off(make_app, make_campaign) -> None:
    app = make_app({"web": {"base_url": BASE}})
    campaign_id = make_campaign(app, items=ITEMS)
    page = viewer(app).get(f"/admin/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Link clicks" not in page
