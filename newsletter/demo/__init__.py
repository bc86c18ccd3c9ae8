"""The demo: the whole pipeline on bundled content, with no config at all.

It imports the bundled example items (a news listing, and a folder of Markdown
posts with one item in English and Russian) and the sample subscriber lists (in
English, Russian, French and Spanish), builds the March 2019 and June 2019
bulletins, approves them and delivers one message per subscriber, in the
subscriber's language, to the configured transport (the ./outbox maildir by
default). Every step finds what an earlier run made and reuses it, so running
the demo twice duplicates nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from newsletter import audience, dispatch, editions, items
from newsletter.actors import DEMO
from newsletter.app import Newsletter, bundled_path

CONTENT = Path(__file__).resolve().parent
NEWS_LISTING = CONTENT / "news.txt"
# Markdown posts; one is a Russian version of another (front matter `translation_of`).
POSTS = CONTENT / "posts"
# The bundled listing, like many real exports, lost the date line of its first item.
NEWS_FIRST_MONTH = "2019-06"
MONTHS = ("2019-03", "2019-06")
# Sample list files in subscribers/ and the list each one fills.
LISTS = {
    "members": ("members.csv", "Members", "Member organisations and individual members."),
    "partners": ("partners.csv", "Partners", "Partner organisations, funders and allies."),
}


@dataclass
class DemoReport:
    items_added: int = 0
    items_updated: int = 0
    items_unchanged: int = 0
    subscribers: dict[str, dict[str, int]] = field(default_factory=dict)
    campaigns: list[dict[str, Any]] = field(default_factory=list)
    database: str = ""
    outbox: str = ""


def run_demo(app: Newsletter) -> DemoReport:
    report = DemoReport(database=app.config.database.url)
    imported = items.import_source(
        app, str(NEWS_LISTING), month=NEWS_FIRST_MONTH, source_name="demo:news.txt", actor=DEMO
    )
    posts = items.import_source(app, str(POSTS), source_name="demo:posts", actor=DEMO)
    report.items_added = imported.added + posts.added
    report.items_updated = imported.updated + posts.updated
    report.items_unchanged = imported.unchanged + posts.unchanged

    samples = bundled_path("subscribers")
    for name, (file_name, title, description) in LISTS.items():
        audience.ensure_list(
            app, name, title=title, description=description, optin="double", actor=DEMO
        )
        result = audience.import_subscribers(app, samples / file_name, list_name=name, actor=DEMO)
        report.subscribers[name] = result.counts()

    for month in MONTHS:
        campaign_id = editions.find_bulletin(app, month)
        if campaign_id is None:
            campaign_id = editions.new_bulletin(app, month, lists=list(LISTS), actor=DEMO).id
        summary = editions.show_campaign(app, campaign_id)
        if summary.status == "draft":
            editions.approve(app, campaign_id, actor=DEMO)
        outcome = (
            dispatch.send_campaign(app, campaign_id, actor=DEMO)
            if summary.status != "sent"
            else None
        )
        summary = editions.show_campaign(app, campaign_id)
        report.campaigns.append(
            {
                "id": campaign_id,
                "month": month,
                "subject": summary.subject,
                "status": summary.status,
                "items": summary.items,
                "recipients": summary.recipients,
                "sent_now": outcome.sent if outcome else 0,
                "deliveries": summary.deliveries,
            }
        )
    report.outbox = dispatch.describe_transport(app)
    return report
