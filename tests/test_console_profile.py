"""A subscriber's profile: lists and consent, each delivery and each feedback event,
newest first, a page at a time, addresses masked for viewers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import PasswordHasher
from consolekit import make_staff, signed_in

from newsletter import staff
from newsletter.app import Newsletter
from newsletter.audience import history
from newsletter.models import (
    Campaign,
    Delivery,
    Event,
    MailingList,
    Subscriber,
    Subscription,
    utcnow,
)

CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
ADDRESS = "ana.lopez@example.org"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(staff, "_hasher", lambda: CHEAP_HASHER)


@pytest.fixture
def person(app: Newsletter) -> int:
    """Ana: on one list, five campaigns sent to her (the newest failed), three events."""
    make_staff(app, ("viewer", "admin"))
    now = utcnow()
    with app.session() as session:
        ana = Subscriber(email=ADDRESS, email_key=ADDRESS, name="Ana", language="es")
        members = MailingList(name="members", title="Members", optin="single")
        session.add(Subscription(subscriber=ana, mailing_list=members, status="confirmed",
                                 consent_at=now, consent_method="form",
                                 consent_text="Yes, send me the bulletin"))  # fmt: skip
        session.flush()
        for month in range(1, 6):
            campaign = Campaign(kind="bulletin", status="sent", month=f"2025-{month:02d}",
                                subject=f"Bulletin {month}", intro="")  # fmt: skip
            session.add(campaign)
            session.flush()
            failed = month == 5
            session.add(Delivery(
                campaign_id=campaign.id, subscriber_id=ana.id,
                status="failed" if failed else "sent",
                sent_at=None if failed else now - timedelta(days=30 * (5 - month)),
                last_response=f"550 5.1.1 <{ADDRESS}>: no such user" if failed else "250 ok",
            ))  # fmt: skip
        events = [
            ("soft_bounce", {"diagnostic": "452 mailbox full"}),
            ("complaint", {"reason": "marked as spam"}),
            ("hard_bounce", {"diagnostic": f"550 {ADDRESS} unknown"}),
        ]
        for kind, detail in events:
            session.add(Event(subscriber_id=ana.id, type=kind, source="mailbox", detail=detail))
        return ana.id


def test_the_profile_shows_deliveries_and_events_newest_first(app: Newsletter, person) -> None:
    page = signed_in(app, "admin").get(f"/admin/audience/subscribers/{person}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Yes, send me the bulletin" in text
    order = [text.index(f"Bulletin {n}</a>") for n in (5, 4, 3, 2, 1)]
    assert order == sorted(order)
    assert f"550 5.1.1 &lt;{ADDRESS}&gt;: no such user" in text
    events = [text.index(k) for k in ("hard_bounce (mailbox)", "complaint (mailbox)",
                                       "soft_bounce (mailbox)")]  # fmt: skip
    assert events == sorted(events)


def test_viewers_see_addresses_masked_in_reasons_too(app: Newsletter, person) -> None:
    text = (
        signed_in(app, "viewer").get(f"/admin/audience/subscribers/{person}").get_data(as_text=True)
    )
    assert ADDRESS not in text and "no such user" in text and "unknown" in text


def test_history_pages_by_keyset_and_loses_nothing(
    app: Newsletter, person, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history, "PAGE", 2)
    console = signed_in(app, "admin")
    seen: list[str] = []
    path = f"/admin/audience/subscribers/{person}"
    while True:
        text = console.get(path).get_data(as_text=True)
        seen += [f"Bulletin {n}" for n in range(5, 0, -1) if f"Bulletin {n}</a>" in text]
        if "Older deliveries" not in text:
            break
        older = text.split("Older deliveries")[0].rsplit('href="', 1)[1].split('"')[0]
        path = older.replace("&amp;", "&")
    assert seen == [f"Bulletin {n}" for n in range(5, 0, -1)]
