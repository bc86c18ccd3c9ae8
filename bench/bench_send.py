"""Benchmark: `newsletter send` against the wire's limit, and its peak memory.

    python bench/bench_send.py                               # N = 20,000, 4 connections
    python bench/bench_send.py --n 20000 --n 200000          # memory must not grow with N
    python bench/bench_send.py --connections 8 --size 30000
    python bench/bench_send.py --database-url postgresql://postgres@127.0.0.1/test
    python bench/bench_send.py --processes 1,2                 # one process, then two
    python bench/bench_send.py --database-url postgresql://… --workers 1,2,4
    python bench/bench_send.py --dkim                        # the rate unsigned, then signed

In one run it:

1. starts a local SMTP sink: Postfix's `smtp-sink` when installed (Debian package
   `postfix`; `apt-get install postfix`), else aiosmtpd's Sink handler in its own
   process (`python -m aiosmtpd -n -c aiosmtpd.handlers.Sink`), a much slower sink:
   the rates are then compared against each other on the same sink all the same;
2. times Postfix's `smtp-source` sending N messages of the same size over the same
   number of connections (`-d`: reusing each connection, as the dispatcher does):
   the wire's limit on this machine. Without smtp-source, Python's smtplib on as
   many threads stands in (printed as such);
3. builds a real edition (a bulletin whose items make each personalised message
   about --size bytes), N confirmed subscribers in a fresh SQLite database (or
   a scratch schema of --database-url, dropped afterwards), and times
   `newsletter send ID` as a subprocess, the whole command: start-up, stage-1
   rendering, writing the ledger, sending and recording every outcome; with
   --workers W it instead writes the ledger with `send --detach` and times W
   `newsletter worker --once` processes started together, each with
   --connections connections (smtp-source then uses W × connections);
4. prints both rates, their ratio, the send's rate while sending (first to last
   sent_at in the ledger), its CPU time per message (user + system, from
   wait4) and its peak resident memory.

With --dkim each N is run twice, the second time with an RSA-2048 DKIM key in
the config (every message signed at compose time), and both rates are printed
side by side.

Targets (on the 2-core machine): at N = 20,000 the command's rate at least
0.35 × smtp-source's; peak memory under 150 MB and not growing with N.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

from bench_import import scratch_database

CHUNK = 10_000
PARAGRAPH = (
    "Community organisations of people who use drugs met in Vienna this month to "
    "review a decade of national drug strategies, and found that the promised shift "
    "from punishment to health has barely begun in most countries represented. "
    "Members shared data on access to harm reduction, the use of compulsory "
    "treatment and the number of people held in pre-trial detention for possession."
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_sink(port: int) -> tuple[subprocess.Popen[bytes], str]:
    smtp_sink = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    if os.path.exists(smtp_sink):
        command = [smtp_sink, "-4"]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # it refuses to run as root otherwise
        command += [f"127.0.0.1:{port}", "1024"]
        name = "Postfix smtp-sink"
    else:
        command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                   "-c", "aiosmtpd.handlers.Sink"]  # fmt: skip
        name = "aiosmtpd Sink (fallback: install postfix for smtp-sink)"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, name
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit(f"the sink did not start: {' '.join(command)}")


def time_smtp_source(port: int, n: int, connections: int, size: int) -> tuple[float, str]:
    smtp_source = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    if os.path.exists(smtp_source):
        command = [
            smtp_source, "-d", "-s", str(connections), "-m", str(n), "-l", str(size),
            "-f", "bench@example.org", "-t", "sink@example.org", f"127.0.0.1:{port}",
        ]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start, "smtp-source " + " ".join(command[1:])
    return time_smtplib(port, n, connections, size), f"smtplib, {connections} threads"


def time_smtplib(port: int, n: int, connections: int, size: int) -> float:
    import smtplib

    body = b"Subject: bench\r\n\r\n" + (b"x" * 76 + b"\r\n") * (size // 78)

    def work(count: int) -> None:
        client = smtplib.SMTP("127.0.0.1", port, local_hostname="bench")
        for i in range(count):
            client.sendmail("bench@example.org", [f"sink{i}@example.org"], body)
        client.quit()

    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(n // connections,)) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def dkim_section(folder: Path) -> str:
    """A [dkim] table with a fresh RSA-2048 key in `folder`."""
    from newsletter.dkim import generate_key

    generate_key("example.org", "bench", folder / "dkim.pem", "rsa")
    return '\n[dkim]\ndomain = "example.org"\nselector = "bench"\nprivate_key_file = "dkim.pem"\n'


def make_app(
    folder: Path, url: str, port: int, connections: int, in_flight: int, dkim: bool = False
) -> tuple[Any, Path, dict[str, str]]:
    from newsletter.app import Newsletter
    from newsletter.config import load_config

    config = folder / "newsletter.toml"
    config.write_text(
        f"[database]\nurl = {json.dumps(url)}\n\n"
        f'[transports.sink]\ndsn = "smtp://127.0.0.1:{port}?tls=none"\n'
        f"connections = {connections}\n\n"
        f"[dispatch]\nin_flight_per_connection = {in_flight}\n"
        + (dkim_section(folder) if dkim else "")
    )
    env = {**os.environ, "NEWSLETTER_SECRET_KEY": "bench-signing-key"}
    for name in ("NEWSLETTER_DATABASE_URL", "NEWSLETTER_TRANSPORT", "NEWSLETTER_CONFIG"):
        env.pop(name, None)
    return Newsletter(load_config(config, env=env), env=env), config, env


def build_edition(app: Any, size: int) -> tuple[int, int]:
    """A bulletin whose personalised message is about `size` bytes; (campaign id, bytes)."""
    from newsletter.message import Composer, Recipient
    from newsletter.models import Campaign, CampaignItem, Item, MailingList

    with app.session() as session:
        mailing_list = MailingList(name="members", title="Members")
        campaign = Campaign(
            kind="bulletin",
            status="approved",
            month="2019-06",
            subject="Example Network bulletin — June 2019",
            intro="Welcome to the June bulletin.",
            lists=[mailing_list],
        )
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
    kinds = ("statement", "report", "news", "tribute")
    message_size = 0
    count = 0
    while message_size < size:
        with app.session() as session:
            campaign = session.get_one(Campaign, campaign_id)
            for _ in range(2):
                body = "".join(f"<p>{PARAGRAPH}</p>" for _ in range(3))
                item = Item(source="bench", source_id=f"item-{count}", kind=kinds[count % 4],
                            title=f"Statement {count} to the Commission on Narcotic Drugs",
                            date=date(2019, 6, count % 28 + 1), summary=PARAGRAPH,
                            body_html=body, body_text=PARAGRAPH * 3,
                            link=f"https://example.org/news/{count}",
                            link_text="Read the full statement")  # fmt: skip
                campaign.entries.append(CampaignItem(item=item, position=count))
                count += 1
        message = Composer(app, campaign_id).compose(
            Recipient(subscriber_id=1, email="person0@example.org", name="Person 0")
        )
        message_size = len(message.data)
    return campaign_id, message_size


def add_subscribers(app: Any, n: int) -> None:
    from sqlalchemy import func, insert, select

    from newsletter.audience.suppression import KeyHasher
    from newsletter.models import MailingList, Subscriber, Subscription, utcnow

    hasher = KeyHasher(app.suppression_key)
    now = utcnow()
    with app.session() as session:
        list_id = session.scalar(select(MailingList.id).where(MailingList.name == "members"))
        first = (session.scalar(select(func.max(Subscriber.id))) or 0) + 1
        for start in range(0, n, CHUNK):
            people, memberships = [], []
            for i in range(start, min(start + CHUNK, n)):
                email = f"person{i}@example.org"
                people.append({"id": first + i, "email": email, "email_key": email,
                               "email_hash": hasher(email), "name": f"Person {i}",
                               "language": "en", "attributes": {}, "status": "active",
                               "created_at": now, "updated_at": now})  # fmt: skip
                memberships.append({"subscriber_id": first + i, "list_id": list_id,
                                    "status": "confirmed", "consent_method": "import",
                                    "created_at": now, "updated_at": now})  # fmt: skip
            session.execute(insert(Subscriber.__table__), people)
            session.execute(insert(Subscription.__table__), memberships)


def newsletter_command() -> list[str]:
    script = shutil.which("newsletter", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "newsletter"]


class Usage(NamedTuple):
    seconds: float
    peak: int  # bytes, the largest process's
    cpu: float  # user + system seconds, all processes
    busy: float | None = None  # the machine's share of CPU time in use meanwhile, 0 to 1


def cpu_times() -> tuple[int, int] | None:
    """(idle, total) clock ticks of all CPUs since boot, from /proc/stat (Linux)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return idle, sum(fields[:8])


