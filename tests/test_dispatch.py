"""The send engine and the ledger, with the in-memory transport: the logic, fast.

Runs on SQLite, and on PostgreSQL too when NEWSLETTER_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from conftest import wait_for
from sqlalchemy import func, select, update
from test_dispatch_support import seed_campaign, set_status

from newsletter import dispatch
from newsletter.app import Newsletter
from newsletter.audience import is_suppressed
from newsletter.dispatch import CampaignSender, EngineOptions, counters, ledger, rates
from newsletter.dispatch.retry import RetryPolicy
from newsletter.dispatch.workers import host_name, new_worker_id
from newsletter.errors import InvalidState, NotFound
from newsletter.models import Campaign, Delivery, Event, Subscriber, utcnow
from newsletter.transports import OutgoingMessage, SendLimits, SendResult
from newsletter.transports.memory import MemoryTransport

FAST = EngineOptions(
    batch_size=25,
    lease_seconds=60,
    pause_after_consecutive_failures=1000,
    retry=RetryPolicy(initial_seconds=0.05, max_seconds=0.2, max_attempts=4),
)


def memory(connections: int = 4, **kwargs) -> MemoryTransport:
    return MemoryTransport(limits=SendLimits(connections=connections), **kwargs)


def counts(app: Newsletter, campaign_id: int) -> dict[str, int]:
    """The campaign's deliveries by state, checking on the way that its counters are true."""
    with app.engine.connect() as conn:
        kept, truth = ledger.counts(conn, campaign_id), counters.recount(conn, campaign_id)
    assert kept == truth, f"counters {kept} but the ledger says {truth}"
    return truth


def campaign(app: Newsletter, campaign_id: int) -> Campaign:
    with app.session() as session:
        return session.get_one(Campaign, campaign_id)


def test_send_delivers_everyone_once_and_marks_the_campaign_sent(app: Newsletter) -> None:
    cid = seed_campaign(app, 120)
    transport = memory(connections=4)
    outcome = dispatch.send_campaign(app, cid, transport=transport, options=FAST, actor="tester")
    assert outcome.reason == "finished"
    assert (outcome.written, outcome.sent, outcome.failed) == (120, 120, 0)
    assert transport.received() == {f"person{i}@example.org": 1 for i in range(120)}
    assert transport.concurrent_threads == 4
    assert counts(app, cid) == {"sent": 120}
    done = campaign(app, cid)
    assert done.status == "sent" and done.finished_at is not None and done.started_at is not None
    with app.session() as session:
        row = session.scalars(select(Delivery).where(Delivery.campaign_id == cid)).first()
        assert row.attempts == 1
        assert row.last_response.startswith("250 ok")
        assert row.sent_at is not None and row.message_id
        assert row.claimed_by.startswith(f"{host_name()}:")
        assert row.lease_until is None
    # The message was built for its recipient.
    first = next(m for m in transport.sent if m.recipient == "person7@example.org")
    assert b"person7@example.org" in first.data


def test_writing_the_ledger_twice_adds_nothing(app: Newsletter) -> None:
    cid = seed_campaign(app, 30)
    assert dispatch.start_campaign(app, cid, actor="tester") == 30
    # Sending again (a restart) continues the campaign and writes nothing.
    assert dispatch.start_campaign(app, cid, actor="tester") == 0
    with app.session() as session:
        assert ledger.write_ledger(session, session.get_one(Campaign, cid)) == 0
    assert counts(app, cid) == {"pending": 30}


def test_only_approved_or_scheduled_campaigns_can_be_sent(app: Newsletter) -> None:
    cid = seed_campaign(app, 3, status="draft")
    with pytest.raises(InvalidState, match=f"campaign {cid} is a draft; approve it first"):
        dispatch.send_campaign(app, cid, transport=memory(), actor="tester")
    assert counts(app, cid) == {}
    set_status(app, cid, "sent")
    with pytest.raises(InvalidState, match="already sent"):
        dispatch.send_campaign(app, cid, transport=memory(), actor="tester")
    with pytest.raises(NotFound, match="no campaign with id 999"):
        dispatch.send_campaign(app, 999, transport=memory(), actor="tester")


