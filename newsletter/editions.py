"""Editions: monthly bulletins and announcements as campaigns, and their status.

A campaign moves draft → approved → scheduled → sending → sent, and may be
paused, cancelled or missed on the way; newsletter/lifecycle.py holds the table
of those moves and makes each one, with its actor.

A bulletin is built from the month's items (those not excluded), grouped by
kind in the order of `editions.kind_order`; an announcement carries one item.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from newsletter import audit, lifecycle, locale, staff
from newsletter.app import Newsletter
from newsletter.audience.resolve import recipients_query
from newsletter.dispatch import counters
from newsletter.errors import InputError, InvalidState, NotFound
from newsletter.items import items_for_month
from newsletter.models import (
    CAMPAIGN_STATUSES,
    Campaign,
    CampaignItem,
    CampaignText,
    Item,
    MailingList,
    Segment,
    utcnow,
)
from newsletter.render import render_campaign
from newsletter.snapshot import freeze

MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# The column size of a campaign subject (models/campaigns.py).
SUBJECT_MAX = 500


def parse_month(value: str) -> tuple[int, int]:
    """'2019-06' → (2019, 6), or an InputError that shows the expected form."""
    match = MONTH_RE.match(value.strip())
    if not match:
        raise InputError(f"month {value!r} is not of the form YYYY-MM (for example 2019-06)")
    return int(match.group(1)), int(match.group(2))


def month_label(month: str, language: str = "en") -> str:
    """'2019-06' written out for people: 'June 2019'."""
    year, number = parse_month(month)
    return locale.month_label(year, number, language)


# --- building editions -------------------------------------------------------


def new_bulletin(
    app: Newsletter,
    month: str,
    *,
    lists: Sequence[str] = (),
    segment: str | None = None,
    subject: str | None = None,
    intro: str = "",
    intro_file: str | Path | None = None,
    language: str | None = None,
    transport: str | None = None,
    recurrence_key: str | None = None,
    actor: str,
) -> CampaignSummary:
    """Build the monthly bulletin for `month` ('YYYY-MM') as a draft campaign.

    A recurring rule passes its `recurrence_key` (rule and period): the key is
    unique, so a second build of the same period fails with an IntegrityError.
    """

    parse_month(month)
    if intro_file is not None:
        intro = _read_intro(intro_file)
    language = language or app.config.editions.default_language
    with app.session() as session:
        items = items_for_month(session, month)
        if not items:
            raise InputError(
                f"no items for {month_label(month)}: import some with "
                "`newsletter items import SOURCE` or include excluded ones with "
                "`newsletter items include ID`"
            )
        items = order_for_bulletin(app, items)
        campaign = Campaign(
            kind="bulletin",
            month=month,
            subject=subject
            or app.config.editions.subject_pattern.format(
                org=app.config.org.name, month=month_label(month, language)
            ),
            intro=intro,
            preheader=_preheader(intro, items),
            language=language,
            transport=_check_transport(app, transport),
            recurrence_key=recurrence_key,
        )
        _set_audience(app, session, campaign, lists, segment)
        campaign.entries = [CampaignItem(item=item, position=i) for i, item in enumerate(items)]
        session.add(campaign)
        session.flush()
        lifecycle.built(session, campaign.id, actor, f"bulletin for {month}")
        summary = campaign_summary(session, campaign)
        summary = replace(
            summary,
            warnings=tuple(
                f"campaign {other} is already a draft bulletin for {month} to the same "
                "audience; delete the one you do not want with `newsletter campaigns delete ID`"
                for other in _drafts_like(session, campaign)
            ),
        )
    _check_renders(app, summary.id)
    return summary


def _drafts_like(session: Session, campaign: Campaign) -> list[int]:
    """Other drafts of the same kind and month with the same lists and segment.

    Drafts are few, so they are read and compared here rather than in SQL.
    """
    lists = {lst.id for lst in campaign.lists}
    others = session.scalars(
        select(Campaign)
        .options(selectinload(Campaign.lists))
        .where(
            Campaign.kind == campaign.kind,
            Campaign.month == campaign.month,
            Campaign.status == lifecycle.DRAFT,
            Campaign.id != campaign.id,
        )
        .order_by(Campaign.id)
    )
    return [
        other.id
        for other in others
        if other.segment_id == campaign.segment_id and {lst.id for lst in other.lists} == lists
    ]


def new_announcement(
    app: Newsletter,
    item_id: int,
    *,
    lists: Sequence[str] = (),
    segment: str | None = None,
    subject: str | None = None,
    intro: str = "",
    intro_file: str | Path | None = None,
    transport: str | None = None,
    actor: str,
) -> CampaignSummary:
    """Build a one-item announcement as a draft campaign."""
    if intro_file is not None:
        intro = _read_intro(intro_file)
    with app.session() as session:
        item = session.get(Item, item_id)
        if item is None:
            raise NotFound(f"no item with id {item_id} (see `newsletter items list`)")
        campaign = Campaign(
            kind="announcement",
            subject=subject
            or app.config.editions.announcement_subject_pattern.format(
                org=app.config.org.name, title=item.title
            ),
            intro=intro,
            preheader=_shorten(item.summary or item.title, 140),
            language=item.language or app.config.editions.default_language,
            transport=_check_transport(app, transport),
        )
        _set_audience(app, session, campaign, lists, segment)
        campaign.entries = [CampaignItem(item=item, position=0)]
        session.add(campaign)
        session.flush()
        lifecycle.built(session, campaign.id, actor, f"announcement of item {item_id}")
        summary = campaign_summary(session, campaign)
    _check_renders(app, summary.id)
    return summary


def _check_renders(app: Newsletter, campaign_id: int) -> None:
    """Render a new campaign once, so that a template mistake shows when it is built.

    The campaign must be committed for the renderer to read it; if its templates
    fail, it is deleted again, so a failed build leaves nothing behind.
    """

    try:
        _render(app, campaign_id)
    except InputError:
        with app.session() as session:
            session.delete(session.get_one(Campaign, campaign_id))
        raise


def _render(app: Newsletter, campaign_id: int, session: Session | None = None) -> None:
    """Render a campaign and throw the result away: InputError if it cannot be rendered."""
    # Imported here because render reads month names from this module (a cycle that goes
    # when month names come from the locale layer).

    render_campaign(app, campaign_id, session=session)


def order_for_bulletin(app: Newsletter, items: Sequence[Item]) -> list[Item]:
    """Sections in the configured kind order (unknown kinds last), newest first within one."""
    order = {kind: i for i, kind in enumerate(app.config.editions.kind_order)}
    return sorted(
        items,
        key=lambda item: (order.get(item.kind, len(order)), item.kind, -item.date.toordinal(),
                          item.id),
    )  # fmt: skip


def _read_intro(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise InputError(f"{path}: intro file not found") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0] + "…"


def _preheader(intro: str, items: Sequence[Item]) -> str:
    """The inbox preview line: the intro's start, else the first titles."""
    if intro.strip():
        return _shorten(intro, 140)
    return _shorten(" · ".join(item.title for item in items), 140)


