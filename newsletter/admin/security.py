"""What every console request goes through: the session, sign-in, CSRF and permissions.

- The session is Flask's signed cookie, scoped to /admin, HttpOnly,
  SameSite=Strict, Secure when web.base_url is https. It holds the account id,
  the account's session generation and a CSRF token, nothing else. It is
  re-signed on every request and refused when its signature is older than
  admin.idle_minutes: that is the idle timeout.
- Every request but the sign-in page needs a signed-in, enabled account (read
  from the database each time, so a disabled account's session ends at once),
  whose session generation is still the one the session was made under: a
  password reset, a disable or a role change bumps it (staff.end_sessions), which
  ends every session of that account at its next request. When staff change their
  own account, the console carries their own session over (keep_own_session).
- Every POST carries the session's CSRF token in the `csrf_token` field.
- `@requires(permission)` next to a route checks the account's role against
  newsletter.roles; a role without it gets the 403 page and nothing changes.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from werkzeug.wrappers import Response

from newsletter import staff
from newsletter.roles import allows

F = TypeVar("F", bound=Callable[..., Any])
PERMISSION_ATTRIBUTE = "required_permission"
# Endpoints open without signing in.
PUBLIC_ENDPOINTS = frozenset({"auth.login", "static"})


def requires(permission: str) -> Callable[[F], F]:
    """Refuse the view (403) unless the signed-in account's role has `permission`."""
    allows("viewer", permission)  # an unknown permission name fails at import, not per request

    def decorate(view: F) -> F:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            if not allows(g.user.role, permission):
                abort(403)
            return view(*args, **kwargs)

        setattr(checked, PERMISSION_ATTRIBUTE, permission)
        return checked  # type: ignore[return-value]

    return decorate


def can(permission: str) -> bool:
    """For templates: may the signed-in account do this? (Pages hide what it may not.)"""
    user = g.get("user")
    return user is not None and allows(user.role, permission)


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def sign_in(user: staff.StaffUserRecord) -> None:
    """A fresh session for the account (nothing carried over from before sign-in)."""
    session.clear()
    session.permanent = True
    session["uid"] = user.id
    session["gen"] = user.session_generation
    session["csrf"] = secrets.token_urlsafe(32)


def keep_own_session(user: staff.StaffUserRecord) -> None:
    """After a change that ended the account's sessions: if it is the signed-in
    account's own, this session goes on (the others have ended)."""
    if session.get("uid") == user.id:
        session["gen"] = user.session_generation


def sign_out() -> None:
    session.clear()


def before_request() -> Response | None:
    """Load the account, check the CSRF token of a POST, send strangers to sign in."""
    if request.method == "POST":
        sent = request.form.get("csrf_token", "")
        expected = session.get("csrf", "")
        if not expected or not hmac.compare_digest(str(sent), str(expected)):
            abort(400, "The form has expired or did not come from this console; reload it.")
    g.user = None
    user_id = session.get("uid")
    if isinstance(user_id, int):
        user = staff.get_user(current_app.config["NEWSLETTER"], user_id)
        if (
            user is not None
            and not user.disabled
            and session.get("gen", 0) == user.session_generation
        ):
            g.user = user
        else:
            session.clear()
    if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
        if request.method == "GET":
            return redirect(
                url_for("auth.login", next=request.script_root + request.full_path.rstrip("?"))
            )
        abort(401)
    return None


def configure(flask_app: Flask, base_url: str, idle_minutes: int) -> None:
    flask_app.config.update(
        SESSION_COOKIE_NAME="newsletter_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/admin",
        SESSION_COOKIE_SECURE=base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=idle_minutes),
        SESSION_REFRESH_EACH_REQUEST=True,
    )
    flask_app.before_request(before_request)
    flask_app.jinja_env.globals.update(can=can, csrf_token=csrf_token)
