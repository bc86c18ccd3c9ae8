"""Signing in and out: /admin/login and /admin/logout."""

from __future__ import annotations

import math

from flask import Blueprint, current_app, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from newsletter import staff
from newsletter.admin import security
from newsletter.audience.addresses import email_key
from newsletter.errors import InputError

blueprint = Blueprint("auth", __name__)

# One message whatever was wrong: an unknown address, a wrong password, a disabled account.
GENERIC_ERROR = "The email address or password is not right, or the account cannot sign in."


def _safe_next(target: str) -> str:
    """Only a path inside the console: never an absolute URL an attacker chose."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("dashboard.index")


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    next_path = request.values.get("next", "")
    if request.method == "GET":
        if g.user is not None:
            return redirect(_safe_next(next_path))
        return render_template("login.html", error="", email="", next=next_path)
    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    account = email_key(email)[:320]
    client = request.remote_addr or "unknown"
    throttle = current_app.extensions["login_throttle"]
    wait = throttle.retry_after(account, client)
    if wait > 0:
        minutes = max(1, math.ceil(wait / 60))
        error = f"Too many failed sign-ins. Try again in {minutes} minute(s)."
        page = render_template("login.html", error=error, email=email, next=next_path)
        return page, 429
    app = current_app.config["NEWSLETTER"]
    try:
        user = staff.authenticate(app, email, password)
    except InputError:
        user = None
    if user is None:
        throttle.failed(account, client)
        page = render_template("login.html", error=GENERIC_ERROR, email=email, next=next_path)
        return page, 401
    throttle.succeeded(account)
    security.sign_in(user)
    return redirect(_safe_next(next_path))


@blueprint.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    security.sign_out()
    return redirect(url_for("auth.login"))