def busy_share(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """How busy the whole machine was between two readings (the send, the sink, the
    database server and anyone else): near 1, no core was left for a second process."""
    if before is None or after is None or after[1] == before[1]:
        return None
    return 1 - (after[0] - before[0]) / (after[1] - before[1])


class StatusWatch:
    """Times what `newsletter status ID` asks the database, every 2 s while a send runs.

    In this process, with its own connection: the command's start-up (Python and
    its imports) is not the database's answer, and is the same at any size.
    """

    def __init__(self, app: Any, campaign_id: int) -> None:
        self.app = app
        self.campaign_id = campaign_id
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> StatusWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _watch(self) -> None:
        from newsletter import dispatch
        from newsletter.feedback import campaign_feedback

        while not self._stop.wait(2.0):
            started = time.perf_counter()
            dispatch.campaign_status(self.app, self.campaign_id)
            campaign_feedback(self.app, self.campaign_id)
            self.times.append(time.perf_counter() - started)


def run_processes(commands: list[list[str]], env: dict[str, str]) -> Usage:
    """Start the commands together; wall time, peak memory and CPU time (from wait4)."""
    start = time.perf_counter()
    machine = cpu_times()
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for command in commands
    ]
    peak, cpu = 0, 0.0
    for process in processes:
        _pid, status, usage = os.wait4(process.pid, 0)
        peak = max(peak, usage.ru_maxrss * 1024)
        cpu += usage.ru_utime + usage.ru_stime
        process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    busy = busy_share(machine, cpu_times())
    for process in processes:
        out, err = process.stdout.read(), process.stderr.read()  # type: ignore[union-attr]
        if process.returncode != 0:
            raise SystemExit(f"{process.args} failed ({process.returncode}):\n{err.decode()}")
        lines = (out or err).decode().strip().splitlines()
        if lines:
            print("   ", lines[-1] if process.args[-1] == "--once" else lines[0])
    return Usage(seconds, peak, cpu, busy)


