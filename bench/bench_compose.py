"""How long rendering takes: stage 1 once per campaign, stage 2 (compose) per recipient.

Builds a bulletin of a dozen items (about 30 KB of HTML once the CSS is
inlined) in a scratch SQLite database, then prints the median time of stage 1
(Jinja2 + premailer), the median time of one compose() (wall clock, and CPU time,
which other processes on the machine disturb less) and what that means in
messages a second for composing alone; then the CPU time of the bytes SMTP's
DATA sends, as the composer stuffed them and as scanning the message would. The
send engine's budget: composing must stay far below what the wire takes for the
same message.

The recipients read English, Russian, French and Spanish in turn: stage 1 must
run once per language for the whole audience (four times), never per recipient;
the count printed is of real calls to the renderer.

    python bench/bench_compose.py [--recipients 2000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import newsletter.message
from newsletter.app import Newsletter
from newsletter.config import build_config
from newsletter.message import Composer, Recipient
from newsletter.models import Campaign, CampaignItem, Item
from newsletter.render import render_campaign
from newsletter.transports.base import dot_stuffed

KINDS = ("statement", "report", "news", "tribute")
SUMMARY = (
    "Peer-led organisations in twelve countries describe how harm reduction services "
    "changed this year: which ones opened, which ones closed for lack of funding, and "
    "what people who use drugs say they need next. The findings were presented to the "
    "Commission on Narcotic Drugs in Vienna, with recommendations for governments and "
    "donors.\n\nThe full text, with country chapters and data tables, is on our website."
)
NAMES = ("Ana Silva", "Nguyễn Thị Lan", "Ольга Петрова", "", "Kwame Mensah", "Zoë O'Brien")
LANGUAGES = ("en", "ru", "fr", "es")


def build(folder: Path) -> tuple[Newsletter, int]:
    env = {"NEWSLETTER_SECRET_KEY": "bench-signing-key"}
    config = build_config(
        {
            "database": {"url": f"sqlite:///{folder / 'bench.db'}"},
            "web": {"base_url": "https://news.example.org"},
        },
        env,
        base_dir=folder,
    )
    app = Newsletter(config, env=env)
    with app.session() as session:
        campaign = Campaign(
            kind="bulletin",
            month="2019-06",
            subject="Example Network bulletin — June 2019",
            intro="Welcome to the June bulletin.\n\nA month of statements, reports and news.",
        )
        for position in range(12):
            item = Item(
                source="bench",
                source_id=str(position),
                kind=KINDS[position % len(KINDS)],
                title=f"Statement {position + 1} to the Commission on Narcotic Drugs, 62nd session",
                date=date(2019, 6, position + 1),
                summary=SUMMARY,
                link=f"https://example.org/news/2019/06/item-{position + 1}",
                link_text="Read the full statement",
            )
            campaign.entries.append(CampaignItem(item=item, position=position))
        session.add(campaign)
        session.flush()
        return app, campaign.id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=2000, help="compose() calls per round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds; the median is printed")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        app, campaign_id = build(Path(scratch))
        render_campaign(app, campaign_id)  # warm up: database schema, imports, CSS parser

        stage1 = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            render_campaign(app, campaign_id)
            stage1.append(time.perf_counter() - start)

        # Count the composer's real calls of stage 1 (the renderer it imported).
        calls: list[str | None] = []

        def counting_render(
            app: Newsletter, campaign_id: int, language: str | None = None, **options: Any
        ) -> Any:
            calls.append(language)
            return render_campaign(app, campaign_id, language, **options)

        newsletter.message.render_campaign = counting_render  # type: ignore[assignment]
        composer = Composer(app, campaign_id)
        recipients = [
            Recipient(
                n + 1,
                f"reader{n}@example.org",
                NAMES[n % len(NAMES)],
                LANGUAGES[n % len(LANGUAGES)],
            )
            for n in range(args.recipients)
        ]
        sample = composer.compose(recipients[0])
        per_message = []
        per_message_cpu = []
        for _ in range(args.rounds):
            start, start_cpu = time.perf_counter(), time.process_time()
            for recipient in recipients:
                composer.compose(recipient)
            per_message.append((time.perf_counter() - start) / len(recipients))
            per_message_cpu.append((time.process_time() - start_cpu) / len(recipients))
        # What SMTP's DATA sends: the composer's stuffed bytes (a lookup), against
        # stuffing the finished message as a transport without them would (a scan).
        messages = [composer.compose(recipient) for recipient in recipients]
        data_given, data_scanned = [], []
        for _ in range(args.rounds):
            start_cpu = time.process_time()
            for message in messages:
                dot_stuffed(message)
            data_given.append((time.process_time() - start_cpu) / len(messages))
            start_cpu = time.process_time()
            for message in messages:
                dot_stuffed(dataclasses.replace(message, stuffed=None))
            data_scanned.append((time.process_time() - start_cpu) / len(messages))
        del messages
        html_size = len(composer.edition.html.fill(composer.personal_values(recipients[0])))
        composed = args.rounds * len(recipients) + 1
        # The first render is the campaign's own language, asked for as "its own".
        rendered = [language or composer.language for language in calls]
        app.close()

    stage1_median = statistics.median(stage1)
    compose_median = statistics.median(per_message)
    compose_cpu = statistics.median(per_message_cpu)
    html_kib, message_kib = html_size / 1024, len(sample.data) / 1024
    print(f"bulletin: 12 items, HTML {html_kib:.1f} KiB, message {message_kib:.1f} KiB")
    print(f"stage 1 (Jinja2 + premailer), median of {args.rounds}: {stage1_median * 1000:.1f} ms")
    print(
        f"stage 1 ran {len(rendered)} times for {composed:,} messages to a "
        f"{len(LANGUAGES)}-language audience ({', '.join(rendered)})"
    )
    print(
        f"stage 2 compose() per recipient, median of {args.rounds} rounds of "
        f"{args.recipients}: {compose_median * 1e6:.1f} µs "
        f"(CPU time {compose_cpu * 1e6:.1f} µs, the figure to trust on a busy machine)"
    )
    print(
        f"compose alone: {1 / compose_median:,.0f} messages/second "
        f"({1 / compose_cpu:,.0f} per second of CPU time)"
    )
    print(
        f"DATA's bytes (dot-stuffed), CPU time per message: as composed "
        f"{statistics.median(data_given) * 1e6:.1f} µs, scanning the finished message "
        f"{statistics.median(data_scanned) * 1e6:.1f} µs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
