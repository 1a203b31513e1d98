"""The node's configuration: precedence, validation, the default file, and
that docs/config.md documents every option."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from bcai.node.config import (
    ConfigError,
    default_toml,
    env_layer,
    flag_layer,
    load_config,
    options,
    split_hostport,
)

REPO = Path(__file__).resolve().parents[2]


def test_flags_beat_env_beat_file_beat_defaults(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[api]\nlisten = "127.0.0.1:1111"\nmax_body_bytes = 1000\n[net]\nmax_peers = 7\n'
    )
    env = {"BCAI_API_LISTEN": "127.0.0.1:2222", "BCAI_NET_MAX_PEERS": "9"}
    cfg = load_config(tmp_path, environ=env, flags=flag_layer(["api.listen=127.0.0.1:3333"]))
    assert cfg.api.listen == "127.0.0.1:3333"  # flag
    assert cfg.net.max_peers == 9  # env over file
    assert cfg.api.max_body_bytes == 1000  # file over default
    assert cfg.mining.enabled is False  # default
    no_flags = load_config(tmp_path, environ=env)
    assert no_flags.api.listen == "127.0.0.1:2222"


def test_env_parses_types_and_ignores_other_bcai_variables() -> None:
    layer = env_layer(
        {"BCAI_MINING_ENABLED": "yes", "BCAI_NET_BOOTSTRAP": "a:1, b:2", "BCAI_VECTORS": "/x"}
    )
    assert layer == {"mining": {"enabled": True}, "net": {"bootstrap": ["a:1", "b:2"]}}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("[api]\nlisten = 5\n", "config-bad-value"),
        ("[api]\nlisten = \n", "config-bad-toml"),
        ("[nope]\nx = 1\n", "config-unknown-key"),
        ("[api]\nlistn = '1:2'\n", "config-unknown-key"),
        ("[mining]\nenabled = 1\n", "config-bad-value"),
    ],
)
def test_bad_files_name_the_problem(tmp_path: Path, text: str, code: str) -> None:
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, environ={})
    assert info.value.code == code
    assert "config.toml" in info.value.message


def test_bad_env_and_flags() -> None:
    with pytest.raises(ConfigError, match="BCAI_NET_MAX_PEERS"):
        env_layer({"BCAI_NET_MAX_PEERS": "many"})
    with pytest.raises(ConfigError) as info:
        env_layer({"BCAI_API_NOPE": "1"})
    assert info.value.code == "config-unknown-key"
    with pytest.raises(ConfigError):
        flag_layer(["api.listen"])
    with pytest.raises(ConfigError):
        split_hostport("localhost", "api.listen")
    assert split_hostport("[::1]:80", "x") == ("::1", 80)


def test_missing_named_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path, config_file=tmp_path / "nope.toml", environ={})
    assert info.value.code == "config-not-found"


def test_default_file_is_valid_toml_with_every_option(tmp_path: Path) -> None:
    text = default_toml({"mining": {"enabled": True}})
    parsed = {k: v for k, v in tomllib.loads(text).items() if v}
    assert parsed == {"mining": {"enabled": True}}
    for section, key, _, doc in options():
        assert f"# {key} = " in text or f"{key} = " in text, (section, key)
        assert doc in text
    (tmp_path / "config.toml").write_text(text)
    assert load_config(tmp_path, environ={}).mining.enabled is True


def test_docs_list_every_option() -> None:
    docs = (REPO / "docs" / "config.md").read_text()
    missing = [f"{s}.{k}" for s, k, _, _ in options() if f"`{s}.{k}`" not in docs]
    assert not missing, f"document these options in docs/config.md: {missing}"
