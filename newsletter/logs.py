"""One line per significant event, in a format a log collector can parse.

Any part of the program reports an event with `log_event(name, **fields)`:

    log_event("campaign.started", campaign=12, deliveries=4210)

and `newsletter serve` writes it to stderr as one logfmt line (or one JSON
object per line with `service.log_format = "json"`):

    time=2019-07-01T08:00:00.412Z level=info event=campaign.started campaign=12 deliveries=4210

Ordinary `logging` records of the other modules go through the same handler,
as `event=log logger=… msg="…"`, so a collector sees one format only. A
traceback is folded into its line (newlines escaped): one record, one line.

Events are plain `logging` records on the `newsletter.events` logger, so
nothing is written until someone installs a handler (`configure_logging`,
called by `newsletter serve`); a command run by hand stays quiet.

The events the program reports (fields in brackets):

- service.started [instance, address, workers, timezone], service.stopping [signal],
  service.stopped [instance]
- schedule.fired [rule, period, due_at, campaign, action] — a recurring rule built its edition
- schedule.held [rule, campaign, previews] — built as a draft, staff emailed a preview
- schedule.empty [rule, period] — no items that month: nothing built, nothing sent
- schedule.missed [campaign or rule, due_at, late_minutes, grace_minutes]
- schedule.failed [rule, period, due_at, note] — the rule could not build (a missing list)
- schedule.no_staff, schedule.preview_failed [campaign] — a held edition's preview
- campaign.started [campaign, scheduled_at, late_seconds, deliveries]
- campaign.paused [campaign, note], campaign.cancelled [campaign, note]
- campaign.finished [campaign, sent, failed, cancelled, seconds] — the ledger's totals;
  each service whose workers took part reports it once
- worker.error [error], scheduler.error [job, error], schedule.error [rule, error],
  service.heartbeat_failed [error] — something failed and will be tried again
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, TextIO

EVENTS_LOGGER = "newsletter.events"
LOG_FORMATS = ("logfmt", "json")

# The attribute of a LogRecord that carries an event's fields.
_FIELDS = "newsletter_fields"
# Keys every line starts with; an event's own fields may not take these names.
_RESERVED = ("time", "level", "event")


def log_event(name: str, *, level: int = logging.INFO, **fields: Any) -> None:
    """Report one event: `name` is dotted (`campaign.started`), fields are its facts."""
    clash = [key for key in fields if key in _RESERVED]
    if clash:
        raise ValueError(f"event fields may not be named {', '.join(clash)}")
    logging.getLogger(EVENTS_LOGGER).log(level, name, extra={_FIELDS: fields})


# A mapping: a log record's extras, whatever fields each event carries.
def event_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields of a record: an event's own, or logger and message for any other."""
    fields = getattr(record, _FIELDS, None)
    if fields is not None:
        return {"event": record.getMessage(), **fields}
    result: dict[str, Any] = {
        "event": "log",
        "logger": record.name,
        "msg": record.getMessage(),
    }
    if record.exc_info:
        result["error"] = logging.Formatter().formatException(record.exc_info)
    return result


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _plain(value: Any) -> Any:
    """A field's value as JSON would hold it: times in UTC ISO form, the rest as is."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
            return value.strftime("%Y-%m-%dT%H:%M:%SZ")
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def logfmt_value(value: Any) -> str:
    """One value in logfmt: bare when it can be, else double-quoted with escapes."""
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        text = ",".join("" if v is None else str(v) for v in value)
    elif isinstance(value, dict):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    if text and not any(c in text for c in ' ="\\') and text.isprintable():
        return text
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


class LogfmtFormatter(logging.Formatter):
    """`time=… level=… event=… key=value …` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        fields = event_fields(record)
        head = f"time={_timestamp(record)} level={record.levelname.lower()}"
        parts = [f"{key}={logfmt_value(value)}" for key, value in fields.items()]
        return " ".join([head, *parts])


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line, with the same keys as the logfmt form."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": _timestamp(record), "level": record.levelname.lower()}
        line.update({key: _plain(value) for key, value in event_fields(record).items()})
        return json.dumps(line, ensure_ascii=False)


def parse_logfmt(line: str) -> dict[str, str]:
    """A logfmt line back into its fields (for tests and for people's scripts)."""
    fields: dict[str, str] = {}
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] == " ":
            i += 1
        start = i
        while i < n and line[i] not in "= ":
            i += 1
        key = line[start:i]
        if not key:
            break
        value = ""
        if i < n and line[i] == "=":
            i += 1
            if i < n and line[i] == '"':
                i += 1
                chars = []
                while i < n and line[i] != '"':
                    if line[i] == "\\" and i + 1 < n:
                        i += 1
                        chars.append({"n": "\n", "r": "\r", "t": "\t"}.get(line[i], line[i]))
                    else:
                        chars.append(line[i])
                    i += 1
                i += 1
                value = "".join(chars)
            else:
                start = i
                while i < n and line[i] != " ":
                    i += 1
                value = line[start:i]
        fields[key] = value
    return fields


def configure_logging(
    log_format: str = "logfmt", *, stream: TextIO | None = None, level: int = logging.INFO
) -> logging.Handler:
    """Send every log record, events included, to `stream` (stderr) in one format.

    Returns the handler, so that a caller (a test) can remove it again.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"unknown log format {log_format!r} (one of: {', '.join(LOG_FORMATS)})")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LogfmtFormatter() if log_format == "logfmt" else JsonLinesFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    # The scheduler library says "Running job …" at INFO for every tick of every job;
    # our own events say what matters, once.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return handler
