"""Resolving a campaign's audience to subscribers, in one set-based query.

Who a campaign goes to: the confirmed members of its lists (archived lists
count for nothing), narrowed by its segment, minus every subscriber who is not
active (unsubscribed, bounced, complained, blocklisted) and every address on
the suppression list, one row per subscriber. A campaign with a segment and no
lists goes to the segment's members among everyone confirmed on any list that
is not archived; a campaign with neither goes to nobody.

The same SELECT gives the count shown before sending and feeds the
`INSERT INTO deliveries … SELECT` that writes the ledger, so the two can never
disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, false, func, select
from sqlalchemy.orm import Session

from newsletter.audience.segment_rules import compile_rules
from newsletter.models import (
    Campaign,
    MailingList,
    Segment,
    Subscriber,
    Subscription,
    Suppression,
    campaign_lists,
)


def audience_query(
    session: Session,
    *,
    list_ids: Sequence[int] | Select[Any] | None,
    rules: dict[str, Any] | None = None,
) -> Select[Any]:
    """SELECT subscriber_id of the reachable members of some lists, narrowed by segment rules.

    `list_ids` None means every list that is not archived (a segment-only audience).

    Shaped for a million subscribers on SQLite and PostgreSQL alike: membership
    is an IN over the (list_id, status) index of subscriptions, so one
    subscriber on two lists still yields one row without a DISTINCT over the
    whole result; suppression is a NOT EXISTS probe into the unique index on
    suppressions.email_hash; the segment is a plain WHERE on the same rows.
    """
    member_lists = select(MailingList.id).where(MailingList.archived.is_(False))
    if list_ids is not None:
        member_lists = member_lists.where(MailingList.id.in_(list_ids))
    members = select(Subscription.subscriber_id).where(
        Subscription.status == "confirmed", Subscription.list_id.in_(member_lists)
    )
    suppressed = exists(
        select(Suppression.id).where(Suppression.email_hash == Subscriber.email_hash)
    )
    query = select(Subscriber.id.label("subscriber_id")).where(
        Subscriber.status == "active", Subscriber.id.in_(members), ~suppressed
    )
    if rules:
        query = query.where(segment_condition(session, rules))
    return query


def segment_condition(session: Session, rules: dict[str, Any]) -> ColumnElement[bool]:
    """A segment's rules as a WHERE condition on subscribers, for this session's database."""
    return compile_rules(rules, session.get_bind().dialect.name)


def recipients_query(session: Session, campaign: Campaign) -> Select[Any]:
    """SELECT of the distinct subscriber ids a campaign goes to (one column: subscriber_id).

    The same query gives the count shown before sending and feeds the
    INSERT … SELECT that writes the deliveries ledger.
    """
    has_lists = session.scalar(select(exists().where(campaign_lists.c.campaign_id == campaign.id)))
    rules = None
    if campaign.segment_id is not None:
        segment = session.get(Segment, campaign.segment_id)
        rules = segment.definition if segment is not None else None
    if not has_lists and not rules:
        # Neither lists nor a segment: nobody, never everybody.
        return select(Subscriber.id.label("subscriber_id")).where(false())
    list_ids = (
        select(campaign_lists.c.list_id).where(campaign_lists.c.campaign_id == campaign.id)
        if has_lists
        else None
    )
    return audience_query(session, list_ids=list_ids, rules=rules)


def count_query(session: Session, query: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def count_recipients(session: Session, campaign: Campaign) -> int:
    """How many people a campaign would reach now: the count of `recipients_query`."""
    return count_query(session, recipients_query(session, campaign))
