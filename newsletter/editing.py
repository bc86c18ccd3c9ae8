"""Correcting campaigns: edit an edition, duplicate it, delete a draft.

Every change of content goes through the lifecycle's `edit` action (a draft
stays a draft; an approved campaign goes back to draft and loses the snapshot
its approval froze, to be approved again), and is checked by rendering the
result inside the same transaction: an edit that would not render is refused
and changes nothing. Deleting is the lifecycle's `delete` (drafts only), with
its audit event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from newsletter import lifecycle
from newsletter.app import Newsletter
from newsletter.editions import (
    CampaignSummary,
    _get,
    _preheader,
    _read_intro,
    _set_audience,
    campaign_summary,
)
from newsletter.errors import InputError, NotFound
from newsletter.models import Campaign, CampaignItem, Item
from newsletter.snapshot import reopen

GREETING_MAX = 200


@dataclass(frozen=True)
class EditionEdited:
    """An edited edition: its summary, what changed, and whether approval was undone."""

    id: int
    status: str
    changed: tuple[str, ...]
    # It was approved: the edit put it back to draft, to be approved again.
    unapproved: bool
    summary: CampaignSummary


def edit_edition(
    app: Newsletter,
    campaign_id: int,
    *,
    actor: str,
    subject: str | None = None,
    preheader: str | None = None,
    intro: str | None = None,
    intro_file: str | Path | None = None,
    greeting: str | None = None,
    add_items: Sequence[int] = (),
    remove_items: Sequence[int] = (),
    order: Sequence[int] | None = None,
    lists: Sequence[str] | None = None,
    segment: str | None = None,
    no_segment: bool = False,
) -> EditionEdited:
    """Change a draft or approved edition; an approved one goes back to draft.

    The one edit path: `edition edit` and the console's campaign form both call it.
    `intro` is the text itself, `intro_file` a file holding it. `add_items` go at the
    end (or where `order` puts them); `order` lists the items' ids in their new
    reading order and must name each item once; `lists` replaces the lists;
    `segment` replaces the segment, `no_segment` removes it. `greeting` is "" for
    the language's own, "none" for none, or a line such as "Hi {name},". A
    preheader nobody wrote (the intro's start) follows a new intro.

    `changed` names what differs from before; a value given as it was is no change. An
    edit that changes nothing changes nothing at all: an approved edition stays approved,
    no audit line is written, and the saver does not become its last editor (so saving an
    unchanged form cannot block or grant a four-eyes approval).
    """
    if intro is not None and intro_file is not None:
        raise InputError("give the intro or an intro file, not both")
    if intro_file is not None:
        intro = _read_intro(intro_file)
    changes = _checked_texts(subject=subject, preheader=preheader, greeting=greeting)
    if segment is not None and no_segment:
        raise InputError("give --segment or --no-segment, not both")
    asked = (
        changes or intro is not None or add_items or remove_items or order is not None
        or lists is not None or segment is not None or no_segment
    )  # fmt: skip
    if not asked:
        raise InputError(
            "nothing to change; give --subject, --preheader, --intro-file, --greeting, "
            "--add, --remove, --order, --list, --segment or --no-segment"
        )
    with app.session() as session:
        campaign = _get(session, campaign_id)
        was_approved = campaign.status == lifecycle.APPROVED
        derived_preheader = _preheader(campaign.intro, campaign.items)
        changed = []
        for name, value in changes.items():
            if value != getattr(campaign, name):
                setattr(campaign, name, value)
                changed.append(name)
        if intro is not None and intro.strip() != campaign.intro:
            campaign.intro = intro.strip()
            changed.append("intro")
            if "preheader" not in changes and campaign.preheader == derived_preheader:
                campaign.preheader = _preheader(campaign.intro, campaign.items)
        items_asked = add_items or remove_items or order is not None
        if items_asked and _change_items(session, campaign, add_items, remove_items, order):
            changed.append("items")
        if lists is not None or segment is not None or no_segment:
            before = ([lst.name for lst in campaign.lists], campaign.segment_id)
            if no_segment:
                campaign.segment = None
            _set_audience(
                app,
                session,
                campaign,
                list(lists) if lists is not None else [lst.name for lst in campaign.lists],
                segment if segment is not None else None,
            )
            session.flush()
            if before != ([lst.name for lst in campaign.lists], campaign.segment_id):
                changed.append("audience")
        session.flush()
        if not changed:
            return EditionEdited(
                id=campaign_id,
                status=campaign.status,
                changed=(),
                unapproved=False,
                summary=campaign_summary(session, campaign),
            )
        reopen(session, campaign_id, actor=actor, why="changed " + ", ".join(changed))
        session.expire_all()
        # Rendered in this transaction: an edit that breaks the template changes nothing.
        # Imported here for start-up time: premailer is slow to load.
        from newsletter.render import render_campaign

        render_campaign(app, campaign_id, session=session)
        campaign = _get(session, campaign_id)
        return EditionEdited(
            id=campaign_id,
            status=campaign.status,
            changed=tuple(changed),
            unapproved=was_approved,
            summary=campaign_summary(session, campaign),
        )


def _checked_texts(**values: str | None) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in values.items():
        if value is None:
            continue
        text = " ".join(value.split())
        if name == "subject" and not text:
            raise InputError("the subject cannot be empty")
        if name in ("subject", "preheader") and len(text) > 500:
            raise InputError(f"the {name} is longer than 500 characters")
        if name == "greeting":
            text = "" if text.lower() in ("", "auto", "default") else text
            if len(text) > GREETING_MAX:
                raise InputError(f"the greeting is longer than {GREETING_MAX} characters")
        checked[name] = text
    return checked


def _change_items(
    session: Session,
    campaign: Campaign,
    add: Sequence[int],
    remove: Sequence[int],
    order: Sequence[int] | None,
) -> bool:
    """Add, remove and reorder a campaign's items; True when they changed."""
    current = [entry.item_id for entry in campaign.entries]
    missing = [i for i in remove if i not in current]
    if missing:
        raise InputError(
            f"campaign {campaign.id} has no item {', '.join(map(str, missing))} to remove"
        )
    unknown = [i for i in add if session.scalar(select(Item.id).where(Item.id == i)) is None]
    if unknown:
        raise NotFound(
            f"no item with id {', '.join(map(str, unknown))} (see `newsletter items list`)"
        )
    twice = [i for i in add if i in current]
    if twice:
        raise InputError(f"item {', '.join(map(str, twice))} is already in campaign {campaign.id}")
    wanted = [i for i in current if i not in remove] + list(dict.fromkeys(add))
    if order is not None:
        if sorted(order) != sorted(wanted) or len(set(order)) != len(order):
            raise InputError(
                f"--order must name each item of the campaign once: {', '.join(map(str, wanted))}"
            )
        wanted = list(order)
    if not wanted:
        raise InputError(f"campaign {campaign.id} would have no items left")
    if campaign.kind == "announcement" and len(wanted) != 1:
        raise InputError("an announcement carries exactly one item")
    if wanted == current:
        return False
    # The old entries go first: new rows with the same (campaign, item) key would
    # otherwise be inserted before the old ones are deleted.
    campaign.entries.clear()
    session.flush()
    campaign.entries = [
        CampaignItem(campaign_id=campaign.id, item_id=item_id, position=position)
        for position, item_id in enumerate(wanted)
    ]
    return True


@dataclass(frozen=True)
class CampaignDeleted:
    id: int
    subject: str


def delete_campaign(app: Newsletter, campaign_id: int, *, actor: str) -> CampaignDeleted:
    """Delete a draft (the lifecycle's `delete`: drafts only, recorded in the audit trail)."""
    with app.session() as session:
        subject = session.scalar(select(Campaign.subject).where(Campaign.id == campaign_id))
        lifecycle.apply(session, campaign_id, "delete", actor, detail=subject or "")
        return CampaignDeleted(id=campaign_id, subject=subject or "")


def duplicate_campaign(app: Newsletter, campaign_id: int, *, actor: str) -> CampaignSummary:
    """A new draft with the same content and audience as campaign `campaign_id`.

    The items are the same items as they are now (an approved or sent original
    keeps its own snapshot). The summary has the new campaign's `id`.
    """
    with app.session() as session:
        original = session.get(
            Campaign,
            campaign_id,
            options=[selectinload(Campaign.lists), selectinload(Campaign.entries)],
        )
        if original is None:
            raise NotFound(f"no campaign with id {campaign_id} (see `newsletter campaigns list`)")
        copy = Campaign(
            kind=original.kind,
            month=original.month,
            subject=original.subject,
            intro=original.intro,
            preheader=original.preheader,
            language=original.language,
            transport=original.transport,
            greeting=original.greeting,
            segment_id=original.segment_id,
        )
        copy.lists = list(original.lists)
        copy.entries = [
            CampaignItem(item_id=entry.item_id, position=entry.position)
            for entry in original.entries
        ]
        session.add(copy)
        session.flush()
        lifecycle.built(session, copy.id, actor, f"duplicate of campaign {campaign_id}")
        return campaign_summary(session, _get(session, copy.id))
