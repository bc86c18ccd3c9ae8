"""Typed configuration, built once and passed down.

Every setting is declared exactly once, as a field of one of the frozen
dataclasses below, with its default and its help text in the field's metadata.
The loader reads those declarations to know which keys a file may hold and of
which type, so a setting cannot exist without being documented, and
`tests/test_config.py` checks that `config.example.toml` mentions every one.

Layering: defaults, then the TOML file (``--config``, else ``NEWSLETTER_CONFIG``,
else ``./newsletter.toml``, else none at all), then environment variables.
Secrets never need to be in the file: each one is read from an environment
variable whose name the file may change.
"""

from __future__ import annotations

import dataclasses
import os
import re
import reprlib
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from newsletter.errors import ConfigError
from newsletter.schedule.cron import CronError, parse_cron

ENV_CONFIG = "NEWSLETTER_CONFIG"
ENV_DATABASE_URL = "NEWSLETTER_DATABASE_URL"
ENV_TRANSPORT = "NEWSLETTER_TRANSPORT"
ENV_BASE_URL = "NEWSLETTER_BASE_URL"
DEFAULT_CONFIG_NAME = "newsletter.toml"

# The name under which a transport given by NEWSLETTER_TRANSPORT is registered.
ENV_TRANSPORT_NAME = "env"

# Values that reach message headers must not carry a line break or any other control
# character (one would start a header of its own: a Bcc to everyone, say).
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")
# One plain address, as the sender, Reply-To or unsubscribe address: no display name,
# no list, nothing a header parser would read as the start of something else.
_ADDRESS = re.compile(
    r'[^\s\x00-\x1f\x7f@<>()\[\],;:"\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?'
)
# A domain, as the right-hand side of a Message-ID.
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")


def _show(value: Any) -> str:
    """A bad value as quoted in a message: shortened, and never recursed into deeply."""
    shorter = reprlib.Repr()
    shorter.maxstring = shorter.maxother = 60
    shorter.maxlevel = 2
    return shorter.repr(value)


def setting(default: Any, help: str) -> Any:
    """Declare one setting: its default and the sentence that documents it."""
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class OrgConfig:
    name: str = setting("Example Network", "Organisation name, shown in emails and subjects.")
    postal_address: str = setting(
        "1 Example Street, 1000 Example City",
        "Postal address printed in every email footer (anti-spam laws require one).",
    )
    website: str = setting("https://example.org", "The organisation's website, linked in emails.")


@dataclass(frozen=True)
class BrandConfig:
    logo_url: str = setting(
        "", "Absolute https URL of the logo at the top of every email; empty: the name instead."
    )
    logo_alt: str = setting(
        "", "What the logo says, for readers who cannot see it; empty: the organisation's name."
    )
    logo_width: int = setting(180, "Width of the logo in the email, in pixels.")
    logo_height: int = setting(
        0, "Height of the logo in pixels (set it to keep the layout still); 0: from the width."
    )
    colour: str = setting(
        "#0b57a4",
        "Brand colour (#rrggbb) of buttons, links and headings; darkened or lightened where "
        "needed so that text on it and it on the page keep WCAG AA contrast, light and dark.",
    )
    footer_links: dict[str, str] = setting(
        {},
        'Extra links in every email\'s footer, label = "https://…", e.g. Website = '
        '"https://example.org"; empty for none.',
    )


@dataclass(frozen=True)
class MailConfig:
    from_address: str = setting("bulletin@example.org", "Sender address of every campaign.")
    from_name: str = setting("Example Network", "Display name of the sender.")
    reply_to: str = setting("", "Reply-To address; empty to let replies go to the sender.")
    list_id: str = setting(
        "bulletin.example.org", "List-Id header value (RFC 2919), a domain-like identifier."
    )
    unsubscribe_mailto: str = setting(
        "",
        "Address for mailto: unsubscribe requests in List-Unsubscribe; "
        "empty means unsubscribe@<sender's domain>.",
    )
    message_id_domain: str = setting(
        "", "Domain used in Message-ID headers; empty means the sender's domain."
    )


