"""Saved segments: named, dynamic filters over subscribers (rules in segment_rules).

A segment is checked when it is saved, so a mistake is reported then, naming
the bad part, never in the middle of a send. Its members are worked out each
time it is used: whoever matches the rules at that moment.

Two counts describe a segment: *matching* (every subscriber the rules select,
whatever their status) and *reachable* (those a campaign addressed to the
segment alone would mail: active, confirmed on some list that is not
archived, not suppressed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter import audit
from newsletter.app import Newsletter
from newsletter.audience.lists import LIST_NAME_RE
from newsletter.audience.resolve import audience_query, count_query, segment_condition
from newsletter.audience.segment_rules import (
    describe_rules,
    parse_rules,
    referenced_attributes,
    validate_rules,
)
from newsletter.audience.topics import Topics
from newsletter.errors import InputError, InvalidState, NotFound
from newsletter.models import Campaign, MailingList, Segment, Subscriber, utcnow


def check_segment_name(name: str) -> str:
    if not LIST_NAME_RE.match(name):
        raise InputError(
            f"segment name {name!r} is not a slug: use lower-case letters, digits, '-' and '_' "
            "(for example russian-speakers)"
        )
    return name


def get_segment(session: Session, name: str) -> Segment:
    found = session.scalar(select(Segment).where(Segment.name == name))
    if found is not None:
        return found
    known = list(session.scalars(select(Segment.name).order_by(Segment.name).limit(20)))
    hint = f"known: {', '.join(known)}" if known else "there are none yet"
    raise NotFound(
        f"no segment named {name!r} ({hint}); create one with `newsletter segments create`"
    )


def read_rules_file(path: str | Path) -> tuple[str, str]:
    """(text, format) of a definition file; the format from its suffix, else guessed."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    fmt = {".json": "json", ".toml": "toml"}.get(file.suffix.lower(), "")
    return text, fmt


def matching_query(session: Session, rules: dict[str, Any]) -> Select[Any]:
    """SELECT subscriber_id of every subscriber the rules select, whatever their status."""
    return select(Subscriber.id.label("subscriber_id")).where(segment_condition(session, rules))


@dataclass(frozen=True, slots=True)
class RuleCounts:
    """How many subscribers rules select, and how many of those a campaign reaches."""

    matching: int
    reachable: int


def _counts(session: Session, rules: dict[str, Any]) -> RuleCounts:
    return RuleCounts(
        count_query(session, matching_query(session, rules)),
        count_query(session, audience_query(session, list_ids=None, rules=rules)),
    )


def _unused_attributes(session: Session, rules: dict[str, Any]) -> list[str]:
    """Attributes the rules name that no subscriber has: likely a typo, worth a warning."""
    unused = []
    for key in referenced_attributes(rules):
        present = session.scalar(
            select(exists().where(Subscriber.attributes[key].as_string().is_not(None)))
        )
        if not present:
            unused.append(key)
    return unused


@dataclass(frozen=True)
class SegmentSummary:
    """A segment as `segments list` and the console show it."""

    id: int
    name: str
    description: str
    # The rules in words ("region is Asia and language is ru").
    rules: str
    # The rules themselves: user data, a mapping by nature (newsletter.audience.segment_rules).
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SegmentSaved(SegmentSummary):
    """`save_segment`: the segment, how many it selects and reaches, and any warnings."""

    matching: int
    reachable: int
    warnings: list[str]


@dataclass(frozen=True)
class SegmentMember:
    email: str
    name: str
    language: str


@dataclass(frozen=True)
class SegmentDetail(SegmentSummary):
    """`segments show`: the segment, its counts, its reachable readers by language and a few
    of them."""

    matching: int
    reachable: int
    languages: dict[str, int]
    sample: list[SegmentMember]


def segment_summary(segment: Segment) -> SegmentSummary:
    return SegmentSummary(
        id=segment.id,
        name=segment.name,
        description=segment.description,
        rules=describe_rules(segment.definition),
        definition=segment.definition,
        created_at=segment.created_at,
        updated_at=segment.updated_at,
    )


