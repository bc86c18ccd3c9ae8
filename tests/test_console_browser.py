"""The staff console end to end, in a real headless browser: the monthly job.

`newsletter serve`'s own Service runs (pages, console, scheduler and one
sending worker) on a free loopback port, delivering over SMTP to a real server
(aiosmtpd) in a thread. An editor signs in, imports the month's items by
upload, builds the bulletin, previews it and sends a test to herself; a
publisher (a second person) approves it, schedules it, then sends it now; the
progress page refreshes itself until the send is done, and the deliveries are
read, on screen and as CSV. A viewer reads the same deliveries with the
addresses masked. axe-core checks every page visited for serious or critical
accessibility violations, and every page must fit a 375 px phone window.

Skipped, saying why, when Playwright for Python, chromium or axe-core is missing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from test_dispatch_support import SMTPSink, start_sink

from newsletter import staff
from newsletter.app import Newsletter
from newsletter.audience.lists import create_list
from newsletter.audience.subscribers import add_subscriber
from newsletter.config import build_config
from newsletter.service import Service

CHROMIUM = os.environ.get("NEWSLETTER_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
LISTING = Path(__file__).parent / "data" / "items" / "listing.txt"
PASSWORD = "correct horse battery"
PEOPLE = [f"member{i}@example.org" for i in range(12)]

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright for Python is not installed (pip install -e '.[test]')",
)
if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)) and not shutil.which(CHROMIUM):
    pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
if not AXE.is_file():
    pytest.skip("axe-core is missing (npm install)", allow_module_level=True)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def sink() -> Iterator[tuple[SMTPSink, int]]:
    handler = SMTPSink(pipelining=True)
    controller = start_sink(handler)
    yield handler, controller.port
    controller.stop()


@pytest.fixture
def service(
    tmp_path: Path, sink: tuple[SMTPSink, int], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Service]:
    # argon2id with small parameters: the defaults cost most of a second a hash here.
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(staff, "_hasher", lambda: cheap)
    env = {"NEWSLETTER_SECRET_KEY": "console-browser-key"}
    config = build_config(
        {
            "database": {"url": f"sqlite:///{tmp_path / 'newsletter.db'}"},
            "transports": {"sink": {"dsn": f"smtp://127.0.0.1:{sink[1]}?tls=none"}},
            "transport": {"default": "sink"},
            "schedule": {"timezone": "Europe/London"},
        },
        env,
        base_dir=tmp_path,
    )
    app = Newsletter(config, env=env)
    create_list(app, "members", title="Members", actor="cli:test")
    for address in PEOPLE:
        add_subscriber(app, address, "members", actor="cli:test")
    for role, email in (("editor", "ed@example.org"), ("publisher", "pub@example.org"),
                        ("viewer", "vi@example.org"), ("admin", "ad@example.org")):  # fmt: skip
        staff.add_user(app, email, role=role, password=PASSWORD, actor="cli:test")
    running = Service(app, host="127.0.0.1", port=0, workers=1)
    running.start()
    yield running
    running.stop()
    app.close()


class Staff:
    """One person's browser window on the console, checking every page it shows."""

    def __init__(self, browser: Any, base: str, *, width: int = 1280) -> None:
        # The console's CSP allows no inline script: let the test inject axe-core.
        self.context = browser.new_context(
            viewport={"width": width, "height": 900}, bypass_csp=True, accept_downloads=True
        )
        self.page = self.context.new_page()
        self.base = base
        self.checked: set[str] = set()

    def open(self, path: str) -> Any:
        self.page.goto(self.base + path)
        self.check()
        return self.page

    def check(self) -> None:
        """axe-core on the page (once per path), and no sideways scrolling."""
        page = self.page
        page.wait_for_load_state()
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"{page.url}: {widths[0]}px wide in {widths[1]}px"
        path = page.url.split("?")[0]
        if path in self.checked:
            return
        self.checked.add(path)
        page.add_script_tag(path=str(AXE))
        violations = page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                 .filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))"""
        )
        assert not violations, f"{page.url}: {violations}"

    def sign_in(self, email: str) -> None:
        page = self.open("/admin/")
        assert "/admin/login" in page.url
        page.get_by_label("Email address").fill(email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(self.base + "/admin/")
        self.check()

    def click(self, name: str, *, role: str = "button") -> Any:
        self.page.get_by_role(role, name=name).first.click()
        self.check()
        return self.page

    def close(self) -> None:
        self.context.close()


def test_the_monthly_job_in_the_console(
    browser: Any, service: Service, sink: tuple[SMTPSink, int], tmp_path: Path
) -> None:
    handler = sink[0]
    base = f"http://{service.address}"

    # The editor, on a phone: imports the month's items by upload.
    editor = Staff(browser, base, width=375)
    editor.sign_in("ed@example.org")
    page = editor.click("Items", role="link")
    page.get_by_label("Upload a text listing, Markdown file or feed file").set_input_files(
        str(LISTING)
    )
    page.get_by_label("Month of a first item with no month line (YYYY-MM)").fill("2019-06")
    editor.click("Import")
    report = page.get_by_role("status").first.inner_text()
    assert "added" in report and " 0 added" not in report
    # And a few Markdown files at once; where the browser can pick a folder, it offers to.
    assert page.get_by_label("Or pick a whole folder").is_visible()
    markdown = sorted((Path(__file__).parent / "data" / "items" / "markdown" / "2019").glob("*.md"))
    page.get_by_label("Markdown files (.md), or one .zip of a folder").set_input_files(
        [str(path) for path in markdown]
    )
    editor.click("Import the files")
    report = page.get_by_role("status").first.inner_text()
    assert "(markdown)" in report and f"{len(markdown)} added" in report

    # Builds the June bulletin for the members list, and looks at it.
    editor.click("Campaigns", role="link")
    page = editor.click("New bulletin or announcement", role="link")
    page.get_by_label("Month (YYYY-MM)").fill("2019-06")
    page.locator("#f-b-lists").select_option("members")
    editor.click("Build the bulletin")
    assert "Built draft" in page.content()
    campaign_path = page.url.replace(base, "")
    assert page.get_by_role("button", name="Approve").count() == 0  # an editor may not
    editor.click("Preview", role="link")
    assert page.locator("iframe").count() == 2
    frame = page.frame_locator("iframe").first
    assert frame.locator("body").inner_text()
    assert "2019" in page.locator("pre.text-part").inner_text()

    # Sends a test to herself: the SMTP server's own answer is shown.
    editor.open(campaign_path)
    editor.click("Send a test to ed@example.org")
    assert "Test sent to ed@example.org" in page.content()
    assert [to for _, to, _ in handler.messages] == ["ed@example.org"]

    # The publisher approves it (a second person), schedules it, then sends it now.
    publisher = Staff(browser, base)
    publisher.sign_in("pub@example.org")
    assert "Drafts waiting for approval" in publisher.page.content()
    page = publisher.open(campaign_path)
    publisher.click("Approve")
    assert "<strong>approved</strong>" in page.content()
    page.get_by_label("Date and time").fill("2099-07-01T09:00")
    page.get_by_label("Time zone").select_option("Europe/Paris")
    publisher.click("Schedule")
    assert "<strong>scheduled</strong>" in page.content()
    assert "2099-07-01 07:00 UTC" in page.content()
    publisher.click("Send now")

    # The progress page refreshes itself until everyone has it.
    assert "/progress" in page.url
    sync_api.expect(page.locator("#status")).to_have_text("sent", timeout=60_000)
    publisher.check()
    assert sorted(to for _, to, _ in handler.messages[1:]) == sorted(PEOPLE)

    # The deliveries, on screen and as CSV.
    page = publisher.click("Deliveries", role="link")
    assert page.locator("tbody tr").count() == len(PEOPLE)
    assert "member0@example.org" in page.content()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download as CSV").click()
    csv_text = Path(download.value.path()).read_text(encoding="utf-8")
    assert csv_text.count("\n") == len(PEOPLE) + 1 and "member0@example.org" in csv_text

    # A viewer reads the same with every address masked, and cannot act.
    viewer = Staff(browser, base, width=375)
    viewer.sign_in("vi@example.org")
    page = viewer.open(campaign_path + "/deliveries")
    assert "member0@example.org" not in page.content()
    assert page.locator("tbody tr").count() == len(PEOPLE)
    page = viewer.open(campaign_path)
    assert page.get_by_role("button", name="Cancel the campaign").count() == 0

    # Every other page, for the admin: it passes axe and fits a phone too.
    admin = Staff(browser, base, width=375)
    admin.sign_in("ad@example.org")
    pages = ("/admin/campaigns/", "/admin/feedback/", "/admin/audit", "/admin/audience/",
             "/admin/audience/subscribers", "/admin/audience/suppression", "/admin/users/",
             "/admin/settings/", campaign_path + "/progress", campaign_path + "/audience",
             campaign_path + "/edit", "/admin/audience/segments/new",
             "/admin/audience/import")  # fmt: skip
    for path in pages:
        admin.open(path)
    page = admin.open("/admin/audience/subscribers")
    page.get_by_role("link", name="member0@example.org").click()
    admin.check()
    # The segment builder counts as the rules are typed (the page's one script).
    page = admin.open("/admin/audience/segments/new")
    page.locator("#field-0").fill("language")
    page.locator("#value-0").fill("en")
    page.wait_for_function(
        "() => document.getElementById('segment-count').textContent.includes('match')"
    )
    assert f"{len(PEOPLE)} subscriber(s) match" in page.locator("#segment-count").inner_text()
    # A CSV import: a dry run first, then for real, with the rejected row offered.
    csv_file = tmp_path / "people.csv"
    csv_file.write_text("email,name\nnew@example.org,New\nbroken,Bad\n", encoding="utf-8")
    page = admin.open("/admin/audience/import")
    page.get_by_label("CSV file").set_input_files(str(csv_file))
    page.get_by_label("List", exact=True).select_option("members")
    admin.click("Upload and do a dry run")
    page.get_by_text("nothing written").wait_for(timeout=30_000)
    admin.check()
    admin.click("Import for real")
    page.get_by_text("What the import did").wait_for(timeout=30_000)
    admin.check()
    assert page.get_by_role("link", name="Download the rejected").count() == 1
    admin.open("/admin/settings/")
    admin.click("Send a test to me (ad@example.org)")
    assert "The transport answered" in admin.page.content()
    for person in (editor, publisher, viewer, admin):
        person.close()
