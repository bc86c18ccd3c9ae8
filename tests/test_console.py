"""The staff console in-process: sign-in, sessions, CSRF, throttling, roles, errors.

The console is driven through the same WSGI stack `newsletter serve` runs (the
subscriber pages with the console mounted at /admin), with werkzeug's test
client, on SQLite and PostgreSQL. The browser tests (test_console_browser.py)
do the monthly job end to end.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import subprocess
import time
import urllib.request
from http.cookies import SimpleCookie

import pytest
from argon2 import PasswordHasher
from conftest import newsletter_command
from consolekit import PASSWORD, Console, email_of, make_staff, signed_in, snapshot
from sqlalchemy import select

from newsletter import audit, staff
from newsletter.admin import create_app
from newsletter.admin.security import PERMISSION_ATTRIBUTE
from newsletter.app import Newsletter
from newsletter.audience.lists import create_list
from newsletter.errors import InvalidState
from newsletter.models import Campaign, Item, StaffUser, Subscriber
from newsletter.roles import ROLE_NAMES, ROLES, allows

CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id still, with small parameters: the defaults cost most of a second a hash on
    a loaded test machine, and these tests sign in dozens of times."""
    monkeypatch.setattr(staff, "_hasher", lambda: CHEAP_HASHER)


@pytest.fixture
def world(app: Newsletter, make_campaign) -> dict[str, int]:
    """Staff of every role, a draft campaign with two subscribers, an item, a spare account."""
    make_staff(app)
    campaign_id = make_campaign(
        app, subscribers=[("ana@example.org", "Ana"), ("bo@example.org", "Bo")]
    )
    staff.add_user(app, "spare@example.org", role="editor", password=PASSWORD, actor="cli:t")
    with app.session() as session:
        return {
            "campaign_id": campaign_id,
            "item_id": session.scalars(select(Item.id)).first() or 0,
            "subscriber_id": session.scalars(select(Subscriber.id)).first() or 0,
            "user_id": session.scalar(
                select(StaffUser.id).where(StaffUser.email == "spare@example.org")
            )
            or 0,
        }


# --- signing in ----------------------------------------------------------------------------


def test_every_console_page_needs_signing_in_and_the_public_pages_set_no_cookie(
    app: Newsletter, world
) -> None:
    console = Console(app)
    response = console.get("/admin/campaigns/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login?next=/admin/campaigns/")
    assert console.client.post("/admin/campaigns/1/approve").status_code == 400  # no token
    public = console.get("/subscribe")
    assert public.status_code == 200
    assert "Set-Cookie" not in public.headers


def test_the_session_cookie_is_httponly_strict_and_scoped_to_admin(app: Newsletter, world) -> None:
    response = Console(app).sign_in(email_of("editor"))
    assert response.status_code == 302
    cookie = SimpleCookie(response.headers["Set-Cookie"])["newsletter_console"]
    assert cookie["path"] == "/admin"
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert not cookie["secure"]


def test_the_cookie_is_secure_when_the_base_url_is_https(make_app) -> None:
    app = make_app({"web": {"base_url": "https://news.example.org"}})
    make_staff(app, ("admin",))
    console = Console(app, base="https://news.example.org")
    response = console.sign_in(email_of("admin"))
    assert SimpleCookie(response.headers["Set-Cookie"])["newsletter_console"]["secure"]


def test_one_generic_error_whatever_was_wrong(app: Newsletter, world) -> None:
    staff.set_disabled(app, "spare@example.org", actor="cli:t")
    answers = {
        Console(app).sign_in("nobody@example.org").get_data(as_text=True),
        Console(app).sign_in(email_of("admin"), "wrong password!").get_data(as_text=True),
        Console(app).sign_in("spare@example.org").get_data(as_text=True),
        Console(app).sign_in("not an address").get_data(as_text=True),
    }
    errors = {page.split('id="login-error">')[1].split("<")[0] for page in answers}
    assert len(errors) == 1


