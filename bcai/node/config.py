"""The node's configuration: one TOML file, overridden by environment
variables, overridden by command-line flags (flags > env > file > defaults).

Every option is a field below with its default and a one-line doc; the
commented default file (`bcai config init`) and the checks in
tests/node/test_config.py are generated from these fields, and
docs/config.md lists them all.

Environment: ``BCAI_<SECTION>_<KEY>`` in capitals, e.g. ``BCAI_API_LISTEN``,
``BCAI_NET_MAX_PEERS``, ``BCAI_MINING_ENABLED=true``; lists are
comma-separated. Flags: ``--set section.key=value`` (and a few shortcuts).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bcai.errors import BcaiError

ENV_PREFIX = "BCAI_"


class ConfigError(BcaiError):
    """Codes: ``config-bad-toml``, ``config-unknown-key``, ``config-bad-value``,
    ``config-not-found``."""


def _opt(default: Any, doc: str) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass
class NodeSection:
    genesis: str = _opt("genesis.json", "the chain's genesis file (relative: to the data dir)")
    log_level: str = _opt("info", "debug, info, warning or error")
    log_format: str = _opt("console", "stderr log format: console (for people) or json")
    log_file: bool = _opt(True, "also write JSON logs to <data dir>/logs/node.log")


@dataclass
class NetSection:
    listen: str = _opt("0.0.0.0:9333", "host:port for peer connections (port 0: any free port)")
    bootstrap: list[str] = _opt([], "host:port of peers to dial at start")
    advertise: list[str] = _opt([], "listen addresses to announce (default: the listen address)")
    max_peers: int = _opt(50, "connection slots in all")
    max_inbound: int = _opt(40, "of which inbound")
    target_outbound: int = _opt(8, "outbound connections to keep")
    max_per_ip: int = _opt(2, "connections from one IP address")
    max_per_subnet24: int = _opt(4, "connections from one /24 (IPv6 /48)")
    colocation_whitelist: list[str] = _opt([], "IPs exempt from the gossip colocation penalty")
    allow_local: bool = _opt(False, "accept private and loopback peer addresses (devnets)")
    port_mapping: bool = _opt(True, "ask the gateway for a NAT-PMP or UPnP port mapping")
    relay: bool = _opt(False, "relay connections for peers behind NAT")
    sync_interval_s: float = _opt(2.0, "how often heads are compared with peers")
    nat_interval_s: float = _opt(60.0, "how often reachability is probed")


@dataclass
class ApiSection:
    enabled: bool = _opt(True, "serve the HTTP/JSON + WebSocket API")
    listen: str = _opt("127.0.0.1:9380", "host:port of the API (port 0: any free port)")
    token: str = _opt("", "bearer token for write endpoints (generated when bound beyond loopback)")
    max_body_bytes: int = _opt(262_144, "largest request body accepted")
    max_blob_bytes: int = _opt(
        268_435_456, "largest blob (a MatMul job's matrix or product) accepted by POST /v1/blobs"
    )
    max_ws_clients: int = _opt(64, "concurrent WebSocket subscribers")


@dataclass
class MetricsSection:
    enabled: bool = _opt(True, "serve Prometheus metrics at /metrics")
    listen: str = _opt("127.0.0.1:9390", "host:port of the metrics endpoint (port 0: any)")


@dataclass
class MiningSection:
    enabled: bool = _opt(False, "produce blocks")
    backend: str = _opt(
        "cpu",
        "PoUW miner: cpu, gpu, gpu-sm90 or gpu-triton; a mining node re-verifies seals in full "
        "on it too (docs/pouw.md)",
    )
    period_s: float = _opt(0.0, "wait this long after the head's time before mining (0: at once)")
    batch: int = _opt(20_000, "seal attempts per batch between checks for a new head")
    max_job_blob_bytes: int = _opt(
        268_435_456,
        "largest matrix (A or B) of a pending MatMul job that the node fetches from its peers "
        "to seal the job (bigger jobs are sealed only where their matrices were uploaded)",
    )


@dataclass
class MempoolSection:
    max_bytes: int = _opt(64 * 1024 * 1024, "pool size limit in bytes of transactions")
    max_per_sender: int = _opt(64, "pending transactions per sender")


SECTIONS: dict[str, type] = {
    "node": NodeSection,
    "net": NetSection,
    "api": ApiSection,
    "metrics": MetricsSection,
    "mining": MiningSection,
    "mempool": MempoolSection,
}


@dataclass
class NodeConfig:
    """The whole configuration; `data_dir` comes from `--data-dir` /
    ``BCAI_DATA_DIR`` (never from the file, which lives inside it)."""

    data_dir: Path
    node: NodeSection = field(default_factory=NodeSection)
    net: NetSection = field(default_factory=NetSection)
    api: ApiSection = field(default_factory=ApiSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    mining: MiningSection = field(default_factory=MiningSection)
    mempool: MempoolSection = field(default_factory=MempoolSection)

    def genesis_path(self) -> Path:
        return self.data_dir / Path(self.node.genesis).expanduser()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"data_dir": str(self.data_dir)}
        for name in SECTIONS:
            out[name] = dataclasses.asdict(getattr(self, name))
        return out


def options() -> Iterable[tuple[str, str, Any, str]]:
    """(section, key, default, doc) for every option, in file order."""
    for name, cls in SECTIONS.items():
        default = cls()
        for f in dataclasses.fields(cls):
            yield name, f.name, getattr(default, f.name), f.metadata["doc"]


def parse_value(text: str, default: Any, where: str) -> Any:
    """Parses a string from the environment or a flag as the option's type."""
    if isinstance(default, bool):
        low = text.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError("config-bad-value", f"{where}: {text!r} is not true or false")
    if isinstance(default, int | float):
        try:
            return type(default)(text)
        except ValueError as err:
            kind = type(default).__name__
            raise ConfigError("config-bad-value", f"{where}: {text!r} is not an {kind}") from err
    if isinstance(default, list):
        return [s.strip() for s in text.split(",") if s.strip()]
    return text


