"""Recurring editions: the [[schedules]] rules of the config, run once per period.

A rule (see `config.ScheduleRule`) says when (a cron expression in a zone,
`cron.py`), what to build (the bulletin of the month before the occurrence)
and what to do with it:

- `send`: the rule itself approves the edition (approved_by "rule NAME") and
  schedules it at the occurrence, so that it starts at once through the same
  sweep as any scheduled campaign;
- `hold`: the edition stays a draft for staff to approve, and
  `schedule.staff_addresses` are emailed a preview of it.

Once per period, whatever the number of services: the edition carries
`Campaign.recurrence_key` = "RULE/PERIOD", which is unique, so only one build
succeeds; the others find that edition and, at most, finish what a crashed
builder left undone (conditional status changes again). A `ScheduleRun` row,
unique per rule and period, records the outcome that `schedule list` shows,
including the outcomes that build nothing: an empty month (`empty`, logged),
a rule that could not build (`failed`, e.g. a list that does not exist).

Downtime: only the latest occurrence of a rule is looked at, and only if it
came after the rule was first seen by a running service (adding a rule never
builds last month's edition). One within `schedule.misfire_grace_minutes` runs
late as if on time; an older one is built and marked `missed` (for `send`
rules; `newsletter schedule ID --at …` then sends it when staff decide), while
a `hold` rule still builds its draft, since nothing goes to subscribers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from newsletter import lifecycle
from newsletter.actors import SCHEDULE
from newsletter.app import Newsletter
from newsletter.config import ScheduleRule
from newsletter.dispatch.service import send_test
from newsletter.editions import new_bulletin
from newsletter.errors import OperationFailed, UserError
from newsletter.items import items_for_month
from newsletter.logs import log_event
from newsletter.models import Campaign, Meta, ScheduleRun, utcnow
from newsletter.schedule.cron import CronExpression, parse_cron
from newsletter.schedule.due import grace, retrying, start_due_campaign
from newsletter.schedule.times import format_local, zone

log = logging.getLogger(__name__)

FIRST_SEEN_KEY = "schedule.first_seen."


@dataclass
class RuleRun:
    """What running one period of a rule did (or found done)."""

    rule: str
    period: str
    due_at: datetime
    outcome: str
    campaign_id: int | None = None
    note: str = ""
    # Whether this call recorded the outcome (False: another process had).
    recorded: bool = False


# --- when ---------------------------------------------------------------------------


@lru_cache(maxsize=256)
def expression(cron: str) -> CronExpression:
    return parse_cron(cron)


def next_run(rule: ScheduleRule, now: datetime) -> datetime | None:
    """The rule's next occurrence after `now` (UTC)."""
    return expression(rule.cron).next_after(now, zone(rule.timezone))


def latest_run(rule: ScheduleRule, now: datetime) -> datetime | None:
    """The rule's latest occurrence at or before `now` (UTC)."""
    return expression(rule.cron).latest_at_or_before(now, zone(rule.timezone))


