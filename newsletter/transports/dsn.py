"""Transport DSNs: one string that says where messages go and how hard to push.

    maildir:outbox                      a maildir, relative to the config file's folder
    maildir:///srv/newsletter/outbox    the same with an absolute path
    smtp://user@mail.example.org:587?tls=starttls&connections=8&rate=50
    smtps://user@mail.example.org       implicit TLS (port 465)

Parameters in the DSN override the values of the transport's table in the
config file. Each scheme declares which parameters it takes; anything else is
an error that names the parameter and where the DSN came from, because a typo
such as `conections=8` silently ignored would send at the wrong speed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

from newsletter.errors import ConfigError

# Parameters every scheme takes, with the TransportConfig field each one overrides.
COMMON_PARAMS = {
    "connections": "connections",
    "rate": "rate_per_second",
    "rate_per_hour": "rate_per_hour",
    "timeout": "timeout_seconds",
}

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class DSN:
    """A parsed DSN; `where` says where it came from, for error messages."""

    scheme: str
    where: str
    host: str = ""
    port: int | None = None
    username: str | None = None
    password: str | None = None
    path: str = ""
    params: dict[str, str] = field(default_factory=dict)

    def check_params(self, allowed: set[str] | frozenset[str]) -> None:
        """Reject a parameter the scheme does not know, naming the ones it does."""
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            known = ", ".join(sorted(allowed)) or "none"
            raise ConfigError(
                f"{self.where}: unknown parameter {unknown[0]!r} for a {self.scheme}: "
                f"transport (known: {known})"
            )

    def integer(self, key: str, default: int, *, minimum: int = 0) -> int:
        if key not in self.params:
            return default
        raw = self.params[key]
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{self.where}: {key}={raw!r} is not a whole number") from None
        if value < minimum:
            raise ConfigError(f"{self.where}: {key} must be at least {minimum}, not {value}")
        return value

    def number(self, key: str, default: float) -> float:
        if key not in self.params:
            return default
        raw = self.params[key]
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{self.where}: {key}={raw!r} is not a number") from None
        if not value >= 0:  # also rejects NaN
            raise ConfigError(f"{self.where}: {key} must not be negative, not {raw}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        if key not in self.params:
            return default
        raw = self.params[key].lower()
        if raw in TRUE_WORDS:
            return True
        if raw in FALSE_WORDS:
            return False
        raise ConfigError(f"{self.where}: {key}={self.params[key]!r} must be 1 or 0")

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.params.get(key, default).lower()
        if value not in choices:
            raise ConfigError(
                f"{self.where}: {key}={self.params[key]!r} is not one of {', '.join(choices)}"
            )
        return value


def parse_dsn(text: str, where: str) -> DSN:
    """Split a DSN into its parts; the scheme's builder interprets them."""
    text = text.strip()
    if ":" not in text:
        raise ConfigError(
            f"{where}: {text!r} is not a transport DSN "
            "(examples: maildir:outbox, smtp://user@host:587?tls=starttls)"
        )
    scheme, rest = text.split(":", 1)
    scheme = scheme.lower()
    if not rest.startswith("//"):
        # The opaque form, maildir:PATH: everything after the colon is the path.
        path, _, query = rest.partition("?")
        return DSN(scheme=scheme, where=where, path=unquote(path), params=_params(query, where))
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(
            f"{where}: the port in {text!r} is not a number from 1 to 65535"
        ) from None
    return DSN(
        scheme=scheme,
        where=where,
        host=parts.hostname or "",
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        path=unquote(parts.path),
        params=_params(parts.query, where),
    )


def _params(query: str, where: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in params:
            raise ConfigError(f"{where}: parameter {key!r} is given twice")
        params[key] = value
    return params