def test_failed_sign_ins_are_throttled_per_account_then_per_client(app: Newsletter, world) -> None:
    limit = app.config.admin.login_attempts
    console = Console(app)
    for _ in range(limit):
        assert console.sign_in(email_of("editor"), "wrong password!").status_code == 401
    # Now even the right password is refused for this account, saying to wait.
    refused = console.sign_in(email_of("editor"))
    assert refused.status_code == 429
    assert "Try again in" in refused.get_data(as_text=True)
    # Another account from the same client still may, until the client's own limit.
    assert console.sign_in(email_of("viewer")).status_code == 302
    for number in range(limit * 4 - limit):
        console.sign_in(f"guess{number}@example.org", "wrong password!")
    assert console.sign_in(email_of("admin")).status_code == 429
    # From another client address, the same account signs in.
    assert console.sign_in(email_of("admin"), client="192.0.2.7").status_code == 302


def test_a_disabled_account_is_signed_out_at_its_next_request(app: Newsletter, world) -> None:
    console = signed_in(app, "editor")
    assert console.get("/admin/").status_code == 200
    staff.set_disabled(app, email_of("editor"), actor="cli:t")
    assert console.get("/admin/").status_code == 302


def test_a_session_idle_longer_than_the_timeout_ends(app: Newsletter, world) -> None:
    console = signed_in(app, "viewer")
    flask_app = console.client.application.mounts["/admin"]  # type: ignore[attr-defined]
    assert flask_app.permanent_session_lifetime.total_seconds() == 60 * 30
    flask_app.permanent_session_lifetime = 1  # seconds, for the test
    assert console.get("/admin/").status_code == 200
    time.sleep(2.1)
    assert console.get("/admin/").status_code == 302


def test_sign_out_ends_the_session(app: Newsletter, world) -> None:
    console = signed_in(app, "viewer")
    assert console.post("/admin/logout").status_code == 302
    assert console.get("/admin/").status_code == 302


def test_sign_in_never_redirects_off_the_console(app: Newsletter, world) -> None:
    console = Console(app)
    response = console.client.post(
        "/admin/login",
        data={"csrf_token": console.token(), "email": email_of("viewer"),
              "password": PASSWORD, "next": "//evil.example/"},
    )  # fmt: skip
    assert response.headers["Location"] == "/admin/"


# --- CSRF ------------------------------------------------------------------------------------


def test_a_post_without_the_session_token_is_refused_and_changes_nothing(
    app: Newsletter, world
) -> None:
    console = signed_in(app, "admin")
    other = signed_in(app, "publisher")
    before = snapshot(app)
    path = f"/admin/campaigns/{world['campaign_id']}/cancel"
    for token in ("", "forged-token"):
        response = console.post(path, token=token)
        assert response.status_code == 400
        assert "expired" in response.get_data(as_text=True)
    # A token from another person's session is no good either.
    assert console.post(path, token=other.token("/admin/")).status_code == 400
    assert snapshot(app) == before


# --- roles -----------------------------------------------------------------------------------


def form_for(endpoint: str, world: dict[str, int]) -> dict[str, str]:
    """Plausible form data for each POST route (what it does with it does not matter here)."""
    return {
        "items.import_items": {"url": "https://127.0.0.1:1/feed.xml"},
        "items.edit": {"title": "A new title", "summary": "S", "kind": "news", "link": ""},
        "items.exclude": {"excluded": "1"},
        "campaigns.new_bulletin": {"month": "2019-06"},
        "campaigns.new_announcement": {"item": str(world["item_id"])},
        "campaigns.edit": {"subject": "Edited", "intro": "", f"position-{world['item_id']}": "1"},
        "campaigns.schedule": {"at": "2099-01-01T09:00", "timezone": "UTC"},
        "audience.add_list": {"name": "new-list", "optin": "double"},
        "audience.erase": {"confirm": "ana@example.org"},
        "audience.suppress": {"email": "someone@example.org"},
        "audience.add": {"email": "new.person@example.org", "list": "nope"},
        "audience.save": {"name": "seg-x", "field-0": "language", "op-0": "eq", "value-0": "en"},
        "audience.count_page": {"field-0": "language", "op-0": "eq", "value-0": "en"},
        "users.add": {"email": "new@example.org", "role": "viewer", "password": PASSWORD,
                      "password2": PASSWORD},
        "users.set_role": {"role": "viewer"},
        "users.reset_password": {"password": "another long password"},
    }.get(endpoint, {})  # fmt: skip


