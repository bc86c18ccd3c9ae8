"""A campaign's counters always equal a recount of its ledger, whatever happened to it.

The counters (newsletter/dispatch/counters.py) are moved by every statement
that moves deliveries between states. These tests drive those statements in
any order hypothesis finds (claims by several workers, outcomes recorded
through the senders' own writer, including for rows another worker took over,
leases lapsing, dead workers' claims taken over, releases, cancelling, people
leaving and being erased mid-send) and check after every step that the counters
say what a recount says. The end-to-end tests send for real: with failures,
retries, a pause and a resume, and a worker killed mid-send.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from conftest import wait_for
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from test_dispatch_support import seed_campaign

from newsletter import dispatch
from newsletter.app import Newsletter
from newsletter.dispatch import CampaignSender, EngineOptions, counters, ledger
from newsletter.dispatch.retry import RetryPolicy
from newsletter.models import Campaign, Delivery, Subscriber, utcnow
from newsletter.transports import OutgoingMessage, SendLimits, SendResult
from newsletter.transports.memory import MemoryTransport

WORKERS = ("w:1:a", "w:1:b", "w:1:c")
PEOPLE = 12

worker = st.sampled_from(WORKERS)
step = st.one_of(
    st.tuples(st.just("claim"), worker, st.integers(1, 6)),
    st.tuples(
        st.just("outcome"), worker, st.sampled_from(["sent", "retry", "failed"]), st.integers(1, 6)
    ),
    # A worker whose lease lapsed records outcomes for rows that are no longer its own.
    st.tuples(st.just("late outcome"), worker, st.sampled_from(["sent", "failed"])),
    st.tuples(st.just("leases lapse")),
    st.tuples(st.just("worker dies"), worker),
    st.tuples(st.just("release"), worker, st.booleans()),
    st.tuples(st.just("unsubscribe"), st.integers(0, PEOPLE - 1)),
    st.tuples(st.just("erase"), st.integers(0, PEOPLE - 1)),
    st.tuples(st.just("cancel")),
    st.tuples(st.just("write ledger again")),
)


def assert_counters_true(app: Newsletter, campaign_id: int) -> dict[str, int]:
    with app.engine.connect() as conn:
        kept = counters.read(conn, campaign_id).counts
        truth = counters.recount(conn, campaign_id)
    assert kept == truth, f"counters {kept} but the ledger says {truth}"
    return truth


def outcome_row(kind: str, delivery_id: int, holder: str) -> dict:
    row = {"b_id": delivery_id, "b_worker": holder, "b_response": "x", "b_message_id": None}
    if kind == "sent":
        row.update(b_at=utcnow(), b_provider_id=None)
    else:
        row["b_attempts"] = 1
    if kind == "retry":
        # Due at once, so that the next claim can take it again.
        row["b_next"] = utcnow() - timedelta(seconds=1)
    return row


def held(app: Newsletter, campaign_id: int, holder: str) -> list[int]:
    with app.engine.connect() as conn:
        return list(
            conn.execute(
                select(Delivery.id).where(
                    Delivery.campaign_id == campaign_id,
                    Delivery.claimed_by == holder,
                    Delivery.status == "sending",
                )
            ).scalars()
        )


def run_step(app: Newsletter, cid: int, action: tuple, memory: dict) -> None:
    """One move of the ledger; `memory` keeps what each worker claimed, and the people's prefix."""
    kind = action[0]
    now = utcnow()
    if kind == "claim":
        _, holder, number = action
        with app.engine.begin() as conn:
            claims = ledger.claim(conn, cid, holder, number, now, now + timedelta(minutes=5))
        memory.setdefault(holder, []).extend(c.delivery_id for c in claims)
    elif kind in ("outcome", "late outcome"):
        holder = action[1]
        outcome = action[2]
        if kind == "outcome":
            ids = held(app, cid, holder)[: action[3]]
        else:
            # Rows this worker once claimed, whatever became of them since.
            ids = memory.get(holder, [])[-3:]
        writer = ledger.OutcomeWriter(app.engine, cid)
        groups: dict[str, list] = {"sent": [], "retry": [], "failed": []}
        groups[outcome] = [outcome_row(outcome, i, holder) for i in ids]
        writer.write(groups)
        writer.close()
    elif kind == "leases lapse":
        with app.engine.begin() as conn:
            ledger.reclaim(conn, cid, now + timedelta(hours=1), [])
    elif kind == "worker dies":
        with app.engine.begin() as conn:
            ledger.reclaim(conn, cid, now, [action[1]])
    elif kind == "release":
        with app.engine.begin() as conn:
            ledger.release(conn, cid, action[1], cancelled=action[2])
    elif kind in ("unsubscribe", "erase"):
        email = f"{memory['prefix']}{action[1]}@example.org"
        with app.engine.begin() as conn:
            subscriber_id = conn.scalar(select(Subscriber.id).where(Subscriber.email == email))
            if subscriber_id is None:
                return
            if kind == "erase":
                ledger.delete_for_subscriber(conn, subscriber_id)
            else:
                ids = conn.execute(
                    select(Delivery.id).where(Delivery.subscriber_id == subscriber_id)
                ).scalars()
                ledger.cancel_waiting(conn, list(ids), "unsubscribed before it was sent")
    elif kind == "cancel":
        with app.engine.begin() as conn:
            ledger.cancel_open(conn, cid, now, [])
    elif kind == "write ledger again":
        with app.session() as session:
            ledger.write_ledger(session, session.get_one(Campaign, cid))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(step, min_size=1, max_size=25))
