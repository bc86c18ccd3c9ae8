"""`newsletter send --processes N`: one send spread over forked helper processes.

Real commands, a real SMTP server (aiosmtpd) and both databases: every
recipient gets the message once, the work is really shared, a stop (SIGTERM)
gives every claim back, and a SIGKILL of the command stops its helpers too.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
from conftest import wait_for
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from test_dispatch_smtp import (
    assert_nobody_lost_duplicates_within,
    cli_app,
    everyone,
    ledger_counts,
    sink_env,
    start_cli,
)
from test_dispatch_support import SMTPSink, seed_campaign, start_sink

from newsletter.app import Newsletter
from newsletter.dispatch.processes import SPREAD_FROM, process_count, split_connections
from newsletter.dispatch.workers import process_alive
from newsletter.models import Delivery

__all__ = ["cli_app"]  # the fixture, shared with the other command-line send tests

# --- how many, and how the connections are shared ------------------------------------------


@given(connections=st.integers(1, 64), processes=st.integers(1, 64))
def test_the_connections_are_shared_out_whole(connections: int, processes: int) -> None:
    processes = min(processes, connections)
    shares = split_connections(connections, processes)
    assert sum(shares) == connections, "the server sees no more connections than configured"
    assert len(shares) == processes and min(shares) >= 1
    assert max(shares) - min(shares) <= 1


def test_process_count_keeps_to_what_makes_sense() -> None:
    big = SPREAD_FROM
    assert process_count(2, connections=4, remaining=big) == 2
    assert process_count(8, connections=4, remaining=big) == 4, "a connection each at least"
    assert process_count(0, connections=4, remaining=big, cpus=3) == 3
    assert process_count(0, connections=2, remaining=big, cpus=8) == 2
    assert process_count(4, connections=4, remaining=big - 1) == 1, "small"


# --- the real command ---------------------------------------------------------------------


def claimers(app: Newsletter, campaign_id: int) -> set[str]:
    """The worker ids (host:pid:token) that sent the campaign's deliveries."""
    with app.engine.connect() as conn:
        return set(
            conn.scalars(
                select(Delivery.claimed_by).where(Delivery.campaign_id == campaign_id).distinct()
            )
        )


@pytest.mark.slow
def test_a_send_spread_over_two_processes_reaches_everyone_once(
    run_cli, cli_app: Newsletter
) -> None:
    handler = SMTPSink()
    controller = start_sink(handler)
    total = SPREAD_FROM
    try:
        cid = seed_campaign(cli_app, total)
        env = sink_env(controller.port, 4)
        result = run_cli("send", str(cid), "--processes", "2", "--json", env=env)
    finally:
        controller.stop()
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    outcome = json.loads(result.stdout)
    # The helpers' reports are added to the command's own.
    assert (outcome["id"], outcome["status"], outcome["sent"]) == (cid, "sent", total)
    assert handler.received() == everyone(total)
    assert ledger_counts(cli_app, cid) == {"sent": total}
    pids = {worker.split(":")[1] for worker in claimers(cli_app, cid)}
    assert len(pids) == 2, "two processes shared the work"


@pytest.mark.slow
def test_a_small_campaign_is_sent_by_one_process_whatever_is_asked(
    run_cli, cli_app: Newsletter
) -> None:
    cid = seed_campaign(cli_app, 20)
    result = run_cli("send", str(cid), "--processes", "4")
    assert result.returncode == 0, result.stderr
    assert len(claimers(cli_app, cid)) == 1


@pytest.mark.slow
def test_sigterm_stops_every_process_and_gives_their_claims_back(
    run_cli, cli_env: dict[str, str], cli_app: Newsletter, tmp_path: Path
) -> None:
    handler = SMTPSink(delay=0.004)
    controller = start_sink(handler)
    total = SPREAD_FROM
    env = sink_env(controller.port, 4)
    try:
        cid = seed_campaign(cli_app, total)
        sending = start_cli(cli_env, tmp_path, "send", str(cid), "--processes", "2", **env)
        wait_for(lambda: len(claimers(cli_app, cid) - {None}) >= 2, 60, "both processes")
        wait_for(lambda: sum(handler.received().values()) >= total // 4, 60)
        sending.send_signal(signal.SIGTERM)
        _out, err = sending.communicate(timeout=60)
        assert sending.returncode == 1, err
        assert "stopped before the end" in err and "Traceback" not in err
        found = ledger_counts(cli_app, cid)
        assert "sending" not in found, f"every claim was given back: {found}"
        assert 0 < found["sent"] < total

        again = run_cli("send", str(cid), "--processes", "2", env=env)
        assert again.returncode == 0, again.stderr
    finally:
        controller.stop()
    # A clean stop records every message the server took: nobody gets two.
    assert handler.received() == everyone(total)
    assert ledger_counts(cli_app, cid) == {"sent": total}


@pytest.mark.slow
def test_kill_9_of_the_command_stops_its_helpers_and_a_restart_finishes(
    run_cli, cli_env: dict[str, str], cli_app: Newsletter, tmp_path: Path
) -> None:
    # A slow server: a helper left to itself would send on for a good ten seconds.
    handler = SMTPSink(delay=0.02, pipelining=True)
    controller = start_sink(handler)
    connections, total = 4, SPREAD_FROM
    env = sink_env(controller.port, connections)
    try:
        cid = seed_campaign(cli_app, total)
        sending = start_cli(cli_env, tmp_path, "send", str(cid), "--processes", "2", **env)
        wait_for(lambda: len(claimers(cli_app, cid) - {None}) >= 2, 60, "both processes")
        wait_for(lambda: sum(handler.received().values()) >= total // 10, 60)
        helpers = {
            int(worker.split(":")[1])
            for worker in claimers(cli_app, cid) - {None}
            if int(worker.split(":")[1]) != sending.pid
        }
        assert helpers, "a helper process was sending"
        os.kill(sending.pid, signal.SIGKILL)
        sending.wait()
        # The kernel tells the helpers their parent died; they stop as on SIGTERM.
        wait_for(lambda: not any(process_alive(pid) for pid in helpers), 4, "the helpers")
        # They stopped there and then, not once their share was done.
        assert ledger_counts(cli_app, cid).get("sent", 0) < total // 2

        result = run_cli("send", str(cid), env=sink_env(controller.port, 8))
        assert result.returncode == 0, result.stderr
    finally:
        controller.stop()
    # The crash bound is the send's configured connections, however many processes.
    assert_nobody_lost_duplicates_within(handler, cli_app, cid, total, bound=connections * 1)


def test_processes_is_checked_on_the_command_line_and_in_the_config(
    run_cli, tmp_path: Path
) -> None:
    wrong = run_cli("send", "1", "--processes", "2", "--dry-run")
    assert wrong.returncode == 2
    assert "--processes is for a send" in wrong.stderr
    negative = run_cli("send", "1", "--processes", "-1")
    assert negative.returncode == 2 and "-1" in negative.stderr
    config = tmp_path / "bad.toml"
    config.write_text("[dispatch]\nprocesses = -2\n")
    bad = run_cli("--config", str(config), "send", "1")
    assert bad.returncode == 2
    assert "bad.toml: dispatch.processes must not be negative, not -2" in bad.stderr
    assert "Traceback" not in bad.stderr + wrong.stderr + negative.stderr
