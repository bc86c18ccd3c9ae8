"""The dispatcher: the deliveries ledger, claims, the send engine, retries and workers.

Front door (newsletter.dispatch.service): `send_campaign`, `send_test`, `dry_run`,
`campaign_status`, `list_deliveries`, `pause_campaign`, `resume_campaign`,
`cancel_campaign`, `run_worker`, `describe_transport`. The engine's crash-safety
guarantee is documented in newsletter.dispatch.engine.
"""

from newsletter.dispatch.engine import CampaignSender, EngineOptions, RunReport
from newsletter.dispatch.progress import Progress
from newsletter.dispatch.service import (
    DryRun,
    SendOutcome,
    TestSend,
    campaign_status,
    cancel_campaign,
    describe_transport,
    dry_run,
    list_deliveries,
    log_run_report,
    pause_campaign,
    resume_campaign,
    run_event_name,
    run_worker,
    send_campaign,
    send_test,
    start_campaign,
)

__all__ = [
    "CampaignSender",
    "DryRun",
    "EngineOptions",
    "Progress",
    "RunReport",
    "SendOutcome",
    "TestSend",
    "campaign_status",
    "cancel_campaign",
    "describe_transport",
    "dry_run",
    "list_deliveries",
    "log_run_report",
    "pause_campaign",
    "resume_campaign",
    "run_event_name",
    "run_worker",
    "send_campaign",
    "send_test",
    "start_campaign",
]
