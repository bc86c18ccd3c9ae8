"""`newsletter serve`: the scheduler's timers in process, then real services as subprocesses.

The subprocess tests run the installed command against the test database
(SQLite, and PostgreSQL when NEWSLETTER_TEST_DATABASE_URL is set) with a
schedule a few seconds ahead, and check the outcome where it lands: the
maildir outbox (one message per subscriber) and the ledger (one sent row per
subscriber). They are kept to a few seconds each.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import newsletter_command, wait_for
from sqlalchemy import select
from test_schedule_support import (
    approved_bulletin,
    capture_events,
    events,
    ledger_counts,
    maildir_count,
    maildir_recipients,
)

from newsletter.app import Newsletter
from newsletter.dispatch import pause_campaign, resume_campaign, start_campaign
from newsletter.logs import parse_logfmt
from newsletter.models import Campaign, scheduler_jobs, utcnow
from newsletter.schedule import next_run, schedule_campaign
from newsletter.schedule.driver import ScheduleDriver
from newsletter.service import Service, service_health

CONFIG = """
[schedule]
sync_seconds = 1
misfire_grace_minutes = 5

[service]
workers = 2
"""


def status_of(app: Newsletter, campaign_id: int) -> str:
    with app.session() as session:
        return session.scalar(select(Campaign.status).where(Campaign.id == campaign_id)) or ""


def job_ids(app: Newsletter) -> set[str]:
    with app.engine.connect() as conn:
        return set(conn.scalars(select(scheduler_jobs.c.id)))


# --- the driver, in this process ---------------------------------------------------------------


def test_timers_live_in_the_database_and_a_date_timer_starts_the_campaign(make_app) -> None:
    app = make_app(
        {
            "schedules": [{"name": "monthly", "cron": "0 9 * * mon#1", "lists": ["members"]}],
            # A long sync: what starts the campaign is its own timer, not the sweep.
            "schedule": {"sync_seconds": 60},
        }
    )
    campaign_id = approved_bulletin(app)
    due = utcnow() + timedelta(seconds=1.5)
    schedule_campaign(app, campaign_id, due, actor="tester")
    driver = ScheduleDriver(app)
    driver.start()
    try:
        wait_for(lambda: driver.last_sync, 10, "the first sync")
        assert driver.running
        assert job_ids(app) == {f"campaign:{campaign_id}", "rule:monthly"}
        with app.engine.connect() as conn:
            rule_time = conn.scalar(
                select(scheduler_jobs.c.next_run_time).where(scheduler_jobs.c.id == "rule:monthly")
            )
        assert rule_time == next_run(app.config.schedules[0], utcnow()).timestamp()
        assert status_of(app, campaign_id) == "scheduled"
        wait_for(lambda: status_of(app, campaign_id) == "sending", 10, "the timer")
        assert utcnow() >= due
        # The fired date timer is gone from the store; the rule's stays.
        wait_for(lambda: job_ids(app) == {"rule:monthly"}, 5, "the timer's removal")
    finally:
        driver.stop()
    assert not driver.running


def test_unscheduling_removes_the_timer_at_the_next_sync(make_app) -> None:
    app = make_app({"schedule": {"sync_seconds": 1}})
    campaign_id = approved_bulletin(app)
    schedule_campaign(app, campaign_id, utcnow() + timedelta(hours=1), actor="tester")
    driver = ScheduleDriver(app)
    driver.start()
    try:
        wait_for(lambda: job_ids(app) == {f"campaign:{campaign_id}"}, 10, "the timer")
        from newsletter.schedule import unschedule_campaign

        unschedule_campaign(app, campaign_id, actor="tester")
        wait_for(lambda: job_ids(app) == set(), 10, "the timer to go")
    finally:
        driver.stop()


def test_stopping_while_a_sync_runs_waits_for_it_and_does_not_hang(make_app, monkeypatch) -> None:
    """A sync in progress when the service stops finishes; the stop does not deadlock."""
    import threading

    from newsletter.schedule import driver as driver_module

    in_sweep = threading.Event()
    let_go = threading.Event()
    real_sweep = driver_module.sweep

    def slow_sweep(app: Newsletter, now: Any) -> Any:
        in_sweep.set()
        let_go.wait(10)
        return real_sweep(app, now)

    monkeypatch.setattr(driver_module, "sweep", slow_sweep)
    app = make_app({"schedule": {"sync_seconds": 60}})
    driver = ScheduleDriver(app)
    driver.start()
    assert in_sweep.wait(10), "the first sync did not start"
    stopper = threading.Thread(target=driver.stop)
    stopper.start()
    time.sleep(0.2)  # the stop is now waiting for the sync
    let_go.set()
    stopper.join(15)
    assert not stopper.is_alive(), "the stop waited for ever on the running sync"
    assert not driver.running
    # The sync finished its work (the timers were read and written) before the stop.
    assert driver.last_sync is not None


def test_a_service_in_process_sends_reports_health_and_stops_cleanly(make_app, tmp_path) -> None:
    app = make_app({"schedule": {"sync_seconds": 1}})
    campaign_id = approved_bulletin(app, members=3)
    service = Service(app, host="127.0.0.1", port=0, workers=2)
    service.start()
    try:
        code, health = get_json(service.address, "/health")
        assert code == 200
        assert health["this"] == {**health["this"], "status": "ok", "workers_alive": 2}
        assert health["services"] == 1
        # The subscriber pages are served beside it.
        with urllib.request.urlopen(f"http://{service.address}/healthz", timeout=10) as page:
            assert page.status == 200
        start_campaign(app, campaign_id, actor="tester")
        wait_for(lambda: status_of(app, campaign_id) == "sent", 20, "the send")
    finally:
        service.stop()
    assert maildir_count(tmp_path / "outbox") == 3
    assert service_health(app).status == "down"
    assert service.workers_alive() == 0


def test_the_service_logs_a_pause_and_the_finish_with_counts(make_app, tmp_path, caplog) -> None:
    capture_events(caplog)
    outbox = tmp_path / "outbox"
    # Twenty messages a second, so that there is time to pause.
    app = make_app({"transports": {"outbox": {"dsn": f"maildir:{outbox}?rate=20"}}})
    campaign_id = approved_bulletin(app, members=12)
    service = Service(app, host="127.0.0.1", port=0, workers=1)
    service.start()
    try:
        start_campaign(app, campaign_id, actor="tester")
        wait_for(lambda: ledger_counts(app, campaign_id).get("sent", 0) >= 2, 20, "a few sends")
        pause_campaign(app, campaign_id, actor="Ana")
        wait_for(lambda: events(caplog, "campaign.paused"), 10, "the pause to be logged")
        resume_campaign(app, campaign_id, actor="tester")
        wait_for(lambda: events(caplog, "campaign.finished"), 20, "the finish to be logged")
    finally:
        service.stop()
    (paused,) = events(caplog, "campaign.paused")
    assert paused["campaign"] == campaign_id
    assert paused["note"].startswith("paused by Ana")
    (finished,) = events(caplog, "campaign.finished")
    assert (finished["campaign"], finished["sent"], finished["failed"]) == (campaign_id, 12, 0)
    assert maildir_count(outbox) == 12
    assert [e["event"] for e in events(caplog) if e["event"].startswith("service.")] == [
        "service.started",
        "service.stopped",
    ]


# --- real services ------------------------------------------------------------------------------


class Serve:
    """One `newsletter serve` subprocess, its stderr in a file."""

    def __init__(self, folder: Path, env: dict[str, str], name: str, *args: str) -> None:
        self.log = folder / f"{name}.log"
        self.name = name
        config = folder / "serve.toml"
        config.write_text(CONFIG, encoding="utf-8")
        with self.log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [*newsletter_command(), "--config", str(config), "serve", "--port", "0", *args],
                cwd=folder,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def events(self, name: str | None = None) -> list[dict[str, str]]:
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        found = [parse_logfmt(line) for line in lines if line.startswith("time=")]
        return [e for e in found if name is None or e.get("event") == name]

    def wait_started(self, timeout: float = 30.0) -> str:
        def started() -> str:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.log.read_text()}")
            found = self.events("service.started")
            return found[0]["address"] if found else ""

        return wait_for(started, timeout, f"{self.name} to start")

    def stop(self, timeout: float = 30.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            # The service writes every thread's stack on SIGUSR1: the report then says
            # where it is stuck.
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(1)
            raise AssertionError(f"{self.name} did not stop:\n{self.log.read_text()}") from None


@pytest.fixture
def serve(tmp_path: Path, cli_env: dict[str, str]) -> Iterator[Callable[..., Serve]]:
    started: list[Serve] = []

    def start(name: str, *args: str, env: dict[str, str] | None = None) -> Serve:
        process = Serve(tmp_path, {**cli_env, **(env or {})}, name, *args)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait()


def get_json(address: str, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://{address}{path}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_service_restarted_across_the_due_time_sends_once(make_app, serve, tmp_path) -> None:
    app = make_app()
    campaign_id = approved_bulletin(app, members=5)
    first = serve("first")
    first.wait_started()
    due = utcnow() + timedelta(seconds=3)
    schedule_campaign(app, campaign_id, due, actor="tester")
    # The running service picks the new schedule up and sets its timer in the database.
    wait_for(lambda: f"campaign:{campaign_id}" in job_ids(app), 10, "the timer")
    assert first.stop() == 0
    assert utcnow() < due, "the machine was too slow for this test's timing"
    assert status_of(app, campaign_id) == "scheduled"

    wait_for(lambda: utcnow() > due + timedelta(seconds=0.5), 10)
    second = serve("second")
    second.wait_started()
    wait_for(lambda: status_of(app, campaign_id) == "sent", 30, "the send")
    assert second.stop() == 0

    outbox = tmp_path / "outbox"
    assert maildir_recipients(outbox) == [f"member{i}@example.org" for i in range(5)]
    assert ledger_counts(app, campaign_id) == {"sent": 5}
    assert first.events("campaign.started") == []
    (started,) = second.events("campaign.started")
    assert started["campaign"] == str(campaign_id)
    assert float(started["late_seconds"]) < 300
    (finished,) = second.events("campaign.finished")
    assert (finished["sent"], finished["failed"]) == ("5", "0")


def test_two_services_on_one_database_send_each_delivery_once(make_app, serve, tmp_path) -> None:
    app = make_app()
    members = 20
    campaign_id = approved_bulletin(app, members=members)
    services = [serve("one"), serve("two")]
    addresses = [service.wait_started() for service in services]

    code, health = get_json(addresses[0], "/health")
    assert code == 200
    assert health["this"]["scheduler_running"] is True
    assert health["this"]["workers_alive"] == 2
    assert "instances" not in health  # no host names over HTTP
    wait_for(lambda: get_json(addresses[1], "/health")[1]["services"] == 2, 15, "two heartbeats")

    schedule_campaign(app, campaign_id, utcnow() + timedelta(seconds=2), actor="tester")
    wait_for(lambda: status_of(app, campaign_id) == "sent", 30, "the send")
    for service in services:
        assert service.stop() == 0

    recipients = maildir_recipients(tmp_path / "outbox")
    assert len(recipients) == members
    assert recipients == sorted(f"member{i}@example.org" for i in range(members))
    assert ledger_counts(app, campaign_id) == {"sent": members}
    started = [e for service in services for e in service.events("campaign.started")]
    assert len(started) == 1
    assert all(service.events("service.stopped") for service in services)


def test_status_without_an_id_reports_the_running_service(make_app, serve, run_cli) -> None:
    app = make_app()
    campaign_id = approved_bulletin(app, members=2)
    down = run_cli("status", "--json")
    assert down.returncode == 0, down.stderr
    assert json.loads(down.stdout)["status"] == "down"

    service = serve("one", "--workers", "1")
    address = service.wait_started()
    schedule_campaign(app, campaign_id, utcnow() + timedelta(hours=1), actor="tester")
    result = run_cli("status", "--json")
    assert result.returncode == 0, result.stderr
    health = json.loads(result.stdout)
    assert health["status"] == "ok"
    # The keys of `status --json`, pinned: monitoring scripts read them.
    assert list(health) == [
        "status", "services", "scheduler_running", "workers", "workers_alive", "queue",
        "scheduled", "next_send_at", "timezone", "failed_tasks", "instances",
    ]  # fmt: skip
    assert list(health["queue"]) == [
        "campaigns_sending", "deliveries_waiting", "deliveries_in_flight"
    ]  # fmt: skip
    assert list(health["failed_tasks"]) == ["count", "since", "last_at", "last_task", "last_error"]
    assert (health["services"], health["workers"], health["scheduler_running"]) == (1, 1, True)
    assert health["scheduled"] == 1
    (instance,) = health["instances"]
    assert instance["address"] == address
    assert instance["pid"] == service.process.pid
    text = run_cli("status")
    assert "ok (1 running)" in text.stdout
    assert "1 of 1 alive" in text.stdout
    assert service.stop() == 0
    after = json.loads(run_cli("status", "--json").stdout)
    assert (after["status"], after["instances"]) == ("down", [])


def test_sigterm_during_a_send_exits_cleanly_and_a_restart_finishes_it(
    make_app, serve, cli_env, tmp_path
) -> None:
    app = make_app()
    members = 20
    campaign_id = approved_bulletin(app, members=members)
    start_campaign(app, campaign_id, actor="tester")
    outbox = tmp_path / "outbox"
    # Ten messages a second: the send takes two seconds, long enough to interrupt.
    slow = {"NEWSLETTER_TRANSPORT": f"maildir:{outbox}?rate=10"}

    first = serve("first", env=slow)
    first.wait_started()
    wait_for(lambda: ledger_counts(app, campaign_id).get("sent", 0) >= 3, 30, "some sends")
    stopped_at = time.monotonic()
    assert first.stop() == 0
    assert time.monotonic() - stopped_at < 10
    assert first.events("service.stopping")[0]["signal"] == "SIGTERM"
    assert first.events("service.stopped")

    counts = ledger_counts(app, campaign_id)
    # Nothing is left claimed, and every message that went out is recorded.
    assert "sending" not in counts
    assert 3 <= counts["sent"] < members
    assert counts["sent"] + counts["pending"] == members
    assert maildir_count(outbox) == counts["sent"]
    assert status_of(app, campaign_id) == "sending"

    second = serve("second", env=slow)
    second.wait_started()
    wait_for(lambda: status_of(app, campaign_id) == "sent", 30, "the rest of the send")
    assert second.stop() == 0
    assert maildir_recipients(outbox) == sorted(f"member{i}@example.org" for i in range(members))
    assert ledger_counts(app, campaign_id) == {"sent": members}


def test_sigusr1_writes_the_stacks_and_the_service_goes_on(serve) -> None:
    service = serve("one", "--workers", "1")
    address = service.wait_started()
    service.process.send_signal(signal.SIGUSR1)
    # Every thread's stack: the workers' and the web server's among them.
    wait_for(
        lambda: all(name in service.log.read_text() for name in ("run_worker", "serve_forever")),
        10,
        "the stacks",
    )
    code, health = get_json(address, "/health")
    assert code == 200 and health["this"]["status"] == "ok"
    assert service.stop() == 0


def test_serve_with_a_bad_rule_exits_2_naming_the_key(run_cli, tmp_path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[schedules]]\nname = "monthly"\ncron = "0 9 1-7 * mon"\n')
    result = run_cli("--config", str(config), "serve", "--port", "0")
    assert result.returncode == 2
    assert f"{config}: schedules.monthly.cron:" in result.stderr
    assert "mon#1" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_on_a_port_in_use_says_so_and_exits_1(run_cli) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "--port", str(port))
    assert result.returncode == 1
    assert f"Port {port} is in use by another program" in result.stderr
    assert "Traceback" not in result.stderr