def test_counters_equal_a_recount_after_any_sequence_of_ledger_moves(
    app: Newsletter, steps: list[tuple]
) -> None:
    # Each example has its own people: the database lives as long as the test.
    prefix = f"p{uuid.uuid4().hex[:8]}-"
    cid = seed_campaign(app, PEOPLE, prefix=prefix)
    dispatch.start_campaign(app, cid, actor="tester")
    assert assert_counters_true(app, cid) == {"pending": PEOPLE}
    memory: dict[str, list[int]] = {"prefix": prefix}  # type: ignore[dict-item]
    for action in steps:
        run_step(app, cid, action, memory)
        assert_counters_true(app, cid)


def test_a_send_with_failures_retries_a_pause_and_a_resume_keeps_true_counters(
    app: Newsletter,
) -> None:
    cid = seed_campaign(app, 300)

    def script(message: OutgoingMessage, tries: int) -> SendResult:
        number = int(message.recipient.removeprefix("person").split("@")[0])
        if number % 17 == 0:
            return SendResult("failed", "550 5.1.1 User unknown", hard_bounce=True)
        if number % 5 == 0 and tries < 1:
            return SendResult("retry", "451 4.3.0 Try again later")
        return SendResult("sent", "250 ok")

    options = EngineOptions(batch_size=20, retry=RetryPolicy(0.05, 0.2, max_attempts=4))
    transport = MemoryTransport(script=script, limits=SendLimits(connections=3), delay=0.002)
    dispatch.start_campaign(app, cid, actor="tester")
    sender = CampaignSender(app, cid, transport, options=options)
    thread = threading.Thread(target=sender.run)
    thread.start()
    wait_for(lambda: len(transport.sent) >= 100, 30)
    dispatch.pause_campaign(app, cid, actor="tester")
    thread.join(30)
    middle = assert_counters_true(app, cid)
    assert middle.get("sent", 0) >= 50 and middle.get("sending", 0) == 0
    dispatch.resume_campaign(app, cid, actor="tester")
    outcome = dispatch.send_campaign(app, cid, transport=transport, options=options, actor="t")
    assert outcome.reason == "finished"
    final = assert_counters_true(app, cid)
    assert final == {"sent": 300 - 18, "failed": 18}
    with app.engine.connect() as conn:
        # Every temporary failure was counted for /metrics: 60 recipients, once each.
        assert counters.read(conn, cid).retries == 60 - 4
    progress = dispatch.campaign_status(app, cid)
    assert progress.counts["sent"] == 282 and progress.rate > 0


