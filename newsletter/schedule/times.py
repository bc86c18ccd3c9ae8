"""Times as staff give and read them: wall-clock times in a zone, stored in UTC.

The database keeps every time in UTC; people give and see times in a zone
(`schedule.timezone` unless they name another). Daylight-saving changes make
two kinds of wall-clock time special, and each gets one clear decision:

- a time that does not exist (the hour skipped when clocks go forward, e.g.
  01:30 on 31 March 2019 in Europe/London) is refused when staff give it for a
  one-off send: there is no right guess, so they are asked to pick another.
  A recurring rule that lands on such a time runs when the clocks have gone
  forward, an hour later by the wall clock (01:30 GMT, which is 02:30 BST);
- a time that happens twice (the hour repeated when clocks go back, e.g. 01:30
  on 27 October 2019 in Europe/London) means its first occurrence (01:30 BST,
  00:30 UTC), for one-off sends and recurring rules alike. The repeat never
  fires a second time.

Both follow Python's `fold=0` reading of a wall-clock time, so the rule is the
same everywhere in the program.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.errors import InputError

# "2019-07-01 09:00", "2019-07-01T09:00:30"; an explicit offset or Z is allowed too.
_LOCAL = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"\s*(Z|[+-]\d{2}:?\d{2})?$"
)
EXAMPLE = "2019-07-01 09:00"


def zone(name: str) -> ZoneInfo:
    """The time zone called `name` (an IANA name such as Europe/London)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"unknown time zone {name!r}: give an IANA name such as Europe/London or UTC"
        ) from None


def wall_time_exists(wall: datetime, tz: ZoneInfo) -> bool:
    """False for a wall-clock time skipped when the clocks went forward."""
    aware = wall.replace(tzinfo=tz, fold=0)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall


def wall_time_is_ambiguous(wall: datetime, tz: ZoneInfo) -> bool:
    """True for a wall-clock time that happens twice when the clocks go back."""
    if not wall_time_exists(wall, tz):
        return False
    first = wall.replace(tzinfo=tz, fold=0).utcoffset()
    second = wall.replace(tzinfo=tz, fold=1).utcoffset()
    return first != second


def wall_to_utc(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The instant a wall-clock time on a day stands for (fold=0: see the module's rules)."""
    return datetime.combine(day, at).replace(tzinfo=tz, fold=0).astimezone(UTC)


def parse_local_time(text: str, tz_name: str) -> datetime:
    """'2019-07-01 09:00' in zone `tz_name` → an aware UTC datetime.

    Refuses, with a message saying why and what to do, a malformed time, a day
    that does not exist, and a wall-clock time that the zone skips. A time that
    happens twice is taken at its first occurrence.
    """
    tz = zone(tz_name)
    match = _LOCAL.match(text.strip())
    if not match:
        raise InputError(
            f"time {text!r} is not of the form YYYY-MM-DD HH:MM (for example {EXAMPLE!r})"
        )
    year, month, day, hour, minute, second = (int(g or 0) for g in match.groups()[:6])
    offset = match.group(7)
    try:
        wall = datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise InputError(f"time {text!r} is not a real date and time: {exc}") from None
    if offset:
        # An explicit offset names one instant; the zone is then only for display.
        return datetime.fromisoformat(f"{wall.isoformat()}{_offset(offset)}").astimezone(UTC)
    if not wall_time_exists(wall, tz):
        raise InputError(
            f"{wall:%Y-%m-%d %H:%M} does not exist in {tz_name}: the clocks go forward then "
            f"and skip that hour. Give a time outside it (for example {_after_gap(wall, tz)})."
        )
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def _offset(text: str) -> str:
    if text == "Z":
        return "+00:00"
    return text if ":" in text else f"{text[:3]}:{text[3:]}"


def _after_gap(wall: datetime, tz: ZoneInfo) -> str:
    """The wall-clock time at the instant a skipped time would have been."""
    shifted = wall.replace(tzinfo=tz, fold=0).astimezone(UTC).astimezone(tz)
    return f"{shifted:%H:%M}"


def to_zone(moment: datetime, tz_name: str) -> datetime:
    return moment.astimezone(zone(tz_name))


def format_local(moment: datetime | None, tz_name: str) -> str:
    """'2019-07-01 09:00 BST': how a stored UTC time is shown to people."""
    if moment is None:
        return ""
    local = to_zone(moment, tz_name)
    seconds = f":{local:%S}" if local.second else ""
    return f"{local:%Y-%m-%d %H:%M}{seconds} {local.tzname()}"


def describe_instant(moment: datetime, tz_name: str, shown_tz: str) -> str:
    """The time in the zone staff gave it in, with the configured zone and UTC beside it."""
    extra = []
    if shown_tz != tz_name:
        extra.append(format_local(moment, shown_tz))
    if "UTC" not in (tz_name, shown_tz):
        extra.append(f"{moment.astimezone(UTC):%H:%M} UTC")
    head = format_local(moment, tz_name)
    return f"{head} ({', '.join(extra)})" if extra else head
