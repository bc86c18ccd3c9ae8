"""No header can be injected from the config, and a config that cannot work is one line.

A value with a line break that reached a header would start a header of its
own: a base URL ending in "\\r\\nBcc: …" would copy every message to a stranger.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.config import build_config, load_config
from newsletter.errors import ConfigError
from newsletter.message import Composer, HeaderInjection, Recipient, header, to_header

BCC = "\r\nBcc: everyone@attacker.example"


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("web", "base_url", "https://news.example.org" + BCC),
        ("web", "base_url", "https://news.example.org/\nX: 1"),
        ("web", "base_url", "https://news example.org"),
        ("mail", "message_id_domain", "example.org" + BCC),
        ("mail", "message_id_domain", "example.org>"),
        ("mail", "unsubscribe_mailto", "leave@example.org" + BCC),
        ("mail", "unsubscribe_mailto", "leave@example.org?subject=x"),
        ("mail", "from_address", "bulletin@example.org" + BCC),
        ("mail", "from_address", "Bulletin <bulletin@example.org>"),
        ("mail", "reply_to", "replies@example.org, other@example.org"),
        ("mail", "from_name", "Example" + BCC),
        ("mail", "list_id", "bulletin.example.org" + BCC),
    ],
)
def test_a_header_value_with_a_line_break_is_refused_at_load_naming_the_key(
    tmp_path: Path, section: str, key: str, value: str
) -> None:
    config = tmp_path / "bad.toml"
    escaped = value.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")
    config.write_text(f'[{section}]\n{key} = "{escaped}"\n')
    with pytest.raises(ConfigError) as refused:
        load_config(config, env={})
    message = str(refused.value)
    assert f"{section}.{key}" in message and str(config) in message
    assert "\n" not in message and "\r" not in message


def test_the_command_says_so_in_one_line_with_exit_2(run_cli, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[web]\nbase_url = "https://news.example.org\\r\\nBcc: x@attacker.example"\n')
    result = run_cli("--config", str(config), "lists", "list", env={"NEWSLETTER_BASE_URL": ""})
    assert result.returncode == 2, result.stderr
    assert "web.base_url" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_the_base_url_from_the_environment_is_checked_and_named(run_cli) -> None:
    result = run_cli("lists", "list", env={"NEWSLETTER_BASE_URL": "https://a.example" + BCC})
    assert result.returncode == 2
    assert "NEWSLETTER_BASE_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_ordinary_values_still_load() -> None:
    config = build_config(
        {
            "web": {"base_url": "https://news.example.org:8443/bulletin/"},
            "mail": {
                "from_address": "bulletin@news.example.org",
                "reply_to": "team+replies@example.org",
                "unsubscribe_mailto": "leave@example.org",
                "message_id_domain": "mail.example.org",
                "from_name": "Réseau Exemple",
            },
        },
        {},
        base_dir=Path.cwd(),
    )
    assert config.mail.message_id_domain == "mail.example.org"


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=40))
def test_build_config_accepts_or_refuses_any_base_url_in_one_line(value: str) -> None:
    try:
        config = build_config({"web": {"base_url": value}}, {}, base_dir=Path.cwd())
    except ConfigError as exc:
        assert "\n" not in str(exc) and "web.base_url" in str(exc)
        return
    assert not any(ch in config.web.base_url for ch in "\r\n\x00 ")


@given(value=st.text(max_size=60))
def test_every_header_line_refuses_line_breaks_whatever_the_value(value: str) -> None:
    try:
        line = header("List-Unsubscribe", f"<{value}>")
    except HeaderInjection:
        assert any(ord(ch) < 32 or ord(ch) == 127 or not ch.isascii() for ch in value)
        return
    parsed = email.message_from_bytes(line + b"\r\n", policy=email.policy.SMTP)
    assert list(parsed.keys()) == ["List-Unsubscribe"]


@given(name=st.text(max_size=60))
def test_a_recipient_name_never_adds_a_header(name: str) -> None:
    line = to_header(name, "person@example.org")
    parsed = email.message_from_bytes(line + b"\r\n", policy=email.policy.SMTP)
    assert list(parsed.keys()) == ["To"]


def test_a_config_nested_thousands_deep_is_one_line_exit_2(run_cli, tmp_path: Path) -> None:
    for text in (
        "[web]\nlanguages = " + "[" * 5000 + "]" * 5000 + "\n",
        "[web]\ntopics = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n",
        "[org]\n" + ".".join(["name"] * 3000) + " = 1\n",
    ):
        config = tmp_path / "deep.toml"
        config.write_text(text)
        result = run_cli("--config", str(config), "lists", "list")
        assert result.returncode == 2, result.stderr[-500:]
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr[-500:]
        assert len(result.stderr) < 400


def test_an_sqlite_url_naming_a_file_that_is_not_a_database_is_one_line_exit_2(
    run_cli, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("These are not the tables you are looking for.\n" * 200)
    before = notes.read_bytes()
    result = run_cli("lists", "list", env={"NEWSLETTER_DATABASE_URL": f"sqlite:///{notes}"})
    assert result.returncode == 2, result.stderr
    assert "is not a database" in result.stderr and str(notes) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert notes.read_bytes() == before, "the file is left as it was"


def test_a_message_is_refused_rather_than_built_with_an_injected_header(
    make_app, make_campaign
) -> None:
    """Even a config that bypassed the checks (built in code) cannot inject: the one
    path that writes header lines refuses the value."""
    app = make_app()
    cid = make_campaign(app, subscribers=[("ana@example.org", "Ana")])
    checked = app.config
    for field, value in (
        ("web", {"base_url": "https://news.example.org" + BCC}),
        ("mail", {"message_id_domain": "example.org" + BCC}),
        ("mail", {"unsubscribe_mailto": "leave@example.org" + BCC}),
    ):
        section = dataclasses.replace(getattr(app.config, field), **value)
        app.config = dataclasses.replace(app.config, **{field: section})
        with pytest.raises(HeaderInjection):
            Composer(app, cid).compose(Recipient(1, "ana@example.org", "Ana"))
        app.config = checked