def post_routes(app: Newsletter) -> list[tuple[str, str, str]]:
    """(endpoint, path, permission) of every POST route of the console."""
    flask_app = create_app(app)
    routes = []
    for rule in flask_app.url_map.iter_rules():
        if "POST" not in (rule.methods or ()) or rule.endpoint.startswith("auth."):
            continue
        view = flask_app.view_functions[rule.endpoint]
        permission = getattr(view, PERMISSION_ATTRIBUTE, None)
        assert permission, f"{rule.endpoint} takes POST but declares no permission"
        routes.append((rule.endpoint, rule.rule, permission))
    return routes


def test_every_post_route_is_allowed_to_exactly_the_roles_the_table_says(
    app: Newsletter, world
) -> None:
    routes = post_routes(app)
    assert len(routes) >= 20
    paths = {
        endpoint: "/admin"
        + rule.replace("<int:campaign_id>", str(world["campaign_id"]))
        .replace("<int:item_id>", str(world["item_id"]))
        .replace("<int:subscriber_id>", str(world["subscriber_id"]))
        .replace("<int:user_id>", str(world["user_id"]))
        .replace("<job_id>", "no-such-job")
        for endpoint, rule, _ in routes
    }
    consoles = {role: signed_in(app, role) for role in ROLE_NAMES}
    # Every refusal first, on an unchanged database: 403 and not one row different.
    for role, console in consoles.items():
        for endpoint, _, permission in routes:
            if allows(role, permission):
                continue
            before = snapshot(app)
            response = console.post(paths[endpoint], form_for(endpoint, world))
            assert response.status_code == 403, (role, endpoint, response.status_code)
            assert "Not allowed" in response.get_data(as_text=True)
            assert snapshot(app) == before, (role, endpoint)
    # Then what each role may do gets through (it may still be a 4xx about the state or the
    # input, never a refusal of the role).
    allowed_somewhere = set()
    for role, console in consoles.items():
        for endpoint, _, permission in routes:
            if not allows(role, permission):
                continue
            allowed_somewhere.add(endpoint)
            response = console.post(paths[endpoint], form_for(endpoint, world))
            assert response.status_code not in (401, 403, 500), (
                role,
                endpoint,
                response.status_code,
            )
    assert allowed_somewhere == {endpoint for endpoint, _, _ in routes}


def test_pages_hide_what_a_role_cannot_do(app: Newsletter, world) -> None:
    path = f"/admin/campaigns/{world['campaign_id']}"
    viewer = signed_in(app, "viewer").get(path).get_data(as_text=True)
    editor = signed_in(app, "editor").get(path).get_data(as_text=True)
    publisher = signed_in(app, "publisher").get(path).get_data(as_text=True)
    assert "Approve" not in viewer and "Send a test" not in viewer and ">Edit<" not in viewer
    assert "Send a test" in editor and "Approve" not in editor
    assert "Approve" in publisher
    users_link = 'href="/admin/users/"'
    assert users_link not in viewer
    assert users_link in signed_in(app, "admin").get("/admin/").get_data(as_text=True)


def test_viewers_see_subscribers_addresses_masked(app: Newsletter, world) -> None:
    viewer = signed_in(app, "viewer").get("/admin/audience/subscribers").get_data(as_text=True)
    editor = signed_in(app, "editor").get("/admin/audience/subscribers").get_data(as_text=True)
    assert "ana@example.org" not in viewer and "a…@e….org" in viewer
    assert "ana@example.org" in editor
    profile = f"/admin/audience/subscribers/{world['subscriber_id']}"
    assert "ana@example.org" not in signed_in(app, "viewer").get(profile).get_data(as_text=True)


def test_the_role_table_grows_from_viewer_to_admin() -> None:
    names = list(ROLES)
    assert names == ["viewer", "editor", "publisher", "admin"]
    for smaller, larger in itertools.pairwise(names):
        assert ROLES[smaller] < ROLES[larger]
    for permission in ("campaigns.edit", "campaigns.approve", "campaigns.send"):
        assert permission in ROLES["publisher"]
    assert "campaigns.approve" not in ROLES["editor"]
    assert "users.manage" in ROLES["admin"] and "users.manage" not in ROLES["publisher"]


