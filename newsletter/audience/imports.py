"""Importing subscribers from a CSV file into a list, in set-based batches.

Modes:
- `add` (default): new addresses join the list; people already on it are left
  as they are (counted unchanged);
- `update`: as add, and the name, language and attributes of people in the
  file are updated from it (empty cells change nothing; attributes merge);
- `sync`: as update, and members of the list who are not in the file are
  unsubscribed from that list (never deleted).

Rules that hold in every mode:
- a row without a valid address, or with one already seen earlier in the file,
  is rejected into the reject file with its line number and the reason;
- an address that is suppressed, whose subscriber is not active, or that
  unsubscribed from this list is never subscribed again (skipped, and listed in
  the reject file with why), unless the admin passes --force-resubscribe: then
  the obstacle is lifted and the subscription's consent note records it;
- an imported member is confirmed, on a double opt-in list too: the admin who
  imports asserts that the consent was obtained (recorded with method
  "import", the file's name, the time and the wording); `--unconfirmed` leaves
  new members unconfirmed instead.

The whole import is one transaction: it lands completely or not at all, and a
dry run is the same work rolled back. The file is streamed and each batch of
rows costs a handful of statements (a lookup of the batch's addresses sent as
one parameter, then bulk inserts and executemany updates), so memory stays flat
however long the file is; the addresses seen so far live in a temporary table,
not in memory. While a batch is written, a thread reads and validates the next
ones (at most two ahead); the outcome does not depend on where batches are cut
(tests/test_import_batches.py).
"""

from __future__ import annotations

import csv
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from queue import Full, Queue
from typing import IO, Any, cast

