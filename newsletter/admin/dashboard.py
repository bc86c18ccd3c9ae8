"""The dashboard (/admin/) and the whole audit trail (/admin/audit)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from newsletter import audit
from newsletter.admin.context import finished, newsletter
from newsletter.admin.security import requires
from newsletter.dashboard import staff_dashboard

blueprint = Blueprint("dashboard", __name__)
AUDIT_PAGE = 100


@blueprint.route("/")
@requires("console.read")
def index() -> str:
    return render_template("dashboard.html", board=staff_dashboard(newsletter(), finished()))


@blueprint.route("/audit")
@requires("console.read")
def audit_trail() -> str:
    before = request.args.get("before", type=int)
    events = audit.list_events(newsletter(), limit=AUDIT_PAGE, before_id=before)
    older = events[-1].id if len(events) == AUDIT_PAGE else None
    return render_template("audit.html", events=events, older=older)
