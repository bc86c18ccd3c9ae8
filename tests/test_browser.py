"""The subscriber pages end to end, in a real headless browser.

Playwright drives Debian's `chromium` (never a browser that Playwright would
download) against the pages served by werkzeug's real server on 127.0.0.1 and
a free port. A person subscribes, opens the confirmation email from the maildir
outbox, confirms, changes their preferences and unsubscribes, on a phone-sized
and a desktop-sized window; on every page the document must not be wider than
the window (no sideways scrolling), and the browser must report no Content
Security Policy violation.

Skipped, saying why, when Playwright for Python or /usr/bin/chromium is missing
(`.ci/run` installs both).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from webkit import LINK_RE, make_lists, outbox, subscription_statuses, text_of

from newsletter import links
from newsletter.app import Newsletter
from newsletter.audience import recipients_query
from newsletter.config import build_config
from newsletter.models import Campaign, Subscriber
from newsletter.web import make_wsgi_app
from newsletter.web.server import make_web_server

CHROMIUM = os.environ.get("NEWSLETTER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORTS = {"phone": (375, 667), "desktop": (1280, 800)}

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright for Python is not installed (pip install -e '.[test]')",
)
if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


class Site:
    """The pages of a fresh installation, served for real on a free loopback port."""

    def __init__(self, tmp_path: Path) -> None:
        # Bind first, so that the links in emails can name the port the server got.
        self.server = make_web_server(None, "127.0.0.1", 0)  # type: ignore[arg-type]
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        env = {"NEWSLETTER_SECRET_KEY": "browser-test-key"}
        config = build_config(
            {
                "database": {"url": f"sqlite:///{tmp_path / 'newsletter.db'}"},
                "transports": {"outbox": {"dsn": f"maildir:{tmp_path / 'outbox'}"}},
                "web": {"base_url": self.base_url},
            },
            env,
            base_dir=tmp_path,
        )
        self.app = Newsletter(config, env=env)
        make_lists(self.app)
        self.web = make_wsgi_app(self.app)
        self.server.app = self.web
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
        self.web.close()
        self.app.close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    running = Site(tmp_path)
    yield running
    running.close()


def assert_fits(page: Any) -> None:
    """The page does not scroll sideways: the document is no wider than the window."""
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{page.url}: {widths[0]}px wide in a {widths[1]}px window"


def absolute_link(site: Site, text: str, kind: str) -> str:
    for letter, token in LINK_RE.findall(text):
        if letter == kind:
            return f"{site.base_url}/{letter}/{token}"
    raise AssertionError(f"no /{kind}/ link in the email")


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_subscribe_confirm_change_preferences_and_unsubscribe(
    browser: Any, site: Site, viewport: str
) -> None:
    width, height = VIEWPORTS[viewport]
    context = browser.new_context(
        viewport={"width": width, "height": height}, locale="en-GB", java_script_enabled=False
    )
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )

    # Subscribe to one list, with a topic, in Russian.
    page.goto(f"{site.base_url}/subscribe")
    assert page.locator("html").get_attribute("lang") == "en"
    assert_fits(page)
    # The first Tab reaches the skip link, and it is visible when focused.
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.className") == "skip"
    assert page.locator("a.skip").is_visible()
    page.get_by_label("Email address").fill("Tanya@Example.org")
    page.get_by_label("Name").fill("Tanya")
    page.get_by_label("Members").check()
    page.get_by_label("Language of the emails").select_option("ru")
    page.get_by_label("HIV").check()
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Thank you").is_visible()
    assert "Tanya@Example.org" not in page.content()
    assert_fits(page)

    # Open the confirmation email from the outbox, and confirm.
    site.web.tasks.join()
    (message,) = outbox(site.app)
    assert message["Content-Language"] == "ru"
    page.goto(absolute_link(site, text_of(message), "c"))
    assert_fits(page)
    assert subscription_statuses(site.app, "tanya@example.org") == {"members": "unconfirmed"}
    page.get_by_role("button").click()
    page.wait_for_load_state()
    assert_fits(page)
    assert subscription_statuses(site.app, "tanya@example.org") == {"members": "confirmed"}

    # Preferences: the page is in the subscriber's language from now on.
    page.get_by_role("link", name="Изменить выбор").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "ru"
    assert_fits(page)
    page.get_by_label("Имя").fill("Tatiana")
    page.get_by_label("News").check()
    page.get_by_label("Права человека").check()
    page.get_by_label("Язык писем").select_option("en")
    page.get_by_role("button", name="Сохранить").click()
    page.wait_for_load_state()
    assert page.get_by_role("status").inner_text() == "Your choices have been saved."
    assert_fits(page)
    assert subscription_statuses(site.app, "tanya@example.org") == {
        "members": "confirmed",
        "news": "confirmed",
    }
    with site.app.session() as session:
        subscriber = session.scalars(select(Subscriber)).one()
        assert (subscriber.name, subscriber.language) == ("Tatiana", "en")
        assert subscriber.attributes["topics"] == ["hiv", "human-rights"]
        sid = subscriber.id
        campaign = Campaign(kind="announcement", subject="Statement", status="sent")
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
        from newsletter.models import MailingList, campaign_lists

        members = session.scalars(select(MailingList.id).where(MailingList.name == "members"))
        session.execute(
            campaign_lists.insert().values(campaign_id=campaign_id, list_id=members.one())
        )

    # Unsubscribe with the link a message of that campaign carries: one clear button.
    token = links.unsubscribe_token(site.app.signing_key, sid, campaign_id)
    page.goto(links.unsubscribe_url(site.app.config, token))
    assert_fits(page)
    assert page.get_by_role("button").count() == 1
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="You are unsubscribed").is_visible()
    assert_fits(page)
    assert subscription_statuses(site.app, "tanya@example.org") == {
        "members": "unsubscribed",
        "news": "confirmed",
    }
    with site.app.session() as session:
        audience = recipients_query(session, session.get_one(Campaign, campaign_id))
        assert sid not in set(session.scalars(audience))

    # The remaining pages fit the window too.
    for path in ("/subscribe/members", "/archive", "/archive/members", "/nowhere"):
        page.goto(site.base_url + path)
        assert_fits(page)
    assert violations == []
    context.close()


def test_embedded_form_works_inside_another_sites_frame(browser: Any, site: Site) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 667})
    page = context.new_page()
    # The default web.embed_frame_ancestors allows https: sites and the pages' own origin;
    # there is no https site on loopback, so the framing page is written into a page of
    # the installation's own origin.
    page.goto(f"{site.base_url}/healthz")
    page.set_content(
        f'<iframe src="{site.base_url}/embed/members" title="Subscribe" '
        'width="100%" height="420"></iframe>'
    )
    frame = page.frame_locator("iframe")
    frame.get_by_label("Email address").fill("framed@example.org")
    frame.get_by_role("button", name="Subscribe").click()
    frame.get_by_role("status").wait_for()
    assert "check your inbox" in frame.get_by_role("status").inner_text()
    site.web.tasks.join()
    assert subscription_statuses(site.app, "framed@example.org") == {"members": "unconfirmed"}
    context.close()