@dataclass(frozen=True)
class WebConfig:
    base_url: str = setting(
        "http://localhost:8080",
        "Public address of the subscriber pages, used in every link. "
        "Overridden by NEWSLETTER_BASE_URL.",
    )
    host: str = setting("127.0.0.1", "Address `newsletter serve` listens on.")
    port: int = setting(8080, "Port `newsletter serve` listens on.")
    secret_key_env: str = setting(
        "NEWSLETTER_SECRET_KEY",
        "Environment variable holding the key that signs links. When it is unset a random "
        "key is generated once and kept in the database.",
    )
    token_max_age_days: int = setting(7, "How long a confirmation link stays valid, in days.")
    languages: list[str] = setting(
        ["en", "ru", "fr", "es"],
        "Languages a subscriber may choose on the subscribe and preferences pages, and that "
        "editions are rendered in: a subscriber whose language is not listed reads the "
        "edition's own language.",
    )
    notices_per_address_per_day: int = setting(
        3,
        "Notices (confirmation, already subscribed) sent to one address in 24 hours at most, "
        "whoever asks; the count is kept under the address's keyed hash.",
    )
    topics: dict[str, str] = setting(
        {
            "harm-reduction": "Harm reduction",
            "hiv": "HIV",
            "human-rights": "Human rights",
            "drug-policy": "Drug policy",
        },
        "Topics a subscriber may choose (kept in their `topics` attribute), slug = label; "
        "the pages translate a label when their catalogue has `topic.<slug>`.",
    )
    topic_labels: dict[str, dict[str, str]] = setting(
        {},
        "Labels of topics in other languages, by slug and language (harm-reduction = "
        '{ ru = "Снижение вреда" }); a CSV import or a segment that names a topic by '
        "any of its labels or its slug means the same topic.",
    )
    subscribe_burst: int = setting(
        5, "Subscribe requests one client address may make in a row before it is slowed down."
    )
    subscribe_per_hour: int = setting(
        20, "Subscribe requests per hour one client address may make after its burst."
    )
    proxy_hops: int = setting(
        0,
        "Reverse proxies in front of the web pages whose X-Forwarded-For is trusted for the "
        "client address (rate limiting only; it is never stored). 0 when the pages face the "
        "internet directly.",
    )
    embed_frame_ancestors: list[str] = setting(
        ["https:"],
        "Sites allowed to show the embeddable subscribe form (/embed/<list>) in a frame, as "
        "CSP frame-ancestors sources (e.g. https://partner.example); [] forbids framing. "
        "Every other page refuses to be framed.",
    )


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = setting(
        "sqlite:///newsletter.db",
        "SQLAlchemy database URL. SQLite (a file in the working folder by default) or "
        "postgresql+psycopg://user@host/db. Overridden by NEWSLETTER_DATABASE_URL.",
    )


@dataclass(frozen=True)
class TransportConfig:
    dsn: str = setting(
        "maildir:outbox",
        "Where messages go: maildir:PATH, smtp://user@host:port?tls=starttls|ssl|none"
        "&connections=N&rate=N, or an API provider DSN.",
    )
    password_env: str = setting(
        "NEWSLETTER_SMTP_PASSWORD",
        "Environment variable holding the SMTP password or API key for this transport.",
    )
    connections: int = setting(4, "Concurrent connections (SMTP) or requests (API) at most.")
    rate_per_second: float = setting(
        0.0,
        "Messages per second at most, for every worker together (they share it through the "
        "database); 0 for no limit.",
    )
    rate_per_hour: int = setting(0, "Messages per hour at most (sliding window); 0 for no limit.")
    max_messages_per_connection: int = setting(
        1000, "Messages sent on one SMTP connection before it is reopened."
    )
    timeout_seconds: float = setting(30.0, "Network timeout of one SMTP command or API request.")
    verify_tls: bool = setting(True, "Verify the server's TLS certificate.")


