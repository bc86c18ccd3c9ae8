"""Feedback: bounces, complaints and unsubscribes per campaign, newest sends first."""

from __future__ import annotations

from flask import Blueprint, render_template

from newsletter.admin.context import newsletter
from newsletter.admin.security import requires
from newsletter.editions import list_campaigns
from newsletter.feedback.summary import campaign_feedback

blueprint = Blueprint("feedback", __name__, url_prefix="/feedback")
# The page covers this many of the newest sends (over time, newest first).
SENDS_SHOWN = 24


@blueprint.route("/")
@requires("console.read")
def index() -> str:
    app = newsletter()
    sent = [c for c in list_campaigns(app) if c.status in ("sent", "sending", "paused")]
    rows = [(c, campaign_feedback(app, c.id)) for c in reversed(sent[-SENDS_SHOWN:])]
    return render_template("feedback.html", rows=rows)
