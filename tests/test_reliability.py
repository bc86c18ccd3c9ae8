"""Nothing accepted is lost: SQLite transactions that wait, requests recorded before
their answer, background work retried and its final failure shown to staff."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import OperationalError
from test_web import sent_campaign, subscribed, unsubscribe_path
from webkit import make_lists, subscription_statuses
from werkzeug.test import Client

from newsletter import db
from newsletter.app import Newsletter
from newsletter.cli import main
from newsletter.config import build_config
from newsletter.errors import OperationFailed
from newsletter.failures import recent_failures, record_failure
from newsletter.models import Campaign, Event, Meta, TaskFailure
from newsletter.service import service_health
from newsletter.web import WebApp, make_wsgi_app
from newsletter.web.background import BackgroundTasks

ONE_CLICK = {
    "data": "List-Unsubscribe=One-Click",
    "content_type": "application/x-www-form-urlencoded",
}


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[Newsletter]:
    url = f"sqlite:///{tmp_path / 'newsletter.db'}"
    env = {"NEWSLETTER_SECRET_KEY": "test-signing-key"}
    app = Newsletter(build_config({"database": {"url": url}}, env, base_dir=tmp_path), env=env)
    app.engine  # noqa: B018 - migrate before any lock is taken
    yield app
    app.close()


@pytest.fixture
def web(app: Newsletter) -> Iterator[WebApp]:
    make_lists(app)
    pages = make_wsgi_app(app)
    yield pages
    pages.close()


def hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Another process's writer, as SQLite sees it: a connection holding the write lock."""
    locked = threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO meta (key, value) VALUES ('other-writer', 'x')")
        locked.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait(5)
    return thread


def test_a_read_then_write_waits_for_another_writer_instead_of_failing(
    sqlite_app: Newsletter, tmp_path: Path
) -> None:
    """With a deferred BEGIN the write below fails at once ("database is locked"): its
    snapshot went stale while the other writer committed. Begun as a write, it waits."""
    other = hold_write_lock(tmp_path / "newsletter.db", 0.5)
    started = time.monotonic()
    with sqlite_app.session() as session:
        before = session.scalar(select(func.count()).select_from(Meta))
        session.add(Meta(key="ours", value=str(before)))
    other.join()
    assert time.monotonic() - started >= 0.3, "it waited for the other writer"
    with sqlite_app.reading() as session:
        assert session.get_one(Meta, "ours").value == "1", "it read after the other commit"
        assert session.get(Meta, "other-writer") is not None


def test_a_reading_session_does_not_wait_for_a_writer(
    sqlite_app: Newsletter, tmp_path: Path
) -> None:
    other = hold_write_lock(tmp_path / "newsletter.db", 1.0)
    started = time.monotonic()
    with sqlite_app.reading() as session:
        session.scalar(select(func.count()).select_from(Meta))
    assert time.monotonic() - started < 0.5
    other.join()


def test_retrying_runs_a_whole_transaction_again_after_a_lock_and_gives_up_in_the_end() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("UPDATE …", {}, Exception("database is locked"))
        return "done"

    assert db.retrying(flaky, attempts=3, first_wait=0.01) == "done"
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(OperationalError):
        db.retrying(lambda: flaky() and flaky(), attempts=2, first_wait=0.01)


