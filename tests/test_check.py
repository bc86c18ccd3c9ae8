"""`newsletter check`: each problem found in a crafted edition, nothing in the demo; the
From domain's SPF, DKIM and DMARC read from a real DNS server on loopback (a small UDP
server built with dnspython's message API)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest
from sqlalchemy import select

from newsletter.app import Newsletter
from newsletter.checks import check_domain, check_edition
from newsletter.checks.edition import message_findings
from newsletter.dkim import generate_key
from newsletter.message import Composer, Recipient
from newsletter.models import Campaign, CampaignItem, Item, Subscriber, Subscription

# --- the edition ----------------------------------------------------------------------------

EDITION_CODES = {
    "size", "image-alt", "http-link", "private-link", "no-text-part", "no-dkim",
    "base-url-not-https", "cta-without-url",
}  # fmt: skip


def crafted_templates(folder: Path) -> Path:
    """Staff's own templates with the mistakes a hand-edited template makes."""
    folder.mkdir()
    (folder / "bulletin.html").write_text(
        '{% extends "base.html" %}{% block content %}<tr><td>'
        '<img src="http://cdn.example.org/banner.png" width="600" height="200">'
        '<img src="https://cdn.example.org/divider.png" alt="">'
        '<a href="http://192.168.1.20/intranet/report.pdf">the report</a>'
        "{% for item in items %}<p>{{ item.summary }}</p>{% endfor %}"
        "</td></tr>{% endblock %}"
    )
    (folder / "bulletin.txt").write_text("{# no text version #}\n")
    return folder


def add_item(app: Newsletter, campaign_id: int, **fields: object) -> None:
    with app.session() as session:
        campaign = session.get_one(Campaign, campaign_id)
        values = {"source": "tests", "source_id": str(len(campaign.entries)), "kind": "news",
                  "title": "An item", "date": date(2019, 6, 1), "summary": "A summary.",
                  "language": "en", **fields}  # fmt: skip
        campaign.entries.append(CampaignItem(item=Item(**values), position=len(campaign.entries)))


def test_a_crafted_edition_shows_every_problem_and_exits_1(
    make_app, make_campaign, run_cli, tmp_path: Path
) -> None:
    templates = crafted_templates(tmp_path / "templates")
    config = {
        "web": {"base_url": "http://news.example.org"},
        "editions": {"templates_dir": str(templates)},
        "transports": {"relay": {"dsn": "smtp://127.0.0.1:2525?tls=none"}},
        "transport": {"default": "relay"},
    }
    app = make_app(config)
    campaign_id = make_campaign(app, items=[{"kind": "report", "title": "Big", "summary":
                                             "Harm reduction saves lives. " * 4000}])  # fmt: skip
    add_item(app, campaign_id, title="Lost link", link_text="Download the report", link="")
    add_item(app, campaign_id, title="Photo", image="https://cdn.example.org/march.jpg")
    report = check_edition(app, campaign_id)
    assert {f.code for f in report.findings} == EDITION_CODES
    by_code = {f.code: f for f in report.findings}
    assert "banner.png" in by_code["image-alt"].message  # and not the decorative alt=""
    # The template's banner, and the item whose image has no image_alt.
    assert sum(f.code == "image-alt" for f in report.findings) == 2
    assert any("--image-alt" in f.message for f in report.findings)
    assert "192.168.1.20" in by_code["private-link"].message
    assert "Lost link" in by_code["cta-without-url"].message
    assert report.errors == 4

    # The command: one line per finding on stdout, exit 1, one line on stderr.
    (tmp_path / "newsletter.toml").write_text(
        f'[web]\nbase_url = "http://news.example.org"\n'
        f'[editions]\ntemplates_dir = "{templates}"\n'
        '[transports.relay]\ndsn = "smtp://127.0.0.1:2525?tls=none"\n'
        '[transport]\ndefault = "relay"\n'
    )
    env = {"NEWSLETTER_TRANSPORT": "", "NEWSLETTER_BASE_URL": ""}
    result = run_cli("--config", "newsletter.toml", "check", str(campaign_id), env=env)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(report.findings) == 10
    assert all(line.startswith(("error: ", "warning: ")) for line in lines)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "4 finding(s) would break delivery" in result.stderr
    data = json.loads(run_cli("--config", "newsletter.toml", "check", str(campaign_id),
                              "--json", env=env).stdout)  # fmt: skip
    assert {f["code"] for f in data["findings"]} == EDITION_CODES and data["errors"] == 4


