"""Commands: web (serve the subscriber pages alone, for development)."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import click

from newsletter.cli.context import AppContext, pass_context


@click.command(
    "web",
    epilog="Example: newsletter web --port 8080   (then open http://127.0.0.1:8080/subscribe, "
    "or /admin/ to sign in to the console)",
)
@click.option("--host", default=None, help="Address to listen on (default: web.host).")
@click.option("--port", type=int, default=None, help="Port to listen on (default: web.port).")
@pass_context
def web_command(ctx: AppContext, host: str | None, port: int | None) -> None:
    """Serve the subscriber pages and the staff console (at /admin/).

    Only the pages: no scheduler and no sending workers (that is `newsletter
    serve`), so a campaign started from the console here waits for `newsletter
    worker` or `newsletter serve` to send it. Links in emails point at
    web.base_url, so set it (or NEWSLETTER_BASE_URL) to where this server is
    reached. The log shows no
    client addresses and no link tokens. SIGTERM or Ctrl-C stops it after the
    sign-ups already answered have been carried out.
    """
    # Imported when the command runs, not when `--help` lists it: start-up time.
    from newsletter.admin import mount
    from newsletter.web import make_wsgi_app
    from newsletter.web.server import make_web_server

    app = ctx.app
    config = app.config.web
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    web = make_wsgi_app(app)
    server = make_web_server(
        mount(app, web), host or config.host, config.port if port is None else port
    )
    click.echo(
        f"Serving the subscriber pages on "
        f"http://{server.server_address[0]!s}:{server.server_port}/ "
        f"and the staff console at /admin/ (links point at {config.base_url}); Ctrl-C to stop.",
        err=True,
    )
    # SIGTERM stops it as Ctrl-C does: the sign-ups already answered are carried out
    # (web.close() runs the queued background work) before the process exits.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
        web.close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt
