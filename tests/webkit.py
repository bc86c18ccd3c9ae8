"""Helpers shared by the subscriber pages' tests (not a test module itself)."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import func, select
from werkzeug.test import Client, TestResponse

from newsletter.app import Newsletter
from newsletter.audience.lists import create_list
from newsletter.models import Event, Subscriber, Subscription, Suppression

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
LINK_RE = re.compile(r"https?://[^\s\"<>]+/([cupv])/([A-Za-z0-9._=-]+)")


def make_lists(app: Newsletter) -> None:
    """The lists every page test starts with: two public ones (double and single opt-in),
    one private one."""
    create_list(
        app, "members", title="Members", description="For members.", public=True, actor="tester"
    )
    create_list(app, "news", title="News", optin="single", public=True, actor="tester")
    create_list(app, "partners", title="Partners", public=False, actor="tester")


def csrf_of(response: TestResponse) -> str:
    match = CSRF_RE.search(response.get_data(as_text=True))
    assert match, "the page has no CSRF token"
    return match.group(1)


def without_csrf(body: bytes) -> bytes:
    return CSRF_RE.sub('name="csrf_token" value=""', body.decode()).encode()


def post_form(client: Client, path: str, data: dict, **kwargs) -> TestResponse:
    """GET the form, then POST it with its own CSRF token (like a browser)."""
    page = client.get(path, **kwargs)
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    return client.post(path, data={"csrf_token": csrf_of(page), **data}, **kwargs)


def outbox(app: Newsletter) -> list[EmailMessage]:
    """The messages in the test maildir outbox, oldest first."""
    dsn = app.config.transport().dsn
    folder = app.config.resolve_path(dsn.split(":", 1)[1]) / "new"
    if not folder.is_dir():
        return []
    files = sorted(folder.iterdir(), key=lambda p: (p.stat().st_mtime_ns, p.name))
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in files
    ]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return part.get_content()


def link_in(message: EmailMessage, kind: str) -> str:
    """The path (/c/<token>, /p/<token>, …) of the first link of that kind in a message."""
    for letter, token in LINK_RE.findall(text_of(message)):
        if letter == kind:
            return f"/{letter}/{token}"
    raise AssertionError(f"no /{kind}/ link in the message")


def state(app: Newsletter) -> tuple:
    """Everything a page could change, to compare before and after a request."""
    with app.session() as session:
        return (
            tuple(
                session.execute(
                    select(
                        Subscriber.id, Subscriber.name, Subscriber.language, Subscriber.status
                    ).order_by(Subscriber.id)
                )
            ),
            tuple(
                session.execute(
                    select(
                        Subscription.subscriber_id, Subscription.list_id, Subscription.status
                    ).order_by(Subscription.id)
                )
            ),
            session.scalar(select(func.count()).select_from(Suppression)),
            session.scalar(select(func.count()).select_from(Event)),
        )


def subscription_statuses(app: Newsletter, email_address: str) -> dict[str, str]:
    from newsletter.models import MailingList

    with app.session() as session:
        rows = session.execute(
            select(MailingList.name, Subscription.status)
            .join(Subscription, Subscription.list_id == MailingList.id)
            .join(Subscriber, Subscriber.id == Subscription.subscriber_id)
            .where(Subscriber.email_key == email_address.casefold())
        )
        return dict(rows.all())


def subscriber_id(app: Newsletter, email_address: str) -> int | None:
    with app.session() as session:
        return session.scalar(
            select(Subscriber.id).where(Subscriber.email_key == email_address.casefold())
        )


def outbox_dir(app: Newsletter) -> Path:
    return app.config.resolve_path(app.config.transport().dsn.split(":", 1)[1])