def time_newsletter_send(
    config: Path, env: dict[str, str], campaign_id: int, workers: int, processes: int = 1
) -> Usage:
    """`newsletter send ID --processes P`, or `send --detach` then `workers` worker processes.

    A send's CPU time counts its helper processes too (wait4 sums the children a
    process has waited for); its peak memory is the largest single process's.
    """
    base = [*newsletter_command(), "--config", str(config)]
    if not workers:
        send = [*base, "send", str(campaign_id), "--processes", str(processes)]
        return run_processes([send], env)
    ledger = run_processes([[*base, "send", str(campaign_id), "--detach"]], env)
    worker = [*base, "worker", "--campaign", str(campaign_id), "--once"]
    sending = run_processes([worker] * workers, env)
    return Usage(
        ledger.seconds + sending.seconds,
        max(ledger.peak, sending.peak),
        ledger.cpu + sending.cpu,
        sending.busy,
    )


def sending_phase(app: Any, campaign_id: int) -> tuple[int, float]:
    from sqlalchemy import func, select

    from newsletter.models import Delivery

    with app.engine.connect() as conn:
        sent, first, last = conn.execute(
            select(func.count(), func.min(Delivery.sent_at), func.max(Delivery.sent_at))
            .where(Delivery.campaign_id == campaign_id, Delivery.status == "sent")
        ).one()  # fmt: skip
    return sent, (last - first).total_seconds() if first and last else 0.0


