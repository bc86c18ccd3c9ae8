"""`deliveries ID --failed`: who did not get a campaign, including those whose message
bounced or was complained about after it was sent, each with the reason.

Runs on SQLite, and on PostgreSQL too when NEWSLETTER_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import json

from sqlalchemy import select
from test_bounces import bounce_box, sample, sent_campaign

from newsletter import dispatch
from newsletter.feedback import FeedbackEvent, fetch_bounces, open_mailbox, record_feedback, summary
from newsletter.models import Delivery, Subscriber


def test_failed_lists_later_bounces_and_complaints_with_their_reason(
    make_app, run_cli, tmp_path, monkeypatch
) -> None:
    app = make_app()
    campaign_id, ids = sent_campaign(app, 4)
    bounced, complained = "person1@example.org", "person2@example.org"
    path, _ = bounce_box(tmp_path, {"hard": sample("hard", bounced, ids[bounced])})
    fetch_bounces(app, open_mailbox(app, maildir=str(path)))
    with app.session() as session:
        delivery_id = session.scalar(
            select(Delivery.id)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.campaign_id == campaign_id, Subscriber.email == complained)
        )
    record_feedback(
        app,
        [
            FeedbackEvent(
                type="complaint",
                source="sendgrid",
                address=complained,
                delivery_id=delivery_id,
                detail={"event": "spamreport", "reason": "marked as spam"},
            )
        ],
    )

    rows = dispatch.list_deliveries(app, campaign_id, failed_only=True)
    reasons = {row.address: row.reason for row in rows}
    assert set(reasons) == {bounced, complained}
    assert reasons[bounced].startswith("hard_bounce (mailbox): smtp; 550 5.1.1")
    assert reasons[complained] == "complaint (sendgrid): marked as spam"
    # Everyone else got it, and says so with no reason.
    every = dispatch.list_deliveries(app, campaign_id)
    assert sum(1 for row in every if row.reason == "") == 2
    # More rows than a page reads the whole campaign's events instead: the same answer.
    monkeypatch.setattr(summary, "PAGE_AT_MOST", 1)
    assert dispatch.list_deliveries(app, campaign_id) == every
    assert dispatch.list_deliveries(app, campaign_id, failed_only=True) == rows
    monkeypatch.undo()

    listing = run_cli("deliveries", str(campaign_id), "--failed", "--json")
    assert listing.returncode == 0, listing.stderr
    assert {row["address"] for row in json.loads(listing.stdout)} == {bounced, complained}
    table = run_cli("deliveries", str(campaign_id), "--failed")
    assert "marked as spam" in table.stdout and "550 5.1.1" in table.stdout
