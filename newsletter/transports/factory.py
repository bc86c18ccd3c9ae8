"""From a transport's name in the config to a ready Transport.

`open_transport(app, name)` reads the named transport's table (or the default
one), parses its DSN and hands it to the builder its scheme names in
`SCHEMES`. Adding a provider is one entry there: a builder and the parameters
its DSN takes; the common ones (connections, rate, rate_per_hour, timeout) are
read here for every scheme.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsletter.config import ENV_TRANSPORT, ENV_TRANSPORT_NAME, TransportConfig
from newsletter.errors import ConfigError
from newsletter.transports.base import SendLimits, Transport
from newsletter.transports.dsn import COMMON_PARAMS, DSN, parse_dsn
from newsletter.transports.maildir import MaildirTransport, maildir_folder
from newsletter.transports.providers import mailgun, postmark, sendgrid, ses
from newsletter.transports.smtp import DEFAULT_PORTS, TLS_MODES, SMTPSettings, SMTPTransport

if TYPE_CHECKING:
    from newsletter.app import Newsletter


@dataclass(frozen=True)
class TransportSetup:
    """What a scheme's builder gets: the DSN, the table's values, and the program."""

    name: str
    dsn: DSN
    table: TransportConfig
    limits: SendLimits
    app: Newsletter


@dataclass(frozen=True)
class Scheme:
    build: Callable[[TransportSetup], Transport]
    # Parameters this scheme's DSN takes besides the common ones.
    params: frozenset[str] = frozenset()


def build_maildir(setup: TransportSetup) -> Transport:
    folder = maildir_folder(setup.app.config, setup.dsn)
    return MaildirTransport(setup.name, folder, setup.limits)


def build_smtp(setup: TransportSetup) -> Transport:
    dsn, table = setup.dsn, setup.table
    if not dsn.host:
        raise ConfigError(
            f"{dsn.where}: an SMTP DSN needs a host, e.g. smtp://mail.example.org:587"
        )
    tls = dsn.choice("tls", "ssl" if dsn.scheme == "smtps" else "starttls", TLS_MODES)
    password = dsn.password
    if password is None:
        password = setup.app.env.get(table.password_env)
    if dsn.username and password is None:
        raise ConfigError(
            f"{dsn.where}: user {dsn.username!r} needs a password: set ${table.password_env}"
        )
    settings = SMTPSettings(
        host=dsn.host,
        port=dsn.port or DEFAULT_PORTS[tls],
        tls=tls,
        username=dsn.username,
        password=password,
        verify=dsn.boolean("verify", table.verify_tls),
        timeout=dsn.number("timeout", table.timeout_seconds) or table.timeout_seconds,
        max_messages_per_connection=dsn.integer(
            "max_messages", table.max_messages_per_connection, minimum=1
        ),
        helo=dsn.params.get("helo", ""),
    )
    return SMTPTransport(setup.name, settings, setup.limits)


SMTP_PARAMS = frozenset({"tls", "verify", "max_messages", "helo"})

# The schemes a DSN may name.
SCHEMES: dict[str, Scheme] = {
    "maildir": Scheme(build_maildir),
    "smtp": Scheme(build_smtp, SMTP_PARAMS),
    "smtps": Scheme(build_smtp, SMTP_PARAMS),
    "sendgrid": Scheme(sendgrid.build_sendgrid, sendgrid.PARAMS),
    "mailgun": Scheme(mailgun.build_mailgun, mailgun.PARAMS),
    "postmark": Scheme(postmark.build_postmark, postmark.PARAMS),
    "ses": Scheme(ses.build_ses, ses.PARAMS),
}


def dsn_source(app: Newsletter, name: str) -> str:
    """Where a transport's DSN was written, for error messages."""
    if name == ENV_TRANSPORT_NAME:
        return f"${ENV_TRANSPORT}"
    return f"{app.config.source}: transports.{name}.dsn"


def open_transport(app: Newsletter, name: str | None = None) -> Transport:
    """The named transport (the configured default when None or empty), ready to send."""
    name = name or app.config.default_transport
    table = app.config.transport(name)
    dsn = parse_dsn(table.dsn, dsn_source(app, name))
    scheme = SCHEMES.get(dsn.scheme)
    if scheme is None:
        known = ", ".join(f"{s}:" for s in SCHEMES)
        raise ConfigError(f"{dsn.where}: unknown transport scheme {dsn.scheme!r} (known: {known})")
    dsn.check_params(scheme.params | COMMON_PARAMS.keys())
    limits = SendLimits(
        connections=dsn.integer("connections", table.connections, minimum=1),
        rate_per_second=dsn.number("rate", table.rate_per_second),
        rate_per_hour=dsn.integer("rate_per_hour", table.rate_per_hour),
    )
    return scheme.build(TransportSetup(name=name, dsn=dsn, table=table, limits=limits, app=app))
