"""The dispatcher: the deliveries ledger, claims, the send engine, retries and workers.

Front door (newsletter.dispatch.service): `send_campaign`, `send_test`, `dry_run`,
`campaign_status`, `recount_campaign`, `list_deliveries`, `pause_campaign`, `resume_campaign`,
`cancel_campaign`, `run_worker`, `describe_transport`. The engine's crash-safety
guarantee is documented in newsletter.dispatch.engine.
"""

from typing import TYPE_CHECKING

from newsletter.lazy import lazy_exports

if TYPE_CHECKING:
    from newsletter.dispatch.engine import CampaignSender, EngineOptions, RunReport
    from newsletter.dispatch.progress import Progress
    from newsletter.dispatch.service import (
        DryRun,
        Recount,
        SendOutcome,
        TestSend,
        campaign_status,
        cancel_campaign,
        describe_transport,
        dry_run,
        list_deliveries,
        log_run_report,
        pause_campaign,
        recount_campaign,
        resume_campaign,
        run_event_name,
        run_worker,
        send_campaign,
        send_test,
        start_campaign,
    )

# Each name is loaded from its submodule on first use (see newsletter/lazy.py).
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "CampaignSender": "engine",
        "EngineOptions": "engine",
        "RunReport": "engine",
        "Progress": "progress",
        "DryRun": "service",
        "Recount": "service",
        "SendOutcome": "service",
        "TestSend": "service",
        "campaign_status": "service",
        "cancel_campaign": "service",
        "describe_transport": "service",
        "dry_run": "service",
        "list_deliveries": "service",
        "log_run_report": "service",
        "pause_campaign": "service",
        "recount_campaign": "service",
        "resume_campaign": "service",
        "run_event_name": "service",
        "run_worker": "service",
        "send_campaign": "service",
        "send_test": "service",
        "start_campaign": "service",
    },
)

__all__ = [
    "CampaignSender",
    "DryRun",
    "EngineOptions",
    "Progress",
    "Recount",
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
    "recount_campaign",
    "resume_campaign",
    "run_event_name",
    "run_worker",
    "send_campaign",
    "send_test",
    "start_campaign",
]
