"""The audience: lists, segments, subscribers (search, profile, unsubscribe, erase), suppression.

Viewers see subscribers' addresses masked (newsletter.roles.can_see_addresses);
links name subscribers by id, never by address, so addresses stay out of logs.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue

from newsletter.admin.context import actor, newsletter, shown_address
from newsletter.admin.imports import ImportJob, ImportJobs
from newsletter.admin.security import requires
from newsletter.audience.addresses import email_key
from newsletter.audience.imports import IMPORT_MODES
from newsletter.audience.leaving import unsubscribe_address
from newsletter.audience.lists import create_list, list_lists
from newsletter.audience.privacy import erase_person
from newsletter.audience.segments import count_rules, list_segments, save_segment
from newsletter.audience.subscribers import (
    add_subscriber,
    search_subscribers,
    show_subscriber,
    subscriber_address,
)
from newsletter.audience.suppression import suppress_address
from newsletter.errors import UserError

blueprint = Blueprint("audience", __name__, url_prefix="/audience")
# The segment builder's form: this many rule rows, joined by "all" or "any".
RULE_ROWS = 4
RULE_FIELDS = ("language", "status", "name", "domain", "list", "region", "country", "topics")
RULE_OPS = [("eq", "is"), ("in", "is one of (comma-separated)"), ("contains", "contains"),
            ("exists", "is set")]  # fmt: skip
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
            actor=actor(),
        )
    except UserError as exc:
        return _lists_page({"name": str(exc)}, form, 400)
    flash(f"List {created.name} created.")
    return redirect(url_for("audience.lists"))


@blueprint.route("/subscribers")
@requires("console.read")
def subscribers() -> ResponseReturnValue:
    return _subscribers_page({})


def _subscribers_page(errors: dict[str, str], status: int = 200) -> ResponseReturnValue:
    query = request.args.get("q", "")
    after = request.args.get("after") or None
    anywhere = request.args.get("anywhere") == "1"
    rows = search_subscribers(
        newsletter(), query, limit=PAGE_SIZE, after=after, prefix=not anywhere
    )
    following = email_key(rows[-1].email) if len(rows) == PAGE_SIZE else None
    rows = [dataclasses.replace(row, email=shown_address(row.email)) for row in rows]
    lists = [(lst.name, lst.title or lst.name) for lst in list_lists(newsletter(), counts=False)]
    page = render_template(
        "audience/subscribers.html", rows=rows, q=query, following=following, after=after,
        anywhere=anywhere,
        lists=lists, errors=errors, form=request.form,
    )  # fmt: skip
    return page, status


@blueprint.route("/subscribers/add", methods=["POST"])
@requires("audience.edit")
def add() -> ResponseReturnValue:
    email = request.form.get("email", "")
    list_name = request.form.get("list", "")
    try:
        added = add_subscriber(
            newsletter(), email, list_name, name=request.form.get("name", ""), actor=actor()
        )
    except UserError as exc:
        field = "list" if "list" in str(exc) else "email"
        return _subscribers_page({field: str(exc)}, 400)
    flash(f"{added.email} added to {list_name}.")
    return redirect(url_for("audience.subscribers"))


@blueprint.route("/subscribers/<int:subscriber_id>")
@requires("console.read")
def profile(subscriber_id: int) -> str:
    app = newsletter()
    person = show_subscriber(app, subscriber_address(app, subscriber_id))
    person = dataclasses.replace(person, email=shown_address(person.email))
    return render_template("audience/profile.html", person=person, errors={})


@blueprint.route("/subscribers/<int:subscriber_id>/unsubscribe", methods=["POST"])
@requires("audience.edit")
def unsubscribe(subscriber_id: int) -> ResponseReturnValue:
    app = newsletter()
    unsubscribe_address(app, subscriber_address(app, subscriber_id), actor=actor())
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
    erase_person(app, address, actor=actor())
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
        suppress_address(
            newsletter(), address, "manual", request.form.get("note", ""), actor=actor()
        )
    except UserError as exc:
        return render_template("audience/suppression.html", errors={"email": str(exc)}), 400
    flash("Suppressed: that address will not be mailed.")
    return redirect(url_for("audience.suppression"))


def _rules_from(form: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The builder's rows as segment rules ({"all": [...]}) and as the rows to show again."""
    rows, rules = [], []
    for number in range(RULE_ROWS):
        field = form.get(f"field-{number}", "").strip()
        op = form.get(f"op-{number}", "eq")
        value = form.get(f"value-{number}", "").strip()
        rows.append({"field": field, "op": op, "value": value})
        if not field:
            continue
        rule: dict[str, Any] = {"field": field, "op": op}
        if op == "in":
            rule["value"] = [part.strip() for part in value.split(",") if part.strip()]
        elif op != "exists":
            rule["value"] = value
        rules.append(rule)
    combine = "any" if form.get("combine") == "any" else "all"
    return {combine: rules}, rows


def _count_text(rules: dict[str, Any]) -> str:
    if not next(iter(rules.values())):
        return "Add a rule to count who it selects."
    counts = count_rules(newsletter(), rules)
    return (
        f"{counts.matching} subscriber(s) match; {counts.reachable} of them can be "
        "mailed (confirmed on a list, not unsubscribed, bounced or suppressed)."
    )