from sqlalchemy import (
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    bindparam,
    delete,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from newsletter import audit, db
from newsletter.app import Newsletter
from newsletter.audience.addresses import InvalidAddress, normalise_address
from newsletter.audience.columns import (
    ColumnMap,
    attribute_value,
    clean_name,
    map_header,
    normalise_language,
    split_topics,
)
from newsletter.audience.consent import DEFAULT_IMPORT_TEXT, Consent
from newsletter.audience.csvfile import CsvFile, Record, spreadsheet_cell
from newsletter.audience.files import open_private, partial_path
from newsletter.audience.lists import get_open_list
from newsletter.audience.subscribers import Obstacle, forced_note, subscription_obstacle
from newsletter.audience.suppression import KeyHasher, suppressed_among
from newsletter.audience.topics import Topics
from newsletter.db import BulkInsert, among
from newsletter.errors import InputError, OperationFailed
from newsletter.models import Subscriber, Subscription, Suppression, utcnow

IMPORT_MODES = ("add", "update", "sync")
BATCH_SIZE = 2000
# How many rejected rows a report keeps to show on screen; the file has them all.
PREVIEW_REJECTS = 10
# Distinct cell values (languages, topic cells) whose reading is remembered during an import.
CELL_CACHE = 4096

SUBSCRIBERS = cast(Table, Subscriber.__table__)
SUBSCRIPTIONS = cast(Table, Subscription.__table__)


def _seen_table() -> Table:
    """The addresses read so far and the line each was first on: a temporary table.

    It finds duplicates across batches and, in sync mode, who is *not* in the file,
    without holding a million addresses in memory.
    """
    return Table(
        "import_seen_addresses",
        MetaData(),
        Column("email_key", String(320), primary_key=True),
        Column("line", Integer, nullable=False),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


@dataclass
class ImportReport:
    file: str
    list_name: str
    mode: str
    dry_run: bool
    format: str = ""
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # not re-subscribed: unsubscribed, suppressed or inactive
    rejected: int = 0  # bad rows: no or invalid address, duplicate, unreadable
    removed: int = 0  # sync: members not in the file, unsubscribed from the list
    forced: int = 0  # re-subscriptions forced over an obstacle
    reject_file: str | None = None
    rejects: list[dict[str, Any]] = field(default_factory=list)  # the first few
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "rejected": self.rejected,
            "removed": self.removed,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "list": self.list_name,
            "mode": self.mode,
            "dry_run": self.dry_run,
            "format": self.format,
            "rows": self.rows,
            **self.counts(),
            "forced": self.forced,
            "reject_file": self.reject_file,
            "rejects": self.rejects,
            "notes": self.notes,
        }


@dataclass(slots=True)
class Person:
    """One valid row, ready to write."""

    line: int
    email: str
    key: str
    hash: str
    name: str
    language: str | None
    attributes: dict[str, Any]
    fields: list[str]


class RejectFile:
    """The rejected and skipped rows: line, reason, then the row as it was.

    Written next to nothing the user did not ask for: only when there is
    something to write, readable by its owner only (it holds addresses), and
    importable again once fixed (the two extra columns are ignored).
    """

    def __init__(self, path: Path | None, header: list[str], report: ImportReport) -> None:
        self.path = path
        self.header = header
        self.report = report
        self._file: IO[str] | None = None
        self._writer: Any = None
        self._tmp: Path | None = None
        self._pending: list[tuple[int, str, list[str]]] = []

    def add(self, line: int, reason: str, fields: list[str]) -> None:
        # Bad rows are met while reading and skipped ones while writing a batch; held
        # until the batch is written, they go out in the order of the file.
        self._pending.append((line, reason, fields))

    def flush(self) -> None:
        self._pending.sort(key=lambda entry: entry[0])
        for line, reason, fields in self._pending:
            if len(self.report.rejects) < PREVIEW_REJECTS:
                self.report.rejects.append({"line": line, "reason": reason})
            if self.path is not None:
                self._write(line, reason, fields)
        self._pending.clear()

    def _write(self, line: int, reason: str, fields: list[str]) -> None:
        assert self.path is not None
        if self._writer is None:
            self._tmp = partial_path(self.path)
            # UTF-8 with a byte-order mark, so that spreadsheet programs read it right.
            self._file = open_private(self._tmp, encoding="utf-8-sig")
            self._writer = csv.writer(self._file)
            self._writer.writerow(["rejected_line", "rejected_reason", *self.header])
        # The rows come from outside: none may run as a formula in a spreadsheet.
        self._writer.writerow([line, spreadsheet_cell(reason), *map(spreadsheet_cell, fields)])

    def finish(self) -> str | None:
        self.flush()
        if self._file is None or self._tmp is None or self.path is None:
            return None
        self._file.close()
        os.replace(self._tmp, self.path)
        return str(self.path)

    def abandon(self) -> None:
        if self._file is not None and self._tmp is not None:
            self._file.close()
            self._tmp.unlink(missing_ok=True)


def default_reject_path(source: str | Path) -> Path:
    """Where the command puts rejected rows by default: <name>-rejected.csv in the
    working folder (the input's folder may be read-only, as the bundled samples are)."""
    return Path.cwd() / f"{Path(source).stem}-rejected.csv"


def import_subscribers(
    app: Newsletter,
    path: str | Path,
    *,
    list_name: str,
    mode: str = "add",
    dry_run: bool = False,
    reject_path: str | Path | None = None,
    encoding: str | None = None,
    consent_text: str | None = None,
    force_resubscribe: bool = False,
    unconfirmed: bool = False,
    progress: Callable[[int], None] | None = None,
    actor: str,
) -> ImportReport:
    """Import a CSV file into a list; see the module's docstring for what each mode does.

    Rejected and skipped rows are written to `reject_path` when one is given
    (the command gives `default_reject_path` unless told otherwise); a caller
    that gives none still gets the first few in the report. A dry run does all
    the work, reports the same counts and rolls back.
    """
    if mode not in IMPORT_MODES:
        raise InputError(f"import mode {mode!r} is not one of: {', '.join(IMPORT_MODES)}")
    source = Path(path)
    report = ImportReport(file=str(source), list_name=list_name, mode=mode, dry_run=dry_run)
    rejects_to = Path(reject_path) if reject_path is not None else None
    if rejects_to is not None and not rejects_to.parent.is_dir():
        raise InputError(f"{rejects_to}: the folder for the reject file does not exist")

    with app.sessions() as session:
        session.begin()
        try:
            mailing_list = get_open_list(session, list_name)
            with CsvFile(source, encoding=encoding) as csv_file:
                report.format = csv_file.describe()
                where = f"{source}: line {csv_file.header_line}"
                columns = map_header(csv_file.header, where=where)
                report.notes += columns.notes
                rejects = RejectFile(rejects_to, csv_file.header, report)
                try:
                    run = _ImportRun(
                        app,
                        session,
                        report,
                        rejects,
                        list_id=mailing_list.id,
                        consent=Consent(
                            method="import",
                            source=source.name,
                            text=consent_text or DEFAULT_IMPORT_TEXT,
                        ),
                        status="unconfirmed" if unconfirmed else "confirmed",
                        force=force_resubscribe,
                    )
                    run.create_seen_table()
                    rows = _RowReader(app, columns)
                    shown = 0
                    analysed = False
                    for batch in _read_ahead(_batches(csv_file, rows)):
                        run.write_batch(batch)
                        if not analysed and report.added >= ANALYZE_AFTER:
                            # The rest of this import is planned for the tables' size.
                            analysed = _refresh_statistics(session.connection())
                        if progress is not None and report.rows // 10_000 > shown:
                            shown = report.rows // 10_000
                            progress(report.rows)
                    if mode == "sync":
                        run.unsubscribe_missing(source.name)
                    run.drop_seen_table()
                except BaseException:
                    rejects.abandon()
                    raise
                report.reject_file = rejects.finish()
            if dry_run:
                session.rollback()
            else:
                audit.record(session, actor, "import", "list", list_name,
                             f"{source.name}, {mode}: " + ", ".join(
                                 f"{n} {what}" for what, n in report.counts().items() if n
                             ))  # fmt: skip
                session.commit()
        except IntegrityError:
            session.rollback()
            raise OperationFailed(
                f"{source}: another process added some of the same addresses meanwhile; "
                "nothing was imported: run the import again (repeating it is safe)"
            ) from None
        except OperationalError as exc:
            session.rollback()
            raise OperationFailed(
                f"{source}: the database refused the import ({exc.orig}); nothing was imported"
            ) from None
        except BaseException:
            session.rollback()
            raise
    if not dry_run and report.added >= ANALYZE_AFTER:
        with app.engine.connect() as conn:
            # The statistics ANALYZE took inside the import saw its size then; these see
            # it whole, for the next import.
            _refresh_statistics(conn)
            conn.commit()
    return report


# New rows after which an import refreshes the planner's statistics (PostgreSQL).
ANALYZE_AFTER = 10_000


def _refresh_statistics(conn: Connection) -> bool:
    """Tell PostgreSQL's planner how large the tables have grown; True when it did.

    Autovacuum analyses a table some time after it changes; until then the planner
    believes a freshly filled `subscribers` holds a handful of rows and plans the
    import's batch lookups as nested loops over every member of the list: measured
    at 4.5 s a batch (instead of milliseconds) for a re-import right after a first
    import of 100,000 rows, and most of a large first import's time. ANALYZE reads a
    fixed sample, well under a second at a million rows, and inside a transaction it
    counts that transaction's own rows. SQLite plans from its indexes: nothing to do.
    """
    if conn.dialect.name != "postgresql":
        return False
    conn.exec_driver_sql("ANALYZE subscribers, subscriptions")
    return True


@dataclass(slots=True)
class _Batch:
    """A batch of rows as read: the valid ones, the bad ones and why, and the row count
    of the file up to its end."""

    people: list[Person]
    bad: list[tuple[Record, str]]
    rows: int


def _batches(csv_file: CsvFile, reader: _RowReader) -> Iterator[_Batch]:
    """The file's records read into batches of at most BATCH_SIZE rows, good or bad
    (a file of nothing but bad rows is batched too: memory stays flat)."""
    width = len(csv_file.header)
    rows = 0
    batch = _Batch([], [], 0)
    for record in csv_file.records():
        rows += 1
        if len(record.fields) > width:
            batch.bad.append(
                (
                    record,
                    f"{len(record.fields)} fields where the header has {width} "
                    f"(a value with an unquoted {csv_file.delimiter!r}?)",
                )
            )
        else:
            person = reader.person(record)
            if isinstance(person, str):
                batch.bad.append((record, person))
            else:
                batch.people.append(person)
        if len(batch.people) + len(batch.bad) >= BATCH_SIZE:
            batch.rows = rows
            yield batch
            batch = _Batch([], [], 0)
    if batch.people or batch.bad:
        batch.rows = rows
        yield batch


# Batches read ahead of the one being written; bounded, so that memory stays flat.
READ_AHEAD = 2


def _read_ahead(batches: Iterator[_Batch]) -> Iterator[_Batch]:
    """The batches, read and validated in a thread while the caller writes earlier ones.

    The database drivers let go of the interpreter while the database works
    (SQLite's own code, PostgreSQL's round trips to its server): meanwhile the next
    rows are read, validated and hashed, on the other core when there is one. The
    thread touches no database and no counter of the report; an error it meets
    (an unreadable line) is raised here, in order, after the batches before it.
    """
    queue: Queue[_Batch | BaseException | None] = Queue(maxsize=READ_AHEAD)
    stop = threading.Event()

    def hand_over(item: _Batch | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                queue.put(item, timeout=0.1)
                return True
            except Full:
                continue
        return False  # the caller gave up (its own error): stop reading

    def read() -> None:
        try:
            for batch in batches:
                if not hand_over(batch):
                    return
        except BaseException as exc:  # handed to the caller, who raises it
            hand_over(exc)
            return
        hand_over(None)

    thread = threading.Thread(target=read, name="import-reader", daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _cell(fields: list[str], index: int | None) -> str:
    return fields[index] if index is not None and index < len(fields) else ""


class _RowReader:
    """Turns a record into a Person, or the reason it is rejected.

    Pure work on the row (validation, cleaning, hashing): it runs in the reading
    thread, apart from the database and the report.
    """

    def __init__(self, app: Newsletter, columns: ColumnMap) -> None:
        self.columns = columns
        self.hasher = KeyHasher(app.suppression_key)
        self.topics = Topics.from_config(app.config.web)
        # A file holds few distinct languages and topic cells, repeated on every row:
        # each is worked out once (bounded, so that a file of all-distinct cells keeps
        # memory flat). A cell that is refused raises every time; errors are not kept.
        self.language_code = lru_cache(maxsize=CELL_CACHE)(normalise_language)
        self.topic_slugs = lru_cache(maxsize=CELL_CACHE)(self._topic_slugs)

    def _topic_slugs(self, cell: str) -> tuple[str, ...]:
        return tuple(self.topics.to_slugs(split_topics(cell)))

    def person(self, record: Record) -> Person | str:
        fields, columns = record.fields, self.columns
        raw = _cell(fields, columns.email).strip()
        if not raw:
            return "no email address"
        try:
            address = normalise_address(raw, allow_display_name=True)
        except InvalidAddress as exc:
            return str(exc)
        name = _cell(fields, columns.name)
        if not name.strip():
            parts = (_cell(fields, columns.first_name), _cell(fields, columns.last_name))
            name = " ".join(part.strip() for part in parts if part.strip())
        name = clean_name(name) or address.display_name
        if len(name) > 300:
            return f"the name is {len(name)} characters long (300 at most)"
        language: str | None = None
        raw_language = _cell(fields, columns.language).strip()
        if raw_language:
            try:
                language = self.language_code(raw_language)
            except ValueError as exc:
                return str(exc)
        attributes: dict[str, Any] = {}
        for index, key in columns.attributes:
            value = _cell(fields, index).strip()
            if value:
                if key == "topics":
                    # One spelling per topic: "harm reduction" and "harm-reduction" are
                    # one slug.
                    attributes[key] = list(self.topic_slugs(value))
                else:
                    attributes[key] = attribute_value(key, value)
        return Person(
            line=record.line,
            email=address.email,
            key=address.key,
            hash=self.hasher(address.key),
            name=name,
            language=language,
            attributes=attributes,
            fields=fields,
        )


class _ImportRun:
    """The state of one import: the session, the list, the counters, the writes."""

    def __init__(
        self,
        app: Newsletter,
        session: Session,
        report: ImportReport,
        rejects: RejectFile,
        *,
        list_id: int,
        consent: Consent,
        status: str,
        force: bool,
    ) -> None:
        self.session = session
        self.report = report
        self.rejects = rejects
        self.list_id = list_id
        self.consent = consent
        self.consent_columns = consent.columns(keep_ip=False)
        self.status = status
        self.force = force
        self.update_profiles = report.mode in ("update", "sync")
        self.default_language = app.config.editions.default_language
        self.seen = _seen_table()
        self.dialect = session.connection().dialect.name
        self._writers: dict[tuple[str, tuple[str, ...]], BulkInsert] = {}

    # --- bookkeeping ---------------------------------------------------------

    def reject(self, record: Record, reason: str) -> None:
        self.report.rejected += 1
        self.rejects.add(record.line, reason, record.fields)

    def skip(self, person: Person, obstacle: Obstacle) -> None:
        self.report.skipped += 1
        self.rejects.add(
            person.line,
            f"{obstacle.text}; not subscribed again (an admin may override with "
            "--force-resubscribe)",
            person.fields,
        )

    def create_seen_table(self) -> None:
        self.seen.create(self.session.connection())

    def drop_seen_table(self) -> None:
        self.seen.drop(self.session.connection())

    # --- one batch -----------------------------------------------------------

    def _fresh(self, batch: list[Person]) -> list[Person]:
        """The batch without addresses seen before in the file (those are rejected)."""
        keys = list({p.key for p in batch})
        earlier = dict(
            self.session.execute(
                select(self.seen.c.email_key, self.seen.c.line).where(
                    among(self.seen.c.email_key, keys, self.dialect)
                )
            ).all()
        )
        fresh: list[Person] = []
        for person in batch:
            first = earlier.get(person.key)
            if first is not None:
                self.report.rejected += 1
                self.rejects.add(
                    person.line,
                    f"duplicate: {person.email} is already on line {first}",
                    person.fields,
                )
                continue
            earlier[person.key] = person.line
            fresh.append(person)
        if fresh:
            self._insert(self.seen, [{"email_key": p.key, "line": p.line} for p in fresh])
        return fresh

    def _insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Many rows with the same columns, through the DBAPI cursor (see db.BulkInsert)."""
        conn = self.session.connection()
        key = (table.name, tuple(rows[0]))
        writer = self._writers.get(key)
        if writer is None:
            writer = self._writers[key] = BulkInsert(conn, table, key[1])
        writer.run(conn, rows)

    def write_batch(self, batch: _Batch) -> None:
        self.report.rows = batch.rows
        for record, reason in batch.bad:
            self.reject(record, reason)
        if batch.people:
            self._write_batch(batch.people)
        self.rejects.flush()

    def _write_batch(self, batch: list[Person]) -> None:
        people = self._fresh(batch)
        if not people:
            return
        session = self.session
        existing = {
            row.email_key: row
            for row in session.execute(
                select(
                    Subscriber.id,
                    Subscriber.email_key,
                    Subscriber.email_hash,
                    Subscriber.status,
                    Subscriber.name,
                    Subscriber.language,
                    Subscriber.attributes,
                    Subscription.id.label("subscription_id"),
                    Subscription.status.label("subscription_status"),
                    Subscription.unsubscribed_at,
                )
                .outerjoin(
                    Subscription,
                    and_(
                        Subscription.subscriber_id == Subscriber.id,
                        Subscription.list_id == self.list_id,
                    ),
                )
                .where(among(SUBSCRIBERS.c.email_key, [p.key for p in people], self.dialect))
            )
        }
        suppressed = suppressed_among(session, [p.hash for p in people])
        now = utcnow()

        new_people: list[Person] = []
        new_notes: dict[str, str] = {}  # email_key → consent note, for forced ones
        new_subscriptions: list[dict[str, Any]] = []
        changed_subscriptions: list[dict[str, Any]] = []
        changed_profiles: list[dict[str, Any]] = []
        lifted: list[str] = []

        for person in people:
            row = existing.get(person.key)
            obstacle = subscription_obstacle(
                suppressed_reason=suppressed.get(person.hash),
                subscriber_status=row.status if row else None,
                subscription_status=row.subscription_status if row else None,
                unsubscribed_at=row.unsubscribed_at if row else None,
                list_name=self.report.list_name,
            )
            if obstacle and not self.force:
                self.skip(person, obstacle)
                continue
            note = forced_note(obstacle, f"the import of {self.consent.source}") if obstacle else ""
            if obstacle:
                self.report.forced += 1
                if obstacle.kind == "suppressed":
                    lifted.append(person.hash)
            if row is None:
                new_people.append(person)
                new_notes[person.key] = note
                self.report.added += 1
                continue

            profile = self._profile_change(person, row, reactivate=bool(obstacle))
            if profile:
                changed_profiles.append(profile)
            if row.subscription_id is None:
                new_subscriptions.append(self._subscription(row.id, note, now))
                self.report.added += 1
            elif obstacle or (
                row.subscription_status == "unconfirmed" and self.status == "confirmed"
            ):
                # A forced re-subscription, or a pending one the admin now vouches for.
                changed_subscriptions.append(
                    {"b_id": row.subscription_id, **self._consent_values(note, now)}
                )
                if obstacle:
                    self.report.added += 1
                else:
                    self.report.updated += 1
            elif profile:
                self.report.updated += 1
            else:
                self.report.unchanged += 1

        if lifted:
            session.execute(delete(Suppression).where(Suppression.email_hash.in_(lifted)))
        if new_people:
            ids = self._insert_subscribers(new_people, now)
            new_subscriptions += [
                self._subscription(ids[p.key], new_notes[p.key], now) for p in new_people
            ]
        if new_subscriptions:
            self._insert(SUBSCRIPTIONS, new_subscriptions)
        # An UPDATE without .values() sets the columns named in the parameters: one
        # executemany for the whole batch.
        if changed_subscriptions:
            session.execute(
                update(SUBSCRIPTIONS).where(SUBSCRIPTIONS.c.id == bindparam("b_id")),
                changed_subscriptions,
            )
        if changed_profiles:
            session.execute(
                update(SUBSCRIBERS).where(SUBSCRIBERS.c.id == bindparam("b_id")),
                changed_profiles,
            )

    def _consent_values(self, note: str, now: Any) -> dict[str, Any]:
        return {
            "status": self.status,
            **self.consent_columns,
            "consent_note": note,
            "unsubscribed_at": None,
            "updated_at": now,
        }

    def _subscription(self, subscriber_id: int, note: str, now: Any) -> dict[str, Any]:
        return {
            "subscriber_id": subscriber_id,
            "list_id": self.list_id,
            "created_at": now,
            **self._consent_values(note, now),
        }

    def _profile_change(self, person: Person, row: Any, *, reactivate: bool) -> dict[str, Any]:
        """The new profile of an existing subscriber, or {} when nothing changes."""
        name, language, attributes = row.name, row.language, row.attributes or {}
        if self.update_profiles:
            name = person.name or name
            language = person.language or language
            attributes = {**attributes, **person.attributes}
        status = "active" if reactivate else row.status
        if (name, language, attributes, status, row.email_hash) == (
            row.name,
            row.language,
            row.attributes or {},
            row.status,
            person.hash,
        ):
            return {}
        return {
            "b_id": row.id,
            "name": name,
            "language": language,
            "attributes": attributes,
            "status": status,
            "email_hash": person.hash,
            "updated_at": utcnow(),
        }

    def _insert_subscribers(self, people: list[Person], now: Any) -> dict[str, int]:
        """Insert new subscribers; returns their ids by address key.

        A plain executemany, then one indexed lookup of the batch's keys for the
        ids: cheaper than INSERT … RETURNING through SQLAlchemy, whose per-row
        conversions cost more than the database's work (see db.BulkInsert).
        """
        self._insert(
            SUBSCRIBERS,
            [
                {
                    "email": p.email,
                    "email_key": p.key,
                    "email_hash": p.hash,
                    "name": p.name,
                    "language": p.language or self.default_language,
                    "attributes": p.attributes,
                    "status": "active",
                    "created_at": now,
                    "updated_at": now,
                }
                for p in people
            ],
        )
        rows = self.session.execute(
            select(SUBSCRIBERS.c.id, SUBSCRIBERS.c.email_key).where(
                among(SUBSCRIBERS.c.email_key, [p.key for p in people], self.dialect)
            )
        )
        return {key: subscriber_id for subscriber_id, key in rows}

    # --- sync ----------------------------------------------------------------

    def unsubscribe_missing(self, file_name: str) -> None:
        """Sync: end the subscriptions to this list of everyone not in the file."""
        in_file = self.session.scalar(select(self.seen.c.line).limit(1))
        if in_file is None:
            raise InputError(
                f"{self.report.file}: no valid rows; refusing to sync, which would unsubscribe "
                f"every member of {self.report.list_name!r} (nothing was changed)"
            )
        now = utcnow()
        keys_in_file = select(Subscriber.id).join(
            self.seen, self.seen.c.email_key == Subscriber.email_key
        )
        result = self.session.execute(
            update(SUBSCRIPTIONS)
            .where(
                SUBSCRIPTIONS.c.list_id == self.list_id,
                SUBSCRIPTIONS.c.status != "unsubscribed",
                SUBSCRIPTIONS.c.subscriber_id.not_in(keys_in_file),
            )
            .values(
                status="unsubscribed",
                unsubscribed_at=now,
                updated_at=now,
                consent_note=f"unsubscribed by a sync import of {file_name}: not in the file",
            )
        )
        self.report.removed = db.rows_changed(result)
