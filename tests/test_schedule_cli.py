"""The scheduling commands, run as the real `newsletter` command."""

from __future__ import annotations

import json
from pathlib import Path

from test_schedule_support import approved_bulletin

from newsletter import editions

RULES = """
[[schedules]]
name = "monthly-bulletin"
cron = "0 9 * * mon#1"
lists = ["members"]
action = "hold"
"""


def test_schedule_list_and_unschedule_from_the_command_line(
    make_app, run_cli, tmp_path: Path
) -> None:
    app = make_app()
    campaign_id = approved_bulletin(app)
    config = tmp_path / "newsletter.toml"
    config.write_text(RULES, encoding="utf-8")

    text = run_cli("schedule", str(campaign_id), "--at", "2030-07-01 10:00", "--tz", "Europe/Paris")
    assert text.returncode == 0, text.stderr
    assert (
        f"Campaign {campaign_id} is scheduled for 2030-07-01 10:00 CEST "
        "(2030-07-01 09:00 BST, 08:00 UTC)" in text.stdout
    )
    assert "no `newsletter serve` is running" in text.stderr

    moved = run_cli(
        "schedule", str(campaign_id), "--at", "2030-12-02 09:00", "--by", "Ana", "--json"
    )
    assert moved.returncode == 0, moved.stderr
    record = json.loads(moved.stdout)
    assert record["id"] == campaign_id
    assert record["scheduled_at"] == "2030-12-02T09:00:00+00:00"  # GMT in December
    assert record["at"] == "2030-12-02 09:00 GMT"
    assert record["note"].startswith("scheduled by cli:Ana at ")
    # The keys of `schedule --json` and `schedule list --json`, pinned: scripts read them.
    assert list(record) == [
        "id", "kind", "status", "subject", "at", "scheduled_at", "lists", "segment",
        "approved_by", "approved_at", "rule", "note",
    ]  # fmt: skip

    listed = run_cli("schedule", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    overview = json.loads(listed.stdout)
    assert [(s["id"], s["status"]) for s in overview["sends"]] == [(campaign_id, "scheduled")]
    assert list(overview) == ["timezone", "now", "sends", "rules"]
    (rule,) = overview["rules"]
    assert list(rule) == [
        "name", "cron", "timezone", "build", "action", "lists", "segment", "next",
        "next_run_at", "last", "last_outcome", "last_period", "last_due_at", "last_campaign",
        "last_note",
    ]  # fmt: skip
    assert (rule["name"], rule["action"], rule["timezone"]) == (
        "monthly-bulletin",
        "hold",
        "Europe/London",
    )
    assert rule["next"].endswith(":00 GMT") or rule["next"].endswith(":00 BST")

    table = run_cli("schedule", "list")
    assert "monthly-bulletin  0 9 * * mon#1" in table.stdout
    assert "2030-12-02 09:00 GMT" in table.stdout

    off = run_cli("unschedule", str(campaign_id))
    assert off.returncode == 0, off.stderr
    assert "no longer scheduled (still approved)" in off.stdout
    again = run_cli("unschedule", str(campaign_id))
    assert again.returncode == 2
    assert "only a scheduled campaign can be unscheduled" in again.stderr


def test_bad_times_and_drafts_are_refused_with_exit_2(make_app, run_cli) -> None:
    app = make_app()
    campaign_id = approved_bulletin(app)
    draft = editions.new_bulletin(app, "2019-06", lists=["members"], actor="tester").id

    skipped = run_cli(
        "schedule", str(campaign_id), "--at", "2030-03-31 01:30", "--tz", "Europe/London"
    )
    assert skipped.returncode == 2
    assert "2030-03-31 01:30 does not exist in Europe/London" in skipped.stderr
    assert "Traceback" not in skipped.stderr

    not_approved = run_cli("schedule", str(draft), "--at", "2030-07-01 09:00")
    assert not_approved.returncode == 2
    assert f"approve it first with `newsletter approve {draft}`" in not_approved.stderr

    past = run_cli("schedule", str(campaign_id), "--at", "2001-01-01 09:00")
    assert past.returncode == 2
    assert "is in the past" in past.stderr