# --- errors are pages -----------------------------------------------------------------------


def test_a_missing_campaign_is_a_404_page(app: Newsletter, world) -> None:
    console = signed_in(app, "publisher")
    for response in (
        console.get("/admin/campaigns/999"),
        console.post("/admin/campaigns/999/approve"),
    ):
        assert response.status_code == 404
        assert "no campaign with id 999" in response.get_data(as_text=True)


def test_a_wrong_status_action_is_a_409_with_the_reason(app: Newsletter, world) -> None:
    console = signed_in(app, "publisher")
    response = console.post(f"/admin/campaigns/{world['campaign_id']}/pause")
    assert response.status_code == 409
    assert "is draft" in response.get_data(as_text=True)


def test_a_bad_field_is_marked_next_to_the_field(app: Newsletter, world) -> None:
    console = signed_in(app, "editor")
    response = console.post("/admin/campaigns/new/bulletin", {"month": "June"})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'id="e-month"' in page and 'aria-invalid="true"' in page
    assert "YYYY-MM" in page.split('id="e-month"')[1][:200]


# --- four-eyes approval ---------------------------------------------------------------------


def test_whoever_built_a_draft_cannot_approve_it_but_a_second_person_can(
    app: Newsletter, world
) -> None:
    staff.add_user(app, "pub2@example.org", role="publisher", password=PASSWORD, actor="cli:t")
    builder = signed_in(app, "publisher")
    built = builder.post("/admin/campaigns/new/bulletin", {"month": "2019-06"})
    assert built.status_code == 302, built.get_data(as_text=True)[:500]
    campaign_id = int(built.headers["Location"].rstrip("/").split("/")[-1])
    refused = builder.post(f"/admin/campaigns/{campaign_id}/approve")
    assert refused.status_code == 409
    assert "second person" in refused.get_data(as_text=True)
    second = Console(app)
    second.sign_in("pub2@example.org")
    assert second.post(f"/admin/campaigns/{campaign_id}/approve").status_code == 302
    with app.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        assert (campaign.status, campaign.approved_by) == ("approved", "user:pub2@example.org")
    # An edit by the second person takes it back to draft; now neither the builder nor the
    # editor may approve it, and a third person may.
    second.post(f"/admin/campaigns/{campaign_id}/edit", {"subject": "Changed", "intro": ""})
    with app.session() as session:
        assert session.get_one(Campaign, campaign_id).status == "draft"
    assert second.post(f"/admin/campaigns/{campaign_id}/approve").status_code == 409
    assert builder.post(f"/admin/campaigns/{campaign_id}/approve").status_code == 409
    assert (
        signed_in(app, "admin").post(f"/admin/campaigns/{campaign_id}/approve").status_code == 302
    )


def test_the_console_edits_through_the_edition_edit_path(app: Newsletter, world) -> None:
    """The form and `edition edit` are one path: an approved campaign goes back to draft and
    loses its frozen snapshot, a preheader nobody wrote follows the new intro, and a form
    saved as it was changes nothing and writes no audit line."""
    staff.add_user(app, "pub2@example.org", role="publisher", password=PASSWORD, actor="cli:t")
    builder = signed_in(app, "publisher")
    built = builder.post("/admin/campaigns/new/bulletin", {"month": "2019-06"})
    campaign_id = int(built.headers["Location"].rstrip("/").split("/")[-1])
    second = Console(app)
    second.sign_in("pub2@example.org")
    assert second.post(f"/admin/campaigns/{campaign_id}/approve").status_code == 302
    with app.session() as session:
        approved = session.get_one(Campaign, campaign_id)
        assert approved.snapshot is not None
        subject = approved.subject
    editor = signed_in(app, "editor")
    saved = editor.post(
        f"/admin/campaigns/{campaign_id}/edit", {"subject": subject, "intro": "A new intro."}
    )
    assert saved.status_code == 302
    with app.session() as session:
        edited = session.get_one(Campaign, campaign_id)
        assert (edited.status, edited.snapshot, edited.approved_by) == ("draft", None, "")
        assert (edited.intro, edited.preheader) == ("A new intro.", "A new intro.")
    unchanged = editor.post(
        f"/admin/campaigns/{campaign_id}/edit", {"subject": subject, "intro": "A new intro."}
    )
    assert unchanged.status_code == 302
    details = [
        e.detail
        for e in audit.list_events(app, campaign_id=campaign_id)
        if e.action == "edit" and e.actor == "user:editor@example.org"
    ]
    assert details == ["changed intro"]
    empty = editor.post(f"/admin/campaigns/{campaign_id}/edit", {"subject": " ", "intro": ""})
    assert empty.status_code == 400
    assert "the subject cannot be empty" in empty.get_data(as_text=True)