def period_for(rule: ScheduleRule, due_at: datetime) -> str:
    """The month a bulletin built at `due_at` covers: the one before, in the rule's zone."""
    local = due_at.astimezone(zone(rule.timezone))
    year, month = (local.year, local.month - 1) if local.month > 1 else (local.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def recurrence_key(rule: ScheduleRule, period: str) -> str:
    return f"{rule.name}/{period}"


# --- what is due ----------------------------------------------------------------------


def note_rules(app: Newsletter, rules: Sequence[ScheduleRule], now: datetime) -> None:
    """Remember when a running service first saw each rule (its occurrences start there)."""
    with app.session() as session:
        known = set(
            session.scalars(
                select(Meta.key).where(Meta.key.in_([FIRST_SEEN_KEY + r.name for r in rules]))
            )
        )
    for rule in rules:
        key = FIRST_SEEN_KEY + rule.name
        if key in known:
            continue
        try:
            with app.session() as session:
                session.add(Meta(key=key, value=now.astimezone(UTC).isoformat()))
        except IntegrityError:
            pass  # another service saw it first: its time stands


def first_seen(app: Newsletter, rules: Sequence[ScheduleRule]) -> dict[str, datetime]:
    with app.session() as session:
        rows = session.execute(
            select(Meta.key, Meta.value).where(
                Meta.key.in_([FIRST_SEEN_KEY + r.name for r in rules])
            )
        ).all()
    return {key[len(FIRST_SEEN_KEY) :]: datetime.fromisoformat(value) for key, value in rows}


def due_periods(
    app: Newsletter, rules: Sequence[ScheduleRule], now: datetime
) -> list[tuple[ScheduleRule, datetime]]:
    """(rule, occurrence) for each rule whose latest occurrence has not been run yet."""
    if not rules:
        return []
    seen = first_seen(app, rules)
    candidates: list[tuple[ScheduleRule, datetime, str]] = []
    for rule in rules:
        due_at = latest_run(rule, now)
        since = seen.get(rule.name)
        if due_at is None or since is None or due_at < since:
            continue
        candidates.append((rule, due_at, period_for(rule, due_at)))
    if not candidates:
        return []
    with app.session() as session:
        done = {
            (name, period)
            for name, period in session.execute(
                select(ScheduleRun.rule, ScheduleRun.period).where(
                    ScheduleRun.rule.in_([rule.name for rule, _, _ in candidates])
                )
            )
        }
    return [(rule, at) for rule, at, period in candidates if (rule.name, period) not in done]


def run_due_rules(
    app: Newsletter, rules: Sequence[ScheduleRule], now: datetime | None = None
) -> list[RuleRun]:
    """Run the latest period of every rule that has one to run (see the module's rules)."""
    now = now or utcnow()
    if not rules:
        return []
    note_rules(app, rules, now)
    runs = []
    for rule, due_at in due_periods(app, rules, now):
        try:
            runs.append(run_rule(app, rule, due_at, now))
        except Exception as exc:
            # A database that went away: the period stays unrecorded and is tried again
            # at the next sweep (within the grace period).
            log_event("schedule.error", level=logging.ERROR, rule=rule.name, error=repr(exc))
    return runs


# --- running one period -----------------------------------------------------------------


def run_rule(
    app: Newsletter, rule: ScheduleRule, due_at: datetime, now: datetime | None = None
) -> RuleRun:
    """Build (or find) the rule's edition for the period of `due_at` and act on it."""

    now = now or utcnow()
    period = period_for(rule, due_at)
    key = recurrence_key(rule, period)
    late = now - due_at
    in_time = late <= grace(app)

    def build() -> tuple[int | None, bool]:
        with app.session() as session:
            existing = session.scalar(select(Campaign.id).where(Campaign.recurrence_key == key))
            if existing is not None:
                return existing, False
            if not items_for_month(session, period):
                return None, False
        try:
            created = new_bulletin(
                app,
                period,
                lists=rule.lists,
                segment=rule.segment or None,
                recurrence_key=key,
                actor=SCHEDULE,
            )
        except IntegrityError:
            # Another service built it between our look and our insert.
            with app.session() as session:
                found = session.scalar(select(Campaign.id).where(Campaign.recurrence_key == key))
            return found, False
        return created.id, True

    try:
        campaign_id, built = retrying(build)
    except UserError as exc:
        return _record(app, rule, period, due_at, "failed", None, str(exc), level=logging.ERROR)
    if campaign_id is None:
        return _record(
            app,
            rule,
            period,
            due_at,
            "empty",
            None,
            f"no items for {period}: nothing was built or sent",
        )

    if rule.action == "hold":
        previews = send_previews(app, campaign_id) if built else []
        run = _record(app, rule, period, due_at, "held", campaign_id, _held_note(campaign_id),
                      log=built, previews=len(previews))  # fmt: skip
        return run

    approval = {"approved_by": f"rule {rule.name}", "approved_at": now, "scheduled_at": due_at}
    if in_time:
        note = f"built and approved by the schedule rule {rule.name!r} of the config"
        changed = retrying(lambda: _change(app, campaign_id, "rule_schedule", note, approval))
        run = _record(app, rule, period, due_at, "sending", campaign_id, note, log=changed)
        start_due_campaign(app, campaign_id, now)
        return run
    tz = app.config.schedule.timezone
    note = (
        f"missed: the schedule rule {rule.name!r} was due {format_local(due_at, tz)}, but no "
        f"service was running until {format_local(now, tz)} "
        f"({int(late.total_seconds() // 60)} min late). Put it back on the clock with "
        f"`newsletter schedule {campaign_id} --at TIME`."
    )
    changed = retrying(lambda: _change(app, campaign_id, "rule_miss", note, approval))
    return _record(app, rule, period, due_at, "missed", campaign_id, note, log=changed,
                   level=logging.WARNING)  # fmt: skip


def _held_note(campaign_id: int) -> str:
    return (
        f"built as a draft for approval: preview it with `newsletter preview {campaign_id}`, "
        f"then `newsletter approve {campaign_id}` and `newsletter schedule {campaign_id} --at …`"
    )


def _change(
    app: Newsletter, campaign_id: int, action: str, note: str, columns: dict[str, Any]
) -> bool:
    """A lifecycle action from draft on an edition a rule built; False when someone else moved
    it first."""
    with app.session() as session:
        return lifecycle.try_apply(session, campaign_id, action, SCHEDULE, note=note, **columns)


EVENTS = {
    "sending": "schedule.fired",
    "held": "schedule.held",
    "empty": "schedule.empty",
    "missed": "schedule.missed",
    "failed": "schedule.failed",
}


def _record(
    app: Newsletter,
    rule: ScheduleRule,
    period: str,
    due_at: datetime,
    outcome: str,
    campaign_id: int | None,
    note: str,
    *,
    log: bool | None = None,
    level: int = logging.INFO,
    **extra: Any,
) -> RuleRun:
    """Write the period's outcome once; log it if this call is the one that acted.

    `log` None means: log if this call recorded the outcome (the outcomes that
    build nothing have no campaign whose status change could decide).
    """
    run = RuleRun(rule.name, period, due_at, outcome, campaign_id, note)

    def insert() -> bool:
        try:
            with app.session() as session:
                session.add(
                    ScheduleRun(
                        rule=rule.name,
                        period=period,
                        due_at=due_at,
                        outcome=outcome,
                        campaign_id=campaign_id,
                        note=note,
                    )
                )
        except IntegrityError:
            return False
        return True

    run.recorded = retrying(insert)
    if run.recorded if log is None else log:
        fields: dict[str, Any] = {"rule": rule.name, "period": period, "due_at": due_at}
        if campaign_id is not None:
            fields["campaign"] = campaign_id
        if outcome == "sending":
            fields["action"] = rule.action
        if outcome in ("failed", "missed"):
            fields["note"] = note
        log_event(EVENTS[outcome], level=level, **fields, **extra)
    return run


def send_previews(app: Newsletter, campaign_id: int) -> list[str]:
    """Email the staff a preview of a held edition; returns who got one."""

    addresses = app.config.schedule.staff_addresses
    if not addresses:
        log_event(
            "schedule.no_staff",
            level=logging.WARNING,
            campaign=campaign_id,
            note="schedule.staff_addresses is empty: nobody was sent a preview",
        )
        return []
    sent = []
    for address in addresses:
        try:
            send_test(app, campaign_id, address)
        except (UserError, OperationFailed) as exc:
            log_event(
                "schedule.preview_failed",
                level=logging.WARNING,
                campaign=campaign_id,
                error=str(exc),
            )
            continue
        sent.append(address)
    return sent


def last_runs(app: Newsletter) -> dict[str, ScheduleRun]:
    """The latest recorded run of each rule."""
    with app.session() as session:
        rows = session.scalars(select(ScheduleRun).order_by(ScheduleRun.due_at, ScheduleRun.id))
        latest: dict[str, ScheduleRun] = {}
        for row in rows:
            latest[row.rule] = row
        return latest
