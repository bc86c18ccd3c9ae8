"""The database tables, one module per domain; import models from here."""

from newsletter.models.audience import (
    SUBSCRIBER_STATUSES,
    SUBSCRIPTION_STATUSES,
    AudienceCount,
    ListMemberChange,
    ListMemberCount,
    MailingList,
    Segment,
    Subscriber,
    Subscription,
    Suppression,
)
from newsletter.models.audit import AuditEvent
from newsletter.models.base import Base, utcnow
from newsletter.models.campaigns import (
    CAMPAIGN_KINDS,
    CAMPAIGN_STATUSES,
    Campaign,
    CampaignItem,
    CampaignLink,
    CampaignText,
    campaign_lists,
)
from newsletter.models.deliveries import (
    DELIVERY_STATUSES,
    Delivery,
    Event,
    Meta,
    SendCounters,
    TransportHour,
    TransportRate,
)
from newsletter.models.feedback import FeedbackReceipt, FeedbackWeek, FeedbackWeekChange
from newsletter.models.items import ITEM_KINDS, Item
from newsletter.models.notices import NoticeSent
from newsletter.models.scheduling import (
    SCHEDULE_OUTCOMES,
    ScheduleRun,
    ServiceInstance,
    TaskFailure,
    scheduler_jobs,
)
from newsletter.models.staff import StaffUser

__all__ = [
    "CAMPAIGN_KINDS",
    "CAMPAIGN_STATUSES",
    "DELIVERY_STATUSES",
    "ITEM_KINDS",
    "SCHEDULE_OUTCOMES",
    "SUBSCRIBER_STATUSES",
    "SUBSCRIPTION_STATUSES",
    "AudienceCount",
    "AuditEvent",
    "Base",
    "Campaign",
    "CampaignItem",
    "CampaignLink",
    "CampaignText",
    "Delivery",
    "Event",
    "FeedbackReceipt",
    "FeedbackWeek",
    "FeedbackWeekChange",
    "Item",
    "ListMemberChange",
    "ListMemberCount",
    "MailingList",
    "Meta",
    "NoticeSent",
    "ScheduleRun",
    "Segment",
    "SendCounters",
    "ServiceInstance",
    "StaffUser",
    "Subscriber",
    "Subscription",
    "Suppression",
    "TaskFailure",
    "TransportHour",
    "TransportRate",
    "campaign_lists",
    "scheduler_jobs",
    "utcnow",
]
