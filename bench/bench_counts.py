"""Benchmark: what keeping the per-list member counts costs a bulk write, in µs per row.

    python bench/bench_counts.py                       # SQLite, 100,000 subscriptions
    python bench/bench_counts.py --database-url postgresql://postgres@127.0.0.1:5432/test

Writes the same subscriptions (as an import does: executemany on SQLite, COPY on
PostgreSQL), updates every row's status in one statement and deletes them all,
and on PostgreSQL also inserts them one statement per row (as a sign-up does),
with the counting triggers of migration 0009_console_counts in place and with
them dropped, alternately, several times,
and reports the median CPU time per row of each. CPU time, not wall time, because
the machine is shared: on SQLite it is this process's (the database runs in it);
on PostgreSQL it is the server process's serving this connection, read from
/proc (the server must run on this machine).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

# A sibling script; importable because Python puts a script's folder on the path.
from bench_import import scratch_database

ROUNDS = 3
UPDATE_ALL = "UPDATE subscriptions SET status = 'unsubscribed'"
COLUMNS = ("subscriber_id", "list_id", "status", "consent_method", "consent_source",
           "consent_text", "consent_note", "created_at", "updated_at")  # fmt: skip


def bulk_insert(conn: Any, postgresql: bool, sql: str, params: list[dict[str, Any]]) -> None:
    """As an import writes: COPY on PostgreSQL (one statement), executemany on SQLite."""
    from sqlalchemy import text

    if not postgresql:
        conn.execute(text(sql), params)
        return
    cursor = conn.connection.dbapi_connection.cursor()
    now = time.strftime("%Y-%m-%d %H:%M:%S")
    with cursor.copy(f"COPY subscriptions ({', '.join(COLUMNS)}) FROM STDIN") as copy:
        for row in params:
            copy.write_row((row["s"], row["l"], "confirmed", "import", "bench", "", "", now, now))


def cpu_of(conn: Any, postgresql: bool, backend: int) -> float:
    if not postgresql:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default="", help="default: a new SQLite file")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as folder,
        scratch_database(args.database_url or None, Path(folder)) as url,
    ):
        measure(url, args.rows, Path(folder))


def measure(url: str, rows: int, folder: Path) -> None:
    import importlib.util

    from sqlalchemy import text

    from newsletter.app import Newsletter
    from newsletter.config import build_config

    env = {"NEWSLETTER_SECRET_KEY": "bench"}
    config = build_config({"database": {"url": url}}, env, base_dir=folder)
    app = Newsletter(config, env=env)
    engine = app.engine
    postgresql = engine.dialect.name == "postgresql"
    spec = importlib.util.spec_from_file_location(
        "console_counts",
        Path(__file__).parent.parent / "newsletter/migrations/versions/0009_console_counts.py",
    )
    assert spec and spec.loader
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    # Only the subscriptions' triggers: the events' ones are not on the path measured.
    create = migration._POSTGRESQL_TRIGGERS if postgresql else migration._SQLITE_TRIGGERS
    drop = [
        f"DROP TRIGGER {name}" + (" ON subscriptions" if postgresql else "")
        for name in migration._TRIGGER_NAMES
        if name.startswith("subscriptions")
    ]
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO lists (name, title, description, optin, visibility, "
                          "archived, created_at) VALUES ('a', 'A', '', 'single', 'private', "
                          "false, CURRENT_TIMESTAMP)"))  # fmt: skip
        conn.execute(text("INSERT INTO lists (name, title, description, optin, visibility, "
                          "archived, created_at) VALUES ('b', 'B', '', 'single', 'private', "
                          "false, CURRENT_TIMESTAMP)"))  # fmt: skip
        list_ids = [row[0] for row in conn.execute(text("SELECT id FROM lists ORDER BY id"))]
        conn.exec_driver_sql(
            "INSERT INTO subscribers (email, email_key, name, language, attributes, status, "
            "created_at, updated_at) VALUES "
            + ",".join(
                f"('p{n}@example.org', 'p{n}@example.org', '', 'en', '{{}}', 'active', "
                "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                for n in range(rows)
            )
        )
        people = [row[0] for row in conn.execute(text("SELECT id FROM subscribers"))]
    insert_sql = (
        "INSERT INTO subscriptions (subscriber_id, list_id, status, consent_method, "
        "consent_source, consent_text, consent_note, created_at, updated_at) VALUES "
        "(:s, :l, 'confirmed', 'import', 'bench', '', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
    )
    params = [{"s": person, "l": list_ids[n % 2]} for n, person in enumerate(people)]
    timings: dict[str, dict[str, list[float]]] = {state: {} for state in ("with", "without")}
    triggers_on = True
    for _ in range(ROUNDS):
        for state in ("without", "with"):
            with engine.begin() as conn:
                wanted = state == "with"
                if wanted != triggers_on:
                    for statement in create if wanted else drop:
                        conn.exec_driver_sql(statement)
                    triggers_on = wanted
            with engine.begin() as conn:
                backend = (
                    conn.execute(text("SELECT pg_backend_pid()")).scalar() if postgresql else 0
                ) or 0
                steps: list[tuple[str, Any]] = [
                    ("insert", lambda: bulk_insert(conn, postgresql, insert_sql, params)),
                    ("update", lambda: conn.exec_driver_sql(UPDATE_ALL)),
                    ("delete", lambda: conn.exec_driver_sql("DELETE FROM subscriptions")),
                ]
                if postgresql:
                    # One statement per row, as a sign-up or a console action writes.
                    steps += [
                        ("insert_1", lambda: conn.execute(text(insert_sql), params)),
                        ("delete_1", lambda: conn.exec_driver_sql("DELETE FROM subscriptions")),
                    ]
                for step, work in steps:
                    started = cpu_of(conn, postgresql, backend)
                    work()
                    spent = cpu_of(conn, postgresql, backend) - started
                    timings[state].setdefault(step, []).append(spent / rows * 1e6)
    whose = "the server process" if postgresql else "this process"
    print(f"database: {engine.dialect.name}, {rows:,} subscriptions per statement, "
          f"median of {ROUNDS}; CPU µs per row ({whose})")  # fmt: skip
    print(f"{'statement':<10} {'without':>9} {'with':>9} {'cost':>9}")
    for step in timings["with"]:
        without = statistics.median(timings["without"][step])
        with_ = statistics.median(timings["with"][step])
        print(f"{step:<10} {without:>9.2f} {with_:>9.2f} {with_ - without:>9.2f}")
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()), time.strftime("%H:%M"))
    app.close()


if __name__ == "__main__":
    main()