@dataclass(frozen=True)
class EditionsConfig:
    subject_pattern: str = setting(
        "{org} bulletin — {month}",
        "Subject of a monthly bulletin in the edition's language; {org} and {month} "
        "(written out, e.g. June 2019) are filled in. Other languages' subjects come from "
        "their catalogue unless staff give one.",
    )
    announcement_subject_pattern: str = setting(
        "{title}", "Subject of an announcement; {org} and {title} are filled in."
    )
    kind_order: list[str] = setting(
        ["statement", "report", "news", "tribute"],
        "Order of the sections of a bulletin, by item kind. Kinds not listed come last.",
    )
    section_titles: dict[str, str] = setting(
        {
            "statement": "Statements",
            "report": "Reports",
            "news": "News",
            "tribute": "Tributes",
        },
        "Heading of each section of a bulletin, by item kind. The built-in headings are "
        "translated for each reader; a heading set here is printed as written.",
    )
    default_language: str = setting("en", "Language of items and editions that do not say.")
    default_lists: list[str] = setting(
        [],
        "Lists a new edition goes to when neither --list nor --segment is given; "
        "empty means every list that is not archived.",
    )
    templates_dir: str = setting(
        "",
        "Folder of email templates that replaces the bundled one; empty for the bundled "
        "templates. Missing files fall back to the bundled ones.",
    )


@dataclass(frozen=True)
class DispatchConfig:
    batch_size: int = setting(200, "Deliveries a worker claims at once.")
    lease_seconds: int = setting(
        300, "How long a claimed batch stays with a worker before others may take it over."
    )
    retry_initial_seconds: float = setting(
        60.0, "Wait before the first retry of a temporary failure; doubled at each attempt."
    )
    retry_max_seconds: float = setting(3600.0, "Longest wait between two retries.")
    retry_max_attempts: int = setting(
        5, "Attempts (the first send included) before a temporary failure becomes final."
    )
    pause_after_consecutive_failures: int = setting(
        50, "A campaign pauses itself after this many failures in a row (a dead server)."
    )
    in_flight_per_connection: int = setting(
        1,
        "Messages one connection may send before the ledger has recorded the earlier ones. "
        "After a crash at most connections × this many recipients get a message twice.",
    )
    processes: int = setting(
        1,
        "Processes that `newsletter send` sends a campaign of 2,000 or more recipients "
        "from; 0 for one per CPU core. The transport's connections are shared between "
        "them. Worth it only where cores are free: the database and the mail server "
        "elsewhere (see bench/README.md).",
    )
    wait_for_disk: bool = setting(
        False,
        "PostgreSQL: wait until each group of outcomes is on the database's disk before "
        "sending on (synchronous_commit). Off, a crash of the sending process still resends "
        "at most connections × in_flight_per_connection messages; a crash of the database "
        "server may also resend the last fraction of a second's.",
    )


@dataclass(frozen=True)
class PrivacyConfig:
    store_ip_addresses: bool = setting(
        False, "Keep the IP address in consent records. Off by default."
    )
    count_clicks: bool = setting(
        False,
        "Send links through /l/<token> addresses that count clicks per campaign and link, "
        "never per subscriber (the token names no one), and redirect to the link. Off by "
        "default. Opens are never tracked.",
    )
    suppression_key_env: str = setting(
        "NEWSLETTER_SUPPRESSION_KEY",
        "Environment variable holding the key for hashing suppressed addresses; "
        "unset, the signing key is used.",
    )


@dataclass(frozen=True)
class DkimConfig:
    domain: str = setting(
        "",
        "Domain that signs messages sent over SMTP or written to a maildir (d= of the "
        "DKIM signature), normally the From address's domain; empty: no signing. API "
        "providers sign themselves.",
    )
    selector: str = setting(
        "", "DKIM selector: the key's record is <selector>._domainkey.<domain>."
    )
    private_key_file: str = setting(
        "",
        "PEM file of the private key (RSA-2048 or Ed25519; `newsletter dkim keygen` makes "
        "one), relative to the config file. A missing or unreadable file stops every "
        "command with exit status 2.",
    )


@dataclass(frozen=True)
class BouncesConfig:
    return_path: str = setting(
        "",
        "VERP return path for messages sent over SMTP, e.g. bounces@example.org: each "
        "message's envelope sender becomes bounces+<signed token>@example.org, so that a "
        "bounce is matched to its delivery by the address it comes back to. Empty: the "
        "From address. (API providers use their own return paths.)",
    )


@dataclass(frozen=True)
class CheckConfig:
    nameservers: list[str] = setting(
        [],
        "DNS servers `newsletter check --domain` asks, as address or address:port; empty "
        "for the system's resolver.",
    )
    timeout_seconds: float = setting(5.0, "How long `newsletter check --domain` waits for DNS.")


