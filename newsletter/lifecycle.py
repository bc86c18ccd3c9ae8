"""The campaign lifecycle: one table of actions, and one function that applies them.

A campaign moves draft → approved → scheduled → sending → sent, and may be
edited back to draft, paused, cancelled or missed on the way. Every move is an
action in `ACTIONS`: the statuses it may start from, the status it leads to, and
the permission a staff user needs to take it. `apply` (and `try_apply`, for
callers to whom losing a race is normal) makes the move as ONE conditional
statement — `UPDATE campaigns … WHERE id = ? AND status IN (…)` — so that when
two processes race for the same campaign (two services firing one schedule, a
worker pausing while staff cancel) the database, not the caller, decides who
wins; and it records the move, with who made it, in the audit trail in the same
transaction.

The CLI, the console, the scheduler and the workers all come through here; no
other module writes `Campaign.status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from newsletter import audit, db
from newsletter.errors import InvalidState, NotFound
from newsletter.models import Campaign, utcnow
from newsletter.models.campaigns import (
    APPROVED,
    CAMPAIGN_STATUSES,
    CANCELLED,
    DRAFT,
    MISSED,
    PAUSED,
    SCHEDULED,
    SENDING,
    SENT,
)

__all__ = [
    "ACTIONS",
    "APPROVED",
    "CANCELLED",
    "DRAFT",
    "MISSED",
    "PAUSED",
    "SCHEDULED",
    "SENDING",
    "SENT",
    "STATUSES",
    "Action",
    "apply",
    "built",
    "refuse",
    "try_apply",
]

STATUSES = CAMPAIGN_STATUSES

# Permission names. The staff roles grant them; the service's own actors
# (scheduler, workers) take the `system` ones, which no role grants.
EDIT = "campaigns.edit"
APPROVE = "campaigns.approve"
SEND = "campaigns.send"
SYSTEM = "system"


@dataclass(frozen=True)
class Action:
    """One move of the lifecycle.

    `to` is None for `delete`, which removes the campaign; `rule` finishes the
    sentence "campaign 3 is sent; …" when the campaign's status does not allow it.
    """

    name: str
    allowed_from: frozenset[str]
    to: str | None
    permission: str
    rule: str


def _action(name: str, allowed: tuple[str, ...], to: str | None, permission: str, rule: str):
    return name, Action(name, frozenset(allowed), to, permission, rule)


ACTIONS: Mapping[str, Action] = dict(
    [
        # `build` creates a draft: it has no from-status and is recorded by `built`.
        _action("build", (), DRAFT, EDIT, "a campaign is built as a draft"),
        _action("edit", (DRAFT, APPROVED), DRAFT, EDIT,
                "only a draft or an approved campaign can be edited"),
        _action("delete", (DRAFT,), None, EDIT, "only a draft can be deleted"),
        _action("approve", (DRAFT,), APPROVED, APPROVE, "only a draft can be approved"),
        _action("schedule", (APPROVED, SCHEDULED, MISSED), SCHEDULED, SEND,
                "only an approved campaign can be scheduled"),
        _action("unschedule", (SCHEDULED,), APPROVED, SEND,
                "only a scheduled campaign can be unscheduled"),
        _action("start", (APPROVED, SCHEDULED), SENDING, SEND,
                "only an approved or scheduled campaign can be sent"),
        _action("pause", (SENDING,), PAUSED, SEND,
                "only a campaign that is sending can be paused"),
        _action("resume", (PAUSED,), SENDING, SEND, "only a paused campaign can be resumed"),
        _action("cancel", (APPROVED, SCHEDULED, SENDING, PAUSED), CANCELLED, SEND,
                "only an approved, scheduled, sending or paused campaign can be cancelled"),
        # The service's own moves: a scheduled send that fell due (from `scheduled`
        # only: one unscheduled a moment ago must not go out), a send that
        # finished, a schedule nobody was there to keep, a send a worker stopped
        # because it cannot work (a failing transport or template), and a
        # recurring rule's edition that the rule approves and schedules itself.
        _action("fire", (SCHEDULED,), SENDING, SYSTEM,
                "only a scheduled campaign goes out at its time"),
        _action("finish", (SENDING,), SENT, SYSTEM, "only a campaign that is sending can finish"),
        _action("miss", (SCHEDULED,), MISSED, SYSTEM,
                "only a scheduled campaign can miss its time"),
        _action("halt", (SENDING,), PAUSED, SYSTEM,
                "only a campaign that is sending can be halted"),
        _action("rule_schedule", (DRAFT,), SCHEDULED, SYSTEM,
                "only a draft built by a schedule rule is scheduled by it"),
        _action("rule_miss", (DRAFT,), MISSED, SYSTEM,
                "only a draft built by a schedule rule can miss the rule's time"),
]
)  # fmt: skip


def _why(campaign_id: int, status: str, action: str) -> str:
    """How a campaign's status reads in an error, with the next step where there is one."""
    starting = action in ("start", "schedule")
    if status == DRAFT and starting:
        return f"is a draft; approve it first with `newsletter approve {campaign_id}`"
    if status == PAUSED and starting:
        return f"is paused; continue it with `newsletter resume {campaign_id}`"
    if status == SENDING or (status == ACTIONS[action].to and status != CANCELLED):
        return f"is already {status}"
    if status == SENT:
        return "was already sent"
    if status == MISSED and starting:
        return (
            "missed its scheduled time; schedule it again with "
            f"`newsletter schedule {campaign_id} --at TIME`"
        )
    return f"is {status}"


