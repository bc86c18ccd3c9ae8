"""Reading dates: the `YYYY-MM` months people type, and the date lines of news listings.

A news listing introduces each item with a line that holds nothing but a date.
These spellings are date lines (case does not matter, surrounding spaces are
ignored):

- a month and a year: ``June 2019``, ``JUNE 2019``, ``Jun 2019``, ``Jun. 2019``,
  ``Sept 2019``, and the month names of the network's other languages
  (``juin 2019``, ``junio de 2019``, ``Июнь 2019``);
- a full date: ``17 June 2019``, ``17th June 2019``, ``June 17, 2019``,
  ``17 de junio de 2019``;
- ISO forms: ``2019-06`` and ``2019-06-17``.

A line that names a month gives its first day as the item's date; a full date
gives that day. Anything else, such as ``06/2019`` (day or month first?), is not
a date line and stays text.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from newsletter.errors import InputError
from newsletter.locale import month_number

_WORD = r"(?P<month>[^\W\d_]+)\.?"
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th|er)?"
_YEAR = r"(?P<year>\d{4})"
_DE = r"(?:de\s+)?"
_DATE_LINES = [
    re.compile(rf"^{_WORD}\s+{_DE}{_YEAR}$", re.IGNORECASE),
    re.compile(rf"^{_DAY}\.?\s+{_DE}{_WORD},?\s+{_DE}{_YEAR}(?:\s*г\.?)?$", re.IGNORECASE),
    re.compile(rf"^{_WORD}\s+{_DAY},?\s+{_YEAR}$", re.IGNORECASE),
    re.compile(r"^(?P<year>\d{4})-(?P<num>\d{2})(?:-(?P<day>\d{2}))?$"),
]

MONTH_FORMAT = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(value: str, *, what: str = "month") -> date:
    """The first day of a `YYYY-MM` month, or InputError naming the value."""
    match = MONTH_FORMAT.match(value.strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise InputError(f"{what} {value!r} is not a month; write it as YYYY-MM, e.g. 2019-06")
    return date(int(match.group(1)), int(match.group(2)), 1)


def month_range(month: str) -> tuple[date, date]:
    """The first day of a `YYYY-MM` month and the first day of the next one."""
    first = parse_month(month)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following


def month_key(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def parse_date_line(line: str) -> date | None:
    """The date a listing's date line stands for, or None when the line is not one."""
    text = line.strip()
    if not text or len(text) > 40:
        return None
    for pattern in _DATE_LINES:
        match = pattern.match(text)
        if match is None:
            continue
        groups = match.groupdict()
        month = int(groups["num"]) if groups.get("num") else month_number(groups["month"])
        day = int(groups.get("day") or 1)
        try:
            return date(int(groups["year"]), month, day)
        except ValueError:
            return None
    return None


def parse_item_date(value: object) -> date | None:
    """A date as Markdown front matter gives it: a YAML date, `YYYY-MM-DD`, `YYYY-MM`
    or a date line's spelling; None when it is none of these."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        return parse_date_line(text)


def names_only_a_month(value: object) -> bool:
    """Whether a date as written names a month but no day ("June 2019", "2019-06").

    Such an item's date is stored as the month's first day and shown as the month.
    """
    if not isinstance(value, str):
        return False
    text = value.strip()
    if _DATE_LINES[0].match(text):
        return True
    match = _DATE_LINES[3].match(text)
    return match is not None and match.group("day") is None
