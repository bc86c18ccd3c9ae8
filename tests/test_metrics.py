"""/metrics over real HTTP: off by default, the database's counts when on, never an address."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert
from werkzeug.serving import make_server

from newsletter.app import Newsletter
from newsletter.dispatch import rates, send_campaign
from newsletter.models import Event, ServiceInstance, utcnow
from newsletter.web import make_wsgi_app
from tests.test_dispatch_support import seed_campaign


@contextmanager
def serving(app: Newsletter) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, make_wsgi_app(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def get(url: str, token: str = "") -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics_are_off_by_default(app: Newsletter) -> None:
    with serving(app) as base:
        status, _ = get(base + "/metrics")
    assert status == 404


def test_metrics_report_the_databases_counts_and_no_address(make_app) -> None:
    app = make_app({"metrics": {"enabled": True}})
    first = seed_campaign(app, 5)
    send_campaign(app, first, actor="tester")
    second = seed_campaign(app, 3, prefix="waiting")
    send_campaign(app, second, actor="tester", detach=True)  # written, not sent: queued
    with app.engine.begin() as conn:
        rates.ensure_row(conn, "outbox")
        rates.add_throttled(conn, "outbox", 2)
        conn.execute(
            insert(Event.__table__),
            [
                {"type": "hard_bounce", "source": "smtp", "detail": {}, "created_at": utcnow()},
                {"type": "complaint", "source": "ses", "detail": {}, "created_at": utcnow()},
                {"type": "complaint", "source": "ses", "detail": {}, "created_at": utcnow()},
            ],
        )
    with app.session() as session:
        session.add(ServiceInstance(id="host:1:abc", host="host", pid=1, scheduler_running=True))
    with serving(app) as base:
        status, body = get(base + "/metrics")
    assert status == 200, body
    assert "@" not in body, "no address, ever"
    found = samples(body)
    outbox = (("status", "sent"), ("transport", "outbox"))
    assert found[("newsletter_deliveries_total", outbox)] == 5
    pending = (("status", "pending"), ("transport", "outbox"))
    assert found[("newsletter_deliveries_total", pending)] == 3
    assert found[("newsletter_queue_depth", (("campaign", str(second)),))] == 3
    assert ("newsletter_queue_depth", (("campaign", str(first)),)) not in found
    assert found[("newsletter_throttled_total", (("transport", "outbox"),))] == 2
    assert found[("newsletter_feedback_events_total", (("type", "complaint"),))] == 2
    assert found[("newsletter_feedback_events_total", (("type", "hard_bounce"),))] == 1
    assert found[("newsletter_scheduler_running", (("service", "host:1:abc"),))] == 1
    heartbeat = found[
        ("newsletter_service_heartbeat_timestamp_seconds", (("service", "host:1:abc"),))
    ]
    assert abs(heartbeat - utcnow().timestamp()) < 60

    # Counts come from the database at each scrape: another send shows at once.
    send_campaign(app, second, actor="tester")
    with serving(app) as base:
        _, body = get(base + "/metrics")
    assert samples(body)[("newsletter_deliveries_total", outbox)] == 8


def test_a_token_when_one_is_set(make_app) -> None:
    app = make_app({"metrics": {"enabled": True}}, env={"NEWSLETTER_METRICS_TOKEN": "s3cret"})
    with serving(app) as base:
        assert get(base + "/metrics")[0] == 401
        assert get(base + "/metrics", token="wrong")[0] == 401
        status, body = get(base + "/metrics", token="s3cret")
    assert status == 200 and "newsletter_deliveries" in body
