"""The whole send, end to end: the engine and the real `newsletter` command against a
real SMTP server (aiosmtpd on 127.0.0.1, in a thread of the test process, recording
every message it accepts), on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import newsletter_command, wait_for
from sqlalchemy import select
from test_dispatch_support import SMTPSink, seed_campaign, start_sink

from newsletter import dispatch
from newsletter.app import Newsletter
from newsletter.audience import is_suppressed
from newsletter.dispatch import EngineOptions, counters, ledger
from newsletter.dispatch.retry import RetryPolicy
from newsletter.models import Campaign, Delivery
from newsletter.transports import SendLimits
from newsletter.transports.smtp import SMTPSettings, SMTPTransport

# Real servers in threads and real `newsletter` subprocesses.
pytestmark = pytest.mark.slow

FAST_RETRY = EngineOptions(
    batch_size=20,
    pause_after_consecutive_failures=1000,
    retry=RetryPolicy(initial_seconds=0.05, max_seconds=0.2, max_attempts=6),
)


@pytest.fixture
def sink() -> Iterator[tuple[SMTPSink, int]]:
    handler = SMTPSink(pipelining=True)
    controller = start_sink(handler)
    yield handler, controller.port
    controller.stop()


def smtp(port: int, connections: int = 4) -> SMTPTransport:
    return SMTPTransport(
        "sink",
        SMTPSettings(host="127.0.0.1", port=port, tls="none", helo="client.test", timeout=5),
        SendLimits(connections=connections),
    )


def everyone(count: int, prefix: str = "person") -> dict[str, int]:
    return {f"{prefix}{i}@example.org": 1 for i in range(count)}


def ledger_counts(app: Newsletter, campaign_id: int) -> dict[str, int]:
    """Deliveries by state once nothing sends: the counters, checked against a recount."""
    with app.engine.connect() as conn:
        kept, truth = ledger.counts(conn, campaign_id), counters.recount(conn, campaign_id)
    assert kept == truth, f"counters {kept} but the ledger says {truth}"
    return truth


# --- the engine over real SMTP --------------------------------------------------------


def test_451s_and_dropped_connections_end_with_everyone_delivered_exactly_once(
    app: Newsletter, sink: tuple[SMTPSink, int]
) -> None:
    handler, port = sink
    handler.rcpt_script = lambda address, tries: (
        "451 4.3.0 Temporary lookup failure" if hash(address) % 5 == 0 and tries < 2 else None
    )
    handler.drop_before_data = lambda number: number % 17 == 0
    cid = seed_campaign(app, 150)
    outcome = dispatch.send_campaign(
        app, cid, transport=smtp(port), options=FAST_RETRY, actor="tester"
    )
    assert outcome.status == "sent"
    assert handler.received() == everyone(150)
    assert ledger_counts(app, cid) == {"sent": 150}
    assert outcome.retried > 0, "the server did defer and drop"


def test_a_550_fails_that_recipient_and_suppresses_it_and_the_rest_are_sent(
    app: Newsletter, sink: tuple[SMTPSink, int]
) -> None:
    handler, port = sink
    handler.rcpt_script = lambda address, tries: (
        "550 5.1.1 <person5@example.org>: Recipient address rejected: User unknown"
        if address == "person5@example.org"
        else None
    )
    cid = seed_campaign(app, 20)
    dispatch.send_campaign(app, cid, transport=smtp(port), options=FAST_RETRY, actor="tester")
    expected = everyone(20)
    del expected["person5@example.org"]
    assert handler.received() == expected
    assert ledger_counts(app, cid) == {"sent": 19, "failed": 1}
    (row,) = dispatch.list_deliveries(app, cid, failed_only=True)
    assert row.address == "person5@example.org"
    assert row.last_response.startswith("550 5.1.1")
    with app.session() as session:
        assert is_suppressed(session, app.suppression_key, "person5@example.org")


def test_throttling_replies_are_honoured(app: Newsletter, sink: tuple[SMTPSink, int]) -> None:
    handler, port = sink
    refused = {"n": 0}

    def throttle_at_first(address: str, tries: int) -> str | None:
        if refused["n"] < 8:
            refused["n"] += 1
            return "421 4.7.0 Too many messages, slow down"
        return None

    handler.rcpt_script = throttle_at_first
    cid = seed_campaign(app, 40)
    dispatch.start_campaign(app, cid, actor="tester")
    sender = dispatch.CampaignSender(app, cid, smtp(port), options=FAST_RETRY)
    report = sender.run()
    assert report.reason == "finished"
    assert handler.received() == everyone(40)
    assert sender.limiter.throttle_count == 8
    assert sender.limiter.current_limit is not None, "the send slowed down"


# --- the command ------------------------------------------------------------------------


@pytest.fixture
def cli_app(make_app) -> Newsletter:
    """The test database as the subprocesses see it."""
    return make_app()


def test_send_to_an_address_sends_one_test_message_and_records_nothing(
    run_cli, cli_app: Newsletter, tmp_path: Path
) -> None:
    cid = seed_campaign(cli_app, 3, status="draft")
    result = run_cli("send", str(cid), "--to", "editor@example.org", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["to"] == "editor@example.org"
    files = list((tmp_path / "outbox" / "new").iterdir())
    assert [f.name for f in files] == [data["response"]]
    assert b"To: editor@example.org" in files[0].read_bytes()
    assert ledger_counts(cli_app, cid) == {}


def test_send_delivers_the_campaign_to_the_outbox_and_status_tells(
    run_cli, cli_app: Newsletter, tmp_path: Path
) -> None:
    cid = seed_campaign(cli_app, 25)
    dry = run_cli("send", str(cid), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"Campaign {cid} (approved) would go to 25 recipients" in dry.stdout
    assert not (tmp_path / "outbox").exists() or not any((tmp_path / "outbox/new").iterdir())

    result = run_cli("send", str(cid))
    assert result.returncode == 0, result.stderr
    assert f"Campaign {cid} sent: this run sent 25, failed 0" in result.stdout
    # Not a terminal: plain progress lines on stderr.
    assert f"campaign {cid}: 25/25 done" in result.stderr
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 25

    status = json.loads(run_cli("status", str(cid), "--json").stdout)
    assert status["status"] == "sent"
    assert status["counts"]["sent"] == 25 and status["remaining"] == 0
    assert status["finished_at"]

    rows = json.loads(run_cli("deliveries", str(cid), "--json").stdout)
    assert len(rows) == 25
    assert {row["status"] for row in rows} == {"sent"}
    assert rows[0]["address"] == "person0@example.org" and rows[0]["attempts"] == 1
    # The keys of `deliveries --json`, pinned: scripts read them.
    assert set(rows[0]) == {
        "id",
        "address",
        "status",
        "attempts",
        "sent_at",
        "last_response",
        "events",
        "reason",
    }
    assert run_cli("deliveries", str(cid), "--failed").stdout.strip() == "Nobody was missed."

    again = run_cli("send", str(cid))
    assert again.returncode == 2
    assert f"campaign {cid} was already sent" in again.stderr
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 25


def test_send_refuses_a_draft_and_a_bad_transport_with_exit_2(run_cli, cli_app: Newsletter) -> None:
    draft = seed_campaign(cli_app, 2, status="draft")
    result = run_cli("send", str(draft))
    assert result.returncode == 2
    assert f"campaign {draft} is a draft; approve it first" in result.stderr
    assert "Traceback" not in result.stderr

    approved = seed_campaign(cli_app, 2, prefix="other")
    bad = run_cli("send", str(approved), env={"NEWSLETTER_TRANSPORT": "smtp://h?speed=3"})
    assert bad.returncode == 2
    assert "$NEWSLETTER_TRANSPORT: unknown parameter 'speed'" in bad.stderr
    with cli_app.session() as session:
        assert session.get_one(Campaign, approved).status == "approved", "nothing half-done"

    missing = run_cli("status", "999")
    assert missing.returncode == 2 and "no campaign with id 999" in missing.stderr


def sink_env(port: int, connections: int) -> dict[str, str]:
    return {"NEWSLETTER_TRANSPORT": f"smtp://127.0.0.1:{port}?tls=none&connections={connections}"}


def start_cli(cli_env: dict[str, str], tmp_path: Path, *args: str, **env: str):
    return subprocess.Popen(
        [*newsletter_command(), *args],
        cwd=tmp_path,
        env={**cli_env, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def detach_and_start_workers(
    run_cli,
    cli_env: dict[str, str],
    cli_app: Newsletter,
    tmp_path: Path,
    env: dict[str, str],
    *,
    total: int,
    workers: int,
    batch_size: int,
    once: bool = True,
) -> tuple[int, list[subprocess.Popen[str]]]:
    """A campaign to `total` people, its ledger written by `send --detach`, and `workers`
    `newsletter worker` processes started on it together: (campaign id, the processes)."""
    config = tmp_path / "workers.toml"
    config.write_text(f"[dispatch]\nbatch_size = {batch_size}\n")
    cid = seed_campaign(cli_app, total)
    detached = run_cli("send", str(cid), "--detach", env=env)
    assert detached.returncode == 0, detached.stderr
    assert f"Campaign {cid} is sending: {total} deliveries written, {total} to send" in (
        detached.stdout
    )
    command = ["--config", str(config), "worker", "--campaign", str(cid)]
    command += ["--once"] if once else []
    return cid, [start_cli(cli_env, tmp_path, *command, **env) for _ in range(workers)]


def test_kill_9_halfway_then_restart_nobody_lost_duplicates_within_the_bound(
    run_cli, cli_env: dict[str, str], cli_app: Newsletter, tmp_path: Path
) -> None:
    """The crash-safety guarantee, with a real process killed by SIGKILL mid-send."""
    handler = SMTPSink(delay=0.004, pipelining=True)
    controller = start_sink(handler)
    connections, total = 4, 300
    env = sink_env(controller.port, connections)
    try:
        cid = seed_campaign(cli_app, total)
        sending = start_cli(cli_env, tmp_path, "send", str(cid), **env)
        wait_for(lambda: sum(handler.received().values()) >= total // 3, 60)
        os.kill(sending.pid, signal.SIGKILL)
        sending.wait()
        at_kill = sum(handler.received().values())
        found = ledger_counts(cli_app, cid)
        assert found.get("sending", 0) > 0 and found["sent"] < total, found
        assert 0 < at_kill < total

        # Start it again: the dead process's claims are taken over at once.
        result = run_cli("send", str(cid), env=env)
        assert result.returncode == 0, result.stderr
    finally:
        controller.stop()
    assert_nobody_lost_duplicates_within(handler, cli_app, cid, total, bound=connections * 1)


def assert_nobody_lost_duplicates_within(
    handler: SMTPSink, app: Newsletter, campaign_id: int, total: int, *, bound: int
) -> None:
    """After a crash and a restart: everyone got it, at most `bound` twice, all recorded."""
    received = handler.received()
    assert set(received) == set(everyone(total)), "nobody is lost"
    duplicates = sum(count - 1 for count in received.values())
    assert duplicates <= bound, received.most_common(8)
    assert ledger_counts(app, campaign_id) == {"sent": total}


def test_two_worker_processes_share_a_campaign_and_send_no_delivery_twice(
    run_cli, cli_env: dict[str, str], cli_app: Newsletter, tmp_path: Path
) -> None:
    handler = SMTPSink(delay=0.002)
    controller = start_sink(handler)
    env = sink_env(controller.port, 2)
    total = 400
    try:
        cid, workers = detach_and_start_workers(
            run_cli, cli_env, cli_app, tmp_path, env, total=total, workers=2, batch_size=10
        )
        for worker in workers:
            _out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0, err
    finally:
        controller.stop()
    assert handler.received() == everyone(total)
    with cli_app.session() as session:
        senders = session.scalars(
            select(Delivery.claimed_by).where(Delivery.campaign_id == cid).distinct()
        ).all()
        assert session.get_one(Campaign, cid).status == "sent"
    assert len(senders) == 2, "both workers took a share"


def test_pause_from_another_process_stops_the_send_and_resume_finishes_it(
    run_cli, cli_env: dict[str, str], cli_app: Newsletter, tmp_path: Path
) -> None:
    handler = SMTPSink(delay=0.01)
    controller = start_sink(handler)
    env = sink_env(controller.port, 2)
    total = 200
    try:
        cid = seed_campaign(cli_app, total)
        sending = start_cli(cli_env, tmp_path, "send", str(cid), **env)
        wait_for(lambda: sum(handler.received().values()) >= 20, 60)
        # Paused from this process (a CLI would take longer to start than the send lasts).
        dispatch.pause_campaign(cli_app, cid, actor="another process")
        paused_at = time.monotonic()
        out, err = sending.communicate(timeout=30)
        assert time.monotonic() - paused_at < 2.5
        assert sending.returncode == 0, err
        assert f"Campaign {cid} paused" in out
        assert f"newsletter resume {cid}" in out
        stopped_at = sum(handler.received().values())
        assert stopped_at < total

        resumed = run_cli("resume", str(cid), env=env)
        assert resumed.returncode == 0, resumed.stderr
        assert f"Campaign {cid} sent" in resumed.stdout
    finally:
        controller.stop()
    assert handler.received() == everyone(total)


def test_a_worker_stops_cleanly_on_sigterm_and_gives_its_claims_back(
    run_cli, cli_env: dict[str, str], cli_app: Newsletter, tmp_path: Path
) -> None:
    handler = SMTPSink(delay=0.01)
    controller = start_sink(handler)
    env = sink_env(controller.port, 2)
    total = 300
    try:
        cid = seed_campaign(cli_app, total)
        assert run_cli("send", str(cid), "--detach").returncode == 0
        worker = start_cli(cli_env, tmp_path, "worker", **env)
        wait_for(lambda: sum(handler.received().values()) >= 20, 60)
        worker.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        out, err = worker.communicate(timeout=30)
        assert time.monotonic() - stopped_at < 2.5
        assert worker.returncode == 0, err
        assert f"campaign {cid}: stopped" in out
        found = ledger_counts(cli_app, cid)
        assert found.get("sending", 0) == 0, "claims were given back"
        assert found["sent"] < total

        finish = run_cli("worker", "--once", env=env)
        assert finish.returncode == 0, finish.stderr
        assert f"campaign {cid}: finished" in finish.stdout
    finally:
        controller.stop()
    assert handler.received() == everyone(total)


def test_a_dead_server_pauses_the_send_with_exit_1_and_says_why(
    run_cli, cli_app: Newsletter, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now.
    config = tmp_path / "dead.toml"
    config.write_text("[dispatch]\npause_after_consecutive_failures = 6\n")
    cid = seed_campaign(cli_app, 40)
    result = run_cli("--config", str(config), "send", str(cid), env=sink_env(port, 2))
    assert result.returncode == 1
    assert f"campaign {cid} paused after 6 failures in a row" in result.stderr
    assert f"cannot connect to 127.0.0.1:{port}" in result.stderr
    assert f"newsletter resume {cid}" in result.stderr
    assert "Traceback" not in result.stderr
    status = json.loads(run_cli("status", str(cid), "--json").stdout)
    assert status["status"] == "paused"
    assert status["counts"]["pending"] >= 30 and status["counts"]["sent"] == 0
