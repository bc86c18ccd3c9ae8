"""Benchmark: import a large generated CSV file into a list, and watch memory.

    python bench/bench_import.py                 # 1,000,000 rows into a new SQLite file
    python bench/bench_import.py --rows 100000   # smaller
    python bench/bench_import.py --database-url postgresql://postgres@127.0.0.1/bench

Prints the time to generate the file, the time to import it (and again, when
every row is already there), rows per second, and the process's peak resident
memory, which should not grow with the number of rows: compare two sizes.

Beside the import it prints the *floor*: plain Python reading the same file with
the csv module and validating each address with email-validator, in a fresh
process, as fast as an import that validates every row could hope to go. Target:
the import at 12,000 rows/s or more, and at least 0.6 × the floor.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import pstats
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from urllib.parse import quote

LANGUAGES = ("en", "ru", "fr", "es")
REGIONS = ("Africa", "Asia", "Eurasia", "Europe", "Latin America")
TOPICS = ("drug policy", "HIV", "harm reduction", "human rights", "hepatitis C", "gender")


def generate(path: Path, rows: int, seed: int = 2019) -> None:
    """A semicolon-separated file like a spreadsheet export, written row by row."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write("Email Address;Full Name;Language;Organisation;Region;Topics\n")
        for i in range(rows):
            topics = " | ".join(rng.sample(TOPICS, rng.randint(0, 3)))
            handle.write(
                f"person{i}@example.org;Person {i};{rng.choice(LANGUAGES)};"
                f"Organisation {i % 5000};{rng.choice(REGIONS)};{topics}\n"
            )


@contextmanager
def scratch_database(url: str | None, folder: Path) -> Iterator[str]:
    """A new SQLite file in `folder`, or a new schema in the PostgreSQL database `url`,
    dropped afterwards, so that a benchmark always starts empty."""
    if not url:
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    from sqlalchemy import create_engine

    from newsletter.db import normalise_url

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in url else "?"
    try:
        yield f"{normalise_url(url)}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def floor(path: Path) -> tuple[float, float]:
    """(wall, CPU) seconds for csv + email-validator over the file, in a fresh process."""
    from email_validator import EmailNotValidError, validate_email

    started, cpu = time.perf_counter(), cpu_seconds()
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter=";")
        next(reader)
        for row in reader:
            with suppress(EmailNotValidError):
                validate_email(row[0], check_deliverability=False, allow_display_name=True)
    return time.perf_counter() - started, cpu_seconds() - cpu


def peak_rss_mb() -> float:
    # ru_maxrss is in kilobytes on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="default: a new SQLite file in a temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--profile",
        type=Path,
        help="write cProfile statistics of the first import to this file (pstats format) "
        "and print the functions that took the most CPU time",
    )
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        print(*floor(args.floor))
        return

    folder = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        with scratch_database(args.database_url, folder) as url:
            run(url, folder, args.rows, profile_to=args.profile)
    finally:
        if not args.keep:
            shutil.rmtree(folder)


def run(url: str, folder: Path, rows: int, *, profile_to: Path | None = None) -> None:
    from newsletter import audience
    from newsletter.app import Newsletter
    from newsletter.config import build_config

    csv_path = folder / "people.csv"
    env = {"NEWSLETTER_SECRET_KEY": "bench"}
    app = Newsletter(build_config({"database": {"url": url}}, env, base_dir=folder), env=env)

    started = time.perf_counter()
    generate(csv_path, rows)
    generated = time.perf_counter() - started
    size_mb = csv_path.stat().st_size / 1e6
    print(f"generated {rows:,} rows ({size_mb:.0f} MB) in {generated:.1f} s")
    print(f"peak RSS before importing: {peak_rss_mb():.0f} MB")

    floor_seconds, floor_cpu = map(
        float,
        subprocess.run(
            [sys.executable, __file__, "--floor", str(csv_path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split(),
    )
    floor_rate = rows / floor_seconds
    print(
        f"floor (csv + email-validator per row): {floor_seconds:.1f} s, {floor_rate:,.0f} rows/s "
        f"(CPU {floor_cpu:.1f} s: {rows / floor_cpu:,.0f} rows per CPU second)"
    )
    audience.ensure_list(app, "bench", actor="tester")
    if profile_to:
        # cProfile sees one thread (here it counts CPU time, not waiting): under
        # --profile the rows are read in the importing thread, as before the read-ahead,
        # so that the profile holds all the work.
        from newsletter.audience import imports

        imports._read_ahead = lambda batches: batches  # type: ignore[assignment]
    for label in ("first import", "same file again"):
        profiler = None
        if profile_to and label == "first import":
            profiler = cProfile.Profile(time.process_time)
        started, cpu = time.perf_counter(), cpu_seconds()
        if profiler is not None:
            profiler.enable()
        report = audience.import_subscribers(
            app, csv_path, list_name="bench", reject_path=folder / "rejected.csv", actor="tester"
        )
        if profiler is not None:
            profiler.disable()
        took, used = time.perf_counter() - started, cpu_seconds() - cpu
        print(
            f"{label}: {took:.1f} s, {rows / took:,.0f} rows/s "
            f"(added {report.added:,}, unchanged {report.unchanged:,}, "
            f"rejected {report.rejected:,}); {rows / took / floor_rate:.2f} × the floor; "
            f"CPU {used:.1f} s ({floor_cpu / used:.2f} × the floor's CPU time); "
            f"peak RSS {peak_rss_mb():.0f} MB"
        )
        if profiler is not None and profile_to is not None:
            # Under the profiler the import runs about twice as slow: its figures above
            # are for the shares in the table below, not for the rate.
            profiler.dump_stats(profile_to)
            pstats.Stats(str(profile_to)).sort_stats("tottime").print_stats(25)
    print(f"database: {url.split('?')[0]}")
    app.close()


if __name__ == "__main__":
    main()
