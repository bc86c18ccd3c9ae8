"""The audience: lists, segments, subscribers (search, profile, unsubscribe, erase), suppression.

Viewers see subscribers' addresses masked (newsletter.roles.can_see_addresses);
links name subscribers by id, never by address, so addresses stay out of logs.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from newsletter.admin.context import newsletter, shown_address
from newsletter.admin.security import requires
from newsletter.audience.addresses import email_key
from newsletter.audience.lists import create_list, list_lists
from newsletter.audience.privacy import erase_person
from newsletter.audience.segments import list_segments
from newsletter.audience.subscribers import (
    search_subscribers,
    show_subscriber,
    subscriber_address,
    unsubscribe_address,
)
from newsletter.audience.suppression import suppress_address
from newsletter.errors import UserError

blueprint = Blueprint("audience", __name__, url_prefix="/audience")
PAGE_SIZE = 50
OPTIN_OPTIONS = [("double", "Double opt-in (a confirmation email)"), ("single", "Single opt-in")]


def _lists_page(
    errors: dict[str, str], form: dict[str, str], status: int = 200
) -> ResponseReturnValue:
    app = newsletter()
    page = render_template(
        "audience/lists.html",
        lists=list_lists(app),
        segments=list_segments(app),
        optins=OPTIN_OPTIONS,
        errors=errors,
        form=form,
    )
    return page, status


@blueprint.route("/")
@requires("console.read")
def lists() -> ResponseReturnValue:
    return _lists_page({}, {})


@blueprint.route("/lists", methods=["POST"])
@requires("audience.edit")
def add_list() -> ResponseReturnValue:
    form = {k: request.form.get(k, "").strip() for k in ("name", "title", "optin")}
    try:
        created = create_list(
            newsletter(),
            form["name"],
            title=form["title"],
            optin=form["optin"] or "double",
            public=request.form.get("public") == "1",
        )
    except UserError as exc:
        return _lists_page({"name": str(exc)}, form, 400)
    flash(f"List {created['name']} created.")
    return redirect(url_for("audience.lists"))


@blueprint.route("/subscribers")
@requires("console.read")
def subscribers() -> str:
    query = request.args.get("q", "")
    after = request.args.get("after") or None
    rows = search_subscribers(newsletter(), query, limit=PAGE_SIZE, after=after)
    following = email_key(rows[-1]["email"]) if len(rows) == PAGE_SIZE else None
    for row in rows:
        row["email"] = shown_address(row["email"])
    return render_template(
        "audience/subscribers.html", rows=rows, q=query, following=following, after=after
    )


@blueprint.route("/subscribers/<int:subscriber_id>")
@requires("console.read")
def profile(subscriber_id: int) -> str:
    app = newsletter()
    person = show_subscriber(app, subscriber_address(app, subscriber_id))
    person["email"] = shown_address(person["email"])
    return render_template("audience/profile.html", person=person, errors={})


@blueprint.route("/subscribers/<int:subscriber_id>/unsubscribe", methods=["POST"])
@requires("audience.edit")
def unsubscribe(subscriber_id: int) -> ResponseReturnValue:
    app = newsletter()
    unsubscribe_address(app, subscriber_address(app, subscriber_id))
    flash("Unsubscribed from every list.")
    return redirect(url_for("audience.profile", subscriber_id=subscriber_id))


@blueprint.route("/subscribers/<int:subscriber_id>/erase", methods=["POST"])
@requires("erasure")
def erase(subscriber_id: int) -> ResponseReturnValue:
    app = newsletter()
    address = subscriber_address(app, subscriber_id)
    typed = request.form.get("confirm", "")
    if email_key(typed) != email_key(address):
        person = show_subscriber(app, address)
        errors = {"confirm": "type the subscriber's address exactly to erase them"}
        return render_template("audience/profile.html", person=person, errors=errors), 400
    erase_person(app, address)
    flash("Erased. Only a keyed hash of the address is kept, so it is never mailed again.")
    return redirect(url_for("audience.subscribers"))


@blueprint.route("/suppression")
@requires("console.read")
def suppression() -> str:
    return render_template("audience/suppression.html", errors={})


@blueprint.route("/suppression/add", methods=["POST"])
@requires("suppression.edit")
def suppress() -> ResponseReturnValue:
    address = request.form.get("email", "")
    try:
        suppress_address(newsletter(), address, "manual", request.form.get("note", ""))
    except UserError as exc:
        return render_template("audience/suppression.html", errors={"email": str(exc)}), 400
    flash("Suppressed: that address will not be mailed.")
    return redirect(url_for("audience.suppression"))