def _check_transport(app: Newsletter, name: str | None) -> str:
    if name:
        app.config.transport(name)  # raises a ConfigError naming the known ones
    return name or ""


def _set_audience(
    app: Newsletter,
    session: Session,
    campaign: Campaign,
    list_names: Sequence[str],
    segment_name: str | None,
) -> None:
    """Lists by name (else the configured default lists) and an optional segment."""
    if segment_name:
        segment = session.scalar(select(Segment).where(Segment.name == segment_name))
        if segment is None:
            raise NotFound(f"no segment named {segment_name!r} (see `newsletter segments list`)")
        campaign.segment = segment
    names = list(list_names) or ([] if segment_name else app.config.editions.default_lists)
    if names:
        found = {
            row.name: row
            for row in session.scalars(select(MailingList).where(MailingList.name.in_(names)))
        }
        missing = [name for name in names if name not in found]
        if missing:
            raise NotFound(
                f"no list named {', '.join(map(repr, missing))} (see `newsletter lists list`)"
            )
        archived = [name for name in names if found[name].archived]
        if archived:
            raise InvalidState(f"list {', '.join(map(repr, archived))} is archived")
        campaign.lists = [found[name] for name in names]
    elif not segment_name:
        campaign.lists = list(
            session.scalars(select(MailingList).where(MailingList.archived.is_(False)))
        )


