"""What every command receives: the program's state, built on first use."""

from __future__ import annotations

import click

from newsletter.actors import cli_actor
from newsletter.app import Newsletter
from newsletter.config import load_config


class AppContext:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._app: Newsletter | None = None

    @property
    def app(self) -> Newsletter:
        # Config is read here, not at start-up, so that `--help` works with a broken file.
        if self._app is None:
            self._app = Newsletter(load_config(self.config_path))
        return self._app

    @property
    def actor(self) -> str:
        """Who the audit trail names for this command: `cli:` and the login name."""
        return cli_actor()

    def actor_named(self, by: str | None) -> str:
        """The actor for a command with `--by NAME`: `cli:NAME`, else `cli:<login name>`."""
        return f"cli:{by}" if by else self.actor

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


pass_context = click.make_pass_decorator(AppContext)