@dataclass(frozen=True)
class ScheduleConfig:
    timezone: str = setting("Europe/London", "Time zone in which staff give and read times.")
    misfire_grace_minutes: int = setting(
        60, "A send missed while the service was down still goes out this late; then it is missed."
    )
    sync_seconds: int = setting(
        30,
        "How often `newsletter serve` re-reads schedules from the database (what other "
        "processes changed) and looks for sends that are due.",
    )
    staff_addresses: list[str] = setting(
        [],
        'Who gets the preview when a recurring rule with action = "hold" has built an '
        "edition for approval.",
    )


@dataclass(frozen=True)
class ServiceConfig:
    workers: int = setting(1, "Sending workers `newsletter serve` runs (--workers overrides).")
    log_format: str = setting(
        "logfmt", "Format of the service's log lines on stderr: logfmt or json (one per line)."
    )


APPROVAL_POLICIES = ("second-person", "self")


@dataclass(frozen=True)
class AdminConfig:
    approval: str = setting(
        "second-person",
        "Who may approve a campaign: second-person (not whoever built or last edited it, as "
        "long as another enabled account may approve) or self (anyone allowed to approve).",
    )
    idle_minutes: int = setting(
        30, "A console session ends after this many minutes without a request."
    )
    login_attempts: int = setting(
        5,
        "Failed sign-ins allowed per account, and four times as many per client address, "
        "within login_window_minutes before sign-in is refused for the rest of the window "
        "(counted in the memory of the process, never stored).",
    )
    login_window_minutes: int = setting(
        15, "The window over which failed sign-ins are counted, in minutes."
    )


# What a recurring rule may build, and what it may do with the edition.
SCHEDULE_BUILDS = ("bulletin",)
SCHEDULE_ACTIONS = ("send", "hold")


@dataclass(frozen=True)
class ScheduleRule:
    """One [[schedules]] entry: a recurring edition."""

    name: str = setting("", "A unique name for the rule (letters, digits, - _ .).")
    cron: str = setting(
        "",
        'When it runs: minute hour day-of-month month day-of-week, e.g. "0 9 * * mon#1" '
        "for 09:00 on the first Monday of the month.",
    )
    timezone: str = setting("", "Time zone of the cron times; empty means schedule.timezone.")
    build: str = setting("bulletin", "What to build: bulletin (the previous month's items).")
    lists: list[str] = setting([], "Lists it goes to; empty means editions.default_lists.")
    segment: str = setting("", "A saved segment that narrows the audience; empty for none.")
    action: str = setting(
        "send",
        "send: approve and send it at once; hold: keep it as a draft for approval and "
        "email staff_addresses a preview.",
    )


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = setting(
        False,
        "Serve /metrics (Prometheus' text format) from `newsletter serve`: deliveries, queues, "
        "send rates, throttling, the scheduler's heartbeat, bounces and complaints. Never an "
        "address. Off by default.",
    )
    token_env: str = setting(
        "NEWSLETTER_METRICS_TOKEN",
        "Environment variable holding a token; when it is set, /metrics answers only requests "
        "with `Authorization: Bearer <token>`.",
    )


@dataclass(frozen=True)
class FeedbackConfig:
    soft_bounce_limit: int = setting(
        3, "Soft bounces (a full mailbox, a server refusing for now) that suppress an address…"
    )
    soft_bounce_days: int = setting(90, "…when they come within this many days.")
    complaint_warning_percent: float = setting(
        0.08,
        "`newsletter status` warns when a campaign's complaint rate reaches this percentage "
        "(large mailbox providers treat 0.1% as the limit).",
    )
    webhook_max_age_seconds: int = setting(
        900,
        "Signed webhook requests (Mailgun, SendGrid) and SNS messages older than this are "
        "refused as possible replays.",
    )
    webhook_user: str = setting(
        "newsletter", "User name providers give in HTTP basic auth (Postmark, SendGrid)."
    )
    webhook_password_env: str = setting(
        "NEWSLETTER_WEBHOOK_PASSWORD",
        "Environment variable holding the basic-auth password of the webhooks; unset, no "
        "basic auth is accepted.",
    )
    sendgrid_public_key_env: str = setting(
        "NEWSLETTER_SENDGRID_WEBHOOK_KEY",
        "Environment variable holding SendGrid's signed event webhook verification key "
        "(base64). Without it or basic auth, SendGrid's webhook is refused.",
    )
    mailgun_signing_key_env: str = setting(
        "NEWSLETTER_MAILGUN_SIGNING_KEY",
        "Environment variable holding Mailgun's HTTP webhook signing key.",
    )
    ses_topic_arns: list[str] = setting(
        [],
        "SNS topics whose SES notifications are accepted (arn:aws:sns:REGION:ACCOUNT:NAME); "
        "messages from any other topic are refused.",
    )
    sns_certificate_url_pattern: str = setting(
        r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/",
        "Regular expression the URL of an SNS signing certificate (and of a subscription's "
        "SubscribeURL) must match before it is fetched. Change it only for tests.",
    )
    mailbox_maildir: str = setting(
        "", "Maildir folder of the bounce mailbox that `newsletter bounces fetch` reads."
    )
    mailbox_imap_url: str = setting(
        "",
        "An IMAP bounce mailbox instead: imaps://USER@HOST[:PORT]/FOLDER (or imap:// with "
        "?tls=starttls).",
    )
    mailbox_password_env: str = setting(
        "NEWSLETTER_BOUNCE_PASSWORD", "Environment variable holding the IMAP password."
    )
    mailbox_delete_processed: bool = setting(
        False,
        "Delete bounce messages once recorded; otherwise they are marked read and kept. "
        "Messages that cannot be read as bounces are always left unread.",
    )


