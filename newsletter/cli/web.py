"""Commands: web (serve the subscriber pages alone, for development)."""

from __future__ import annotations

import logging

import click

from newsletter.cli.context import AppContext, pass_context


@click.command(
    "web",
    epilog="Example: newsletter web --port 8080   (then open http://127.0.0.1:8080/subscribe)",
)
@click.option("--host", default=None, help="Address to listen on (default: web.host).")
@click.option("--port", type=int, default=None, help="Port to listen on (default: web.port).")
@pass_context
def web_command(ctx: AppContext, host: str | None, port: int | None) -> None:
    """Serve the subscriber pages (subscribe, confirm, unsubscribe, preferences, archive).

    Only the pages: no scheduler and no sending workers (that is `newsletter
    serve`). Links in emails point at web.base_url, so set it (or
    NEWSLETTER_BASE_URL) to where this server is reached. The log shows no
    client addresses and no link tokens.
    """
    # Imported when the command runs, not when `--help` lists it: start-up time.
    from newsletter.web import make_wsgi_app
    from newsletter.web.server import make_web_server

    app = ctx.app
    config = app.config.web
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    web = make_wsgi_app(app)
    server = make_web_server(web, host or config.host, config.port if port is None else port)
    click.echo(
        f"Serving the subscriber pages on "
        f"http://{server.server_address[0]!s}:{server.server_port}/ "
        f"(links point at {config.base_url}); Ctrl-C to stop.",
        err=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        web.close()