def test_self_approval_when_the_config_says_so(make_app, make_campaign) -> None:
    app = make_app({"admin": {"approval": "self"}})
    make_staff(app, ("publisher", "admin"))
    make_campaign(app)
    console = signed_in(app, "publisher")
    built = console.post("/admin/campaigns/new/bulletin", {"month": "2019-06"})
    campaign_id = int(built.headers["Location"].rstrip("/").split("/")[-1])
    assert console.post(f"/admin/campaigns/{campaign_id}/approve").status_code == 302


# --- the `users` command ------------------------------------------------------------------


def test_users_commands_add_list_change_and_disable(run_cli, app: Newsletter) -> None:
    added = run_cli(
        "users", "add", "Ana@Example.org", "--role", "editor", "--name", "Ana",
        "--password-stdin", "--json", input=PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["id"] >= 1
    assert staff.authenticate(app, "ana@example.org", PASSWORD) is not None
    again = run_cli("users", "add", "ana@example.org", "--role", "viewer", "--password-stdin",
                    input=PASSWORD + "\n")  # fmt: skip
    assert again.returncode == 2 and "already exists" in again.stderr
    assert again.stderr.count("\n") == 1
    short = run_cli("users", "add", "bo@example.org", "--role", "viewer", "--password-stdin",
                    input="short\n")  # fmt: skip
    assert short.returncode == 2 and "at least 10 characters" in short.stderr
    assert run_cli("users", "add", "bo@example.org", "--role", "boss").returncode == 2
    assert run_cli("users", "set-role", "ana@example.org", "publisher").returncode == 0
    assert run_cli("users", "disable", "ana@example.org").returncode == 0
    listed = json.loads(run_cli("users", "list", "--json").stdout)
    assert [(u["email"], u["role"], u["disabled"]) for u in listed] == [
        ("Ana@example.org", "publisher", True)
    ]
    assert staff.authenticate(app, "ana@example.org", PASSWORD) is None
    reset = run_cli("users", "reset-password", "ana@example.org", "--password-stdin",
                    input="a brand new password\n")  # fmt: skip
    assert reset.returncode == 0, reset.stderr
    assert run_cli("users", "disable", "ana@example.org", "--enable").returncode == 0
    assert staff.authenticate(app, "ana@example.org", "a brand new password") is not None
    assert run_cli("users", "disable", "nobody@example.org").returncode == 2


def test_the_last_enabled_admin_stays(app: Newsletter) -> None:
    make_staff(app, ("admin",))
    with pytest.raises(InvalidState):
        staff.set_role(app, email_of("admin"), "viewer", actor="cli:t")
    with pytest.raises(InvalidState):
        staff.set_disabled(app, email_of("admin"), actor="cli:t")


# --- segments and imports -------------------------------------------------------------------


def test_the_segment_builder_counts_then_saves(app: Newsletter, world) -> None:
    console = signed_in(app, "admin")
    rule = {"combine": "all", "field-0": "language", "op-0": "eq", "value-0": "en"}
    live = console.get("/admin/audience/segments/count", query_string=rule)
    assert live.status_code == 200
    assert live.json == {
        "text": "2 subscriber(s) match; 2 of them can be mailed "
        "(confirmed on a list, not unsubscribed, bounced or suppressed)."
    }
    counted = console.post("/admin/audience/segments/new", rule)
    assert "2 subscriber(s) match" in counted.get_data(as_text=True)
    bad = console.post(
        "/admin/audience/segments/new", {**rule, "op-0": "contains", "field-0": "status"}
    )
    assert bad.status_code == 400 and 'id="e-rules"' in bad.get_data(as_text=True)
    saved = console.post("/admin/audience/segments", {**rule, "name": "english"})
    assert saved.status_code == 302
    assert "english" in console.get("/admin/audience/").get_data(as_text=True)


def wait_for_job(console: Console, path: str) -> str:
    deadline = time.monotonic() + 60
    while True:
        page = console.get(path).get_data(as_text=True)
        if "running:" not in page:
            return page
        assert time.monotonic() < deadline, "the import job did not finish"
        time.sleep(0.2)


def test_a_csv_import_dry_runs_then_imports_and_offers_the_rejects(app: Newsletter, world) -> None:
    create_list(app, "imported", title="Imported", actor="cli:test")
    console = signed_in(app, "admin")
    csv = b"email,name\nnew1@example.org,One\nnot-an-address,Two\nnew2@example.org,Three\n"
    started = console.post(
        "/admin/audience/import",
        {"list": "imported", "mode": "add", "file": (io.BytesIO(csv), "people.csv")},
        content_type="multipart/form-data",
    )
    assert started.status_code == 302
    job = started.headers["Location"]
    page = wait_for_job(console, job)
    assert "dry run: nothing written" in page
    assert "<dt>added</dt><dd>2</dd>" in page and "<dt>rejected</dt><dd>1</dd>" in page
    with app.session() as session:
        assert (
            session.scalar(select(Subscriber.id).where(Subscriber.email == "new1@example.org"))
            is None
        )
    assert console.post(job + "/run").status_code == 302
    page = wait_for_job(console, job)
    assert "What the import did" in page
    with app.session() as session:
        assert session.scalar(select(Subscriber.id).where(Subscriber.email == "new1@example.org"))
    rejects = console.get(job + "/rejected.csv")
    assert rejects.status_code == 200 and "not-an-address" in rejects.get_data(as_text=True)
    assert signed_in(app, "editor").get(job).status_code == 403


# --- `newsletter web` ------------------------------------------------------------------------


def test_newsletter_web_serves_the_console_beside_cookie_free_pages(cli_env, tmp_path) -> None:
    log = tmp_path / "web.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*newsletter_command(), "web", "--port", "0"],
            env=cli_env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (found := re.search(r"http://([\d.]+:\d+)/", log.read_text())):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "newsletter web did not start"
            time.sleep(0.2)
        base = f"http://{found.group(1)}"
        with urllib.request.urlopen(f"{base}/admin/login") as console:
            assert console.status == 200
            assert "Path=/admin" in console.headers["Set-Cookie"]
        with urllib.request.urlopen(f"{base}/subscribe") as pages:
            assert pages.status == 200
            assert pages.headers["Set-Cookie"] is None
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_every_console_action_is_in_the_audit_trail_with_its_actor(app: Newsletter, world) -> None:
    editor = signed_in(app, "editor")
    item = world["item_id"]
    assert editor.post(f"/admin/items/{item}/exclude", {"excluded": "1"}).status_code == 302
    campaign = world["campaign_id"]
    editor.post(f"/admin/campaigns/{campaign}/edit", {"subject": "New subject", "intro": ""})
    trail = signed_in(app, "viewer").get("/admin/audit").get_data(as_text=True)
    assert "item.exclude" in trail and "user:editor@example.org" in trail
    assert "user.sign_in" in trail
    page = signed_in(app, "viewer").get(f"/admin/campaigns/{campaign}").get_data(as_text=True)
    assert "changed subject" in page and ">edit<" in page


def test_an_item_edit_with_one_bad_field_writes_nothing_and_marks_that_field(
    app: Newsletter, world
) -> None:
    console = signed_in(app, "editor")
    item = world["item_id"]
    with app.session() as session:
        before = session.get_one(Item, item).title
    response = console.post(
        f"/admin/items/{item}/edit",
        {"title": "A better title", "summary": "A summary.", "kind": "report",
         "link": "javascript:alert(1)", "excluded": "1"},
    )  # fmt: skip
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'id="e-link"' in page and "must start with http" in page
    with app.session() as session:
        stored = session.get_one(Item, item)
        assert (stored.title, stored.excluded) == (before, False)
