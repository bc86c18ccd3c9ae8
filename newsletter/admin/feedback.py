"""Feedback: bounces and complaints per week over the last year (a table and a chart),
and bounces, complaints and unsubscribes per campaign, newest sends first."""

from __future__ import annotations

from flask import Blueprint, render_template

from newsletter.admin.context import newsletter
from newsletter.admin.security import requires
from newsletter.editions import list_campaigns
from newsletter.feedback.summary import WeekFeedback, campaign_feedback, feedback_by_week

blueprint = Blueprint("feedback", __name__, url_prefix="/feedback")
# The page covers this many of the newest sends (over time, newest first).
SENDS_SHOWN = 24


@blueprint.route("/")
@requires("console.read")
def index() -> str:
    app = newsletter()
    sent = [c for c in list_campaigns(app) if c.status in ("sent", "sending", "paused")]
    rows = [(c, campaign_feedback(app, c.id)) for c in reversed(sent[-SENDS_SHOWN:])]
    weeks = feedback_by_week(app)
    return render_template("feedback.html", rows=rows, weeks=weeks, chart=_chart(weeks))


# The chart's drawing area, in SVG units; the image scales to the page's width.
CHART_WIDTH, CHART_HEIGHT, BAR_GAP = 530, 120, 2


def _chart(weeks: list[WeekFeedback]) -> dict[str, object]:
    """Stacked bars (bounces, then complaints on top) laid out for the template, and the
    sentence that is the chart's text alternative."""
    top = max((w.bounces + w.complaints for w in weeks), default=0) or 1
    step = CHART_WIDTH / max(len(weeks), 1)
    bars = []
    for index, week in enumerate(weeks):
        bounce_height = CHART_HEIGHT * week.bounces / top
        complaint_height = CHART_HEIGHT * week.complaints / top
        bars.append({
            "x": round(index * step, 1), "width": round(step - BAR_GAP, 1),
            "bounce_y": round(CHART_HEIGHT - bounce_height, 1),
            "bounce_height": round(bounce_height, 1),
            "complaint_y": round(CHART_HEIGHT - bounce_height - complaint_height, 1),
            "complaint_height": round(complaint_height, 1),
            "label": f"week of {week.week:%Y-%m-%d}: {week.bounces} bounces, "
                     f"{week.complaints} complaints",
        })  # fmt: skip
    bounces = sum(w.bounces for w in weeks)
    complaints = sum(w.complaints for w in weeks)
    busiest = max(weeks, key=lambda w: w.bounces + w.complaints, default=None)
    summary = f"{bounces} bounces and {complaints} complaints in the last {len(weeks)} weeks"
    if busiest is not None and busiest.bounces + busiest.complaints:
        summary += (
            f"; the most in the week of {busiest.week:%Y-%m-%d} ({busiest.bounces} bounces, "
            f"{busiest.complaints} complaints)"
        )
    return {"bars": bars, "width": CHART_WIDTH, "height": CHART_HEIGHT, "top": top,
            "summary": summary + "."}  # fmt: skip
