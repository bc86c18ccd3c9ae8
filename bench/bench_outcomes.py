"""The outcome writer: what recording one group of a send's outcomes costs.

A send records its outcomes in groups: whatever the connections finished while
the previous group was being written, 1 to 4 outcomes with 4 connections
(measured: 1.6 to 1.8 on average). Every message waits for its group before its
connection sends the next, so this is on every message's path. The script
claims deliveries in a scratch database and records them the way the send
engine does (`ledger.OutcomeWriter`), in groups of 1, 2 and 4, and prints the
CPU time of this process and the wall time per group. On PostgreSQL it also
runs the same one-statement group through psycopg's `cursor.execute`, the way
the writer would without its own text parameters (see ledger._GroupStatement).

    python bench/bench_outcomes.py [--groups 3000]
    python bench/bench_outcomes.py --database-url postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench_import import scratch_database
from bench_send import add_subscribers, build_edition, make_app

from newsletter import dispatch
from newsletter.dispatch import ledger
from newsletter.models import utcnow

WORKER = "bench:1:outcomes"


def outcome(delivery_id: int) -> dict[str, Any]:
    return {"b_id": delivery_id, "b_worker": WORKER, "b_message_id": f"{delivery_id}@example.org",
            "b_response": "250 2.0.0 Ok: queued as 4XyZ1234", "b_at": utcnow(),
            "b_provider_id": None}  # fmt: skip


def through_psycopg(app: Any, campaign_id: int) -> Any:
    """A function recording one group with RECORD_OUTCOME_GROUP through psycopg's execute."""
    compiled = ledger.RECORD_OUTCOME_GROUP.compile(dialect=app.engine.dialect)
    raw = app.engine.raw_connection()
    dbapi = raw.driver_connection
    dbapi.autocommit = True
    dbapi.execute("SET synchronous_commit TO OFF")
    dbapi.execute("SET plan_cache_mode TO force_generic_plan")  # as the writer does
    names = {kind: list(ledger._array_types(kind)) for kind in ("sent", "retry", "failed")}

    def write(group: dict[str, list[dict[str, Any]]]) -> None:
        params = {**compiled.params, "c_id": campaign_id, "c_now": utcnow().timestamp()}
        for kind, keys in names.items():
            rows = group.get(kind, [])
            for key in keys:
                values = [row[f"b_{key}"] for row in rows]
                if key == "at":
                    values = [v.replace(tzinfo=None) for v in values]
                params[f"{kind}_{key}"] = values
        dbapi.execute(compiled.string, params)

    def close() -> None:
        dbapi.execute("RESET ALL")
        dbapi.autocommit = False
        raw.close()

    write.close = close  # type: ignore[attr-defined]
    return write


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--groups", type=int, default=3000, help="groups per setting")
    parser.add_argument("--database-url", help="PostgreSQL: a scratch schema in this database")
    args = parser.parse_args()
    sizes = (1, 2, 4)
    with tempfile.TemporaryDirectory(prefix="bench-outcomes-") as tmp:
        folder = Path(tmp)
        with scratch_database(args.database_url, folder) as url:
            app, _, _ = make_app(folder, url, 25, 4, 1)
            campaign_id, _ = build_edition(app, 2000)
            ways = ["OutcomeWriter"] + (["psycopg execute"] if args.database_url else [])
            add_subscribers(app, args.groups * sum(sizes) * len(ways))
            dispatch.start_campaign(app, campaign_id, actor="bench")
            print(f"{app.engine.dialect.name}: {args.groups:,} groups of each size, each way")
            for way in ways:
                for size in sizes:
                    with app.engine.begin() as conn:
                        now = utcnow()
                        claims = ledger.claim(conn, campaign_id, WORKER, args.groups * size,
                                              now, now + timedelta(hours=1))  # fmt: skip
                    groups = [
                        {"sent": [outcome(c.delivery_id) for c in claims[i : i + size]]}
                        for i in range(0, len(claims), size)
                    ]
                    if way == "OutcomeWriter":
                        writer = ledger.OutcomeWriter(app.engine, campaign_id)
                        write, close = writer.write, writer.close
                    else:
                        write = through_psycopg(app, campaign_id)
                        close = write.close
                    write(groups[0])  # the connection, and the statement prepared
                    started, cpu = time.perf_counter(), time.process_time()
                    for group in groups[1:]:
                        write(group)
                    took, used = time.perf_counter() - started, time.process_time() - cpu
                    close()
                    count = len(groups) - 1
                    print(f"  {way}, {size} outcome(s) a group: {used / count * 1e6:5.0f} µs "
                          f"of CPU, {took / count * 1e6:5.0f} µs wall a group")  # fmt: skip
            with app.engine.connect() as conn:
                from newsletter.dispatch import counters

                kept = counters.read(conn, campaign_id).counts
                truth = counters.recount(conn, campaign_id)
            print(f"  counters {kept} " + ("= the ledger's recount" if kept == truth
                  else f"!= the ledger's recount {truth}"))  # fmt: skip
            app.close()


if __name__ == "__main__":
    main()