@dataclass(frozen=True)
class Config:
    org: OrgConfig = field(default_factory=OrgConfig)
    brand: BrandConfig = field(default_factory=BrandConfig)
    mail: MailConfig = field(default_factory=MailConfig)
    web: WebConfig = field(default_factory=WebConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    editions: EditionsConfig = field(default_factory=EditionsConfig)
    dispatch: DispatchConfig = field(default_factory=DispatchConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    feedback: FeedbackConfig = field(default_factory=FeedbackConfig)
    dkim: DkimConfig = field(default_factory=DkimConfig)
    bounces: BouncesConfig = field(default_factory=BouncesConfig)
    check: CheckConfig = field(default_factory=CheckConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    admin: AdminConfig = field(default_factory=AdminConfig)
    # Recurring editions, from the [[schedules]] entries.
    schedules: tuple[ScheduleRule, ...] = ()
    # Named transports; `default_transport` names the one campaigns use.
    transports: dict[str, TransportConfig] = field(
        default_factory=lambda: {"outbox": TransportConfig()}
    )
    default_transport: str = "outbox"
    # Where the configuration came from, for messages ("<defaults>" when no file).
    source: str = "<defaults>"
    # The folder relative paths in the config are resolved against.
    base_dir: Path = field(default_factory=Path.cwd)

    def transport(self, name: str | None = None) -> TransportConfig:
        name = name or self.default_transport
        try:
            return self.transports[name]
        except KeyError:
            known = ", ".join(sorted(self.transports))
            raise ConfigError(
                f"{self.source}: no transport named {name!r} (known: {known})"
            ) from None

    def resolve_path(self, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base_dir / path


# The sections of the file and the dataclass each one fills.
SECTIONS: dict[str, type] = {
    "org": OrgConfig,
    "brand": BrandConfig,
    "mail": MailConfig,
    "web": WebConfig,
    "database": DatabaseConfig,
    "editions": EditionsConfig,
    "dispatch": DispatchConfig,
    "privacy": PrivacyConfig,
    "schedule": ScheduleConfig,
    "service": ServiceConfig,
    "feedback": FeedbackConfig,
    "dkim": DkimConfig,
    "bounces": BouncesConfig,
    "check": CheckConfig,
    "metrics": MetricsConfig,
    "admin": AdminConfig,
}


def find_config_file(explicit: str | os.PathLike[str] | None, env: dict[str, str]) -> Path | None:
    """The file to read: --config, then NEWSLETTER_CONFIG, then ./newsletter.toml."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        return path
    if env.get(ENV_CONFIG):
        path = Path(env[ENV_CONFIG])
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found (named by {ENV_CONFIG})")
        return path
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    return local if local.is_file() else None


def load_config(
    explicit: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None
) -> Config:
    """Build the one Config of this process from defaults, file and environment."""
    env = dict(os.environ) if env is None else env
    path = find_config_file(explicit, env)
    data: dict[str, Any] = {}
    source = "<defaults>"
    base_dir = Path.cwd()
    if path is not None:
        source = str(path)
        base_dir = path.resolve().parent
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from None
        except RecursionError:
            raise ConfigError(f"{source}: arrays or tables nested too deeply") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: cannot read: {exc}") from None
    return build_config(data, env, source=source, base_dir=base_dir)


def build_config(
    data: dict[str, Any], env: dict[str, str], *, source: str = "<defaults>", base_dir: Path
) -> Config:
    sections: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS:
            sections[key] = _build_section(SECTIONS[key], value, source, key)
        elif key not in ("transports", "transport", "schedules"):
            known = ", ".join([*SECTIONS, "transport", "transports", "schedules"])
            raise ConfigError(f"{source}: unknown section or key {key!r} (known: {known})")

    transports: dict[str, TransportConfig] = {}
    default_transport = "outbox"
    raw_transports = data.get("transports", {})
    if not isinstance(raw_transports, dict):
        raise ConfigError(f"{source}: [transports] must be a table of named transports")
    for name, value in raw_transports.items():
        transports[name] = _build_section(TransportConfig, value, source, f"transports.{name}")
    raw_default = data.get("transport", {})
    if raw_default:
        if not isinstance(raw_default, dict) or set(raw_default) - {"default"}:
            raise ConfigError(f'{source}: [transport] takes one key, default = "NAME"')
        default_transport = raw_default.get("default", default_transport)
        if not isinstance(default_transport, str):
            raise ConfigError(f"{source}: transport.default must be a string")
    if not transports:
        transports = {"outbox": TransportConfig()}
        if raw_default and default_transport != "outbox":
            raise ConfigError(
                f"{source}: transport.default names {default_transport!r}, "
                "but no [transports] are configured"
            )
    elif default_transport not in transports:
        if raw_default and default_transport == "outbox":
            pass  # the built-in outbox, kept beside the named ones (below)
        elif raw_default or len(transports) > 1:
            known = ", ".join(sorted({*transports, "outbox"}))
            raise ConfigError(
                f"{source}: transport.default: no transport named {default_transport!r} "
                f"(known: {known})"
            )
        else:
            default_transport = next(iter(transports))
    # The built-in outbox stays available by name (previews, `--transport outbox`)
    # unless [transports.outbox] redefines it.
    transports = {"outbox": TransportConfig(), **transports}

    # Environment variables win over the file.
    if env.get(ENV_DATABASE_URL):
        sections["database"] = DatabaseConfig(url=env[ENV_DATABASE_URL])
    if env.get(ENV_BASE_URL):
        web = sections.get("web", WebConfig())
        sections["web"] = dataclasses.replace(web, base_url=env[ENV_BASE_URL])
    if env.get(ENV_TRANSPORT):
        base = transports.get(default_transport, TransportConfig())
        transports[ENV_TRANSPORT_NAME] = dataclasses.replace(base, dsn=env[ENV_TRANSPORT])
        default_transport = ENV_TRANSPORT_NAME

    timezone = sections.get("schedule", ScheduleConfig()).timezone
    schedules = _build_schedules(data.get("schedules", []), source, timezone)

    config = Config(
        **sections,
        schedules=schedules,
        transports=transports,
        default_transport=default_transport,
        source=source,
        base_dir=base_dir,
    )
    _check_values(config, ENV_BASE_URL if env.get(ENV_BASE_URL) else "web.base_url")
    return config


def _build_section(cls: type, value: Any, source: str, dotted: str) -> Any:
    """One table of the file, checked key by key against the dataclass that declares it."""
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: [{dotted}] must be a table")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        if key not in fields:
            known = ", ".join(fields)
            raise ConfigError(f"{source}: unknown key {dotted}.{key} (known: {known})")
        kwargs[key] = _coerce(hints[key], item, f"{source}: {dotted}.{key}")
    return cls(**kwargs)


def _build_schedules(raw: Any, source: str, timezone: str) -> tuple[ScheduleRule, ...]:
    """The [[schedules]] entries, each checked; messages name the entry by its name."""

    if not isinstance(raw, list):
        raise ConfigError(f"{source}: schedules must be an array of tables, [[schedules]]")
    rules: list[ScheduleRule] = []
    for number, entry in enumerate(raw, 1):
        name = entry.get("name") if isinstance(entry, dict) else None
        where = f"schedules.{name}" if isinstance(name, str) and name else f"schedules[{number}]"
        rule = _build_section(ScheduleRule, entry, source, where)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,59}", rule.name):
            raise ConfigError(
                f"{source}: {where}.name must be 1-60 letters, digits, - _ or . (got {rule.name!r})"
            )
        if any(other.name == rule.name for other in rules):
            raise ConfigError(f"{source}: {where}: two [[schedules]] entries have this name")
        try:
            parse_cron(rule.cron)
        except CronError as exc:
            raise ConfigError(f"{source}: {where}.cron: {exc}") from None
        if rule.build not in SCHEDULE_BUILDS:
            raise ConfigError(
                f"{source}: {where}.build must be one of {', '.join(SCHEDULE_BUILDS)}, "
                f"not {rule.build!r}"
            )
        if rule.action not in SCHEDULE_ACTIONS:
            raise ConfigError(
                f"{source}: {where}.action must be one of {', '.join(SCHEDULE_ACTIONS)}, "
                f"not {rule.action!r}"
            )
        if not _known_zone(rule.timezone or timezone):
            raise ConfigError(f"{source}: {where}.timezone: unknown time zone {rule.timezone!r}")
        rules.append(dataclasses.replace(rule, timezone=rule.timezone or timezone))
    return tuple(rules)


def _known_zone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Check a TOML value against a declared type; ints are accepted for floats."""
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, not {_show(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be a whole number, not {_show(value)}")
        if value < 0:
            raise ConfigError(f"{where} must not be negative, not {_show(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, not {_show(value)}")
        if value < 0:
            raise ConfigError(f"{where} must not be negative, not {_show(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, not {_show(value)}")
        return value
    if origin is list:
        (inner,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, not {_show(value)}")
        return [_coerce(inner, v, where) for v in value]
    if origin is dict:
        _, inner = typing.get_args(hint)
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, not {_show(value)}")
        return {str(k): _coerce(inner, v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(hint, types.UnionType):  # pragma: no cover - no optional settings yet
        return value
    raise TypeError(f"unsupported setting type {hint!r}")  # a programming error, not a user's


def _check_base_url(value: str, where: str) -> None:
    """The public address of the pages: it starts every link and the List-Unsubscribe header."""
    if not value.startswith(("http://", "https://")):
        raise ConfigError(f"{where} must start with http:// or https://")
    if _CONTROL.search(value) or any(ch.isspace() for ch in value) or not value.isascii():
        raise ConfigError(
            f"{where} must be a plain URL with no spaces, line breaks or non-ASCII characters "
            "(write an international domain in its xn-- form)"
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ConfigError(f"{where} is not a valid URL: {exc}") from None
    if not parts.hostname or parts.query or parts.fragment or parts.username:
        raise ConfigError(
            f"{where} must be scheme://host[:port][/path], with no query, fragment or user"
        )


def _check_values(config: Config, base_url_key: str = "web.base_url") -> None:
    """Values that have the right type but cannot work."""
    src = config.source
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(config.schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{src}: schedule.timezone: unknown time zone {config.schedule.timezone!r}"
        ) from None
    _check_base_url(config.web.base_url, f"{src}: {base_url_key}")
    mail = config.mail
    for key, value in (
        ("mail.from_address", mail.from_address),
        ("mail.reply_to", mail.reply_to),
        ("mail.unsubscribe_mailto", mail.unsubscribe_mailto),
    ):
        if (value or key == "mail.from_address") and not _ADDRESS.fullmatch(value):
            raise ConfigError(
                f"{src}: {key} must be one plain email address (name@example.org), "
                f"not {_show(value)}"
            )
    if mail.message_id_domain and not _DOMAIN.fullmatch(mail.message_id_domain):
        raise ConfigError(
            f"{src}: mail.message_id_domain must be a domain such as example.org, "
            f"not {_show(mail.message_id_domain)}"
        )
    for key, value in (
        ("mail.from_name", mail.from_name),
        ("mail.list_id", mail.list_id),
        ("org.name", config.org.name),
    ):
        if _CONTROL.search(value):
            raise ConfigError(f"{src}: {key} must be one line with no control characters")
    if config.schedule.misfire_grace_minutes < 1:
        raise ConfigError(
            f"{src}: schedule.misfire_grace_minutes must be at least 1: no send starts on "
            "the exact second it is due"
        )
    if config.schedule.sync_seconds < 1:
        raise ConfigError(f"{src}: schedule.sync_seconds must be at least 1")
    for address in config.schedule.staff_addresses:
        if not _ADDRESS.fullmatch(address):
            raise ConfigError(f"{src}: schedule.staff_addresses: {address!r} is not an address")
    if config.service.workers < 1:
        raise ConfigError(f"{src}: service.workers must be at least 1")
    if config.service.log_format not in ("logfmt", "json"):
        raise ConfigError(
            f"{src}: service.log_format must be logfmt or json, not {config.service.log_format!r}"
        )
    if config.admin.approval not in APPROVAL_POLICIES:
        raise ConfigError(
            f"{src}: admin.approval must be one of {', '.join(APPROVAL_POLICIES)}, "
            f"not {config.admin.approval!r}"
        )
    if config.admin.idle_minutes < 1 or config.admin.login_window_minutes < 1:
        raise ConfigError(f"{src}: admin.idle_minutes and login_window_minutes must be at least 1")
    if config.admin.login_attempts < 1:
        raise ConfigError(f"{src}: admin.login_attempts must be at least 1")
    if config.dispatch.batch_size < 1:
        raise ConfigError(f"{src}: dispatch.batch_size must be at least 1")
    if config.dispatch.retry_max_attempts < 1:
        raise ConfigError(f"{src}: dispatch.retry_max_attempts must be at least 1")
    for name, transport in config.transports.items():
        if transport.connections < 1:
            raise ConfigError(f"{src}: transports.{name}.connections must be at least 1")
    _check_dkim(config)
    _check_brand(config)
    if config.bounces.return_path and not re.fullmatch(
        r"[A-Za-z0-9._-]+@[A-Za-z0-9.-]+", config.bounces.return_path
    ):
        raise ConfigError(
            f"{src}: bounces.return_path must be a plain address such as bounces@example.org "
            f"(letters, digits, . _ -), not {config.bounces.return_path!r}"
        )
    try:
        config.editions.subject_pattern.format(org="", month="")
        config.editions.announcement_subject_pattern.format(org="", title="")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(
            f"{src}: editions subject pattern has an unknown field {exc}; "
            "use {{org}}, {{month}} or {{title}}"
        ) from None


def _check_brand(config: Config) -> None:
    brand, src = config.brand, config.source
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", brand.colour):
        raise ConfigError(f"{src}: brand.colour must be #rrggbb, not {brand.colour!r}")
    if brand.logo_url and not brand.logo_url.startswith(("https://", "http://")):
        raise ConfigError(f"{src}: brand.logo_url must be an absolute http(s) address")
    if not 16 <= brand.logo_width <= 600:
        raise ConfigError(f"{src}: brand.logo_width must be from 16 to 600 pixels")
    for label, url in brand.footer_links.items():
        if not url.startswith(("https://", "http://", "mailto:")):
            raise ConfigError(
                f"{src}: brand.footer_links.{label}: {url!r} is not an http(s) or mailto address"
            )


def _check_dkim(config: Config) -> None:
    """A [dkim] section must be whole, and its key readable now, at start-up."""
    dkim = config.dkim
    given = {"domain": dkim.domain, "selector": dkim.selector,
             "private_key_file": dkim.private_key_file}  # fmt: skip
    if not any(given.values()):
        return
    missing = [f"dkim.{key}" for key, value in given.items() if not value]
    if missing:
        raise ConfigError(f"{config.source}: [dkim] also needs {', '.join(missing)}")
    # Imported here for start-up time: cryptography is only needed when DKIM is set up.
    from newsletter.dkim import read_private_key

    try:
        read_private_key(config.resolve_path(dkim.private_key_file))
    except ConfigError as exc:
        raise ConfigError(f"{config.source}: {exc}") from None


def documented_settings() -> list[tuple[str, str, str]]:
    """(section, key, help) for every setting, for the docs test and `config show`."""
    rows = []
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            rows.append((section, f.name, f.metadata["help"]))
    for f in dataclasses.fields(TransportConfig):
        rows.append(("transports.NAME", f.name, f.metadata["help"]))
    for f in dataclasses.fields(ScheduleRule):
        rows.append(("schedules", f.name, f.metadata["help"]))
    return rows
