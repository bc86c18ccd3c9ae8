"""The due-campaign sweep: start what is due, mark missed what is too late.

`sweep(app, now)` is the whole of scheduling's decision, and it reads only the
database: the campaigns whose `scheduled_at` has come, and the recurring rules
of the config (see `recurring`). The service calls it on start-up, every
`schedule.sync_seconds`, and when an APScheduler timer fires; tests call it
with the clock in their hand. Calling it twice, or from two processes at once,
does what calling it once does:

- a campaign due no longer ago than `schedule.misfire_grace_minutes` goes
  `scheduled → sending` with its deliveries ledger written, in one
  transaction; the workers send it;
- one due longer ago (the service was down across its time) goes
  `scheduled → missed`, with a note saying when it was due and how late it
  was, and a `schedule.missed` log line. It is never sent late by surprise:
  `newsletter schedule ID --at …` puts it back on the clock.

Both are lifecycle actions from `scheduled` only (`fire` and `miss` in
newsletter/lifecycle.py), one conditional UPDATE: of two processes (or a
sweep and a staff member's `unschedule`) one wins, and only the winner writes
the ledger and logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from newsletter.app import Newsletter
from newsletter.config import ScheduleRule
from newsletter.models import utcnow
from newsletter.schedule import recurring
from newsletter.schedule.due import due_campaigns, start_due_campaign


@dataclass
class SweepReport:
    """What one sweep did."""

    started: list[int] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)
    # One entry per recurring rule that had a period to run (see recurring.RuleRun).
    rules: list[object] = field(default_factory=list)


def sweep(
    app: Newsletter,
    now: datetime | None = None,
    *,
    rules: Sequence[ScheduleRule] | None = None,
) -> SweepReport:
    """Everything that is due at `now`: scheduled campaigns, then recurring rules."""

    now = now or utcnow()
    report = SweepReport()
    for campaign_id in due_campaigns(app, now):
        outcome = start_due_campaign(app, campaign_id, now)
        if outcome == "started":
            report.started.append(campaign_id)
        elif outcome == "missed":
            report.missed.append(campaign_id)
    rules = app.config.schedules if rules is None else rules
    report.rules.extend(recurring.run_due_rules(app, rules, now))
    return report
