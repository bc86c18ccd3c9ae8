"""How commands print: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import click

# Every list, show and create command takes --json.
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def as_record(value: Any) -> Mapping[str, Any]:
    """A service function's typed result (a dataclass) or a mapping, as a mapping of fields.

    Service functions return dataclasses; the CLI prints their fields under the same
    names in tables and with --json, so the two never drift apart.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=_default))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value).replace("\n", " ")


def echo_table(rows: Iterable[Any], columns: Sequence[str], *, max_width: int = 60) -> None:
    """Print rows (dataclasses or mappings) as an aligned table with a header; long cells are
    cut with an ellipsis."""
    cells = []
    for value in rows:
        row = as_record(value)
        line = []
        for column in columns:
            text = _cell(row.get(column))
            if len(text) > max_width:
                text = text[: max_width - 1] + "…"
            line.append(text)
        cells.append(line)
    widths = [max([len(c), *(len(line[i]) for line in cells)]) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for line in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


def echo_record(value: Any) -> None:
    """Print one object (a dataclass or a mapping) as `key: value` lines."""
    record = as_record(value)
    width = max((len(k) for k in record), default=0)
    for key, value in record.items():
        click.echo(f"{key.ljust(width)}  {_cell(value)}")