def save_segment(
    app: Newsletter,
    name: str,
    *,
    text: str | None = None,
    path: str | Path | None = None,
    description: str | None = None,
    replace: bool = False,
    must_exist: bool = False,
    actor: str,
) -> SegmentSaved:
    """Create (or with `replace`, redefine) a segment from JSON or TOML rules, in the audit
    trail with `actor`.

    `must_exist` is `segments edit`: the segment must be there already.

    Returns the segment with its counts and any warnings (an attribute no
    subscriber has).
    """
    check_segment_name(name)
    if text is None and path is None and must_exist:
        # An edit of the description alone keeps the rules as they are.
        with app.session() as session:
            text = json.dumps(get_segment(session, name).definition)
    if (text is None) == (path is None):
        raise InputError("give the rules either inline or as a file, not both or neither")
    if path is not None:
        text, fmt = read_rules_file(path)
        where = str(path)
    else:
        fmt, where = "", "segment definition"
    assert text is not None
    raw, file_description = parse_rules(text, where=where, fmt=fmt or None)
    try:
        with app.session() as session:
            list_names = set(session.scalars(select(MailingList.name)))
            rules = validate_rules(
                raw,
                list_names=list_names,
                where=where,
                topics=Topics.from_config(app.config.web),
            )
            segment = session.scalar(select(Segment).where(Segment.name == name))
            if segment is None and must_exist:
                raise NotFound(f"no segment named {name!r} (see `newsletter segments list`)")
            if segment is not None and not replace:
                raise InvalidState(
                    f"a segment named {name!r} already exists; add --replace to redefine it"
                )
            if segment is None:
                segment = Segment(name=name)
                session.add(segment)
            segment.definition = rules
            segment.description = (
                description if description is not None else file_description or segment.description
            )
            segment.updated_at = utcnow()
            session.flush()
            audit.record(session, actor, "segment.save", "segment", segment.id, name)
            warnings = [
                f"no subscriber has an attribute {key!r} (yet); check the spelling"
                for key in _unused_attributes(session, rules)
            ]
            counts = _counts(session, rules)
            return SegmentSaved(
                **asdict(segment_summary(segment)),
                matching=counts.matching,
                reachable=counts.reachable,
                warnings=warnings,
            )
    except IntegrityError:
        raise InvalidState(f"a segment named {name!r} already exists") from None


def list_segments(app: Newsletter) -> list[SegmentSummary]:
    with app.session() as session:
        return [
            segment_summary(segment)
            for segment in session.scalars(select(Segment).order_by(Segment.name))
        ]


def show_segment(app: Newsletter, name: str, *, sample: int = 5) -> SegmentDetail:
    """A segment with its counts, its reachable members by language (the editions each
    language's readers get) and a few of them."""
    with app.session() as session:
        segment = get_segment(session, name)
        rules = segment.definition
        members = audience_query(session, list_ids=None, rules=rules).subquery()
        rows = session.execute(
            select(Subscriber.email, Subscriber.name, Subscriber.language)
            .join(members, members.c.subscriber_id == Subscriber.id)
            .order_by(Subscriber.id)
            .limit(sample)
        )
        sample_rows = [SegmentMember(*row) for row in rows]
        # One GROUP BY over the same members: how many readers each language has.
        by_language = session.execute(
            select(Subscriber.language, func.count())
            .join(members, members.c.subscriber_id == Subscriber.id)
            .group_by(Subscriber.language)
            .order_by(func.count().desc(), Subscriber.language)
        )
        counts = _counts(session, rules)
        return SegmentDetail(
            **asdict(segment_summary(segment)),
            matching=counts.matching,
            reachable=counts.reachable,
            languages={language: count for language, count in by_language},
            sample=sample_rows,
        )


@dataclass(frozen=True)
class SegmentDeleted:
    id: int
    name: str
    # Campaigns that had gone out with it: they keep their ledger; their segment is cleared.
    past_campaigns: tuple[int, ...]


def delete_segment(app: Newsletter, name: str, *, actor: str) -> SegmentDeleted:
    """Delete a segment; refused while a campaign that has not gone out uses it.

    Deleting it under a draft or an approved campaign would widen that
    campaign's audience to its whole lists, so those must change segment first
    (`newsletter edition edit ID --segment …` or `--no-segment`).
    """
    with app.session() as session:
        segment = get_segment(session, name)
        using = list(
            session.execute(
                select(Campaign.id, Campaign.status)
                .where(Campaign.segment_id == segment.id)
                .order_by(Campaign.id)
            )
        )
        open_ = [f"{cid} ({status})" for cid, status in using if status not in _GONE_OUT]
        if open_:
            raise InvalidState(
                f"segment {name!r} is the audience of campaign {', '.join(open_)}; give "
                "that campaign another segment first (newsletter edition edit ID --segment …)"
            )
        deleted = SegmentDeleted(
            id=segment.id, name=segment.name, past_campaigns=tuple(cid for cid, _ in using)
        )
        session.delete(segment)
        audit.record(session, actor, "delete", "segment", deleted.id, name)
        return deleted


# Campaigns past sending: a deleted segment no longer matters to them.
_GONE_OUT = ("sent", "cancelled", "missed")


def count_rules(app: Newsletter, raw: Any) -> RuleCounts:
    """How many subscribers rules (not yet saved) select, and how many of those are reachable.

    The console's segment builder asks this as staff type; the rules are checked
    exactly as `save_segment` checks them.
    """
    with app.session() as session:
        list_names = set(session.scalars(select(MailingList.name)))
        rules = validate_rules(raw, list_names=list_names, where="segment definition")
        return _counts(session, rules)