def test_temporary_failures_are_retried_with_backoff_until_sent(app: Newsletter) -> None:
    cid = seed_campaign(app, 40)

    def flaky(message: OutgoingMessage, tries: int) -> SendResult:
        if message.recipient == "person1@example.org" and tries < 2:
            return SendResult("retry", "452 4.2.2 Mailbox full")
        return SendResult("sent", "250 ok")

    transport = memory(script=flaky)
    waits: list[str] = []
    options = EngineOptions(batch_size=25, retry=RetryPolicy(0.6, 1.2, max_attempts=4))
    outcome = dispatch.send_campaign(
        app, cid, transport=transport, options=options, progress_every=0.05,
        on_progress=lambda p: waits.append(p.waiting), actor="tester",
    )  # fmt: skip
    assert outcome.reason == "finished"
    assert transport.received() == {f"person{i}@example.org": 1 for i in range(40)}
    assert counts(app, cid) == {"sent": 40}
    with app.session() as session:
        attempts = dict(
            session.execute(
                select(Subscriber.email, Delivery.attempts)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .where(Delivery.campaign_id == cid)
            ).all()
        )
    assert attempts["person1@example.org"] == 3
    assert attempts["person2@example.org"] == 1
    # While only retries were left, the send said what it was waiting for.
    assert any(w.startswith("waiting for") and "retries" in w for w in waits), waits


def test_a_temporary_failure_that_goes_on_fails_after_max_attempts(app: Newsletter) -> None:
    cid = seed_campaign(app, 5)

    def stuck(message: OutgoingMessage, tries: int) -> SendResult:
        if message.recipient == "person3@example.org":
            return SendResult("retry", "450 4.2.1 Mailbox busy")
        return SendResult("sent", "250 ok")

    outcome = dispatch.send_campaign(
        app, cid, transport=memory(script=stuck), options=FAST, actor="tester"
    )
    assert outcome.status == "sent"
    assert counts(app, cid) == {"sent": 4, "failed": 1}
    (row,) = dispatch.list_deliveries(app, cid, failed_only=True)
    assert row.address == "person3@example.org"
    assert row.attempts == 4
    assert row.last_response == "gave up after 4 attempts: 450 4.2.1 Mailbox busy"


def test_a_hard_bounce_fails_that_recipient_and_suppresses_the_address(app: Newsletter) -> None:
    cid = seed_campaign(app, 10)

    def one_gone(message: OutgoingMessage, tries: int) -> SendResult:
        if message.recipient == "person4@example.org":
            return SendResult("failed", "550 5.1.1 User unknown", hard_bounce=True)
        return SendResult("sent", "250 ok")

    dispatch.send_campaign(
        app, cid, transport=memory(script=one_gone), options=FAST, actor="tester"
    )
    assert counts(app, cid) == {"sent": 9, "failed": 1}
    with app.session() as session:
        assert is_suppressed(session, app.suppression_key, "person4@example.org")
        assert not is_suppressed(session, app.suppression_key, "person5@example.org")
        status = session.scalar(
            select(Subscriber.status).where(Subscriber.email == "person4@example.org")
        )
        assert status == "bounced"
        event = session.scalars(select(Event).where(Event.campaign_id == cid)).one()
        assert event.type == "hard_bounce" and "5.1.1" in event.detail["response"]


def throttling_first(times: int) -> Callable[[OutgoingMessage, int], SendResult]:
    """A server's answers: "slow down" to the first `times` messages, then "250 ok"."""
    told = {"n": 0}

    def answer(message: OutgoingMessage, tries: int) -> SendResult:
        if told["n"] < times:
            told["n"] += 1
            return SendResult("retry", "421 4.7.0 Too many messages, slow down", throttled=True)
        return SendResult("sent", "250 ok")

    return answer


def test_throttling_slows_the_send_and_never_drops_anyone(app: Newsletter) -> None:
    cid = seed_campaign(app, 30)
    transport = memory(script=throttling_first(6), connections=2)
    sender = CampaignSender(app, cid, transport, options=FAST)
    dispatch.start_campaign(app, cid, actor="tester")
    report = sender.run()
    assert report.reason == "finished"
    assert transport.received() == {f"person{i}@example.org": 1 for i in range(30)}
    assert sender.limiter.throttle_count == 6
    # The send slowed down: a limit is now in force where there was none.
    assert sender.limiter.current_limit is not None
    # Being throttled is not the recipient's fault: it does not count as an attempt.
    with app.engine.connect() as conn:
        assert conn.scalar(select(func.max(Delivery.attempts))) == 1


