"""The settings, read-only (DKIM with the DNS record to publish, the return path, click
counting…), and a "send a test to me" that reports the transport's answer."""

from __future__ import annotations

from flask import Blueprint, g, render_template

from newsletter.admin.context import newsletter
from newsletter.admin.security import requires
from newsletter.dispatch.service import describe_transport
from newsletter.dkim import signing_status
from newsletter.transports.check import TransportCheck, check_transport

blueprint = Blueprint("settings", __name__, url_prefix="/settings")


def _page(check: TransportCheck | None) -> str:
    app = newsletter()
    config = app.config
    try:
        transport = describe_transport(app)
    except Exception as exc:  # a transport that cannot be opened is what this page is for
        transport = f"cannot be opened: {exc}"
    return render_template(
        "settings.html", config=config, transport=transport, check=check,
        dkim=signing_status(config),
    )  # fmt: skip


@blueprint.route("/")
@requires("console.read")
def index() -> str:
    return _page(None)


@blueprint.route("/test", methods=["POST"])
@requires("settings.test")
def test() -> str:
    return _page(check_transport(newsletter(), g.user.email))
