"""Exporting a list's members or a segment's subscribers as CSV or JSON, streamed.

The CSV is the import format (email, name, language, then one column per
attribute, topics joined with "; "), plus a status column the importer
ignores, so an export can be imported again as it is. A cell a spreadsheet
would run as a formula is written with a leading apostrophe, which the
importer drops again (newsletter.audience.csvfile). Rows are read in
batches from the database and written as they come: memory stays flat.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any, cast

from sqlalchemy import Select, func, select, true
from sqlalchemy.orm import Session

from newsletter.app import Newsletter
from newsletter.audience.csvfile import spreadsheet_cell
from newsletter.audience.lists import get_list
from newsletter.audience.resolve import segment_condition
from newsletter.audience.segments import get_segment
from newsletter.errors import InputError
from newsletter.models import Subscriber, Subscription

EXPORT_FORMATS = ("csv", "json")
# The attributes the network uses most come first, in this order; others follow by name.
PREFERRED_ATTRIBUTES = ("organisation", "country", "region", "role", "topics")
FETCH_BATCH = 2000


def attribute_keys(session: Session, subscriber_ids: Select[Any]) -> list[str]:
    """The attribute keys used by these subscribers, preferred ones first."""
    if session.get_bind().dialect.name == "postgresql":
        keys_query = select(func.jsonb_object_keys(Subscriber.attributes))
    else:
        # json_each joined to its own row: SQLite's table-valued functions are lateral.
        entries = func.json_each(Subscriber.attributes).table_valued("key")
        keys_query = select(entries.c.key).select_from(Subscriber).join(entries, true())
    keys = set(session.scalars(keys_query.where(Subscriber.id.in_(subscriber_ids)).distinct()))
    preferred = [key for key in PREFERRED_ATTRIBUTES if key in keys]
    return preferred + sorted(keys - set(preferred))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def export_subscribers(
    app: Newsletter,
    out: IO[str],
    *,
    list_name: str | None = None,
    segment_name: str | None = None,
    fmt: str = "csv",
) -> int:
    """Write the members of a list (or a segment's subscribers) to `out`; returns the count.

    A list's members are those confirmed or waiting for confirmation, with
    their status on the list; a segment's are every subscriber it matches,
    with their status.
    """
    if fmt not in EXPORT_FORMATS:
        raise InputError(f"export format {fmt!r} is not one of: {', '.join(EXPORT_FORMATS)}")
    if (list_name is None) == (segment_name is None):
        raise InputError("export either a list (--list NAME) or a segment (--segment NAME)")
    with app.session() as session:
        base = [
            Subscriber.id,
            Subscriber.email,
            Subscriber.name,
            Subscriber.language,
            Subscriber.attributes,
        ]
        if list_name is not None:
            mailing_list = get_list(session, list_name)
            status_columns = ["list_status", "consent_at"]
            query = (
                select(*base, Subscription.status, Subscription.consent_at)
                .join(Subscription, Subscription.subscriber_id == Subscriber.id)
                .where(
                    Subscription.list_id == mailing_list.id,
                    Subscription.status != "unsubscribed",
                )
            )
        else:
            assert segment_name is not None
            segment = get_segment(session, segment_name)
            status_columns = ["subscriber_status"]
            query = select(*base, Subscriber.status).where(
                segment_condition(session, segment.definition)
            )
        query = query.order_by(Subscriber.id)
        keys = attribute_keys(session, query.with_only_columns(Subscriber.id).order_by(None))
        rows = session.execute(query.execution_options(yield_per=FETCH_BATCH))
        records: Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = (
            (
                {"email": row[1], "name": row[2], "language": row[3]},
                cast(dict[str, Any], row[4] or {}),
                dict(zip(status_columns, row[5:], strict=True)),
            )
            for row in rows
        )
        if fmt == "csv":
            return _write_csv(out, keys, status_columns, records)
        return _write_json(out, records)


def _write_csv(
    out: IO[str],
    keys: list[str],
    status_columns: list[str],
    records: Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]],
) -> int:
    writer = csv.writer(out)
    writer.writerow(["email", "name", "language", *keys, *status_columns])
    count = 0
    for profile, attributes, status in records:
        cells = [
            *profile.values(),
            *(_cell(attributes.get(key)) for key in keys),
            *(_cell(status[column]) for column in status_columns),
        ]
        # No cell runs as a formula when staff open the file (newsletter.audience.csvfile).
        writer.writerow([spreadsheet_cell(cell) for cell in cells])
        count += 1
    return count


def _write_json(
    out: IO[str], records: Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]
) -> int:
    # A JSON array written element by element, so that a million rows never sit in memory.
    count = 0
    out.write("[")
    for profile, attributes, status in records:
        document = {
            **profile,
            "attributes": attributes,
            **{k: _cell(v) if isinstance(v, datetime) else v for k, v in status.items()},
        }
        out.write(("\n  " if count == 0 else ",\n  ") + json.dumps(document, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