def test_a_worker_slows_down_when_another_on_the_same_account_is_throttled(
    app: Newsletter,
) -> None:
    """The provider throttles the account: every worker sending through it backs off."""
    loud, quiet = seed_campaign(app, 20, prefix="loud"), seed_campaign(app, 300, prefix="quiet")

    def slowly(message: OutgoingMessage, tries: int) -> SendResult:
        time.sleep(0.01)
        return SendResult("sent", "250 ok")

    # Two workers' transports for one provider account: the same name.
    senders = []
    for cid, script in ((quiet, slowly), (loud, throttling_first(3))):
        transport = memory(script=script, connections=2)
        transport.name = "provider"
        dispatch.start_campaign(app, cid, actor="tester")
        senders.append(CampaignSender(app, cid, transport, options=FAST))
    threads = [threading.Thread(target=sender.run) for sender in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    listener, heard = senders
    assert heard.limiter.throttle_count == 3
    # The quiet one heard nothing itself, and slowed down all the same.
    assert listener.limiter.throttle_count == 0
    assert listener.limiter.followed >= 1
    # Following is not hearing: the shared count is the replies really heard, no echo.
    with app.engine.connect() as conn:
        assert rates.throttled_total(conn, "provider") == 3
    assert counts(app, quiet) == {"sent": 300} and counts(app, loud) == {"sent": 20}


def test_a_dead_server_pauses_the_campaign_and_says_why(app: Newsletter) -> None:
    cid = seed_campaign(app, 200)
    down = memory(script=lambda m, t: SendResult("retry", "cannot connect to mail:25: refused"))
    options = EngineOptions(
        batch_size=20,
        pause_after_consecutive_failures=12,
        retry=RetryPolicy(initial_seconds=60, max_seconds=60, max_attempts=5),
    )
    outcome = dispatch.send_campaign(app, cid, transport=down, options=options, actor="tester")
    assert outcome.reason == "failing"
    done = campaign(app, cid)
    assert done.status == "paused"
    assert "paused after 12 failures in a row" in done.status_note
    assert "cannot connect to mail:25" in done.status_note
    # It stopped instead of burning through the list.
    found = counts(app, cid)
    assert found["pending"] >= 150 and found.get("sending", 0) == 0
    assert found["retry"] < 20


def test_one_recipient_whose_message_cannot_be_built_does_not_stop_the_campaign(
    app: Newsletter,
) -> None:
    from newsletter.message import Composer

    class Picky(Composer):
        def compose(self, recipient):
            if recipient.email == "person2@example.org":
                raise ValueError("bad name")
            return super().compose(recipient)

    cid = seed_campaign(app, 6)
    dispatch.start_campaign(app, cid, actor="tester")
    transport = memory()
    CampaignSender(app, cid, transport, options=FAST, composer_factory=Picky).run()
    assert counts(app, cid) == {"sent": 5, "failed": 1}
    (row,) = dispatch.list_deliveries(app, cid, failed_only=True)
    assert row.last_response == "cannot compose the message: bad name"


def _send_in_thread(app: Newsletter, cid: int, transport: MemoryTransport):
    result: dict = {}

    def run() -> None:
        result["outcome"] = dispatch.send_campaign(
            app, cid, transport=transport, options=FAST, actor="tester"
        )
        result["ended"] = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def test_pause_stops_within_two_seconds_and_resume_sends_the_rest_once(app: Newsletter) -> None:
    cid = seed_campaign(app, 300)
    transport = memory(connections=2, delay=0.01)
    thread, result = _send_in_thread(app, cid, transport)
    wait_for(lambda: len(transport.sent) >= 40, 10)
    paused_at = time.monotonic()
    dispatch.pause_campaign(app, cid, actor="tester")
    thread.join(10)
    assert result["ended"] - paused_at < 2.0
    assert result["outcome"].reason == "paused"
    found = counts(app, cid)
    assert found.get("sending", 0) == 0, "claims are given back on pause"
    assert 40 <= found["sent"] < 300
    assert campaign(app, cid).status_note.startswith("paused by tester")
    sent_before = len(transport.sent)

    dispatch.resume_campaign(app, cid, actor="tester")
    outcome = dispatch.send_campaign(app, cid, transport=transport, options=FAST, actor="tester")
    assert outcome.reason == "finished"
    assert outcome.sent == 300 - sent_before
    assert transport.received() == {f"person{i}@example.org": 1 for i in range(300)}
    assert campaign(app, cid).status == "sent"


def test_cancel_stops_the_send_and_cancels_the_rest(app: Newsletter) -> None:
    cid = seed_campaign(app, 300)
    transport = memory(connections=2, delay=0.01)
    thread, result = _send_in_thread(app, cid, transport)
    wait_for(lambda: len(transport.sent) >= 30, 10)
    cancelled_at = time.monotonic()
    dispatch.cancel_campaign(app, cid, actor="tester")
    thread.join(10)
    assert result["ended"] - cancelled_at < 2.0
    assert result["outcome"].reason == "cancelled"
    found = counts(app, cid)
    assert set(found) == {"sent", "cancelled"}
    assert found["sent"] == len(transport.sent)
    assert campaign(app, cid).status == "cancelled"
    with pytest.raises(
        InvalidState, match="is cancelled; only an approved or scheduled campaign can be sent"
    ):
        dispatch.send_campaign(app, cid, transport=transport, actor="tester")


def test_pause_resume_cancel_refuse_the_wrong_status(app: Newsletter) -> None:
    cid = seed_campaign(app, 2)
    with pytest.raises(InvalidState, match="only a campaign that is sending can be paused"):
        dispatch.pause_campaign(app, cid, actor="tester")
    with pytest.raises(InvalidState, match="only a paused campaign can be resumed"):
        dispatch.resume_campaign(app, cid, actor="tester")
    dispatch.cancel_campaign(app, cid, actor="tester")
    with pytest.raises(InvalidState, match="is cancelled; only an approved"):
        dispatch.cancel_campaign(app, cid, actor="tester")


def _claim_as(app: Newsletter, cid: int, worker_id: str, lease: timedelta, n: int) -> None:
    with app.engine.begin() as conn:
        now = utcnow()
        assert len(ledger.claim(conn, cid, worker_id, n, now, now + lease)) == n


def test_claims_of_a_dead_process_on_this_host_are_taken_over_at_once(app: Newsletter) -> None:
    cid = seed_campaign(app, 50)
    dispatch.start_campaign(app, cid, actor="tester")
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_worker = f"{host_name()}:{int(gone.stdout)}:deadbeef"
    # A lease an hour long: only the dead process, not the clock, can free these rows.
    _claim_as(app, cid, dead_worker, timedelta(hours=1), 30)
    transport = memory()
    outcome = dispatch.send_campaign(app, cid, transport=transport, options=FAST, actor="tester")
    assert outcome.reason == "finished"
    assert transport.received() == {f"person{i}@example.org": 1 for i in range(50)}


def test_claims_of_another_host_wait_for_their_lease(app: Newsletter) -> None:
    cid = seed_campaign(app, 20)
    dispatch.start_campaign(app, cid, actor="tester")
    _claim_as(app, cid, "elsewhere:123:cafe", timedelta(hours=1), 5)
    transport = memory()
    report = CampaignSender(app, cid, transport, options=FAST, wait_for_retries=False).run()
    # Everything else is sent; the other host's five are left to it.
    assert report.reason == "idle"
    assert counts(app, cid) == {"sent": 15, "sending": 5}
    # Its lease lapses: the next sender takes them over.
    with app.engine.begin() as conn:
        conn.execute(update(Delivery).values(lease_until=utcnow() - timedelta(seconds=1))
                     .where(Delivery.status == "sending"))  # fmt: skip
    report = CampaignSender(app, cid, transport, options=FAST).run()
    assert report.reason == "finished"
    assert transport.received() == {f"person{i}@example.org": 1 for i in range(20)}


def test_a_slow_send_keeps_its_claims_by_renewing_the_lease(app: Newsletter) -> None:
    cid = seed_campaign(app, 12)
    options = EngineOptions(batch_size=12, lease_seconds=0.6, retry=FAST.retry)
    transport = memory(connections=1, delay=0.15)
    dispatch.start_campaign(app, cid, actor="tester")
    thread = threading.Thread(target=CampaignSender(app, cid, transport, options=options).run)
    thread.start()
    time.sleep(1.0)
    # Another worker arriving now finds the first one's claims still leased.
    rival = memory()
    CampaignSender(app, cid, rival, options=options, wait_for_retries=False).run()
    thread.join(10)
    assert not rival.sent
    assert transport.received() == {f"person{i}@example.org": 1 for i in range(12)}


def test_two_senders_share_a_campaign_and_never_send_one_delivery_twice(
    app: Newsletter,
) -> None:
    cid = seed_campaign(app, 400)
    dispatch.start_campaign(app, cid, actor="tester")
    transports = [memory(connections=2, delay=0.001), memory(connections=2, delay=0.001)]
    senders = [CampaignSender(app, cid, t, options=FAST) for t in transports]
    threads = [threading.Thread(target=s.run) for s in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    together = transports[0].received() + transports[1].received()
    assert together == {f"person{i}@example.org": 1 for i in range(400)}
    assert all(t.sent for t in transports), "both took a share"
    assert campaign(app, cid).status == "sent"


@pytest.mark.parametrize("in_flight", [1, 3])
def test_unrecorded_messages_never_exceed_in_flight_per_connection(
    app: Newsletter, in_flight: int
) -> None:
    """The crash bound, checked at every send: what a kill -9 could make us send twice.

    At the moment a connection hands a message to the server, at most
    in_flight_per_connection of its messages (this one included) may be missing
    from the ledger; with C connections a crash can resend at most C × that.
    """
    cid = seed_campaign(app, 150)
    accepted: dict[int, list[int]] = {}
    worst = {"gap": 0}

    def watch(message: OutgoingMessage, tries: int) -> SendResult:
        mine = accepted.setdefault(threading.get_ident(), [])
        if mine:
            with app.engine.connect() as conn:
                unrecorded = conn.scalar(
                    select(func.count()).where(Delivery.id.in_(mine), Delivery.status != "sent")
                )
        else:
            unrecorded = 0
        worst["gap"] = max(worst["gap"], unrecorded + 1)
        mine.append(message.delivery_id)
        return SendResult("sent", "250 ok")

    transport = memory(connections=3, script=watch)
    options = EngineOptions(batch_size=30, in_flight_per_connection=in_flight, retry=FAST.retry)
    dispatch.send_campaign(app, cid, transport=transport, options=options, actor="tester")
    assert transport.received() == {f"person{i}@example.org": 1 for i in range(150)}
    assert len(accepted) == 3
    assert worst["gap"] <= in_flight
    if in_flight > 1:
        assert worst["gap"] > 1, "a connection did run ahead of the ledger"


def test_dry_run_counts_and_samples_without_writing(app: Newsletter) -> None:
    cid = seed_campaign(app, 12)
    preview = dispatch.dry_run(app, cid, sample_size=3)
    assert preview.recipients == 12
    assert [row.email for row in preview.sample] == [
        "person0@example.org",
        "person1@example.org",
        "person2@example.org",
    ]
    assert preview.transport.startswith("maildir ")
    assert counts(app, cid) == {}
    assert campaign(app, cid).status == "approved"


def test_test_send_goes_to_one_address_in_any_status_and_writes_nothing(app: Newsletter) -> None:
    cid = seed_campaign(app, 3, status="draft")
    transport = memory()
    test = dispatch.send_test(app, cid, "Editor@Example.org", transport=transport)
    assert test.result.outcome == "sent"
    assert [m.recipient for m in transport.sent] == ["Editor@example.org"]
    assert counts(app, cid) == {}
    assert campaign(app, cid).status == "draft"
    with pytest.raises(Exception, match="is not an email address"):
        dispatch.send_test(app, cid, "not-an-address", transport=transport)


def test_status_reports_counts_rate_and_eta(app: Newsletter) -> None:
    cid = seed_campaign(app, 20)
    dispatch.start_campaign(app, cid, actor="tester")
    # Long enough ago that a slow machine's second or two changes the rate by little.
    worker, began = new_worker_id(), utcnow() - timedelta(seconds=100)
    with app.engine.begin() as conn:
        claims = ledger.claim(conn, cid, worker, 10, began, utcnow() + timedelta(minutes=5))
    # Recorded the way a sender records them, 100 seconds after the claim that began the send.
    writer = ledger.OutcomeWriter(app.engine, cid)
    sent = [
        {"b_id": c.delivery_id, "b_worker": worker, "b_response": "250 ok", "b_message_id": None,
         "b_at": utcnow(), "b_provider_id": None}
        for c in claims
    ]  # fmt: skip
    writer.write({"sent": sent, "retry": [], "failed": []})
    writer.close()
    with app.session() as session:
        session.execute(update(Campaign).where(Campaign.id == cid).values(started_at=began))
    progress = dispatch.campaign_status(app, cid)
    assert progress.status == "sending"
    assert progress.counts["sent"] == 10 and progress.counts["pending"] == 10
    assert progress.total == 20 and progress.remaining == 10
    assert progress.rate == pytest.approx(0.1, rel=0.1)  # 10 sent in the last 100 seconds
    assert progress.eta_seconds == pytest.approx(100, rel=0.1)
    data = progress.as_dict()
    assert data["done"] == 10 and data["counts"]["pending"] == 10


def test_an_hourly_limit_counts_what_was_sent_before_a_restart(app: Newsletter) -> None:
    """A restarted sender does not start a fresh hour: the ledger says what went out."""
    cid = seed_campaign(app, 30)
    dispatch.start_campaign(app, cid, actor="tester")
    with app.engine.begin() as conn:
        claims = ledger.claim(conn, cid, "gone:1:x", 25, utcnow(), utcnow())
        conn.execute(
            update(Delivery)
            .where(Delivery.id.in_([c.delivery_id for c in claims]))
            .values(status="sent", sent_at=utcnow() - timedelta(minutes=20))
        )
        # Written behind the ledger's back to date them: the counters are rebuilt to match.
        counters.rebuild(conn, cid)
    # 25 sent twenty minutes ago under a limit of 28 an hour: only 3 more may go now.
    transport = MemoryTransport(limits=SendLimits(connections=2, rate_per_hour=28))
    transport.name = app.config.default_transport
    stop = threading.Event()
    sender = CampaignSender(app, cid, transport, options=FAST, stop=stop)
    thread = threading.Thread(target=sender.run)
    thread.start()
    wait_for(lambda: len(transport.sent) >= 3, 10)
    time.sleep(0.5)
    stop.set()
    thread.join(10)
    assert len(transport.sent) == 3
    assert counts(app, cid) == {"sent": 28, "pending": 2}


def test_the_progress_says_when_the_hourly_limit_holds_the_send(app: Newsletter) -> None:
    cid = seed_campaign(app, 6)
    dispatch.start_campaign(app, cid, actor="tester")
    transport = MemoryTransport(limits=SendLimits(connections=2, rate_per_hour=3))
    seen: list[str] = []
    stop = threading.Event()
    sender = CampaignSender(
        app, cid, transport, options=FAST, stop=stop, on_progress=lambda p: seen.append(p.waiting)
    )
    thread = threading.Thread(target=sender.run)
    thread.start()
    wait_for(lambda: any("hourly limit" in line for line in seen), 10, "the note")
    stop.set()
    thread.join(10)
    assert len(transport.sent) == 3
    notes = {line for line in seen if "hourly limit" in line}
    pattern = r"waiting for the hourly limit \(3 an hour\): more may go from \d\d:\d\d"
    assert notes and all(re.fullmatch(pattern, note) for note in notes), notes


def test_progress_lines_for_a_log_do_not_repeat_a_countdown_every_second() -> None:
    import io

    from newsletter.cli.dispatch import ProgressDisplay
    from newsletter.dispatch import Progress

    stream = io.StringIO()  # not a terminal: plain lines, as in a log
    display = ProgressDisplay(stream)
    for seconds in (43, 42, 41, 40):
        display(
            Progress(
                campaign_id=1,
                status="sending",
                counts={"retry": 1},
                waiting=f"waiting for 1 retries, the next due at 23:17:21 (in {seconds}s)",
            )
        )
    display(Progress(campaign_id=1, status="sending", counts={"sent": 1}))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "waiting for 1 retries" in lines[0]
    assert "sent 1" in lines[1]