def _builder(
    errors: dict[str, str], status: int = 200, *, count_it: bool = False
) -> ResponseReturnValue:
    rules, rows = _rules_from(request.values)
    count = ""
    if count_it and not errors:
        try:
            count = _count_text(rules)
        except UserError as exc:
            errors["rules"] = str(exc)
            status = 400
    page = render_template(
        "audience/segment.html",
        rows=rows,
        fields=RULE_FIELDS,
        ops=RULE_OPS,
        combine=request.values.get("combine", "all"),
        name=request.values.get("name", ""),
        description=request.values.get("description", ""),
        count=count,
        errors=errors,
    )
    return page, status


@blueprint.route("/segments/new")
@requires("console.read")
def new_segment() -> ResponseReturnValue:
    return _builder({})


@blueprint.route("/segments/new", methods=["POST"])
@requires("console.read")
def count_page() -> ResponseReturnValue:
    """The builder with the count of who the rules select (the button, without a script)."""
    return _builder({}, count_it=True)


@blueprint.route("/segments/count")
@requires("console.read")
def segment_count() -> ResponseReturnValue:
    """The live count, as JSON, for the builder's script."""
    rules, _ = _rules_from(request.args)
    try:
        return jsonify(text=_count_text(rules))
    except UserError as exc:
        return jsonify(text=str(exc)), 400


@blueprint.route("/segments", methods=["POST"])
@requires("audience.edit")
def save() -> ResponseReturnValue:
    rules, _ = _rules_from(request.form)
    name = request.form.get("name", "").strip()
    if not next(iter(rules.values())):
        return _builder({"rules": "add at least one rule"}, 400)
    try:
        saved = save_segment(
            newsletter(),
            name,
            text=json.dumps(rules),
            description=request.form.get("description", "").strip(),
            actor=actor(),
        )
    except UserError as exc:
        field = "name" if "name" in str(exc) or "segment" in str(exc) else "rules"
        return _builder({field: str(exc)}, 400)
    flash(f"Segment {saved.name} saved: {saved.reachable} subscriber(s) reachable.")
    return redirect(url_for("audience.lists"))


# --- CSV import ------------------------------------------------------------------------------

MODE_OPTIONS = [
    ("add", "Add: new people join; known ones are updated"),
    ("update", "Update: only people already on the list are updated"),
    ("sync", "Sync: the file is the list; members missing from it are unsubscribed"),
]


def _jobs() -> ImportJobs:
    jobs = current_app.extensions.get("import_jobs")
    if jobs is None:
        jobs = current_app.extensions["import_jobs"] = ImportJobs(newsletter())
    return jobs


def _import_form(errors: dict[str, str], status: int = 200) -> ResponseReturnValue:
    lists = [(lst.name, lst.title or lst.name) for lst in list_lists(newsletter(), counts=False)]
    page = render_template(
        "audience/import.html", lists=lists, modes=MODE_OPTIONS, errors=errors,
        form=request.form,
    )  # fmt: skip
    return page, status


@blueprint.route("/import")
@requires("audience.import")
def import_form() -> ResponseReturnValue:
    return _import_form({})


@blueprint.route("/import", methods=["POST"])
@requires("audience.import")
def start_import() -> ResponseReturnValue:
    upload = request.files.get("file")
    list_name = request.form.get("list", "")
    mode = request.form.get("mode", "add")
    if upload is None or not upload.filename:
        return _import_form({"file": "choose a CSV file to upload"}, 400)
    if mode not in IMPORT_MODES:
        return _import_form({"mode": f"mode must be one of {', '.join(IMPORT_MODES)}"}, 400)
    if not list_name:
        return _import_form({"list": "choose the list to import into"}, 400)
    job = _jobs().create(
        upload.read(), file_name=upload.filename, list_name=list_name, mode=mode, owner=actor()
    )
    return redirect(url_for("audience.import_job", job_id=job.id))


def _job(job_id: str) -> ImportJob:
    job = _jobs().get(job_id)
    if job is None or job.owner != g.user.actor:
        abort(404)
    return job


@blueprint.route("/import/<job_id>")
@requires("audience.import")
def import_job(job_id: str) -> ResponseReturnValue:
    return render_template("audience/import_job.html", job=_job(job_id))


@blueprint.route("/import/<job_id>/run", methods=["POST"])
@requires("audience.import")
def run_import(job_id: str) -> ResponseReturnValue:
    _jobs().run_for_real(_job(job_id))
    return redirect(url_for("audience.import_job", job_id=job_id))


@blueprint.route("/import/<job_id>/rejected.csv")
@requires("audience.import")
def import_rejects(job_id: str) -> Response:
    job = _job(job_id)
    if job.state != "done" or not job.rejects.is_file():
        abort(404)
    return send_file(
        job.rejects, mimetype="text/csv", as_attachment=True,
        download_name=f"{Path(job.file_name).stem}-rejected.csv",
    )  # fmt: skip
