"""The campaign lifecycle (one table, one function) and the audit trail it writes."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from newsletter import audit, lifecycle
from newsletter.errors import InvalidState, NotFound
from newsletter.models import Campaign

PACKAGE = Path(__file__).resolve().parent.parent / "newsletter"


@pytest.fixture
def draft(app, make_campaign) -> int:
    return make_campaign(app, subscribers=[("ana@example.org", "Ana")])


def status_of(app, campaign_id: int) -> str:
    with app.session() as session:
        return session.get_one(Campaign, campaign_id).status


def test_of_two_callers_exactly_one_wins(app, draft) -> None:
    with app.session() as session:
        assert lifecycle.try_apply(session, draft, "approve", "cli:ana")
    with app.session() as session:
        assert not lifecycle.try_apply(session, draft, "approve", "cli:ben")
    assert status_of(app, draft) == "approved"
    # Only the winner's move is in the trail.
    lines = audit.list_events(app, campaign_id=draft)
    assert [(e.actor, e.action) for e in lines] == [("cli:ana", "approve")]


@pytest.mark.parametrize("name", sorted(a for a in lifecycle.ACTIONS if a != "build"))
def test_every_action_moves_only_from_its_statuses(app, draft, name) -> None:
    """Walk each action over every status: it succeeds exactly from its allowed ones, and
    a refusal leaves the campaign as it was."""
    action = lifecycle.ACTIONS[name]
    for status in lifecycle.STATUSES:
        with app.session() as session:
            session.execute(update(Campaign).where(Campaign.id == draft).values(status=status))
        with app.session() as session:
            took = lifecycle.try_apply(session, draft, name, "tester")
        assert took == (status in action.allowed_from), (name, status)
        if name == "delete" and took:
            with app.session() as session:
                assert session.get(Campaign, draft) is None
            return
        assert status_of(app, draft) == (action.to if took else status), (name, status)


def test_a_refused_action_names_campaign_status_and_action(app, draft) -> None:
    with app.session() as session:
        session.execute(update(Campaign).where(Campaign.id == draft).values(status="sent"))
    with pytest.raises(InvalidState) as refused, app.session() as session:
        lifecycle.apply(session, draft, "approve", "tester")
    message = str(refused.value)
    assert f"campaign {draft}" in message and "sent" in message and "approved" in message
    assert "\n" not in message
    with pytest.raises(NotFound, match="no campaign with id 999"), app.session() as session:
        lifecycle.apply(session, 999, "pause", "tester")


def test_the_database_refuses_a_status_outside_the_table(app, draft) -> None:
    with pytest.raises(IntegrityError), app.session() as session:
        session.execute(update(Campaign).where(Campaign.id == draft).values(status="lost"))
    assert status_of(app, draft) == "draft"


def test_editing_an_approved_campaign_puts_it_back_to_draft(app, draft) -> None:
    with app.session() as session:
        lifecycle.apply(session, draft, "approve", "cli:ana")
        lifecycle.apply(session, draft, "edit", "cli:ben", detail="subject")
    assert status_of(app, draft) == "draft"
    assert [e.action for e in audit.list_events(app, campaign_id=draft)] == ["edit", "approve"]


def test_no_module_but_the_lifecycle_writes_a_campaigns_status() -> None:
    """A status change anywhere else would bypass the table, its races and its audit."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "lifecycle.py" or "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            # .values(status=…) on an update(Campaign), or campaign.status = …
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "values":
                source = ast.unparse(node.func)
                if "Campaign" in source and any(k.arg == "status" for k in node.keywords):
                    offenders.append(f"{path.name}:{node.lineno}")
            if isinstance(node, ast.Assign):
                offenders.extend(
                    f"{path.name}:{node.lineno}"
                    for target in node.targets
                    if isinstance(target, ast.Attribute)
                    and target.attr == "status"
                    and "campaign" in ast.unparse(target.value).lower()
                )
    assert offenders == []


def test_audit_lines_page_back_newest_first(app, draft) -> None:
    with app.session() as session:
        for n in range(5):
            audit.record(session, "cli:ana", "edit", "campaign", draft, f"change {n}")
    first = audit.list_events(app, campaign_id=draft, limit=2)
    assert [e.detail for e in first] == ["change 4", "change 3"]
    older = audit.list_events(app, campaign_id=draft, limit=10, before_id=first[-1].id)
    assert [e.detail for e in older] == ["change 2", "change 1", "change 0"]


def test_audit_json_lists_each_cli_action_with_its_actor(run_cli, app) -> None:
    """The demo, then approve / schedule / unschedule from the command line."""
    demo = run_cli("demo")
    assert demo.returncode == 0, demo.stderr
    built = run_cli("edition", "new", "--month", "2019-06", "--list", "members", "--json")
    assert built.returncode == 0, built.stderr
    campaign_id = json.loads(built.stdout)["id"]
    assert run_cli("approve", str(campaign_id)).returncode == 0
    at = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%d %H:%M")
    scheduled = run_cli("schedule", str(campaign_id), "--at", at, "--tz", "UTC")
    assert scheduled.returncode == 0, scheduled.stderr
    assert run_cli("unschedule", str(campaign_id)).returncode == 0

    trail = json.loads(run_cli("audit", "--json").stdout)
    demo_lines = [(e["actor"], e["action"]) for e in trail if e["actor"] == "demo"]
    assert ("demo", "build") in demo_lines and ("demo", "approve") in demo_lines
    assert ("demo", "start") in demo_lines and ("worker", "finish") in {
        (e["actor"], e["action"]) for e in trail
    }
    mine = json.loads(run_cli("audit", "--campaign", str(campaign_id), "--json").stdout)
    assert [e["action"] for e in mine] == ["unschedule", "schedule", "approve", "build"]
    assert all(e["actor"].startswith("cli:") for e in mine)
    assert {e["object_id"] for e in mine} == {str(campaign_id)}


def test_a_wrong_status_action_exits_2_with_one_line(run_cli, app, draft) -> None:
    result = run_cli("unschedule", str(draft))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert f"campaign {draft}" in lines[0] and "draft" in lines[0]
    assert "unschedule" in lines[0]


def test_admin_actions_are_audited_and_an_erasure_keeps_no_address(app) -> None:
    from newsletter import audience

    audience.create_list(app, "members", actor="cli:ana")
    audience.add_subscriber(app, "Maria.Lopez@example.org", "members", actor="cli:ana")
    audience.erase_person(app, "maria.lopez@example.org", actor="cli:ben")
    trail = audit.list_events(app)
    assert [(e.actor, e.action, e.object_type) for e in trail] == [
        ("cli:ben", "erase", "person"),
        ("cli:ana", "add", "subscriber"),
        ("cli:ana", "create", "list"),
    ]
    erased = trail[0]
    text = json.dumps([e.__dict__ for e in trail], default=str).lower()
    assert "maria" not in text and "lopez" not in text
    assert erased.object_id and erased.object_id != "maria.lopez@example.org"
