"""Times and recurring rules: wall-clock times in a zone, DST both ways, cron occurrences.

No database and no waiting: every instant is given.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from newsletter.errors import InputError
from newsletter.schedule.cron import CronError, parse_cron
from newsletter.schedule.times import (
    describe_instant,
    format_local,
    parse_local_time,
    wall_time_exists,
    wall_time_is_ambiguous,
)

LONDON = ZoneInfo("Europe/London")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- one-off times --------------------------------------------------------------------


def test_summer_and_winter_times_in_london_are_stored_in_utc() -> None:
    assert parse_local_time("2019-07-01 09:00", "Europe/London") == utc(2019, 7, 1, 8, 0)
    assert parse_local_time("2019-12-02 09:00", "Europe/London") == utc(2019, 12, 2, 9, 0)
    assert parse_local_time("2019-07-01T09:00:30", "UTC") == utc(2019, 7, 1, 9, 0, 30)


def test_a_time_skipped_when_clocks_go_forward_is_refused_with_a_suggestion() -> None:
    # 31 March 2019: London goes from 01:00 GMT straight to 02:00 BST.
    with pytest.raises(InputError) as caught:
        parse_local_time("2019-03-31 01:30", "Europe/London")
    message = str(caught.value)
    assert "2019-03-31 01:30 does not exist in Europe/London" in message
    assert "clocks go forward" in message
    assert "02:30" in message
    # Either side of the gap is fine.
    assert parse_local_time("2019-03-31 00:59", "Europe/London") == utc(2019, 3, 31, 0, 59)
    assert parse_local_time("2019-03-31 02:00", "Europe/London") == utc(2019, 3, 31, 1, 0)


def test_a_time_that_happens_twice_when_clocks_go_back_means_the_first() -> None:
    # 27 October 2019: 01:00-01:59 happens in BST, then again in GMT.
    wall = datetime(2019, 10, 27, 1, 30)
    assert wall_time_is_ambiguous(wall, LONDON)
    assert parse_local_time("2019-10-27 01:30", "Europe/London") == utc(2019, 10, 27, 0, 30)
    assert parse_local_time("2019-10-27 02:00", "Europe/London") == utc(2019, 10, 27, 2, 0)


def test_gap_and_fold_detection() -> None:
    assert not wall_time_exists(datetime(2019, 3, 31, 1, 0), LONDON)
    assert wall_time_exists(datetime(2019, 3, 31, 2, 0), LONDON)
    assert not wall_time_is_ambiguous(datetime(2019, 3, 31, 1, 30), LONDON)
    assert not wall_time_is_ambiguous(datetime(2019, 7, 1, 9, 0), LONDON)


def test_an_explicit_offset_names_the_instant_whatever_the_zone() -> None:
    assert parse_local_time("2019-07-01 09:00+02:00", "Europe/London") == utc(2019, 7, 1, 7, 0)
    assert parse_local_time("2019-07-01 09:00Z", "Europe/London") == utc(2019, 7, 1, 9, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 July 2019", "not of the form YYYY-MM-DD HH:MM"),
        ("2019-07-01", "not of the form YYYY-MM-DD HH:MM"),
        ("2019-02-30 09:00", "not a real date and time"),
        ("2019-07-01 25:00", "not a real date and time"),
    ],
)
def test_malformed_times_say_what_form_is_expected(text: str, expected: str) -> None:
    with pytest.raises(InputError, match=expected):
        parse_local_time(text, "Europe/London")


def test_an_unknown_zone_is_named() -> None:
    with pytest.raises(InputError, match="unknown time zone 'Europe/Londres'"):
        parse_local_time("2019-07-01 09:00", "Europe/Londres")


def test_times_are_shown_in_the_zone_with_its_abbreviation() -> None:
    assert format_local(utc(2019, 7, 1, 8, 0), "Europe/London") == "2019-07-01 09:00 BST"
    assert format_local(utc(2019, 12, 2, 9, 0), "Europe/London") == "2019-12-02 09:00 GMT"
    assert format_local(utc(2019, 7, 1, 8, 0, 5), "Europe/London") == "2019-07-01 09:00:05 BST"
    assert format_local(None, "Europe/London") == ""
    shown = describe_instant(utc(2019, 7, 1, 7, 0), "Europe/Paris", "Europe/London")
    assert shown == "2019-07-01 09:00 CEST (2019-07-01 08:00 BST, 07:00 UTC)"


# --- cron expressions -------------------------------------------------------------------


def occurrences(cron: str, start: datetime, count: int, zone: str = "Europe/London"):
    expression, tz = parse_cron(cron), ZoneInfo(zone)
    found, moment = [], start
    for _ in range(count):
        moment = expression.next_after(moment, tz)
        found.append(moment)
    return found


def test_first_monday_of_each_month_at_nine_london_time_across_a_year() -> None:
    found = occurrences("0 9 * * mon#1", utc(2019, 1, 1), 12)
    local = [moment.astimezone(LONDON) for moment in found]
    assert [m.day for m in local] == [7, 4, 4, 1, 6, 3, 1, 5, 2, 7, 4, 2]
    assert all(m.weekday() == 0 and (m.hour, m.minute) == (9, 0) for m in local)
    # 09:00 is 09:00 UTC in winter and 08:00 UTC in summer.
    assert found[2] == utc(2019, 3, 4, 9, 0)
    assert found[3] == utc(2019, 4, 1, 8, 0)
    assert found[9] == utc(2019, 10, 7, 8, 0)
    assert found[10] == utc(2019, 11, 4, 9, 0)


def test_first_monday_when_the_month_starts_on_a_monday_and_across_the_year_end() -> None:
    expression = parse_cron("0 9 * * mon#1")
    # July 2019 starts on a Monday.
    assert expression.next_after(utc(2019, 6, 30), LONDON) == utc(2019, 7, 1, 8, 0)
    # Just after December's, the next is January's.
    assert expression.next_after(utc(2019, 12, 2, 9, 0), LONDON) == utc(2020, 1, 6, 9, 0)


def test_latest_occurrence_at_or_before_a_moment() -> None:
    expression = parse_cron("0 9 * * mon#1")
    assert expression.latest_at_or_before(utc(2019, 7, 1, 8, 0), LONDON) == utc(2019, 7, 1, 8, 0)
    assert expression.latest_at_or_before(utc(2019, 7, 1, 7, 59), LONDON) == utc(2019, 6, 3, 8, 0)
    assert expression.latest_at_or_before(utc(2020, 1, 5), LONDON) == utc(2019, 12, 2, 9, 0)


def test_a_daily_rule_in_the_skipped_hour_runs_when_the_clocks_have_gone_forward() -> None:
    found = occurrences("30 1 * * *", utc(2019, 3, 30), 3)
    assert found == [utc(2019, 3, 30, 1, 30), utc(2019, 3, 31, 1, 30), utc(2019, 4, 1, 0, 30)]
    # On the day itself, 01:30 GMT is 02:30 BST by the clock.
    assert found[1].astimezone(LONDON).strftime("%H:%M %Z") == "02:30 BST"


def test_a_daily_rule_in_the_repeated_hour_runs_once_at_its_first_occurrence() -> None:
    found = occurrences("30 1 * * *", utc(2019, 10, 26), 3)
    assert found == [utc(2019, 10, 26, 0, 30), utc(2019, 10, 27, 0, 30), utc(2019, 10, 28, 1, 30)]


def test_an_hourly_rule_across_both_changes_never_fires_twice_at_one_instant() -> None:
    spring = occurrences("30 * * * *", utc(2019, 3, 30, 23, 0), 4)
    # 00:30 GMT, then 01:30 (skipped; read as 02:30 BST = 01:30 UTC) and 02:30 BST are the
    # same instant: it fires once.
    assert spring == [
        utc(2019, 3, 30, 23, 30),
        utc(2019, 3, 31, 0, 30),
        utc(2019, 3, 31, 1, 30),
        utc(2019, 3, 31, 2, 30),
    ]
    autumn = occurrences("30 * * * *", utc(2019, 10, 26, 23, 0), 4)
    # 01:30 happens twice; the rule takes the first (00:30 UTC), not the repeat (01:30 UTC).
    assert autumn == [
        utc(2019, 10, 26, 23, 30),
        utc(2019, 10, 27, 0, 30),
        utc(2019, 10, 27, 2, 30),
        utc(2019, 10, 27, 3, 30),
    ]


def test_ranges_lists_steps_and_names() -> None:
    weekdays = occurrences("0 9 * * mon-fri", utc(2019, 7, 5, 12), 3, "UTC")
    assert [m.day for m in weekdays] == [8, 9, 10]  # Friday noon → Mon, Tue, Wed
    twice = occurrences("0,30 8 1 jan,jul *", utc(2019, 1, 1), 3, "UTC")
    assert twice == [utc(2019, 1, 1, 8, 0), utc(2019, 1, 1, 8, 30), utc(2019, 7, 1, 8, 0)]
    steps = occurrences("*/20 10-11/1 * * *", utc(2019, 7, 1, 10, 30), 3, "UTC")
    assert steps == [utc(2019, 7, 1, 10, 40), utc(2019, 7, 1, 11, 0), utc(2019, 7, 1, 11, 20)]
    sundays = occurrences("0 9 * * 0", utc(2019, 7, 1), 1, "UTC") + occurrences(
        "0 9 * * 7", utc(2019, 7, 1), 1, "UTC"
    )
    assert sundays == [utc(2019, 7, 7, 9, 0)] * 2
    last_friday_like = occurrences("0 9 * * fri#5", utc(2019, 1, 1), 2, "UTC")
    assert [m.date().isoformat() for m in last_friday_like] == ["2019-03-29", "2019-05-31"]


def test_the_29th_of_february_is_found_years_ahead() -> None:
    assert parse_cron("0 9 29 2 *").next_after(utc(2019, 3, 1), LONDON) == utc(2020, 2, 29, 9)


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("0 9 * *", "has 4 field(s); a cron expression has five"),
        ("60 9 * * *", "minute field: 60 is out of range"),
        ("0 9 * * funday", "'funday' is not a number from 0 to 7 or a name"),
        ("0 9 1-7 * mon", "gives both a day of the month (1-7) and a day of the week (mon)"),
        ("0 9 * * mon#6", "the number after # must be 1 to 5"),
        ("0 9 30 2 *", "never happens"),
        ("0 9 * * fri-mon", "runs backwards"),
        ("*/0 9 * * *", "the step '0' must be 1 or more"),
        ("0 9 1,,2 * *", "an empty item"),
    ],
)
def test_bad_cron_expressions_say_which_field_and_why(cron: str, expected: str) -> None:
    with pytest.raises(CronError) as caught:
        parse_cron(cron)
    assert expected in str(caught.value)
