"""Log lines: one per event, logfmt or JSON, that a collector can parse back."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from newsletter.logs import configure_logging, log_event, logfmt_value, parse_logfmt


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    yield io.StringIO()


def logged(stream: io.StringIO, log_format: str, emit) -> list[str]:
    root, scheduler = logging.getLogger(), logging.getLogger("apscheduler")
    levels = root.level, scheduler.level
    handler = configure_logging(log_format, stream=stream)
    try:
        emit()
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        scheduler.setLevel(levels[1])
    return stream.getvalue().splitlines()


def test_an_event_is_one_logfmt_line_that_parses_back(stream) -> None:
    (line,) = logged(
        stream,
        "logfmt",
        lambda: log_event(
            "campaign.finished",
            campaign=12,
            sent=4210,
            note='paused by "Ana" = tired\nthen resumed',
            at=datetime(2019, 7, 1, 8, 0, tzinfo=UTC),
            lists=["members", "partners"],
            ok=True,
            missing=None,
        ),
    )
    assert line.startswith("time=")
    fields = parse_logfmt(line)
    assert fields["level"] == "info"
    assert fields["event"] == "campaign.finished"
    assert fields["campaign"] == "12"
    assert fields["sent"] == "4210"
    assert fields["note"] == 'paused by "Ana" = tired\nthen resumed'
    assert fields["at"] == "2019-07-01T08:00:00Z"
    assert fields["lists"] == "members,partners"
    assert (fields["ok"], fields["missing"]) == ("true", "")
    assert fields["time"].endswith("Z")


def test_other_modules_records_and_tracebacks_stay_on_one_line(stream) -> None:
    def emit() -> None:
        logging.getLogger("newsletter.dispatch.engine").warning("campaign %s: slow", 3)
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("newsletter.web").exception("page failed")

    warning, error = logged(stream, "logfmt", emit)
    assert parse_logfmt(warning) | {"time": ""} == {
        "time": "",
        "level": "warning",
        "event": "log",
        "logger": "newsletter.dispatch.engine",
        "msg": "campaign 3: slow",
    }
    fields = parse_logfmt(error)
    assert fields["level"] == "error"
    assert "Traceback" in fields["error"]
    assert "RuntimeError: boom" in fields["error"]


def test_json_lines_carry_the_same_fields(stream) -> None:
    (line,) = logged(
        stream, "json", lambda: log_event("schedule.missed", level=logging.WARNING, campaign=4)
    )
    record = json.loads(line)
    assert (record["event"], record["level"], record["campaign"]) == (
        "schedule.missed",
        "warning",
        4,
    )


def test_event_fields_may_not_hide_the_line_head() -> None:
    with pytest.raises(ValueError, match="may not be named time"):
        log_event("x", time="now")


@pytest.mark.parametrize(
    ("value", "text"),
    [("plain", "plain"), ("two words", '"two words"'), ("", '""'), (3.5, "3.5"), ("a=b", '"a=b"')],
)
def test_logfmt_quotes_only_when_needed(value: object, text: str) -> None:
    assert logfmt_value(value) == text