def run(
    n: int,
    connections: int,
    size: int,
    in_flight: int,
    keep: Path | None,
    database_url: str | None,
    workers: int,
    dkim: bool = False,
    processes: int = 1,
) -> dict[str, float]:
    folder = keep or Path(tempfile.mkdtemp(prefix="bench-send-"))
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    sink, sink_name = start_sink(port)
    wire = connections * max(workers, 1)
    try:
        print(
            f"N = {n:,}, {connections} connections"
            + (f" × {workers} workers" if workers else "")
            + ("" if workers else f", send --processes {processes}")
            + f", in_flight_per_connection = {in_flight}, sink: {sink_name} on 127.0.0.1:{port}"
            + (", DKIM-signed (RSA-2048)" if dkim else "")
        )
        source_seconds, source_name = time_smtp_source(port, n, wire, size)
        source_rate = n / source_seconds
        print(f"  {source_name}")
        print(f"  wire limit: {n:,} messages of {size:,} bytes in {source_seconds:.2f} s "
              f"= {source_rate:,.0f} messages/s")  # fmt: skip

        with scratch_database(database_url, folder) as url:
            app, config, env = make_app(folder, url, port, connections, in_flight, dkim)
            campaign_id, message_size = build_edition(app, size)
            started = time.perf_counter()
            add_subscribers(app, n)
            print(f"  edition: campaign {campaign_id}, one message = {message_size:,} bytes; "
                  f"{n:,} subscribers written in {time.perf_counter() - started:.1f} s "
                  f"({app.engine.dialect.name})")  # fmt: skip
            app.close()
            with StatusWatch(app, campaign_id) as watch:
                usage = time_newsletter_send(config, env, campaign_id, workers, processes)
            sent, phase = sending_phase(app, campaign_id)
            with app.engine.connect() as conn:
                from newsletter.dispatch import counters

                kept = counters.read(conn, campaign_id).counts
                truth = counters.recount(conn, campaign_id)
            app.close()
            print(f"  counters {kept} " + ("= the ledger's recount" if kept == truth
                  else f"!= the ledger's recount {truth}"))  # fmt: skip
        rate = n / usage.seconds
        what = f"{workers} worker(s)" if workers else f"newsletter send --processes {processes}"
        print(f"  {what}: {sent:,} sent in {usage.seconds:.2f} s = {rate:,.0f} messages/s "
              f"(sending phase {phase:.2f} s = {sent / phase if phase else 0:,.0f}/s)")  # fmt: skip
        print(f"  CPU: {usage.cpu:.1f} s = {usage.cpu / n * 1e6:.0f} µs per message")
        if usage.busy is not None:
            print(f"  the machine meanwhile: {usage.busy:.0%} of its {os.cpu_count()} cores busy "
                  "(the send, the sink, the database server, anyone else)")  # fmt: skip
        print(f"  ratio to the wire's limit: {rate / source_rate:.2f}")
        print(f"  peak memory: {usage.peak / 2**20:.0f} MB (target < 150 MB)")
        if len(watch.times) > 1:
            # The first look also compiles the queries and opens the watcher's connection,
            # as every `newsletter status` process does once; the rest show the database.
            first, ms = watch.times[0] * 1000, sorted(t * 1000 for t in watch.times[1:])
            print(f"  `newsletter status` queries during the send: median "
                  f"{ms[len(ms) // 2]:.0f} ms, slowest {ms[-1]:.0f} ms over {len(ms)} looks "
                  f"(target < 100 ms); the first, compiling them, {first:.0f} ms")  # fmt: skip
        return {"n": n, "ratio": rate / source_rate, "peak_mb": usage.peak / 2**20, "rate": rate,
                "workers": workers, "processes": processes, "busy": usage.busy or 0.0}  # fmt: skip
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait()
        if keep is None:
            shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, action="append", help="messages (repeatable)")
    parser.add_argument("--connections", type=int, default=4, help="per process (default 4)")
    parser.add_argument("--size", type=int, default=30_000, help="bytes per message")
    parser.add_argument(
        "--in-flight", type=int, default=1, help="dispatch.in_flight_per_connection (default 1)"
    )
    parser.add_argument(
        "--workers",
        help="comma-separated worker counts, e.g. 1,2,4: time `newsletter worker` processes "
        "instead of `newsletter send`",
    )
    parser.add_argument(
        "--processes",
        default="1",
        help="comma-separated `send --processes` settings, e.g. 1,2 (0: one per core; "
        "the --connections are shared between them); default 1",
    )
    parser.add_argument("--database-url", help="PostgreSQL: a scratch schema in this database")
    parser.add_argument("--keep", type=Path, help="keep the database and config in this folder")
    parser.add_argument(
        "--dkim", action="store_true", help="run each N unsigned, then DKIM-signed, and compare"
    )
    args = parser.parse_args()
    if args.dkim:
        for n in args.n or [20_000]:
            plain, signed = (
                run(n, args.connections, args.size, args.in_flight, None, args.database_url, 0, d)
                for d in (False, True)
            )
            print(
                f"N = {n:,}: unsigned {plain['rate']:,.0f} messages/s, DKIM-signed "
                f"{signed['rate']:,.0f} messages/s ({signed['rate'] / plain['rate']:.2f} ×)"
            )
        return
    worker_counts = [int(w) for w in args.workers.split(",")] if args.workers else [0]
    settings = [int(p) for p in args.processes.split(",")] if not args.workers else [1]
    results = [
        run(
            n,
            args.connections,
            args.size,
            args.in_flight,
            args.keep,
            args.database_url,
            w,
            processes=p,
        )
        for n in args.n or [20_000]
        for w in worker_counts
        for p in settings
    ]
    if len(results) > 1:
        print("summary:")
        for r in results:
            what = f"{r['workers']} workers" if r["workers"] else f"--processes {r['processes']}"
            print(f"  N = {r['n']:,}, {what}: {r['rate']:,.0f}/s, ratio {r['ratio']:.2f}, "
                  f"peak {r['peak_mb']:.0f} MB, machine {r['busy']:.0%} busy")  # fmt: skip


if __name__ == "__main__":
    main()