def _check_type(value: Any, default: Any, where: str) -> Any:
    ok = (
        isinstance(value, bool)
        if isinstance(default, bool)
        else isinstance(value, list) and all(isinstance(v, str) for v in value)
        if isinstance(default, list)
        else isinstance(value, int | float) and not isinstance(value, bool)
        if isinstance(default, float)
        else isinstance(value, int) and not isinstance(value, bool)
        if isinstance(default, int)
        else isinstance(value, str)
    )
    if not ok:
        want = type(default).__name__
        raise ConfigError("config-bad-value", f"{where}: {value!r} should be a {want}")
    return float(value) if isinstance(default, float) else value


def _apply(config: NodeConfig, layer: Mapping[str, Mapping[str, Any]], source: str) -> None:
    for section, values in layer.items():
        cls = SECTIONS.get(section)
        if cls is None or not isinstance(values, Mapping):
            raise ConfigError(
                "config-unknown-key",
                f"{source}: unknown section [{section}] (known: {', '.join(SECTIONS)})",
            )
        target = getattr(config, section)
        known = {f.name for f in dataclasses.fields(cls)}
        for key, value in values.items():
            if key not in known:
                raise ConfigError("config-unknown-key", f"{source}: unknown option {section}.{key}")
            default = getattr(cls(), key)
            setattr(target, key, _check_type(value, default, f"{source}: {section}.{key}"))


def _split_env(name: str) -> tuple[str, str] | None:
    rest = name[len(ENV_PREFIX) :].lower()
    section, _, key = rest.partition("_")
    return (section, key) if section in SECTIONS and key else None


def env_layer(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """The options set by ``BCAI_<SECTION>_<KEY>`` variables."""
    layer: dict[str, dict[str, Any]] = {}
    for name, text in environ.items():
        if not name.startswith(ENV_PREFIX) or name in ("BCAI_DATA_DIR", "BCAI_PASSWORD"):
            continue
        split = _split_env(name)
        if split is None:
            continue  # not ours (BCAI_VECTORS, ...)
        section, key = split
        defaults = SECTIONS[section]()
        if not hasattr(defaults, key):
            raise ConfigError("config-unknown-key", f"environment: {name} names no option")
        layer.setdefault(section, {})[key] = parse_value(text, getattr(defaults, key), name)
    return layer


def flag_layer(settings: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The options set by ``--set section.key=value`` flags."""
    layer: dict[str, dict[str, Any]] = {}
    for item in settings:
        dotted, eq, text = item.partition("=")
        section, _, key = dotted.strip().partition(".")
        if not eq or section not in SECTIONS or not key:
            raise ConfigError(
                "config-bad-value", f"--set {item!r}: expected section.key=value, e.g. api.listen=…"
            )
        defaults = SECTIONS[section]()
        if not hasattr(defaults, key):
            raise ConfigError("config-unknown-key", f"--set: unknown option {section}.{key}")
        layer.setdefault(section, {})[key] = parse_value(text, getattr(defaults, key), "--set")
    return layer


def load_config(
    data_dir: Path,
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Mapping[str, Any]] | None = None,
) -> NodeConfig:
    """Defaults, then the file (default ``<data_dir>/config.toml``, optional
    unless named), then the environment, then flags.

    Raises:
        ConfigError: with the file, variable or flag at fault.
    """
    config = NodeConfig(data_dir=data_dir)
    path = config_file or data_dir / "config.toml"
    if path.is_file():
        try:
            doc = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
            raise ConfigError("config-bad-toml", f"{path}: {err}") from err
        _apply(config, doc, str(path))
    elif config_file is not None:
        raise ConfigError("config-not-found", f"no config file at {config_file}")
    _apply(config, env_layer(os.environ if environ is None else environ), "environment")
    _apply(config, flags or {}, "flags")
    return config


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def default_toml(overrides: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """A commented config file: every option with its doc and default;
    `overrides` are written uncommented (``bcai config init --devnet``)."""
    overrides = overrides or {}
    lines = [
        "# bcai node configuration (docs/config.md).",
        "# Precedence: flags > environment (BCAI_<SECTION>_<KEY>) > this file > defaults.",
        "# Every option is shown with its default; uncomment to change it.",
    ]
    current = ""
    for section, key, default, doc in options():
        if section != current:
            lines += ["", f"[{section}]"]
            current = section
        lines.append(f"# {doc}")
        if key in overrides.get(section, {}):
            lines.append(f"{key} = {_toml_value(overrides[section][key])}")
        else:
            lines.append(f"# {key} = {_toml_value(default)}")
    return "\n".join(lines) + "\n"


def split_hostport(text: str, where: str) -> tuple[str, int]:
    """``host:port`` (IPv6 as ``[::1]:port``) → (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError("config-bad-value", f"{where}: {text!r} is not host:port")
    return host, int(port)