def test_a_campaign_deleted_takes_its_counters_with_it(app: Newsletter) -> None:
    cid = seed_campaign(app, 3)
    dispatch.start_campaign(app, cid, actor="tester")
    dispatch.cancel_campaign(app, cid, actor="tester")
    assert assert_counters_true(app, cid) == {"cancelled": 3}
    with app.session() as session:
        session.delete(session.get_one(Campaign, cid))
    with app.engine.connect() as conn:
        assert counters.read(conn, cid).counts == {}


@pytest.mark.parametrize("people", [0, 7])
def test_a_ledger_written_twice_counts_once(app: Newsletter, people: int) -> None:
    cid = seed_campaign(app, people)
    dispatch.start_campaign(app, cid, actor="tester")
    with app.session() as session:
        assert ledger.write_ledger(session, session.get_one(Campaign, cid)) == 0
    assert assert_counters_true(app, cid) == ({"pending": people} if people else {})


def two_claimed_on_postgresql(app: Newsletter, why_not: str) -> tuple[int, list]:
    """A started campaign of two people, both claimed by w:1:a; skipped off PostgreSQL."""
    if app.engine.dialect.name != "postgresql":
        pytest.skip(why_not)
    cid = seed_campaign(app, 2)
    dispatch.start_campaign(app, cid, actor="tester")
    with app.engine.begin() as conn:
        claims = ledger.claim(conn, cid, "w:1:a", 2, utcnow(), utcnow() + timedelta(minutes=5))
    return cid, claims


def test_the_outcome_writer_gives_its_connection_back_waiting_for_the_disk(
    app: Newsletter,
) -> None:
    """Outcomes skip the disk wait for the writer's whole run, and nobody else's do."""
    cid, claims = two_claimed_on_postgresql(app, "synchronous_commit is PostgreSQL's")
    writer = ledger.OutcomeWriter(app.engine, cid)
    for claim in claims:
        writer.write({"sent": [outcome_row("sent", claim.delivery_id, "w:1:a")]})
        setting = writer._raw.driver_connection.execute("SHOW synchronous_commit").fetchone()
        assert setting[0] == "off"
    writer.close()
    assert assert_counters_true(app, cid) == {"sent": 2}
    # The pool hands out connections it has; every one of them waits for the disk again,
    # and plans its statements as PostgreSQL chooses.
    for _ in range(3):
        with app.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "auto"


def test_a_writer_takes_a_pooled_connection_that_kept_its_statement(app: Newsletter) -> None:
    """A writer whose connection went back to the pool still prepared (its `forget` failed)
    does not stop the next writer that takes that connection."""
    cid, claims = two_claimed_on_postgresql(app, "the statement is prepared on PostgreSQL only")
    first = ledger.OutcomeWriter(app.engine, cid)
    first.write({"sent": [outcome_row("sent", claims[0].delivery_id, "w:1:a")]})
    raw, first._raw = first._raw, None
    raw.driver_connection.autocommit = False
    raw.close()  # back to the pool, the statement still prepared on it
    second = ledger.OutcomeWriter(app.engine, cid)
    second.write({"sent": [outcome_row("sent", claims[1].delivery_id, "w:1:a")]})
    second.close()
    assert assert_counters_true(app, cid) == {"sent": 2}


