"""Scheduling: one-off sends, recurring editions, and the clock of `newsletter serve`.

The front door:

- `schedule_campaign(app, id, at)`, `unschedule_campaign(app, id)`,
  `list_scheduled(app)`: an approved campaign on the clock, or off it;
- `parse_local_time(text, zone)`, `format_local(moment, zone)`: times as staff
  give and read them, with the daylight-saving decisions of `times`;
- `sweep(app, now)`: start what is due, mark missed what is too late, run the
  recurring rules' due periods (`recurring`); safe to call from any number of
  processes at once;
- `schedule_overview(app, now)`: what `newsletter schedule list` shows;
- `ScheduleDriver(app)`: APScheduler 3 driving the sweep inside `newsletter serve`.

The database is the source of truth: a campaign's `scheduled_at` and status,
and the rules of the config. See DESIGN.md, "Scheduling".
"""

from newsletter.schedule.campaigns import list_scheduled, schedule_campaign, unschedule_campaign
from newsletter.schedule.cron import CronError, CronExpression, parse_cron
from newsletter.schedule.overview import schedule_overview
from newsletter.schedule.recurring import RuleRun, next_run, period_for, run_due_rules
from newsletter.schedule.sweep import SweepReport, start_due_campaign, sweep
from newsletter.schedule.times import describe_instant, format_local, parse_local_time

__all__ = [
    "CronError",
    "CronExpression",
    "RuleRun",
    "SweepReport",
    "describe_instant",
    "format_local",
    "list_scheduled",
    "next_run",
    "parse_cron",
    "parse_local_time",
    "period_for",
    "run_due_rules",
    "schedule_campaign",
    "schedule_overview",
    "start_due_campaign",
    "sweep",
    "unschedule_campaign",
]
