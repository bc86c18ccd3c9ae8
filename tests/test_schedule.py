"""Scheduling on a real database, with the clock in the test's hand.

One-off schedules (approve, schedule, unschedule), the due-campaign sweep with
its misfire grace, recurring rules (first Monday, last month's items, send or
hold, empty months, downtime), several processes racing, and the config of
the rules. Every `now` is given: nothing waits for real time.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_schedule_support import (
    add_items,
    add_members,
    approved_bulletin,
    capture_events,
    events,
    ledger_counts,
    maildir_count,
)

from newsletter import editions
from newsletter.app import Newsletter
from newsletter.config import build_config
from newsletter.errors import ConfigError, InputError, InvalidState, NotFound
from newsletter.models import Campaign, ScheduleRun
from newsletter.schedule import (
    schedule_campaign,
    schedule_overview,
    start_due_campaign,
    sweep,
    unschedule_campaign,
)

# The first Monday of July 2019, 09:00 in London, is 08:00 UTC.
JULY_RUN = datetime(2019, 7, 1, 8, 0, tzinfo=UTC)
MONTHLY = {
    "name": "monthly-bulletin",
    "cron": "0 9 * * mon#1",
    "timezone": "Europe/London",
    "lists": ["members"],
}


def campaign(app: Newsletter, campaign_id: int) -> Campaign:
    with app.session() as session:
        return session.get_one(Campaign, campaign_id)


def runs(app: Newsletter) -> list[ScheduleRun]:
    with app.session() as session:
        return list(session.scalars(select(ScheduleRun).order_by(ScheduleRun.id)))


# --- one-off schedules ------------------------------------------------------------------


def test_only_an_approved_campaign_can_be_scheduled_and_approval_is_recorded(app) -> None:
    add_items(app, "2019-06")
    add_members(app, 2)
    draft = editions.new_bulletin(app, "2019-06", lists=["members"], actor="tester").id
    now = datetime(2019, 6, 20, 12, tzinfo=UTC)
    with pytest.raises(
        InvalidState, match=f"is a draft; approve it first with `newsletter approve {draft}`"
    ):
        schedule_campaign(app, draft, JULY_RUN, now=now, actor="tester")
    editions.approve(app, draft, actor="Ana")
    record = schedule_campaign(app, draft, JULY_RUN, actor="Ben", now=now)
    assert record.status == "scheduled"
    assert record.scheduled_at == JULY_RUN
    assert record.at == "2019-07-01 09:00 BST"
    assert record.approved_by == "Ana"
    stored = campaign(app, draft)
    assert stored.scheduled_at == JULY_RUN
    assert stored.approved_at is not None
    assert stored.status_note == "scheduled by Ben at 2019-06-20 13:00 BST"


def test_scheduling_in_the_past_is_refused_and_says_how_to_send_now(app) -> None:
    campaign_id = approved_bulletin(app)
    now = datetime(2019, 7, 2, tzinfo=UTC)
    with pytest.raises(InputError, match=f"is in the past .* `newsletter send {campaign_id}`"):
        schedule_campaign(app, campaign_id, JULY_RUN, now=now, actor="tester")
    assert campaign(app, campaign_id).status == "approved"


def test_rescheduling_moves_and_unscheduling_leaves_it_approved(app) -> None:
    campaign_id = approved_bulletin(app)
    now = datetime(2019, 6, 20, tzinfo=UTC)
    schedule_campaign(app, campaign_id, JULY_RUN, now=now, actor="tester")
    later = JULY_RUN + timedelta(days=7)
    assert schedule_campaign(app, campaign_id, later, now=now, actor="tester").scheduled_at == later
    record = unschedule_campaign(app, campaign_id, actor="Ana", now=now)
    assert record.status == "approved"
    assert record.scheduled_at is None
    with pytest.raises(InvalidState, match="only a scheduled campaign can be unscheduled"):
        unschedule_campaign(app, campaign_id, actor="tester")
    with pytest.raises(NotFound, match="no campaign with id 999"):
        schedule_campaign(app, 999, later, now=now, actor="tester")


def test_a_sent_or_sending_campaign_cannot_be_scheduled(app) -> None:
    campaign_id = approved_bulletin(app)
    schedule_campaign(app, campaign_id, JULY_RUN, now=JULY_RUN - timedelta(hours=1), actor="tester")
    assert start_due_campaign(app, campaign_id, JULY_RUN) == "started"
    with pytest.raises(InvalidState, match="is already sending"):
        schedule_campaign(
            app, campaign_id, JULY_RUN + timedelta(days=1), now=JULY_RUN, actor="tester"
        )


# --- the sweep ------------------------------------------------------------------------------


def test_sweep_starts_a_due_campaign_once_with_its_ledger(app, caplog) -> None:
    capture_events(caplog)
    campaign_id = approved_bulletin(app, members=4)
    schedule_campaign(app, campaign_id, JULY_RUN, now=JULY_RUN - timedelta(days=1), actor="tester")

    assert sweep(app, JULY_RUN - timedelta(seconds=1)).started == []
    assert campaign(app, campaign_id).status == "scheduled"

    report = sweep(app, JULY_RUN + timedelta(seconds=2))
    assert report.started == [campaign_id]
    assert campaign(app, campaign_id).status == "sending"
    assert ledger_counts(app, campaign_id) == {"pending": 4}
    # Again, and again later: nothing more happens.
    assert sweep(app, JULY_RUN + timedelta(seconds=3)).started == []
    assert sweep(app, JULY_RUN + timedelta(hours=5)).missed == []
    assert ledger_counts(app, campaign_id) == {"pending": 4}
    (started,) = events(caplog, "campaign.started")
    assert started["campaign"] == campaign_id
    assert started["deliveries"] == 4
    assert started["late_seconds"] == 2.0


def test_a_send_due_during_downtime_goes_out_within_the_grace_period(make_app) -> None:
    app = make_app({"schedule": {"misfire_grace_minutes": 30}})
    campaign_id = approved_bulletin(app)
    schedule_campaign(app, campaign_id, JULY_RUN, now=JULY_RUN - timedelta(days=1), actor="tester")
    # The service comes back 29 minutes late: still in time.
    assert sweep(app, JULY_RUN + timedelta(minutes=29)).started == [campaign_id]


def test_a_send_due_longer_ago_than_the_grace_is_marked_missed_never_sent(make_app, caplog) -> None:
    capture_events(caplog)
    app = make_app({"schedule": {"misfire_grace_minutes": 30}})
    campaign_id = approved_bulletin(app)
    schedule_campaign(app, campaign_id, JULY_RUN, now=JULY_RUN - timedelta(days=1), actor="tester")

    report = sweep(app, JULY_RUN + timedelta(minutes=31))
    assert report.started == []
    assert report.missed == [campaign_id]
    missed = campaign(app, campaign_id)
    assert missed.status == "missed"
    assert "due 2019-07-01 09:00 BST" in missed.status_note
    assert "until 2019-07-01 09:31 BST (31 min late; the grace is 30 min)" in missed.status_note
    assert f"newsletter schedule {campaign_id} --at TIME" in missed.status_note
    assert ledger_counts(app, campaign_id) == {}
    (line,) = events(caplog, "schedule.missed")
    assert line["campaign"] == campaign_id
    assert line["late_minutes"] == 31
    # Staff put it back on the clock; it then goes out at its new time.
    new_time = JULY_RUN + timedelta(hours=2)
    schedule_campaign(app, campaign_id, new_time, now=JULY_RUN + timedelta(hours=1), actor="tester")
    assert sweep(app, new_time).started == [campaign_id]


def test_unscheduled_just_before_the_sweep_means_not_sent(app) -> None:
    campaign_id = approved_bulletin(app)
    schedule_campaign(app, campaign_id, JULY_RUN, now=JULY_RUN - timedelta(days=1), actor="tester")
    unschedule_campaign(app, campaign_id, now=JULY_RUN - timedelta(seconds=1), actor="tester")
    assert start_due_campaign(app, campaign_id, JULY_RUN) == "taken"
    assert campaign(app, campaign_id).status == "approved"


def test_two_processes_sweeping_at_once_start_the_campaign_once(make_app, caplog) -> None:
    capture_events(caplog)
    first, second = make_app(), make_app()  # two engines: two processes, as far as the DB knows
    campaign_id = approved_bulletin(first, members=5)
    schedule_campaign(
        first, campaign_id, JULY_RUN, now=JULY_RUN - timedelta(days=1), actor="tester"
    )
    barrier = threading.Barrier(2)
    reports = []

    def run(app: Newsletter) -> None:
        barrier.wait()
        reports.append(sweep(app, JULY_RUN + timedelta(seconds=1)))

    threads = [threading.Thread(target=run, args=(a,)) for a in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r.started) for r in reports) == [0, 1]
    assert ledger_counts(first, campaign_id) == {"pending": 5}
    assert len(events(caplog, "campaign.started")) == 1


# --- recurring rules --------------------------------------------------------------------------


def monthly_app(make_app, **rule: object) -> Newsletter:
    return make_app({"schedules": [{**MONTHLY, **rule}], "schedule": {"misfire_grace_minutes": 60}})


def test_first_monday_rule_builds_last_months_bulletin_and_sends_it_once(make_app, caplog) -> None:
    capture_events(caplog)
    app = monthly_app(make_app)
    add_items(app, "2019-06", 3)
    add_items(app, "2019-07", 1)  # this month's: not in the July 1st bulletin
    add_members(app, 3)
    # A running service saw the rule in June; nothing was due then.
    assert sweep(app, datetime(2019, 6, 20, tzinfo=UTC)).rules == []

    report = sweep(app, JULY_RUN + timedelta(seconds=5))
    (run,) = report.rules
    assert (run.rule, run.period, run.outcome) == ("monthly-bulletin", "2019-06", "sending")
    built = campaign(app, run.campaign_id)
    assert built.status == "sending"
    assert built.month == "2019-06"
    assert built.recurrence_key == "monthly-bulletin/2019-06"
    assert built.approved_by == "rule monthly-bulletin"
    assert built.scheduled_at == JULY_RUN
    assert editions.show_campaign(app, built.id).items == 3
    assert ledger_counts(app, built.id) == {"pending": 3}
    # Later sweeps that month find the period done.
    assert sweep(app, JULY_RUN + timedelta(minutes=1)).rules == []
    assert sweep(app, datetime(2019, 7, 20, tzinfo=UTC)).rules == []
    with app.session() as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 1
    (fired,) = events(caplog, "schedule.fired")
    assert fired["period"] == "2019-06"
    assert fired["campaign"] == built.id
    assert len(events(caplog, "campaign.started")) == 1

    # August's first Monday is the 5th: July's items.
    (august,) = sweep(app, datetime(2019, 8, 5, 8, 0, 1, tzinfo=UTC)).rules
    assert (august.period, august.outcome) == ("2019-07", "sending")


def test_an_empty_month_sends_nothing_and_says_so_once(make_app, caplog) -> None:
    capture_events(caplog)
    app = monthly_app(make_app)
    add_members(app, 2)
    sweep(app, datetime(2019, 6, 20, tzinfo=UTC))
    (run,) = sweep(app, JULY_RUN).rules
    assert (run.outcome, run.campaign_id) == ("empty", None)
    assert "no items for 2019-06" in run.note
    assert sweep(app, JULY_RUN + timedelta(minutes=5)).rules == []
    with app.session() as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 0
    (line,) = events(caplog, "schedule.empty")
    assert line["rule"] == "monthly-bulletin"
    assert line["period"] == "2019-06"
    rule = schedule_overview(app, JULY_RUN).rules[0]
    assert (rule.last_outcome, rule.last_period) == ("empty", "2019-06")


def test_a_rule_missed_beyond_grace_builds_the_edition_as_missed(make_app, caplog) -> None:
    capture_events(caplog)
    app = monthly_app(make_app)
    add_items(app, "2019-06")
    add_members(app, 2)
    sweep(app, datetime(2019, 6, 20, tzinfo=UTC))
    # Down from the 20th of June to 11:00 on the 1st of July: three hours late.
    (run,) = sweep(app, JULY_RUN + timedelta(hours=3)).rules
    assert run.outcome == "missed"
    missed = campaign(app, run.campaign_id)
    assert missed.status == "missed"
    assert "the schedule rule 'monthly-bulletin' was due 2019-07-01 09:00 BST" in missed.status_note
    assert ledger_counts(app, missed.id) == {}
    assert events(caplog, "schedule.missed")[0]["rule"] == "monthly-bulletin"
    # It was approved by the rule, so staff can put it back on the clock.
    later = JULY_RUN + timedelta(hours=4)
    schedule_campaign(
        app, missed.id, later, now=JULY_RUN + timedelta(hours=3, minutes=1), actor="tester"
    )
    assert sweep(app, later).started == [missed.id]


def test_a_rule_late_within_grace_still_sends(make_app) -> None:
    app = monthly_app(make_app)
    add_items(app, "2019-06")
    add_members(app, 2)
    sweep(app, datetime(2019, 6, 20, tzinfo=UTC))
    (run,) = sweep(app, JULY_RUN + timedelta(minutes=59)).rules
    assert run.outcome == "sending"
    assert campaign(app, run.campaign_id).status == "sending"


def test_a_new_rule_never_builds_a_period_that_came_before_it(make_app) -> None:
    app = monthly_app(make_app)
    add_items(app, "2019-06")
    add_members(app, 2)
    # The first service to see the rule starts half an hour after its occurrence.
    assert sweep(app, JULY_RUN + timedelta(minutes=30)).rules == []
    assert runs(app) == []


def test_a_held_edition_stays_a_draft_and_staff_get_a_preview(
    make_app, tmp_path: Path, caplog
) -> None:
    capture_events(caplog)
    app = make_app(
        {
            "schedules": [{**MONTHLY, "action": "hold"}],
            "schedule": {"staff_addresses": ["editor@example.org", "comms@example.org"]},
        }
    )
    add_items(app, "2019-06")
    add_members(app, 3)
    sweep(app, datetime(2019, 6, 20, tzinfo=UTC))
    (run,) = sweep(app, JULY_RUN).rules
    assert run.outcome == "held"
    held = campaign(app, run.campaign_id)
    assert held.status == "draft"
    assert held.approved_by == ""
    assert ledger_counts(app, held.id) == {}
    assert maildir_count(tmp_path / "outbox") == 2  # the previews, to staff only
    assert events(caplog, "schedule.held")[0]["previews"] == 2
    # Staff approve and schedule it as any other campaign.
    editions.approve(app, held.id, actor="Editor")
    schedule_campaign(app, held.id, JULY_RUN + timedelta(hours=1), now=JULY_RUN, actor="tester")
    assert campaign(app, held.id).status == "scheduled"


def test_a_rule_that_cannot_build_records_why(make_app, caplog) -> None:
    capture_events(caplog)
    app = monthly_app(make_app, lists=["no-such-list"])
    add_items(app, "2019-06")
    sweep(app, datetime(2019, 6, 20, tzinfo=UTC))
    (run,) = sweep(app, JULY_RUN).rules
    assert run.outcome == "failed"
    assert "no list named 'no-such-list'" in run.note
    assert events(caplog, "schedule.failed")[0]["rule"] == "monthly-bulletin"
    assert sweep(app, JULY_RUN + timedelta(minutes=1)).rules == []


def test_two_processes_running_a_rule_at_once_build_one_edition(make_app, caplog) -> None:
    capture_events(caplog)
    config = {"schedules": [MONTHLY]}
    first, second = make_app(config), make_app(config)
    add_items(first, "2019-06")
    add_members(first, 4)
    sweep(first, datetime(2019, 6, 20, tzinfo=UTC))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(app: Newsletter) -> None:
        barrier.wait()
        try:
            sweep(app, JULY_RUN + timedelta(seconds=1))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(a,)) for a in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with first.session() as session:
        (only,) = session.scalars(select(Campaign)).all()
    assert only.status == "sending"
    assert ledger_counts(first, only.id) == {"pending": 4}
    assert [(r.period, r.outcome) for r in runs(first)] == [("2019-06", "sending")]
    assert len(events(caplog, "schedule.fired")) == 1
    assert len(events(caplog, "campaign.started")) == 1


def test_a_builder_that_died_half_way_is_finished_by_the_next_sweep(make_app) -> None:
    app = monthly_app(make_app)
    add_items(app, "2019-06")
    add_members(app, 2)
    sweep(app, datetime(2019, 6, 20, tzinfo=UTC))
    # A service built the edition, then died before approving it and recording the run.
    editions.new_bulletin(
        app, "2019-06", lists=["members"], recurrence_key="monthly-bulletin/2019-06", actor="tester"
    )
    (run,) = sweep(app, JULY_RUN + timedelta(seconds=30)).rules
    assert run.outcome == "sending"
    assert campaign(app, run.campaign_id).status == "sending"
    with app.session() as session:
        assert session.scalar(select(func.count()).select_from(Campaign)) == 1


def test_overview_lists_upcoming_sends_and_rules_with_next_runs(make_app) -> None:
    app = monthly_app(make_app)
    campaign_id = approved_bulletin(app)
    now = datetime(2019, 6, 20, tzinfo=UTC)
    schedule_campaign(app, campaign_id, JULY_RUN + timedelta(hours=1), now=now, actor="tester")
    overview = schedule_overview(app, now)
    assert overview.timezone == "Europe/London"
    (send,) = overview.sends
    assert (send.id, send.status, send.at) == (
        campaign_id,
        "scheduled",
        "2019-07-01 10:00 BST",
    )
    (rule,) = overview.rules
    assert rule.name == "monthly-bulletin"
    assert rule.next_run_at == JULY_RUN
    assert rule.next == "2019-07-01 09:00 BST"
    assert rule.last_outcome is None


# --- the rules in the config ---------------------------------------------------------------------


def load(tmp_path: Path, schedules: list[dict], **sections: dict) -> object:
    return build_config(
        {"schedules": schedules, **sections}, {}, source="news.toml", base_dir=tmp_path
    )


def test_rules_take_the_configured_zone_unless_they_name_one(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        [
            {"name": "a", "cron": "0 9 * * mon#1"},
            {"name": "b", "cron": "0 9 1 * *", "timezone": "Asia/Bangkok"},
        ],
        schedule={"timezone": "Europe/Paris"},
    )
    assert [(r.name, r.timezone, r.action, r.build) for r in config.schedules] == [
        ("a", "Europe/Paris", "send", "bulletin"),
        ("b", "Asia/Bangkok", "send", "bulletin"),
    ]


RULE = {"name": "m", "cron": "0 9 * * mon#1"}


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{**RULE, "cron": "0 9 * *"}], "schedules.m.cron: '0 9 * *' has 4 field(s)"),
        ([{**RULE, "action": "post"}], "schedules.m.action must be one of send, hold"),
        ([{**RULE, "build": "digest"}], "schedules.m.build must be one of bulletin"),
        ([{**RULE, "timezone": "Mars/Olympus"}], "schedules.m.timezone: unknown time zone"),
        ([{**RULE, "list": ["a"]}], "unknown key schedules.m.list"),
        ([{**RULE, "lists": "members"}], "schedules.m.lists must be a list"),
        ([{"cron": "0 9 * * mon#1"}], "schedules[1].name must be 1-60 letters"),
        ([{**RULE, "name": "a b"}], "schedules.a b.name must be 1-60 letters"),
        ([RULE, RULE], "schedules.m: two [[schedules]] entries have this name"),
    ],
)
def test_bad_rules_name_the_file_and_key(tmp_path: Path, rules: list[dict], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, rules)
    assert str(caught.value).startswith(f"news.toml: {message}")


def test_schedules_must_be_an_array_of_tables(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"schedules must be an array of tables, \[\[schedules\]\]"
    ):
        build_config({"schedules": {"name": "x"}}, {}, source="news.toml", base_dir=tmp_path)


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"schedule": {"sync_seconds": 0}}, "schedule.sync_seconds must be at least 1"),
        ({"schedule": {"misfire_grace_minutes": 0}}, "misfire_grace_minutes must be at least 1"),
        ({"schedule": {"staff_addresses": ["nobody"]}}, "schedule.staff_addresses: 'nobody'"),
        ({"service": {"workers": 0}}, "service.workers must be at least 1"),
        ({"service": {"log_format": "xml"}}, "service.log_format must be logfmt or json"),
    ],
)
def test_service_and_schedule_settings_are_checked(
    tmp_path: Path, sections: dict, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_config(sections, {}, source="news.toml", base_dir=tmp_path)