def refusal(campaign_id: int, status: str, action: str) -> str:
    """The one-line error for an action the campaign's status does not allow."""
    return f"campaign {campaign_id} {_why(campaign_id, status, action)}; {ACTIONS[action].rule}"


def try_apply(
    session: Session,
    campaign_id: int,
    action: str,
    actor: str,
    *,
    note: str | None = None,
    detail: str = "",
    **columns: object,
) -> bool:
    """Take `action` if the campaign's status allows it; return whether this call did.

    One conditional statement decides (see the module docstring). `note` replaces
    the campaign's status note (why it paused, was missed…); other keyword
    arguments set columns in the same statement. On success the move is recorded
    in the audit trail, in the caller's transaction.
    """
    spec = ACTIONS[action]
    if not spec.allowed_from:
        raise ValueError(f"{action!r} is not a status change; use built()")
    where = (Campaign.id == campaign_id, Campaign.status.in_(sorted(spec.allowed_from)))
    if spec.to is None:
        result = session.execute(
            delete(Campaign).where(*where).execution_options(synchronize_session=False)
        )
    else:
        values: dict[str, object] = {"status": spec.to, "updated_at": utcnow(), **columns}
        if note is not None:
            values["status_note"] = note
        result = session.execute(
            update(Campaign)
            .where(*where)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    if db.rows_changed(result) != 1:
        return False
    audit.record(session, actor, action, "campaign", campaign_id, detail or (note or ""))
    return True


def apply(
    session: Session,
    campaign_id: int,
    action: str,
    actor: str,
    *,
    note: str | None = None,
    detail: str = "",
    **columns: object,
) -> None:
    """Take `action`, or raise NotFound / InvalidState naming the campaign, its status and
    the action."""
    if not try_apply(session, campaign_id, action, actor, note=note, detail=detail, **columns):
        refuse(session, campaign_id, action)


def refuse(session: Session, campaign_id: int, action: str) -> NoReturn:
    """Raise the error for an action that `try_apply` could not take: NotFound, or
    InvalidState naming the campaign, its status and the action."""
    status = session.scalar(select(Campaign.status).where(Campaign.id == campaign_id))
    if status is None:
        raise NotFound(f"no campaign with id {campaign_id} (see `newsletter campaigns list`)")
    raise InvalidState(refusal(campaign_id, status, action))


def built(session: Session, campaign_id: int, actor: str, detail: str = "") -> None:
    """Record that `actor` built a new draft (the one action that is an INSERT)."""
    audit.record(session, actor, "build", "campaign", campaign_id, detail)
