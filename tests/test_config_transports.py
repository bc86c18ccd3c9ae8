"""Named transports: defining [transports.X] keeps the built-in outbox."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.config import load_config
from newsletter.errors import ConfigError


def config_of(tmp_path: Path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, env={})


def test_a_named_transport_keeps_the_builtin_outbox(tmp_path: Path) -> None:
    config = config_of(tmp_path, '[transports.relay]\ndsn = "smtp://a@b:25"\n')
    assert config.default_transport == "relay"
    assert set(config.transports) == {"outbox", "relay"}
    assert config.transport("outbox").dsn == "maildir:outbox"


def test_the_outbox_may_be_the_default_beside_named_ones(tmp_path: Path) -> None:
    config = config_of(
        tmp_path,
        '[transport]\ndefault = "outbox"\n[transports.a]\ndsn = "smtp://a@b:25"\n'
        '[transports.b]\ndsn = "smtp://c@d:25"\n',
    )
    assert config.default_transport == "outbox"
    assert set(config.transports) == {"outbox", "a", "b"}


def test_redefining_the_outbox_replaces_it(tmp_path: Path) -> None:
    config = config_of(tmp_path, '[transports.outbox]\ndsn = "maildir:/srv/mail"\n')
    assert config.transport("outbox").dsn == "maildir:/srv/mail"


def test_an_unknown_default_names_the_known_ones_outbox_included(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no transport named 'nope' \(known: a, outbox\)"):
        config_of(tmp_path, '[transport]\ndefault = "nope"\n[transports.a]\ndsn = "smtp://a@b"\n')