# --- status ------------------------------------------------------------------


def approve(app: Newsletter, campaign_id: int, *, actor: str) -> CampaignSummary:
    """draft → approved, recording who approved and when, and freezing what was approved.

    Under four-eyes approval (`admin.approval = "second-person"`, the default),
    whoever built the campaign or last edited it may not approve it, as long as
    another enabled staff account may approve: a one-person installation can
    still send, and the audit trail shows that it approved its own work.

    The content (subject, preheader, intro, greeting, the items' text and links)
    is rendered first, so that a template or content error refuses the approval,
    and then frozen in the campaign's snapshot (newsletter.snapshot): sends and
    the archive read the snapshot, so a later edit of an item changes nothing
    that was approved.
    """
    others = _other_approvers(app, actor)
    with app.session() as session:
        if others and actor in audit.campaign_authors(session, campaign_id):
            raise InvalidState(
                f"campaign {campaign_id} was built or last edited by {actor}; a second "
                'person must approve it (admin.approval = "second-person")'
            )
        campaign = _get(session, campaign_id)
        if campaign.status == lifecycle.DRAFT:
            _render(app, campaign_id, session)
        frozen = freeze(campaign, campaign.items)
        lifecycle.apply(session, campaign_id, "approve", actor,
                        approved_by=actor, approved_at=utcnow(), snapshot=frozen)  # fmt: skip
        session.expire_all()
        return campaign_summary(session, _get(session, campaign_id))


def _other_approvers(app: Newsletter, actor: str) -> int:
    """Enabled staff accounts, other than `actor`, that may approve (0 with approval = self)."""
    if app.config.admin.approval != "second-person":
        return 0
    approvers = staff.accounts_with_permission(app, lifecycle.ACTIONS["approve"].permission)
    return sum(1 for account in approvers if account.actor != actor)


# --- reading -----------------------------------------------------------------