def test_one_click_is_recorded_before_its_200_or_answered_503(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A database locked for longer than the busy timeout: a retryable 503, nothing lost
    silently; once it is free, the same POST unsubscribes."""
    monkeypatch.setattr(db, "BUSY_TIMEOUT_SECONDS", 0.2)
    url = f"sqlite:///{tmp_path / 'newsletter.db'}"
    env = {"NEWSLETTER_SECRET_KEY": "test-signing-key"}
    app = Newsletter(build_config({"database": {"url": url}}, env, base_dir=tmp_path), env=env)
    make_lists(app)
    pages = make_wsgi_app(app)
    try:
        sid = subscribed(app, "busy@example.org", "members")
        campaign_id = sent_campaign(app, "members")
        path = unsubscribe_path(app, sid, campaign_id)
        other = hold_write_lock(tmp_path / "newsletter.db", 3.0)
        response = Client(pages).post(path, **ONE_CLICK)
        assert response.status_code == 503
        assert response.headers["Retry-After"].isdigit()
        other.join()
        assert subscription_statuses(app, "busy@example.org") == {"members": "confirmed"}
        response = Client(pages).post(path, **ONE_CLICK)
        assert response.status_code == 200
        assert subscription_statuses(app, "busy@example.org") == {"members": "unsubscribed"}
    finally:
        pages.close()
        app.close()


def test_a_signed_link_of_a_deleted_campaign_still_unsubscribes(
    app: Newsletter, web: WebApp
) -> None:
    sid = subscribed(app, "gone@example.org", "members")
    campaign_id = sent_campaign(app, "members")
    path = unsubscribe_path(app, sid, campaign_id)
    with app.session() as session:
        session.execute(delete(Campaign).where(Campaign.id == campaign_id))
    response = Client(web).post(path, **ONE_CLICK)
    assert response.status_code == 200
    assert subscription_statuses(app, "gone@example.org") == {"members": "unsubscribed"}
    with app.reading() as session:
        event = session.scalars(select(Event).where(Event.subscriber_id == sid)).one()
        assert event.type == "unsubscribe" and event.campaign_id is None
    # The page form does the same.
    assert Client(web).get(path).status_code == 200


def test_background_work_is_retried_and_its_final_failure_is_recorded_for_staff(
    app: Newsletter,
) -> None:
    failed: list[tuple[str, int, str]] = []

    def on_failure(kind: str, exc: BaseException, attempts: int, detail: str) -> None:
        failed.append((kind, attempts, detail))
        record_failure(app, kind, exc, attempts=attempts, detail=detail)

    tasks = BackgroundTasks(on_failure=on_failure, retry_waits=(0.01, 0.01, 0.01))
    tries: list[int] = []

    def busy_twice() -> None:
        tries.append(1)
        if len(tries) <= 2:
            raise OperationalError("INSERT …", {}, Exception("database is locked"))

    def always_down() -> None:
        raise OperationFailed("transport outbox: retry: the server is down")

    def a_bug() -> None:
        raise KeyError("x")

    tasks.submit(busy_twice, kind="subscribe")
    tasks.submit(always_down, kind="subscribe", detail="a…@e….org to members")
    tasks.submit(a_bug, kind="notice")
    tasks.join()
    tasks.close()
    assert len(tries) == 3, "retried until it worked"
    assert failed == [("subscribe", 4, "a…@e….org to members"), ("notice", 1, "")]

    recent = recent_failures(app)
    assert recent.count == 2 and recent.last_task == "notice"
    with app.reading() as session:
        rows = session.scalars(select(TaskFailure).order_by(TaskFailure.id)).all()
    assert rows[0].error == "OperationFailed: transport outbox: retry: the server is down"
    assert rows[0].attempts == 4 and rows[1].error == "KeyError"
    failed = service_health(app).failed_tasks
    assert failed is not None and failed.count == 2


def test_status_warns_about_accepted_work_that_failed(run_cli, make_app) -> None:
    app = make_app()
    record_failure(app, "subscribe", OperationFailed("the server is down"), attempts=5)
    result = run_cli("status")
    assert result.returncode == 0, result.stderr
    assert "1 accepted request(s) could not be carried out" in result.stderr
    assert "subscribe: OperationFailed: the server is down" in result.stderr


def test_a_command_on_a_database_busy_too_long_says_so_in_one_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(db, "BUSY_TIMEOUT_SECONDS", 0.2)
    database = tmp_path / "newsletter.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "test-signing-key")
    with pytest.raises(SystemExit) as ended:
        main(["lists", "create", "members"])
    assert ended.value.code == 0
    capsys.readouterr()
    other = hold_write_lock(database, 2.0)
    with pytest.raises(SystemExit) as ended:
        main(["subscribers", "add", "ana@example.org", "--list", "members"])
    other.join()
    err = capsys.readouterr().err
    assert ended.value.code == 1
    assert err == "failed: the database: database is locked; try again\n"


def test_only_contention_counts_as_transient_on_sqlite() -> None:
    def error(message: str) -> OperationalError:
        return OperationalError("SELECT …", {}, sqlite3.OperationalError(message))

    assert db.is_transient(error("database is locked"))
    assert not db.is_transient(error("no such table: subscribers")), "a bug is not retried"
