"""What an API provider transport costs on our side, per message, with batches.

Composes a bulletin of a dozen items (the same as bench_compose.py) for N
recipients, then sends them through each provider transport to a sink on
loopback that answers as the provider does without looking at the messages,
and prints messages a second and our CPU time per message (taking messages
apart, building the request, the HTTP round trip). Real providers add their
own latency per request; batching is what makes that cost per message small.

    python bench/bench_providers.py [--recipients 2000]
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench_compose import build
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from newsletter.message import Composer, Recipient
from newsletter.transports.providers.http import ApiSettings
from newsletter.transports.providers.mailgun import MailgunTransport
from newsletter.transports.providers.postmark import PostmarkTransport
from newsletter.transports.providers.sendgrid import SendGridTransport
from newsletter.transports.providers.ses import SESTransport


def sink(environ: dict[str, Any], start_response: Any) -> Any:
    request = Request(environ)
    body = request.get_data()
    if request.path == "/email/batch":
        answer = json.dumps(
            [{"ErrorCode": 0, "Message": "OK", "MessageID": str(uuid.uuid4())}]
            * len(json.loads(body))
        )
    elif request.path.startswith("/v3/mail"):
        return Response("", status=202, headers={"X-Message-Id": "x"})(environ, start_response)
    elif request.path.startswith("/v3/"):
        answer = json.dumps({"id": "<x@mg.example.org>", "message": "Queued. Thank you."})
    else:
        answer = json.dumps({"MessageId": uuid.uuid4().hex})
    return Response(answer, mimetype="application/json")(environ, start_response)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=2000)
    args = parser.parse_args()
    # The sink's request log would drown the figures.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, sink, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    with tempfile.TemporaryDirectory() as folder:
        app, campaign_id = build(Path(folder))
        composer = Composer(app, campaign_id)
        messages = [
            composer.compose(Recipient(i + 1, f"person{i}@example.org", f"Person {i}", "en", i + 1))
            for i in range(args.recipients)
        ]
        domain = "mg.example.org"
        transports = [
            SendGridTransport("sendgrid", "k", ApiSettings("sendgrid", url, batch_size=1000)),
            MailgunTransport("mailgun", "k", domain, ApiSettings("mailgun", url, batch_size=1000)),
            PostmarkTransport(
                "postmark", "t", "broadcast", ApiSettings("postmark", url, 30, True, 500)
            ),
            SESTransport("ses", "AKID", "secret", "eu-west-1", ApiSettings("ses", url)),
        ]
        print(f"{args.recipients} messages of {len(messages[0].data) / 1024:.0f} KB each")
        for transport in transports:
            wall, cpu = time.perf_counter(), time.process_time()
            batch = max(1, transport.limits.batch_size)
            for start in range(0, len(messages), batch):
                results = transport.send(messages[start : start + batch])
                assert all(r.outcome == "sent" for r in results), results[0]
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            transport.close()
            print(
                f"{transport.name:9} {len(messages) / wall:7.0f} messages/s, "
                f"{cpu / len(messages) * 1e6:6.0f} µs CPU a message (sink included)"
            )
        app.close()
    server.shutdown()


if __name__ == "__main__":
    main()
