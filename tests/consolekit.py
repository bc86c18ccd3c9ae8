"""Helpers shared by the staff console's tests (not a test module itself)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from werkzeug.test import Client, TestResponse

from newsletter import staff
from newsletter.admin import mount
from newsletter.app import Newsletter
from newsletter.models import Base
from newsletter.roles import ROLE_NAMES
from newsletter.web import make_wsgi_app

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PASSWORD = "correct horse battery"


def email_of(role: str) -> str:
    return f"{role}@example.org"


def make_staff(app: Newsletter, roles: tuple[str, ...] = ROLE_NAMES) -> None:
    for role in roles:
        staff.add_user(app, email_of(role), role=role, password=PASSWORD, actor="cli:test")


class Console:
    """A browser-like client of the pages with the console mounted at /admin."""

    def __init__(self, app: Newsletter, *, base: str = "http://localhost") -> None:
        self.app = app
        self.client = Client(mount(app, make_wsgi_app(app)))
        self.base = base

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(path, base_url=self.base, **kwargs)

    def token(self, path: str = "/admin/login") -> str:
        page = self.get(path)
        if page.status_code == 302:  # the sign-in page of someone signed in sends them on
            page = self.get(page.headers["Location"])
        match = CSRF_RE.search(page.get_data(as_text=True))
        assert match, f"{path} has no CSRF token"
        return match.group(1)

    def post(self, path: str, data: dict[str, Any] | None = None, *, token: str | None = None,
             **kwargs: Any) -> TestResponse:  # fmt: skip
        form = {"csrf_token": self.token("/admin/") if token is None else token, **(data or {})}
        return self.client.post(path, data=form, base_url=self.base, **kwargs)

    def sign_in(
        self, email: str, password: str = PASSWORD, *, client: str = "127.0.0.1"
    ) -> TestResponse:
        return self.client.post(
            "/admin/login",
            data={"csrf_token": self.token(), "email": email, "password": password},
            base_url=self.base,
            environ_base={"REMOTE_ADDR": client},
        )


def signed_in(app: Newsletter, role: str) -> Console:
    console = Console(app)
    response = console.sign_in(email_of(role))
    assert response.status_code == 302, response.get_data(as_text=True)[:400]
    return console


def snapshot(app: Newsletter) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: to show that a refused request changed nothing."""
    with app.engine.connect() as conn:
        return {
            name: sorted((tuple(map(repr, row)) for row in conn.execute(select(table))), key=str)
            for name, table in Base.metadata.tables.items()
        }
