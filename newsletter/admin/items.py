"""Items: by month and kind, import by upload or feed address, edit, exclude."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.utils import secure_filename

from newsletter import items as items_service
from newsletter.admin.context import actor, newsletter
from newsletter.admin.security import requires
from newsletter.errors import UserError
from newsletter.models import ITEM_KINDS

blueprint = Blueprint("items", __name__, url_prefix="/items")
KIND_OPTIONS = [(kind, kind) for kind in ITEM_KINDS]
# Uploads keep their file name's ending: it tells a listing from a feed or a Markdown file.
UPLOAD_SUFFIXES = (".txt", ".text", ".md", ".markdown", ".xml", ".rss", ".atom")


def _index(
    errors: dict[str, str], report: items_service.ImportReport | None, status: int = 200
) -> ResponseReturnValue:
    app = newsletter()
    month = request.values.get("month", "").strip() or None
    kind = request.values.get("kind", "").strip() or None
    try:
        rows = items_service.list_items(app, month=month, kind=kind, include_excluded=True)
    except UserError as exc:
        errors["month" if month and "month" in str(exc) else "kind"] = str(exc)
        rows, status = [], 400
    return (
        render_template(
            "items/index.html",
            items=list(reversed(rows)),
            month=month or "",
            kind=kind or "",
            kinds=[("", "Any kind")] + [(k, k) for k in ITEM_KINDS],
            errors=errors,
            report=report,
        ),
        status,
    )


@blueprint.route("/")
@requires("console.read")
def index() -> ResponseReturnValue:
    return _index({}, None)


@blueprint.route("/import", methods=["POST"])
@requires("items.import")
def import_items() -> ResponseReturnValue:
    app = newsletter()
    url = request.form.get("url", "").strip()
    upload = request.files.get("file")
    month = request.form.get("date", "").strip() or None
    if not url and (upload is None or not upload.filename):
        return _index({"file": "choose a file to upload, or give a feed address"}, None, 400)
    try:
        if url:
            if not url.startswith(("http://", "https://")):
                return _index({"url": "a feed address starts with http:// or https://"}, None, 400)
            report = items_service.import_source(app, url, month=month, actor=actor())
        else:
            assert upload is not None
            name = secure_filename(upload.filename or "") or "upload.txt"
            suffix = Path(name).suffix.lower()
            if suffix not in UPLOAD_SUFFIXES:
                return _index(
                    {"file": f"{name}: give a text listing, Markdown file or feed "
                             f"({', '.join(UPLOAD_SUFFIXES)})"},
                    None,
                    400,
                )  # fmt: skip
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / name
                upload.save(path)
                # Stored under the upload's name, so that uploading it again updates the
                # same items instead of adding them twice.
                report = items_service.import_source(
                    app, str(path), month=month, source_name=f"upload:{name}", actor=actor()
                )
    except UserError as exc:
        field = "date" if "--date" in str(exc) else "url" if url else "file"
        return _index({field: str(exc).replace("--date", "the month")}, None, 400)
    return _index({}, report)


@blueprint.route("/<int:item_id>/edit", methods=["GET", "POST"])
@requires("items.edit")
def edit(item_id: int) -> ResponseReturnValue:
    app = newsletter()
    item = items_service.get_item(app, item_id)
    if request.method == "GET":
        return render_template("items/edit.html", item=item, errors={}, kinds=KIND_OPTIONS)
    changes: dict[str, Any] = {
        name: request.form.get(name, "")
        for name in ("title", "summary", "kind", "link")
        if request.form.get(name, "") != getattr(item, name)
    }
    errors: dict[str, str] = {}
    excluded = "1" in request.form.getlist("excluded")
    toggled = excluded != item.excluded
    if changes:
        # All the fields at once: a bad one means nothing is written. Its message begins
        # with the field's name, which says where to mark it.
        try:
            items_service.edit_item(app, item_id, actor=actor(), **changes)
        except UserError as exc:
            named = str(exc).split(" ", 1)[0]
            errors[named if named in changes else next(iter(changes))] = str(exc)
    if not errors and toggled:
        items_service.exclude_item(app, item_id, excluded, actor=actor())
    if errors:
        # The page shows what was typed, to be corrected.
        form = request.form
        item = dataclasses.replace(
            item,
            title=form.get("title", ""),
            summary=form.get("summary", ""),
            kind=form.get("kind", ""),
            link=form.get("link", ""),
            excluded=excluded,
        )
        page = render_template("items/edit.html", item=item, errors=errors, kinds=KIND_OPTIONS)
        return page, 400
    flash(f"Item {item_id} saved.")
    return redirect(url_for("items.index", month=str(item.date)[:7]))


@blueprint.route("/<int:item_id>/exclude", methods=["POST"])
@requires("items.edit")
def exclude(item_id: int) -> ResponseReturnValue:
    excluded = request.form.get("excluded", "1") == "1"
    item = items_service.exclude_item(newsletter(), item_id, excluded, actor=actor())
    flash(f"Item {item_id} {'excluded from' if excluded else 'included in'} editions.")
    return redirect(url_for("items.index", month=str(item.date)[:7]))
