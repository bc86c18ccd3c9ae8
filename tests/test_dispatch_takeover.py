"""A worker on another host dies mid-send: its claims wait for their lease, then another
worker takes them over; nobody is lost and duplicates stay within its connections.
Real `newsletter` processes, a real SMTP server, SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from conftest import wait_for
from sqlalchemy import func, select, update
from test_dispatch_smtp import everyone, ledger_counts, sink_env, start_cli
from test_dispatch_support import SMTPSink, seed_campaign, start_sink

from newsletter.app import Newsletter
from newsletter.models import Delivery

pytestmark = pytest.mark.slow

LEASE = 4


@pytest.fixture
def cli_app(make_app) -> Newsletter:
    return make_app()


def held_elsewhere(app: Newsletter, cid: int) -> int:
    with app.engine.connect() as conn:
        return conn.scalar(
            select(func.count()).where(
                Delivery.campaign_id == cid,
                Delivery.status == "sending",
                Delivery.claimed_by.like("elsewhere:%"),
            )
        )


def test_a_dead_workers_claims_pass_to_another_host_when_the_lease_lapses(
    run_cli, cli_env: dict[str, str], cli_app: Newsletter, tmp_path: Path
) -> None:
    handler = SMTPSink(delay=0.004, pipelining=True)
    controller = start_sink(handler)
    connections, total = 4, 300
    env = sink_env(controller.port, connections)
    config = tmp_path / "lease.toml"
    config.write_text(f"[dispatch]\nlease_seconds = {LEASE}\nbatch_size = 50\n")
    try:
        cid = seed_campaign(cli_app, total)
        first = start_cli(cli_env, tmp_path, "--config", str(config), "send", str(cid), **env)
        wait_for(lambda: sum(handler.received().values()) >= total // 3, 60)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        # As if it had run on another host: nobody here can see that its process is gone.
        with cli_app.engine.begin() as conn:
            conn.execute(
                update(Delivery)
                .where(Delivery.campaign_id == cid, Delivery.status == "sending")
                .values(claimed_by="elsewhere:1:dead")
            )
        orphaned = held_elsewhere(cli_app, cid)
        assert orphaned > 0
        started = time.monotonic()
        second = start_cli(cli_env, tmp_path, "--config", str(config), "send", str(cid), **env)
        # Within the lease the claims stay where they are: the worker may only be slow.
        time.sleep(LEASE / 2)
        if time.monotonic() - started < LEASE:
            assert held_elsewhere(cli_app, cid) == orphaned
        _out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        took = time.monotonic() - started
    finally:
        controller.stop()
    # Taken over once the lease lapsed (plus the reclaim check every 5 s and the rest).
    assert took < LEASE + 30
    received = handler.received()
    assert set(received) == set(everyone(total)), "nobody is lost"
    duplicates = sum(count - 1 for count in received.values())
    assert duplicates <= connections, received.most_common(8)
    assert ledger_counts(cli_app, cid) == {"sent": total}
