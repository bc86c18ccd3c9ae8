"""Feedback over time: bounces and complaints per week for a year, and its console page."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from consolekit import make_staff, signed_in
from sqlalchemy import delete, func, select, update

from newsletter import staff
from newsletter.app import Newsletter
from newsletter.counts import fold_changes
from newsletter.feedback.summary import feedback_by_week, recount_by_week
from newsletter.models import Event

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)  # a Wednesday


def add_events(app: Newsletter, events: list[tuple[str, datetime]]) -> None:
    with app.session() as session:
        session.add_all(Event(type=kind, source="test", created_at=at) for kind, at in events)


def test_weeks_start_on_monday_and_every_week_is_there(app: Newsletter) -> None:
    add_events(app, [
        ("hard_bounce", datetime(2026, 11, 30, 0, 0, tzinfo=UTC)),   # Monday: this week
        ("complaint", datetime(2026, 12, 2, 9, 0, tzinfo=UTC)),
        ("soft_bounce", datetime(2026, 11, 29, 23, 59, tzinfo=UTC)),  # Sunday: last week
        ("unsubscribe", datetime(2026, 12, 1, tzinfo=UTC)),           # not counted here
        ("hard_bounce", datetime(2025, 11, 1, tzinfo=UTC)),           # over a year ago
    ])  # fmt: skip
    weeks = feedback_by_week(app, now=NOW)
    assert len(weeks) == 53
    assert all(w.week.weekday() == 0 for w in weeks)
    assert weeks[-1].week == date(2026, 11, 30)
    assert (weeks[-1].hard_bounces, weeks[-1].soft_bounces, weeks[-1].complaints) == (1, 0, 1)
    assert (weeks[-2].week, weeks[-2].soft_bounces) == (date(2026, 11, 23), 1)
    assert sum(w.bounces + w.complaints for w in weeks) == 3


@pytest.mark.parametrize("seed", [1, 2])
def test_the_weeks_add_up_to_a_count_of_the_year(app: Newsletter, seed: int) -> None:
    rng = random.Random(seed)
    events = [
        (rng.choice(["hard_bounce", "soft_bounce", "complaint", "unsubscribe"]),
         NOW - timedelta(days=rng.uniform(0, 420)))
        for _ in range(300)
    ]  # fmt: skip
    add_events(app, events)
    weeks = feedback_by_week(app, now=NOW)
    first = datetime.combine(weeks[0].week, datetime.min.time(), tzinfo=UTC)
    with app.session() as session:
        for kind, field in (("hard_bounce", "hard_bounces"), ("soft_bounce", "soft_bounces"),
                            ("complaint", "complaints")):  # fmt: skip
            counted = session.scalar(
                select(func.count()).where(Event.type == kind, Event.created_at >= first)
            )
            assert sum(getattr(w, field) for w in weeks) == counted
    # And each event lies in the week it is counted in.
    expected: dict[date, int] = {}
    for kind, at in events:
        monday = at.date() - timedelta(days=at.weekday())
        if kind != "unsubscribe" and at >= first:
            expected[monday] = expected.get(monday, 0) + 1
    assert {w.week: w.bounces + w.complaints for w in weeks if w.bounces + w.complaints} == expected


def test_the_page_has_a_chart_with_a_text_alternative_and_a_table(
    app: Newsletter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(staff, "_hasher", lambda: PasswordHasher(time_cost=1, memory_cost=1024,
                                                                  parallelism=1))  # fmt: skip
    make_staff(app, ("viewer",))
    add_events(app, [("hard_bounce", datetime.now(UTC))] * 3 + [("complaint", datetime.now(UTC))])
    text = signed_in(app, "viewer").get("/admin/feedback/").get_data(as_text=True)
    assert 'role="img"' in text and 'aria-labelledby="chart-title chart-desc"' in text
    assert "3 bounces and 1 complaints in the last 53 weeks" in text
    assert text.count('class="bar-bounces"') == 1 and text.count('class="bar-complaints"') == 1
    assert text.count("<tr><td>20") == 53  # one row per week in the table


@pytest.mark.parametrize("seed", [3, 4])
def test_kept_weekly_counts_equal_a_recount_after_adds_deletes_and_changes(
    app: Newsletter, seed: int
) -> None:
    rng = random.Random(seed)
    kinds = ["hard_bounce", "soft_bounce", "complaint", "unsubscribe"]
    for _ in range(6):
        add_events(app, [(rng.choice(kinds), NOW - timedelta(days=rng.uniform(0, 400)))
                         for _ in range(rng.randint(1, 40))])  # fmt: skip
        with app.session() as session:
            ids = list(session.scalars(select(Event.id)))
            # An erasure's cascade, a bulk correction of a type, a moved time.
            session.execute(delete(Event).where(Event.id.in_(rng.sample(ids, len(ids) // 5))))
            session.execute(
                update(Event).where(Event.id % 7 == rng.randint(0, 6)).values(type="complaint")
            )
            session.execute(
                update(Event)
                .where(Event.id % 11 == 0)
                .values(created_at=NOW - timedelta(days=rng.uniform(0, 400)))
            )
        assert feedback_by_week(app, now=NOW) == recount_by_week(app, now=NOW)
        fold_changes(app.engine, at_least=rng.choice([0, 1000]))
        assert feedback_by_week(app, now=NOW) == recount_by_week(app, now=NOW)
    assert sum(w.bounces + w.complaints for w in feedback_by_week(app, now=NOW)) > 0