def test_dkim_for_the_from_domain_and_https_clear_the_config_findings(
    make_app, make_campaign, tmp_path: Path
) -> None:
    generate_key("example.org", "s1", tmp_path / "k.pem", "ed25519")
    app = make_app(
        {
            "web": {"base_url": "https://news.example.org"},
            "dkim": {"domain": "example.org", "selector": "s1", "private_key_file": "k.pem"},
            "transports": {"relay": {"dsn": "smtp://127.0.0.1:2525?tls=none"}},
            "transport": {"default": "relay"},
        }
    )
    campaign_id = make_campaign(
        app, items=[{"kind": "news", "title": "A", "link": "https://example.org/a"}]
    )
    assert check_edition(app, campaign_id).findings == ()
    # Signing for another domain is no DKIM for the From domain.
    other = make_app(
        {
            "mail": {"from_address": "news@other.example"},
            "web": {"base_url": "https://news.example.org"},
            "dkim": {"domain": "example.org", "selector": "s1", "private_key_file": "k.pem"},
            "transports": {"relay": {"dsn": "smtp://127.0.0.1:2525?tls=none"}},
            "transport": {"default": "relay"},
        }
    )
    campaign_id = make_campaign(
        other, items=[{"kind": "news", "title": "A", "link": "https://example.org/a"}]
    )
    assert [f.code for f in check_edition(other, campaign_id).findings] == ["no-dkim"]


def test_a_message_without_its_list_headers_is_an_error(make_app, make_campaign) -> None:
    app = make_app({"web": {"base_url": "https://news.example.org"}})
    campaign_id = make_campaign(app)
    data = Composer(app, campaign_id).compose(Recipient(None, "a@example.org")).data
    assert message_findings(data, "https://news.example.org", "en") == []
    head, body = data.split(b"\r\n\r\n", 1)
    stripped = b"\r\n".join(
        line for line in head.split(b"\r\n") if not line.startswith((b"List-Unsub", b" <mailto"))
    )
    codes = {f.code for f in message_findings(stripped + b"\r\n\r\n" + body, "https://x.org", "en")}
    assert codes == {"no-list-unsubscribe", "no-one-click"}


def test_check_reads_the_edition_in_every_language_its_audience_reads(
    make_app, make_campaign
) -> None:
    """Without --language, each offered language present in the audience is checked, and a
    reader of a language not offered gets (and is checked in) the campaign's own."""
    app = make_app({"web": {"base_url": "https://news.example.org"}})
    campaign_id = make_campaign(app, subscribers=[("ana@example.org", "Ana")])
    with app.session() as session:
        for email, language in [("ivan@example.org", "ru"), ("eva@example.org", "es-MX"),
                                ("hans@example.org", "de")]:  # fmt: skip
            session.add(Subscriber(email=email, email_key=email, name="", language=language))
        session.flush()
        members = session.get_one(Campaign, campaign_id).lists[0]
        for subscriber in session.scalars(select(Subscriber)):
            if subscriber.language != "en":
                session.add(
                    Subscription(
                        subscriber_id=subscriber.id, list_id=members.id, status="confirmed"
                    )
                )
    report = check_edition(app, campaign_id)
    assert report.languages == ("en", "es", "ru")
    assert check_edition(app, campaign_id, "fr").languages == ("fr",)


def test_the_demo_has_nothing_to_fix(run_cli) -> None:
    assert run_cli("demo").returncode == 0
    campaigns = json.loads(run_cli("campaigns", "list", "--json").stdout)
    assert campaigns
    for campaign in campaigns:
        result = run_cli("check", str(campaign["id"]))
        assert result.returncode == 0, result.stdout + result.stderr
        # The demo's lists hold English, Spanish, French and Russian readers: each is checked.
        assert (
            result.stdout.strip() == f"No findings for campaign {campaign['id']} (en, es, fr, ru)."
        )


def test_check_usage_errors_exit_2(run_cli) -> None:
    for args in (["check"], ["check", "1", "--domain", "example.org"], ["check", "999"]):
        result = run_cli(*args)
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, args


# --- the domain -----------------------------------------------------------------------------


