"""Campaigns: build, edit, preview, test-send, approve, schedule, send, watch, deliveries."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator, Mapping
from zoneinfo import available_timezones

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue

from newsletter import audit, editing, editions
from newsletter.admin.context import actor, finished, newsletter, shown_address
from newsletter.admin.security import requires
from newsletter.audience.lists import list_lists
from newsletter.audience.segments import list_segments
from newsletter.dispatch import service as dispatch
from newsletter.errors import UserError
from newsletter.items import list_items
from newsletter.models import CAMPAIGN_STATUSES
from newsletter.notices import build_preview
from newsletter.schedule.campaigns import schedule_campaign, unschedule_campaign
from newsletter.schedule.times import parse_local_time

blueprint = Blueprint("campaigns", __name__, url_prefix="/campaigns")
# The deliveries page shows this many rows; the CSV export has them all.
DELIVERY_ROWS = 200
# The announcement form offers the newest items.
NEWEST_ITEMS = 200
# The preview frame: the email's own inline styles and https images, nothing else, in a
# sandbox (no script, no forms, no navigation of the console), framed only by the console.
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; base-uri 'none'; "
    "form-action 'none'; sandbox allow-popups; frame-ancestors 'self'"
)


def _zones() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(available_timezones())]


@blueprint.route("/")
@requires("console.read")
def index() -> str:
    status = request.args.get("status") or None
    if status not in (None, *CAMPAIGN_STATUSES):
        abort(400, f"unknown status {status!r}")
    campaigns = editions.list_campaigns(newsletter(), status=status)
    return render_template(
        "campaigns/index.html",
        campaigns=list(reversed(campaigns)),
        status=status,
        statuses=CAMPAIGN_STATUSES,
    )


def _new_form(
    errors: dict[str, str], form: Mapping[str, object], status: int = 200
) -> tuple[str, int]:
    app = newsletter()
    items = list_items(app)[-NEWEST_ITEMS:]
    page = render_template(
        "campaigns/new.html",
        list_options=[(lst.name, lst.title or lst.name) for lst in list_lists(app, counts=False)],
        segment_options=[("", "No segment")] + [(seg.name, seg.name) for seg in list_segments(app)],
        item_options=[("", "Choose an item")]
        + [(str(i.id), f"{i.date} · {i.kind} · {i.title}") for i in reversed(items)],
        errors=errors,
        form=form,
    )
    return page, status


@blueprint.route("/new")
@requires("campaigns.edit")
def new() -> tuple[str, int]:
    return _new_form({}, {})


@blueprint.route("/new/bulletin", methods=["POST"])
@requires("campaigns.edit")
def new_bulletin() -> ResponseReturnValue:
    month = request.form.get("month", "").strip()
    lists = request.form.getlist("lists")
    segment = request.form.get("segment") or None
    subject = request.form.get("subject", "").strip() or None
    form = {"month": month, "lists": lists, "segment": segment or "", "subject": subject or ""}
    try:
        editions.parse_month(month)
    except UserError as exc:
        return _new_form({"month": str(exc)}, form, 400)
    try:
        created = editions.new_bulletin(
            newsletter(), month, lists=lists, segment=segment, subject=subject, actor=actor()
        )
    except UserError as exc:
        field = "lists" if "list" in str(exc) else "segment" if "segment" in str(exc) else "month"
        return _new_form({field: str(exc)}, form, 400)
    flash(f"Built draft {created.id}: {created.subject}")
    return redirect(url_for("campaigns.show", campaign_id=created.id))


@blueprint.route("/new/announcement", methods=["POST"])
@requires("campaigns.edit")
def new_announcement() -> ResponseReturnValue:
    lists = request.form.getlist("lists")
    segment = request.form.get("segment") or None
    form = {"item": request.form.get("item", ""), "lists": lists, "segment": segment or ""}
    item_id = request.form.get("item", type=int)
    if item_id is None:
        return _new_form({"item": "choose the item to announce"}, form, 400)
    try:
        created = editions.new_announcement(
            newsletter(), item_id, lists=lists, segment=segment, actor=actor()
        )
    except UserError as exc:
        field = "lists" if "list" in str(exc) else "segment" if "segment" in str(exc) else "item"
        return _new_form({field: str(exc)}, form, 400)
    flash(f"Built draft {created.id}: {created.subject}")
    return redirect(url_for("campaigns.show", campaign_id=created.id))


@blueprint.route("/<int:campaign_id>")
@requires("console.read")
def show(campaign_id: int) -> ResponseReturnValue:
    return _show_page(campaign_id, {})


# Statuses in which a campaign has a deliveries ledger to count.
LEDGER_STATUSES = ("sending", "paused", "sent", "cancelled")


def _show_page(
    campaign_id: int, errors: dict[str, str], status: int = 200, *, at: str = "",
    zone: str = "",
) -> ResponseReturnValue:  # fmt: skip
    app = newsletter()
    campaign = editions.show_campaign(app, campaign_id, counts=False)
    progress = None
    if campaign.status in LEDGER_STATUSES:
        progress = finished().progress(app, campaign_id)
    page = render_template(
        "campaigns/show.html",
        c=campaign,
        progress=progress,
        events=audit.list_events(app, campaign_id=campaign_id, limit=50),
        zones=_zones(),
        default_zone=zone or app.config.schedule.timezone,
        errors=errors,
        at=at,
    )
    return page, status


@blueprint.route("/<int:campaign_id>/audience")
@requires("console.read")
def audience(campaign_id: int) -> str:
    """Who the campaign would go to now: the one console page that resolves the audience
    (seconds with a million subscribers), so the others need not."""
    return render_template(
        "campaigns/audience.html", c=editions.show_campaign(newsletter(), campaign_id)
    )


@blueprint.route("/<int:campaign_id>/edit", methods=["GET", "POST"])
@requires("campaigns.edit")
def edit(campaign_id: int) -> ResponseReturnValue:
    app = newsletter()
    campaign = editions.show_campaign(app, campaign_id, counts=False)
    if request.method == "GET":
        return render_template("campaigns/edit.html", c=campaign, errors={}), 200
    subject = request.form.get("subject", "")
    intro = request.form.get("intro", "")
    order: list[int] = []
    errors: dict[str, str] = {}
    positions = []
    for index, entry in enumerate(campaign.item_list, start=1):
        # A field left out keeps the item's place.
        raw = request.form.get(f"position-{entry.id}", str(index)).strip()
        try:
            positions.append((int(raw), entry.id))
        except ValueError:
            errors[f"position-{entry.id}"] = "give a whole number"
    order = [item_id for _, item_id in sorted(positions)]
    if not errors:
        try:
            editing.edit_edition(
                app, campaign_id, subject=subject, intro=intro, order=order, actor=actor()
            )
        except UserError as exc:
            if "subject" in str(exc):
                errors["subject"] = str(exc)
            else:
                raise
    if errors:
        campaign = dataclasses.replace(campaign, subject=subject, intro=intro)
        return render_template("campaigns/edit.html", c=campaign, errors=errors), 400
    flash("Saved. An approved campaign goes back to draft when edited.")
    return redirect(url_for("campaigns.show", campaign_id=campaign_id))


@blueprint.route("/<int:campaign_id>/preview")
@requires("console.read")
def preview(campaign_id: int) -> str:
    app = newsletter()
    campaign = editions.show_campaign(app, campaign_id, counts=False)
    result = build_preview(app, campaign_id, sample=True)
    return render_template("campaigns/preview.html", c=campaign, preview=result)


@blueprint.route("/<int:campaign_id>/preview.html")
@requires("console.read")
def preview_frame(campaign_id: int) -> ResponseReturnValue:
    result = build_preview(newsletter(), campaign_id, sample=True)
    response = Response(result.html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    return response


@blueprint.route("/<int:campaign_id>/test", methods=["POST"])
@requires("campaigns.test")
def test_send(campaign_id: int) -> ResponseReturnValue:
    sent = dispatch.send_test(newsletter(), campaign_id, g.user.email)
    flash(f"Test sent to {sent.address} through {sent.transport}: {sent.result.response}")
    return redirect(url_for("campaigns.show", campaign_id=campaign_id))


def _after(campaign_id: int, message: str) -> ResponseReturnValue:
    flash(message)
    return redirect(url_for("campaigns.show", campaign_id=campaign_id))


@blueprint.route("/<int:campaign_id>/approve", methods=["POST"])
@requires("campaigns.approve")
def approve(campaign_id: int) -> ResponseReturnValue:
    editions.approve(newsletter(), campaign_id, actor=actor())
    return _after(campaign_id, "Approved.")


@blueprint.route("/<int:campaign_id>/schedule", methods=["POST"])
@requires("campaigns.send")
def schedule(campaign_id: int) -> ResponseReturnValue:
    app = newsletter()
    tz = request.form.get("timezone") or app.config.schedule.timezone
    at_text = request.form.get("at", "").replace("T", " ")
    errors: dict[str, str] = {}
    if tz not in available_timezones():
        errors["timezone"] = f"unknown time zone {tz!r}"
    else:
        try:
            at = parse_local_time(at_text, tz)
            schedule_campaign(app, campaign_id, at, actor=actor())
        except UserError as exc:
            if "campaign" in str(exc):
                raise
            errors["at"] = str(exc)
    if errors:
        return _show_page(campaign_id, errors, 400, at=request.form.get("at", ""), zone=tz)
    return _after(campaign_id, "Scheduled.")


@blueprint.route("/<int:campaign_id>/unschedule", methods=["POST"])
@requires("campaigns.send")
def unschedule(campaign_id: int) -> ResponseReturnValue:
    unschedule_campaign(newsletter(), campaign_id, actor=actor())
    return _after(campaign_id, "Taken off the schedule; it stays approved.")


@blueprint.route("/<int:campaign_id>/send", methods=["POST"])
@requires("campaigns.send")
def send_now(campaign_id: int) -> ResponseReturnValue:
    # The ledger is written here; the service's workers do the sending.
    dispatch.start_campaign(newsletter(), campaign_id, actor=actor())
    flash("Sending started.")
    return redirect(url_for("campaigns.progress", campaign_id=campaign_id))


@blueprint.route("/<int:campaign_id>/pause", methods=["POST"])
@requires("campaigns.send")
def pause(campaign_id: int) -> ResponseReturnValue:
    dispatch.pause_campaign(newsletter(), campaign_id, actor=actor())
    return _after(campaign_id, "Paused.")


@blueprint.route("/<int:campaign_id>/resume", methods=["POST"])
@requires("campaigns.send")
def resume(campaign_id: int) -> ResponseReturnValue:
    dispatch.resume_campaign(newsletter(), campaign_id, actor=actor())
    return _after(campaign_id, "Resumed.")


@blueprint.route("/<int:campaign_id>/cancel", methods=["POST"])
@requires("campaigns.send")
def cancel(campaign_id: int) -> ResponseReturnValue:
    dispatch.cancel_campaign(newsletter(), campaign_id, actor=actor())
    return _after(campaign_id, "Cancelled.")


@blueprint.route("/<int:campaign_id>/progress")
@requires("console.read")
def progress(campaign_id: int) -> str:
    app = newsletter()
    return render_template(
        "campaigns/progress.html",
        c=editions.show_campaign(app, campaign_id, counts=False),
        progress=finished().progress(app, campaign_id),
    )


@blueprint.route("/<int:campaign_id>/deliveries")
@requires("console.read")
def deliveries(campaign_id: int) -> str:
    app = newsletter()
    failed_only = request.args.get("failed") == "1"
    after = request.args.get("after", type=int)
    page = dispatch.delivery_page(
        app, campaign_id, failed_only=failed_only, after=after, limit=DELIVERY_ROWS
    )
    return render_template(
        "campaigns/deliveries.html",
        c=editions.show_campaign(app, campaign_id, counts=False),
        rows=[dataclasses.replace(row, address=shown_address(row.address)) for row in page.rows],
        following=page.next_after,
        after=after,
        failed_only=failed_only,
    )


CSV_COLUMNS = ("address", "status", "attempts", "sent_at", "last_response", "events")
# The CSV export reads the ledger this many rows at a time, so memory stays flat.
CSV_CHUNK = 5000


@blueprint.route("/<int:campaign_id>/deliveries.csv")
@requires("console.read")
def deliveries_csv(campaign_id: int) -> Response:
    app = newsletter()
    failed_only = request.args.get("failed") == "1"
    dispatch.campaign_status(app, campaign_id)  # a 404 now, not halfway through the file

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        after = None
        while True:
            page = dispatch.delivery_page(
                app, campaign_id, failed_only=failed_only, after=after, limit=CSV_CHUNK
            )
            for row in page.rows:
                shown = dataclasses.replace(row, address=shown_address(row.address))
                writer.writerow(
                    "; ".join(row.events) if column == "events" else getattr(shown, column)
                    for column in CSV_COLUMNS
                )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if page.next_after is None:
                return
            after = page.next_after

    name = f"campaign-{campaign_id}-{'failed' if failed_only else 'deliveries'}.csv"
    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
