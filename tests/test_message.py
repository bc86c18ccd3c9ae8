"""Stage 2: complete messages per recipient, parsed back with the standard email package."""

from __future__ import annotations

import dataclasses
import email
import json
import re
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import html as lxml_html

from newsletter import links
from newsletter.dkim import Signer
from newsletter.errors import InputError, NotFound
from newsletter.message import (
    Composer,
    Recipient,
)
from newsletter.notices import SAMPLE_RECIPIENT_EMAIL, build_preview, compose_confirmation
from newsletter.transports.base import dot_stuffed, stuff_dots

KEY = "test-signing-key"  # the key the test fixtures put in NEWSLETTER_SECRET_KEY

ITEMS = [
    {"kind": "report", "title": "A community report", "link": "https://example.org/r"},
    {"kind": "statement", "title": "A statement to the CND", "summary": "We said this."},
]


def parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML parts, decoded; the CRLF line ends of the wire made newlines."""
    text, html = message.iter_parts()
    return tuple(part.get_content().replace("\r\n", "\n") for part in (text, html))


@pytest.fixture
def mail_app(make_app):
    return make_app(
        {
            "org": {"name": "Réseau Example"},
            "mail": {
                "from_address": "bulletin@news.example.org",
                "from_name": "Réseau Example, bulletin",
                "reply_to": "team@example.org",
                "list_id": "bulletin.news.example.org",
            },
            "web": {"base_url": "https://news.example.org"},
        }
    )


def test_message_is_multipart_alternative_text_then_html(mail_app, make_campaign) -> None:
    campaign_id = make_campaign(mail_app, items=ITEMS)
    outgoing = Composer(mail_app, campaign_id).compose(
        Recipient(7, "ana@example.org", "Ana Silva", delivery_id=3)
    )
    message = parse(outgoing.data)
    assert not message.defects
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert not text.defects and not html.defects
    assert "A community report" in text.get_content()
    assert "<html" in html.get_content()
    assert outgoing.recipient == "ana@example.org"
    assert outgoing.sender == "bulletin@news.example.org"
    assert outgoing.delivery_id == 3


def test_headers_from_config_and_per_recipient(mail_app, make_campaign) -> None:
    campaign_id = make_campaign(mail_app, items=ITEMS, subject="Bulletin de juin — réseau ✊")
    outgoing = Composer(mail_app, campaign_id).compose(Recipient(7, "ana@example.org", "Ana"))
    message = parse(outgoing.data)

    assert message["Subject"] == "Bulletin de juin — réseau ✊"
    assert message["From"].addresses[0].display_name == "Réseau Example, bulletin"
    assert message["From"].addresses[0].addr_spec == "bulletin@news.example.org"
    assert message["Reply-To"].addresses[0].addr_spec == "team@example.org"
    assert message["To"].addresses[0].addr_spec == "ana@example.org"
    assert message["To"].addresses[0].display_name == "Ana"
    assert message["Date"].datetime is not None
    assert message["MIME-Version"] == "1.0"
    assert message["List-Id"] == "Réseau Example <bulletin.news.example.org>"
    assert re.fullmatch(r"<[0-9a-f]{32}@news\.example\.org>", message["Message-ID"])
    assert outgoing.message_id == message["Message-ID"].strip("<>")
    # Headers that carry non-ASCII are RFC 2047 encoded: the raw message is ASCII.
    assert outgoing.data.isascii()


def test_list_unsubscribe_has_https_and_mailto_with_one_click(mail_app, make_campaign) -> None:
    campaign_id = make_campaign(mail_app, items=ITEMS)
    message = parse(Composer(mail_app, campaign_id).compose(Recipient(7, "ana@example.org")).data)
    https, mailto = re.fullmatch(r"<([^>]+)>,\s*<([^>]+)>", message["List-Unsubscribe"]).groups()
    assert https.startswith("https://news.example.org/u/")
    token = https.rpartition("/")[2]
    assert links.load_unsubscribe_token(KEY, token) == (7, campaign_id)
    assert mailto == f"mailto:unsubscribe@news.example.org?subject=unsubscribe%20{token}"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The footer link is the same https address.
    _, html = parts(message)
    assert https in lxml_html.document_fromstring(html).xpath("//a/@href")
    preferences = next(
        href for href in re.findall(r'href="([^"]+)"', html) if "/p/" in href
    ).rpartition("/")[2]
    assert links.load_preferences_token(KEY, preferences) == 7


def test_message_id_domain_can_be_configured(make_app, make_campaign) -> None:
    app = make_app({"mail": {"message_id_domain": "mid.example.net"}})
    message = parse(Composer(app, make_campaign(app)).compose(Recipient(1, "a@example.org")).data)
    assert message["Message-ID"].endswith("@mid.example.net>")


def test_wire_format_crlf_and_short_lines(mail_app, make_campaign) -> None:
    long_summary = "word " * 600  # a 3,000-character paragraph on one line of the HTML
    campaign_id = make_campaign(
        mail_app, items=[{"kind": "news", "title": "Long", "summary": long_summary}]
    )
    data = Composer(mail_app, campaign_id).compose(Recipient(1, "a@example.org", "A")).data
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert max(len(line) for line in data.split(b"\r\n")) < 998
    assert data.endswith(b"--\r\n")


def test_bodies_decode_to_exactly_the_personalised_edition(mail_app, make_campaign) -> None:
    composer = Composer(mail_app, make_campaign(mail_app, items=ITEMS))
    for recipient in (
        Recipient(1, "ana@example.org", "Ana María = Olé"),
        Recipient(2, "b@example.org", ""),
        Recipient(3, "c@example.org", "x" * 200),
    ):
        expected_html, expected_text = composer.edition.personalise(
            composer.personal_values(recipient)
        )
        text, html = parts(parse(composer.compose(recipient).data))
        assert html == expected_html
        assert text == expected_text


def test_mostly_cyrillic_bodies_are_base64_and_round_trip(make_app, make_campaign) -> None:
    app = make_app()
    items = [
        {"kind": "news", "title": "Новости сети", "summary": "Очень важный текст. " * 80}
        for _ in range(3)
    ]
    campaign_id = make_campaign(app, items=items, language="ru", subject="Бюллетень — июнь 2019")
    composer = Composer(app, campaign_id)
    recipient = Recipient(5, "olga@example.org", "Ольга Петрова", "ru")
    message = parse(composer.compose(recipient).data)
    assert next(message.iter_parts())["Content-Transfer-Encoding"] == "base64"
    expected_html, expected_text = composer.edition.personalise(composer.personal_values(recipient))
    assert parts(message) == (expected_text, expected_html)
    assert "Здравствуйте, Ольга Петрова!" in expected_text
    assert message["Subject"] == "Бюллетень — июнь 2019"
    assert message["To"].addresses[0].display_name == "Ольга Петрова"


@pytest.mark.parametrize(
    "name",
    [
        "Eve\r\nBcc: victim@example.net",
        "Eve\nBcc: victim@example.net",
        "Eve\rBcc: victim@example.net",
        "Ève\u2028Bcc: victim@example.net",
        'Eve "the admin" <admin@example.org>, victim@example.net',
    ],
)
def test_a_name_cannot_inject_a_header_or_a_recipient(mail_app, make_campaign, name) -> None:
    composer = Composer(mail_app, make_campaign(mail_app))
    message = parse(composer.compose(Recipient(1, "eve@example.org", name)).data)
    assert message["Bcc"] is None
    assert not message.defects
    (address,) = message["To"].addresses
    assert address.addr_spec == "eve@example.org"
    # The line break became a space: the would-be header is now part of the name.
    expected = name.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
    assert address.display_name.split() == expected.replace("\u2028", " ").split()


def test_a_subject_cannot_inject_a_header(mail_app, make_campaign) -> None:
    campaign_id = make_campaign(mail_app, subject="June bulletin\r\nBcc: victim@example.net\r\n")
    message = parse(Composer(mail_app, campaign_id).compose(Recipient(1, "a@example.org")).data)
    assert message["Bcc"] is None
    assert message["Subject"] == "June bulletin Bcc: victim@example.net"


@pytest.mark.parametrize(
    "address", ["a@example.org\r\nBcc: victim@example.net", "a@example.org, b@example.net", "no-at"]
)
def test_an_address_that_could_break_a_header_is_refused(mail_app, make_campaign, address) -> None:
    composer = Composer(mail_app, make_campaign(mail_app))
    with pytest.raises(InputError, match="not a usable email address"):
        composer.compose(Recipient(1, address))


def test_long_and_non_ascii_names_fold_and_round_trip(mail_app, make_campaign) -> None:
    composer = Composer(mail_app, make_campaign(mail_app))
    for name in ("Фёдор Михайлович Достоевский " * 4, "Zoë O'Brien-Łukasiewicz", "A. Person"):
        data = composer.compose(Recipient(1, "reader@example.org", name)).data
        head = data.split(b"\r\n\r\n")[0]
        assert max(len(line) for line in head.split(b"\r\n") if line.startswith(b"To:")) <= 78
        display = parse(data)["To"].addresses[0].display_name
        # Python's own parser keeps the space between two encoded words; compare words.
        assert display.split() == name.split()


def test_test_send_to_an_arbitrary_address_has_sample_links(mail_app, make_campaign) -> None:
    campaign_id = make_campaign(mail_app)
    message = parse(
        Composer(mail_app, campaign_id).compose(Recipient(None, "editor@example.org")).data
    )
    token = re.search(r"/u/([^>]+)>", message["List-Unsubscribe"]).group(1)
    assert links.load_unsubscribe_token(KEY, token) == (None, campaign_id)


def test_compose_does_not_touch_the_database(
    app, make_campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Everything compose() needs was read when the composer was built.
    composer = Composer(app, make_campaign(app))

    def no_session():
        raise AssertionError("compose() opened a database session")

    monkeypatch.setattr(app, "session", no_session)
    monkeypatch.setattr(app, "sessions", no_session)
    composer.compose(Recipient(1, "a@example.org", "A"))


def test_preview_uses_the_first_recipient_of_the_audience(app, make_campaign) -> None:
    campaign_id = make_campaign(
        app, subscribers=[("first@example.org", "First Reader"), ("second@example.org", "Second")]
    )
    preview = build_preview(app, campaign_id)
    assert preview.recipient.email == "first@example.org"
    assert "Dear First Reader," in preview.text
    assert "Dear First Reader," in lxml_html.document_fromstring(preview.html).text_content()
    message = parse(preview.eml)
    assert message["To"].addresses[0].addr_spec == "first@example.org"
    assert parts(message) == (preview.text, preview.html)


def test_preview_for_a_named_subscriber_and_for_nobody(app, make_campaign) -> None:
    campaign_id = make_campaign(
        app, subscribers=[("first@example.org", "First"), ("Second@Example.org", "Second")]
    )
    assert build_preview(app, campaign_id, "second@example.org").recipient.name == "Second"
    with pytest.raises(NotFound, match=r"no subscriber with the address nobody@example\.org"):
        build_preview(app, campaign_id, "nobody@example.org")
    empty = make_campaign(app)
    assert build_preview(app, empty).recipient.email == SAMPLE_RECIPIENT_EMAIL


def test_unknown_campaign_is_not_found(app) -> None:
    with pytest.raises(NotFound, match="no campaign with id 404"):
        Composer(app, 404)


def test_confirmation_email_links_to_a_confirm_token(mail_app) -> None:
    outgoing = compose_confirmation(
        mail_app, 12, "new@example.org", [3, 4], ["Members", "Africa"], "en"
    )
    message = parse(outgoing.data)
    assert message["Subject"] == "Please confirm your subscription to Réseau Example"
    assert message["List-Unsubscribe"] is None
    text, _ = parts(message)
    token = re.search(r"https://news\.example\.org/c/(\S+)", text).group(1)
    assert links.load_confirm_token(KEY, token, max_age_days=7) == (12, [3, 4])


@pytest.mark.slow
def test_preview_command_writes_html_text_and_eml(app, make_campaign, run_cli, tmp_path) -> None:
    campaign_id = make_campaign(app, subscribers=[("ana@example.org", "Ana")])
    out = tmp_path / "preview" / "nested"
    result = run_cli("preview", str(campaign_id), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["id"] == campaign_id
    assert shown["subscriber"] == "ana@example.org"
    stem = out / f"campaign-{campaign_id}"
    assert {Path(shown[k]) for k in ("html", "text", "eml")} == {
        stem.with_suffix(".html"),
        stem.with_suffix(".txt"),
        stem.with_suffix(".eml"),
    }
    message = parse(stem.with_suffix(".eml").read_bytes())
    assert message["List-Unsubscribe"].startswith("<https://news.example.org/u/")
    assert parts(message) == (
        stem.with_suffix(".txt").read_text(encoding="utf-8"),
        stem.with_suffix(".html").read_text(encoding="utf-8"),
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"campaign-{campaign_id}{suffix}" for suffix in (".eml", ".html", ".txt")
    )


@pytest.mark.slow
def test_preview_command_errors_exit_2_without_writing(app, make_campaign, run_cli, tmp_path):
    out = tmp_path / "preview"
    result = run_cli("preview", "999", "--out", str(out))
    assert result.returncode == 2
    assert "no campaign with id 999" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()
    campaign_id = make_campaign(app)
    result = run_cli(
        "preview", str(campaign_id), "--out", str(out), "--subscriber", "x@example.org"
    )
    assert result.returncode == 2
    assert "no subscriber with the address x@example.org" in result.stderr
    assert not out.exists()


# Text with the characters that make dot-stuffing matter: dots, line breaks, spaces.
dotted_text = st.text(alphabet=st.sampled_from(list(". \n=aé<")), min_size=0, max_size=200)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    name=st.text(alphabet=st.sampled_from(list(". a=é")), max_size=90),
    summary=dotted_text,
    intro=dotted_text,
)
def test_the_message_stuffed_as_it_is_composed_is_the_message_stuffed(
    mail_app, make_campaign, name: str, summary: str, intro: str
) -> None:
    """SMTP sends the composer's dot-stuffed bytes (stuffed once per edition where it
    can): they must be exactly what stuffing the finished message gives, for any
    text in the edition and any name, DKIM-signed or not."""
    items = [{"kind": "news", "title": ".Title", "summary": summary}]
    composer = Composer(mail_app, make_campaign(mail_app, items=items, intro=intro))
    message = composer.compose(Recipient(1, "ana@example.org", name))
    assert message.stuffed is not None and message.stuffed[0] is message.data
    assert dot_stuffed(message) == stuff_dots(message.data) + b".\r\n"
    signed = Signer("example.org", "s1", Ed25519PrivateKey.generate())(message)
    assert signed.stuffed is not None and signed.stuffed[0] is signed.data
    assert dot_stuffed(signed) == stuff_dots(signed.data) + b".\r\n"
    # A step that changes the data without saying how to stuff it is scanned anew.
    changed = dataclasses.replace(message, data=b".X: y\r\n" + message.data)
    assert dot_stuffed(changed) == b"..X: y\r\n" + stuff_dots(message.data) + b".\r\n"