class LoopbackDNS:
    """A UDP DNS server on 127.0.0.1 answering TXT queries from a dict; NXDOMAIN otherwise."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.queries: list[str] = []
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                wire, client = self.socket.recvfrom(4096)
            except OSError:
                return
            query = dns.message.from_wire(wire)
            response = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            self.queries.append(name)
            values = self.records.get(name)
            if values is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
            elif question.rdtype == dns.rdatatype.TXT:
                # A value longer than 255 bytes travels as several strings in one record.
                texts = [
                    " ".join(f'"{v[i : i + 255]}"' for i in range(0, len(v), 255)) for v in values
                ]
                response.answer.append(
                    dns.rrset.from_text_list(question.name, 60, "IN", "TXT", texts)
                )
            self.socket.sendto(response.to_wire(), client)

    def close(self) -> None:
        self.socket.close()


@pytest.fixture
def dns_server() -> Iterator[LoopbackDNS]:
    server = LoopbackDNS()
    yield server
    server.close()


def domain_app(make_app, tmp_path: Path, server: LoopbackDNS) -> tuple[Newsletter, str]:
    made = generate_key("example.org", "news2026", tmp_path / "dkim.pem", "rsa")
    app = make_app(
        {
            "dkim": {
                "domain": "example.org",
                "selector": "news2026",
                "private_key_file": "dkim.pem",
            },
            "check": {"nameservers": [f"127.0.0.1:{server.port}"], "timeout_seconds": 2},
        }
    )
    return app, made.record_value


def test_a_well_published_domain_has_no_findings(make_app, tmp_path: Path, dns_server) -> None:
    app, dkim_value = domain_app(make_app, tmp_path, dns_server)
    dns_server.records = {
        "example.org": ["v=spf1 mx include:relay.example.net -all", "google-site-verification=x"],
        "news2026._domainkey.example.org": [dkim_value],
        "_dmarc.example.org": ["v=DMARC1; p=quarantine; rua=mailto:dmarc@example.org"],
    }
    report = check_domain(app)
    assert report.findings == (), report.findings
    assert report.spf.startswith("v=spf1") and report.dkim == dkim_value
    assert {"example.org", "news2026._domainkey.example.org", "_dmarc.example.org"} <= set(
        dns_server.queries
    )


def test_each_dns_problem_is_named_with_what_to_publish(
    make_app, tmp_path: Path, dns_server
) -> None:
    app, dkim_value = domain_app(make_app, tmp_path, dns_server)
    other = generate_key("example.org", "news2026", tmp_path / "other.pem", "rsa").record_value
    cases = [
        ({}, {"no-spf", "no-dkim-record", "no-dmarc"}),
        ({"example.org": ["v=spf1 +all"], "news2026._domainkey.example.org": [other],
          "_dmarc.example.org": ["v=DMARC1; p=none"]},
         {"spf-pass-all", "dkim-other-key", "dmarc-none"}),
        ({"example.org": ["v=spf1 mx", "v=spf1 a -all"],
          "news2026._domainkey.example.org": ["v=DKIM1; k=rsa; p="],
          "_dmarc.example.org": ["v=DMARC1; rua=mailto:x@example.org"]},
         {"spf-several", "dkim-revoked", "dmarc-no-policy"}),
        ({"example.org": ["v=spf1 mx ?all"], "news2026._domainkey.example.org": [dkim_value],
          "_dmarc.example.org": ["v=DMARC1; p=reject"]},
         {"spf-neutral"}),
    ]  # fmt: skip
    for records, expected in cases:
        dns_server.records = records
        report = check_domain(app)
        assert {f.code for f in report.findings} == expected, records
    dns_server.records = {}
    missing = {f.code: f.message for f in check_domain(app).findings}
    # What to publish is spelled out: the DKIM record is the one keygen printed.
    assert dkim_value in missing["no-dkim-record"]
    assert "v=DMARC1; p=none" in missing["no-dmarc"] and "v=spf1" in missing["no-spf"]


def test_the_domain_command_exits_1_on_errors_and_names_the_domain(
    run_cli, tmp_path: Path, dns_server
) -> None:
    dns_server.records = {"example.org": ["v=spf1 -all"]}
    (tmp_path / "newsletter.toml").write_text(
        f'[check]\nnameservers = ["127.0.0.1:{dns_server.port}"]\ntimeout_seconds = 2\n'
    )
    result = run_cli("--config", "newsletter.toml", "check", "--domain", "example.org")
    assert result.returncode == 1
    assert "no [dkim] selector" in result.stdout and "no DMARC record at _dmarc.example.org" in (
        result.stdout
    )
    assert "domain example.org" in result.stderr
    # A DNS server that does not answer is a failure (exit 1), said in one line.
    dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dead.bind(("127.0.0.1", 0))
    (tmp_path / "dead.toml").write_text(
        f'[check]\nnameservers = ["127.0.0.1:{dead.getsockname()[1]}"]\ntimeout_seconds = 0.5\n'
    )
    result = run_cli("--config", "dead.toml", "check", "--domain")
    dead.close()
    assert result.returncode == 1 and "DNS did not answer" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