def _get(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(
        Campaign,
        campaign_id,
        options=[selectinload(Campaign.lists), selectinload(Campaign.entries)],
    )
    if campaign is None:
        raise NotFound(f"no campaign with id {campaign_id} (see `newsletter campaigns list`)")
    return campaign


def find_bulletin(app: Newsletter, month: str) -> int | None:
    """The newest bulletin for a month that was not cancelled, if any (the demo reuses it)."""
    with app.session() as session:
        return session.scalar(
            select(Campaign.id)
            .where(Campaign.kind == "bulletin", Campaign.month == month)
            .where(Campaign.status != "cancelled")
            .order_by(Campaign.id.desc())
            .limit(1)
        )


@dataclass(frozen=True)
class CampaignSummary:
    """A campaign as `campaigns list` and the console's lists show it."""

    id: int
    kind: str
    status: str
    month: str | None
    subject: str
    language: str
    lists: list[str]
    segment: str | None
    items: int
    scheduled_at: datetime | None
    created_at: datetime
    # Said when a campaign is built: another draft for the same month and audience.
    warnings: tuple[str, ...] = field(default=(), kw_only=True)


@dataclass(frozen=True)
class CampaignItemLine:
    id: int
    kind: str
    date: date
    title: str


@dataclass(frozen=True)
class CampaignDetail(CampaignSummary):
    """Everything `campaigns show` prints about one campaign."""

    intro: str
    preheader: str
    transport: str
    approved_by: str | None
    approved_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    note: str | None
    # How many the audience query finds now (None when not counted), and the ledger's
    # rows by delivery status.
    recipients: int | None
    deliveries: dict[str, int]
    item_list: list[CampaignItemLine]


def _summary_fields(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "kind": campaign.kind,
        "status": campaign.status,
        "month": campaign.month or None,
        "subject": campaign.subject,
        "language": campaign.language,
        "lists": [lst.name for lst in campaign.lists],
        "segment": campaign.segment.name if campaign.segment else None,
        "items": len(campaign.entries),
        "scheduled_at": campaign.scheduled_at,
        "created_at": campaign.created_at,
    }


def campaign_summary(session: Session, campaign: Campaign) -> CampaignSummary:
    return CampaignSummary(**_summary_fields(campaign))


def list_campaigns(app: Newsletter, *, status: str | None = None) -> list[CampaignSummary]:
    if status is not None and status not in CAMPAIGN_STATUSES:
        raise InputError(f"unknown status {status!r} (one of: {', '.join(CAMPAIGN_STATUSES)})")
    with app.session() as session:
        query = (
            select(Campaign)
            .options(selectinload(Campaign.lists), selectinload(Campaign.entries))
            .order_by(Campaign.id)
        )
        if status:
            query = query.where(Campaign.status == status)
        return [campaign_summary(session, c) for c in session.scalars(query)]


def show_campaign(app: Newsletter, campaign_id: int, *, counts: bool = True) -> CampaignDetail:
    """Everything about one campaign, with its items and delivery counts.

    `counts=False` leaves out the audience and delivery counts (None and {}):
    resolving the audience of a million subscribers takes seconds, and the
    console's pages that only show the campaign must answer at once.
    """

    with app.session() as session:
        campaign = _get(session, campaign_id)
        deliveries: dict[str, int] = {}
        audience = None
        if counts:
            # The send counters, kept with the ledger: one row, whatever the campaign's size.
            deliveries = counters.read(session.connection(), campaign_id).counts
            audience = (
                session.scalar(
                    select(func.count()).select_from(recipients_query(session, campaign).subquery())
                )
                or 0
            )
        return CampaignDetail(
            **_summary_fields(campaign),
            intro=campaign.intro,
            preheader=campaign.preheader,
            transport=campaign.transport or app.config.default_transport,
            approved_by=campaign.approved_by or None,
            approved_at=campaign.approved_at,
            started_at=campaign.started_at,
            finished_at=campaign.finished_at,
            note=campaign.status_note or None,
            recipients=audience,
            deliveries=deliveries,
            item_list=[
                CampaignItemLine(id=item.id, kind=item.kind, date=item.date, title=item.title)
                for item in campaign.items
            ],
        )


# --- texts in more languages ---------------------------------------------------


@dataclass(frozen=True)
class EditionText:
    """A campaign's subject, intro and preheader in one language (empty: the default's)."""

    id: int
    language: str
    subject: str
    intro: str
    preheader: str


def set_text(
    app: Newsletter,
    campaign_id: int,
    language: str,
    *,
    actor: str,
    subject: str | None = None,
    intro: str | None = None,
    intro_file: str | Path | None = None,
    preheader: str | None = None,
) -> EditionText:
    """Give a campaign its subject, intro or preheader in another language.

    Readers of `language` see these instead of the default language's
    (newsletter.render); a field left empty falls back to it. Changing the
    texts of an approved campaign is an edit: it goes back to draft, to be
    approved again.
    """
    code = locale.base_language(language)
    if not code or not locale.is_known_language(code):
        raise InputError(f"language {language!r} is not a language code such as 'ru'")
    if intro_file is not None:
        intro = _read_intro(intro_file)
    with app.session() as session:
        campaign = _get(session, campaign_id)
        if code == campaign.language:
            raise InputError(
                f"campaign {campaign_id} is in {code!r} already; its own subject and intro are "
                "its default language's"
            )
        lifecycle.apply(
            session, campaign_id, "edit", actor,
            detail=f"texts in {code}", approved_by="", approved_at=None,
        )  # fmt: skip
        text = session.get(CampaignText, (campaign_id, code))
        if text is None:
            text = CampaignText(campaign_id=campaign_id, language=code)
            session.add(text)
        if subject is not None:
            text.subject = " ".join(subject.split())[:500]
        if intro is not None:
            text.intro = intro
        if preheader is not None:
            text.preheader = " ".join(preheader.split())[:500]
        session.flush()
        return EditionText(campaign_id, code, text.subject, text.intro, text.preheader)
