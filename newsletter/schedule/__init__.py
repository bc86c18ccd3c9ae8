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
and the rules of the config. See the README, "The service: pages, schedules, workers".
"""

from typing import TYPE_CHECKING

from newsletter.lazy import lazy_exports

if TYPE_CHECKING:
    from newsletter.schedule.campaigns import list_scheduled, schedule_campaign, unschedule_campaign
    from newsletter.schedule.cron import CronError, CronExpression, parse_cron
    from newsletter.schedule.due import start_due_campaign
    from newsletter.schedule.overview import schedule_overview
    from newsletter.schedule.recurring import RuleRun, next_run, period_for, run_due_rules
    from newsletter.schedule.sweeper import SweepReport, sweep
    from newsletter.schedule.times import describe_instant, format_local, parse_local_time

# Each name is loaded from its submodule on first use (see newsletter/lazy.py).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "list_scheduled": "campaigns",
        "schedule_campaign": "campaigns",
        "unschedule_campaign": "campaigns",
        "CronError": "cron",
        "CronExpression": "cron",
        "parse_cron": "cron",
        "schedule_overview": "overview",
        "RuleRun": "recurring",
        "next_run": "recurring",
        "period_for": "recurring",
        "run_due_rules": "recurring",
        "SweepReport": "sweeper",
        "start_due_campaign": "due",
        "sweep": "sweeper",
        "describe_instant": "times",
        "format_local": "times",
        "parse_local_time": "times",
    },
)

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
