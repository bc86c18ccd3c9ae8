"""Cron expressions of recurring rules, and when they occur in a time zone.

The one form a rule's time is written in is the five classic cron fields,
`minute hour day-of-month month day-of-week`:

    "0 9 * * mon#1"     09:00 on the first Monday of every month
    "30 8 1 * *"        08:30 on the 1st of every month
    "0 9 * * mon-fri"   09:00 on every weekday

Each field takes `*`, a number, a range `a-b`, a list `a,b,c` and steps `*/n`
or `a-b/n`. Months may be written jan–dec, weekdays sun–sat or 0–7 (0 and 7
are Sunday), in any case. The day-of-week field also takes `DAY#N`, the Nth
such weekday of the month (N from 1 to 5): `mon#1` is the first Monday.

A rule restricts the day of the month or the day of the week, never both:
classic cron runs on *either* day (`1-7` and `mon` means the first seven days
and every Monday), which people regularly misread as "the first Monday", so
that combination is refused and `mon#1` offered instead.

Why not APScheduler's CronTrigger, which drives the service's clock: its
crontab form cannot say "the first Monday", it cannot tell the previous
occurrence (which the service needs to notice a send missed while it was
down), and its handling of daylight-saving changes is not ours to decide. Here
every occurrence is a wall-clock time in the rule's zone turned into an
instant by `times.wall_to_utc`, with the decisions documented there, and the
service's APScheduler jobs use this same code (see `driver.RuleTrigger`), so
what `schedule list` shows is what fires.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from newsletter.schedule.times import wall_to_utc

MONTH_NAMES = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
# Cron numbers weekdays from Sunday = 0 (and 7); Python from Monday = 0.
WEEKDAY_NAMES = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
EXAMPLE = "0 9 * * mon#1"
# How far ahead (or back) an occurrence is looked for: 29 February needs eight years
# at worst (2096 → 2104), plus a day either side for daylight-saving shifts.
HORIZON_DAYS = 366 * 8 + 2


class CronError(ValueError):
    """A cron expression that cannot be read; the message says which field and why."""


@dataclass(frozen=True)
class CronExpression:
    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    months: frozenset[int]
    # None when the field is `*`: any day.
    days: frozenset[int] | None = None
    # Python weekday numbers (Monday = 0); None when the field is `*`.
    weekdays: frozenset[int] | None = None
    # (weekday, n): the nth such weekday of the month.
    nth_weekdays: frozenset[tuple[int, int]] = field(default_factory=frozenset)

    @cached_property
    def times(self) -> list[time]:
        return [time(h, m) for h in self.hours for m in self.minutes]

    def matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        if self.days is not None and day.day not in self.days:
            return False
        if self.weekdays is None and not self.nth_weekdays:
            return True
        if self.weekdays is not None and day.weekday() in self.weekdays:
            return True
        return (day.weekday(), (day.day - 1) // 7 + 1) in self.nth_weekdays

    def occurrences_on(self, day: date, tz: ZoneInfo) -> list[datetime]:
        """The instants (UTC) this expression fires at on a local day, in order, once each.

        Two wall-clock times can stand for one instant on the day the clocks go
        forward (01:30, skipped, is read as 02:30); it fires once.
        """
        if not self.matches(day):
            return []
        return sorted({wall_to_utc(day, at, tz) for at in self.times})

    def next_after(self, moment: datetime, tz: ZoneInfo) -> datetime | None:
        """The first occurrence strictly after `moment`, or None within the horizon."""
        start = moment.astimezone(tz).date() - timedelta(days=1)
        return _first(
            (start + timedelta(days=i) for i in range(HORIZON_DAYS)),
            self,
            tz,
            lambda instant: instant > moment,
            earlier=True,
        )

    def latest_at_or_before(self, moment: datetime, tz: ZoneInfo) -> datetime | None:
        """The last occurrence at or before `moment`, or None within the horizon."""
        start = moment.astimezone(tz).date() + timedelta(days=1)
        return _first(
            (start - timedelta(days=i) for i in range(HORIZON_DAYS)),
            self,
            tz,
            lambda instant: instant <= moment,
            earlier=False,
        )


def _first(
    days: Iterable[date],
    expression: CronExpression,
    tz: ZoneInfo,
    accept: Callable[[datetime], bool],
    *,
    earlier: bool,
) -> datetime | None:
    """Walk days in order and return the best accepted instant.

    One more day is looked at after the first hit: a wall-clock time pushed
    forward by a daylight-saving gap near midnight may belong, as an instant,
    after the next day's first occurrences.
    """
    best: datetime | None = None
    extra = 1
    for day in days:
        for instant in expression.occurrences_on(day, tz):
            if accept(instant) and (
                best is None or (instant < best if earlier else instant > best)
            ):
                best = instant
        if best is not None:
            if extra == 0:
                break
            extra -= 1
    return best


def parse_cron(text: str) -> CronExpression:
    """Read a five-field cron expression; CronError says what is wrong with which field."""
    fields = text.split()
    if len(fields) != 5:
        raise CronError(
            f"{text!r} has {len(fields)} field(s); a cron expression has five: "
            f"minute hour day-of-month month day-of-week (for example {EXAMPLE!r})"
        )
    minute, hour, dom, month, dow = fields
    minutes = _field(minute, 0, 59, {}, "minute")
    hours = _field(hour, 0, 23, {}, "hour")
    months = _field(month, 1, 12, MONTH_NAMES, "month")
    days = None if dom == "*" else _field(dom, 1, 31, {}, "day-of-month")
    weekdays, nth = (None, set()) if dow == "*" else _weekday_field(dow)
    if days is not None and (weekdays is not None or nth):
        raise CronError(
            f"{text!r} gives both a day of the month ({dom}) and a day of the week ({dow}); "
            "cron would run on either, which is rarely what is meant. Give one of them, "
            "e.g. 'mon#1' in the day-of-week field for the first Monday of the month"
        )
    if days is not None and not any(
        day <= _longest(month_number) for day in days for month_number in months
    ):
        raise CronError(f"{text!r} never happens: no such day in the months it names")
    return CronExpression(
        text=" ".join(fields),
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        months=frozenset(months),
        days=None if days is None else frozenset(days),
        weekdays=None if weekdays is None else frozenset(weekdays),
        nth_weekdays=frozenset(nth),
    )


def _longest(month: int) -> int:
    return 29 if month == 2 else calendar.monthrange(2001, month)[1]


def _value(text: str, lo: int, hi: int, names: dict[str, int], what: str) -> int:
    lowered = text.lower()
    if lowered in names:
        return names[lowered]
    if not text.isdigit():
        hint = f" or a name ({', '.join(names)})" if names else ""
        raise CronError(f"{what} field: {text!r} is not a number from {lo} to {hi}{hint}")
    value = int(text)
    if not lo <= value <= hi:
        raise CronError(f"{what} field: {value} is out of range ({lo}-{hi})")
    return value


def _field(text: str, lo: int, hi: int, names: dict[str, int], what: str) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"{what} field {text!r}: an empty item in the list")
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) < 1:
                raise CronError(f"{what} field {text!r}: the step {step_text!r} must be 1 or more")
            step = int(step_text)
        if base == "*":
            first, last = lo, hi
        elif "-" in base:
            start, _, end = base.partition("-")
            first, last = _value(start, lo, hi, names, what), _value(end, lo, hi, names, what)
            if first > last:
                raise CronError(
                    f"{what} field {text!r}: the range {base} runs backwards; "
                    "write it as a list instead"
                )
        else:
            first = _value(base, lo, hi, names, what)
            last = hi if slash else first
        values.update(range(first, last + 1, step))
    return values


def _weekday_field(text: str) -> tuple[set[int] | None, set[tuple[int, int]]]:
    """Plain weekdays (as Python numbers) and DAY#N items of the day-of-week field."""
    plain: list[str] = []
    nth: set[tuple[int, int]] = set()
    for part in text.split(","):
        day, hash_, n = part.partition("#")
        if not hash_:
            plain.append(part)
            continue
        weekday = _value(day, 0, 7, WEEKDAY_NAMES, "day-of-week")
        if not n.isdigit() or not 1 <= int(n) <= 5:
            raise CronError(
                f"day-of-week field {text!r}: in {part!r} the number after # must be 1 to 5 "
                "(mon#1 is the first Monday of the month)"
            )
        nth.add(((weekday - 1) % 7, int(n)))
    weekdays = None
    if plain:
        cron_days = _field(",".join(plain), 0, 7, WEEKDAY_NAMES, "day-of-week")
        weekdays = {(d - 1) % 7 for d in cron_days}
    return weekdays, nth