# What a server may answer, or a provider call an id: any text PostgreSQL can store.
reply_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kinds=st.lists(st.sampled_from(["sent", "retry", "failed"]), min_size=1, max_size=6),
    texts=st.lists(st.tuples(reply_text, st.none() | reply_text), min_size=6, max_size=6),
)
@example(
    kinds=["sent", "sent", "retry", "failed", "sent", "retry"],
    texts=[("NULL", "NULL"), ("", ""), ('say "hi"', "a\\b"), ("{x,y}", None),
           (" spaced ", "é — “quoted”"), ("250 2.0.0 Ok: queued as 4Xy", None)],
)  # fmt: skip
def test_a_group_of_mixed_outcomes_is_stored_exactly_as_given(
    app: Newsletter, kinds: list[str], texts: list[tuple[str, str | None]]
) -> None:
    """Each outcome's reply, ids and times land on its own row, whatever the text holds.

    On PostgreSQL a group is one statement with its values as array literals
    (ledger._GroupStatement): quotes, backslashes, braces, commas, "NULL" and
    empty strings must all come back as they were given.
    """
    cid = seed_campaign(app, len(kinds), prefix=f"p{uuid.uuid4().hex[:8]}-")
    dispatch.start_campaign(app, cid, actor="tester")
    at = utcnow().replace(microsecond=123456)
    with app.engine.begin() as conn:
        claims = ledger.claim(conn, cid, "w:1:a", len(kinds), at, at + timedelta(minutes=5))
    groups: dict[str, list] = {"sent": [], "retry": [], "failed": []}
    wanted = {}
    for claim, kind, (response, other) in zip(claims, kinds, texts, strict=False):
        row = outcome_row(kind, claim.delivery_id, "w:1:a")
        row.update(b_response=response, b_message_id=other)
        if kind == "sent":
            row.update(b_at=at, b_provider_id=other)
        if kind == "retry":
            row["b_next"] = at + timedelta(minutes=3)
        groups[kind].append(row)
        wanted[claim.delivery_id] = (kind, response, other)
    writer = ledger.OutcomeWriter(app.engine, cid)
    writer.write(groups)
    writer.close()
    with app.engine.connect() as conn:
        rows = conn.execute(select(Delivery).where(Delivery.campaign_id == cid)).all()
    for row in rows:
        kind, response, other = wanted[row.id]
        assert (row.status, row.last_response, row.message_id) == (kind, response, other)
        if kind == "sent":
            assert row.provider_message_id == other
            assert row.sent_at.replace(tzinfo=None) == at.replace(tzinfo=None)
            assert row.attempts == 1 and row.next_attempt_at is None
        if kind == "retry":
            assert row.next_attempt_at.replace(tzinfo=None) == (at + timedelta(minutes=3)).replace(
                tzinfo=None
            )
            assert row.claimed_by is None
    assert assert_counters_true(app, cid) == dict(Counter(kinds))


@pytest.mark.slow
def test_status_recount_repairs_counters_changed_behind_the_ledgers_back(make_app, run_cli) -> None:
    app = make_app()
    cid = seed_campaign(app, 6)
    dispatch.start_campaign(app, cid, actor="tester")
    with app.engine.begin() as conn:
        # By hand, as a restore or a stray UPDATE would: the counters do not know.
        conn.execute(
            Delivery.__table__.update()
            .where(Delivery.campaign_id == cid, Delivery.id.in_(select(Delivery.id).limit(2)))
            .values(status="failed")
        )
    wrong = run_cli("status", str(cid), "--recount")
    assert wrong.returncode == 0, wrong.stderr
    assert (
        f"Counters of campaign {cid} repaired from the ledger: were pending 6; "
        "now pending 4, failed 2." in wrong.stdout
    )
    again = run_cli("status", str(cid), "--recount", "--json")
    assert again.returncode == 0, again.stderr
    record = json.loads(again.stdout)
    assert record["repaired"] is False
    assert record["counts"]["pending"] == 4 and record["counts"]["failed"] == 2
    plain = run_cli("status", str(cid), "--json")
    assert "repaired" not in json.loads(plain.stdout)

    no_id = run_cli("status", "--recount")
    missing = run_cli("status", "999", "--recount")
    assert no_id.returncode == 2 and "--recount needs a campaign ID" in no_id.stderr
    assert missing.returncode == 2 and "no campaign with id 999" in missing.stderr
