"""Staff accounts (admins only): add, change role, disable or enable, reset a password."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from newsletter import staff
from newsletter.admin.context import actor, newsletter
from newsletter.admin.security import keep_own_session, requires
from newsletter.errors import NotFound, UserError
from newsletter.roles import ROLE_NAMES, ROLES

blueprint = Blueprint("users", __name__, url_prefix="/users")
ROLE_OPTIONS = [(role, role) for role in ROLE_NAMES]


def _page(errors: dict[str, str], form: dict[str, str], status: int = 200) -> tuple[str, int]:
    page = render_template(
        "users/index.html",
        users=staff.list_users(newsletter()),
        roles=ROLE_OPTIONS,
        table=sorted(ROLES.items(), key=lambda pair: len(pair[1])),
        errors=errors,
        form=form,
    )
    return page, status


@blueprint.route("/")
@requires("users.manage")
def index() -> tuple[str, int]:
    return _page({}, {})


@blueprint.route("/add", methods=["POST"])
@requires("users.manage")
def add() -> ResponseReturnValue:
    form = {k: request.form.get(k, "") for k in ("email", "name", "role")}
    password = request.form.get("password", "")
    errors: dict[str, str] = {}
    if password != request.form.get("password2", ""):
        errors["password2"] = "the two passwords differ"
    else:
        try:
            staff.check_password(password)
        except UserError as exc:
            errors["password"] = str(exc)
    if not errors:
        try:
            record = staff.add_user(
                newsletter(), form["email"], role=form["role"], password=password,
                name=form["name"], actor=actor(),
            )  # fmt: skip
        except UserError as exc:
            errors["role" if "role" in str(exc) else "email"] = str(exc)
    if errors:
        return _page(errors, form, 400)
    flash(f"Added {record.email} ({record.role}).")
    return redirect(url_for("users.index"))


@blueprint.route("/<int:user_id>/role", methods=["POST"])
@requires("users.manage")
def set_role(user_id: int) -> ResponseReturnValue:
    record = staff.set_role(
        newsletter(), _email(user_id), request.form.get("role", ""), actor=actor()
    )
    keep_own_session(record)
    flash(f"{record.email} is now {record.role}.")
    return redirect(url_for("users.index"))


@blueprint.route("/<int:user_id>/disable", methods=["POST"])
@requires("users.manage")
def disable(user_id: int) -> ResponseReturnValue:
    disabled = request.form.get("disabled", "1") == "1"
    record = staff.set_disabled(newsletter(), _email(user_id), disabled=disabled, actor=actor())
    flash(f"{record.email} {'disabled' if record.disabled else 'enabled'}.")
    return redirect(url_for("users.index"))


@blueprint.route("/<int:user_id>/password", methods=["POST"])
@requires("users.manage")
def reset_password(user_id: int) -> ResponseReturnValue:
    password = request.form.get("password", "")
    try:
        record = staff.reset_password(newsletter(), _email(user_id), password, actor=actor())
    except UserError as exc:
        return _page({f"password-{user_id}": str(exc)}, {}, 400)
    keep_own_session(record)
    flash(f"New password set for {record.email}; their other sessions have ended.")
    return redirect(url_for("users.index"))


def _email(user_id: int) -> str:
    record = staff.get_user(newsletter(), user_id)
    if record is None:
        raise NotFound(f"no staff user with id {user_id}")
    return record.email
