"""Configuration: layering, validation and documentation of every setting."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from newsletter.config import build_config, documented_settings, load_config
from newsletter.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_config_example() -> None:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    # Commented-out keys count as documented: strip the leading "# ".
    keys_by_section: dict[str, set[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.lstrip("# ").strip()
        if m := re.fullmatch(r"\[\[?([\w.]+)\]\]?", line):
            section = m.group(1)
            if section.startswith("transports."):
                section = "transports.NAME"
        elif m := re.fullmatch(r"(\w+)\s*=.*", line):
            keys_by_section.setdefault(section, set()).add(m.group(1))
    missing = [
        f"{section}.{key}"
        for section, key, _ in documented_settings()
        if key not in keys_by_section.get(section, set())
    ]
    assert missing == []


def test_config_example_loads_and_equals_the_defaults(tmp_path: Path) -> None:
    example = load_config(ROOT / "config.example.toml", env={})
    defaults = build_config({}, {}, base_dir=example.base_dir)
    assert example.org == defaults.org
    assert example.dispatch == defaults.dispatch
    assert example.editions == defaults.editions
    assert example.transports == defaults.transports
    tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))


def test_no_file_gives_working_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(None, env={})
    assert config.source == "<defaults>"
    assert config.database.url == "sqlite:///newsletter.db"
    assert config.transport().dsn == "maildir:outbox"


def test_lookup_order_flag_then_env_then_local_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "newsletter.toml").write_text('[org]\nname = "Local"\n')
    (tmp_path / "env.toml").write_text('[org]\nname = "From env"\n')
    (tmp_path / "flag.toml").write_text('[org]\nname = "From flag"\n')
    assert load_config(None, env={}).org.name == "Local"
    env = {"NEWSLETTER_CONFIG": str(tmp_path / "env.toml")}
    assert load_config(None, env=env).org.name == "From env"
    assert load_config(tmp_path / "flag.toml", env=env).org.name == "From flag"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[database]\nurl = "sqlite:///file.db"\n[web]\nbase_url = "https://file.example"\n'
        '[transports.relay]\ndsn = "smtp://a@b:25"\n'
    )
    env = {
        "NEWSLETTER_DATABASE_URL": "sqlite:///env.db",
        "NEWSLETTER_BASE_URL": "https://env.example",
        "NEWSLETTER_TRANSPORT": "maildir:/tmp/x",
    }
    config = load_config(path, env=env)
    assert config.database.url == "sqlite:///env.db"
    assert config.web.base_url == "https://env.example"
    assert config.default_transport == "env"
    assert config.transport().dsn == "maildir:/tmp/x"
    assert config.transport("relay").dsn == "smtp://a@b:25"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[org]\nnmae = 'x'\n", "unknown key org.nmae"),
        ("[web]\nport = 'eighty'\n", "web.port must be a whole number"),
        ("[dispatch]\nretry_max_attempts = -1\n", "dispatch.retry_max_attempts must not be"),
        ("[privacy]\ncount_clicks = 'no'\n", "privacy.count_clicks must be true or false"),
        ("[schedule]\ntimezone = 'Mars/Olympus'\n", "unknown time zone"),
        ("[surprise]\nx = 1\n", "unknown section or key 'surprise'"),
        ("[org\nname = 1\n", "not valid TOML"),
        ("[transport]\ndefault = 'nowhere'\n", "nowhere"),
        ("[transports.relay]\ndsn = 'smtp://h'\nconnections = 0\n", "connections must be"),
        ("[editions]\nsubject_pattern = '{org} {year}'\n", "unknown field"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_bad_config_from_the_command_line_is_one_line_and_exit_2(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[web]\nport = 'eighty'\n")
    result = run_cli("--config", str(path), "campaigns", "list")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(path) in lines[0] and "web.port" in lines[0]


def test_missing_config_file_is_exit_2(run_cli, tmp_path: Path) -> None:
    result = run_cli("--config", str(tmp_path / "nope.toml"), "campaigns", "list")
    assert result.returncode == 2
    assert "config file not found" in result.stderr


def test_help_works_even_with_a_broken_config(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[org\n")
    result = run_cli("--config", str(path), "--help")
    assert result.returncode == 0
    assert "Usage: newsletter" in result.stdout
