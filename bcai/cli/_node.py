"""`bcai node run|status` and `bcai config init`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import trio

from bcai.cli._output import EXIT_CRASHED, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, Out
from bcai.errors import BcaiError
from bcai.node.config import NodeConfig, default_toml, flag_layer, load_config
from bcai.node.datadir import DataDir
from bcai.node.genesis_file import devnet_genesis, save_genesis
from bcai.node.logs import configure_logging
from bcai.node.service import Node, serve_until_signal, service_failure
from bcai.sdk import ApiError, Client, JobFailed, NodeUnreachable

USAGE_CODES = ("config-", "genesis-", "datadir-foreign", "datadir-bad-key", "store-", "mining-")


def node_flags(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """--set items plus the shortcut flags, as one flag layer."""
    sets = list(args.set or [])
    if args.listen:
        sets.append(f"net.listen={args.listen}")
    if args.api_listen:
        sets.append(f"api.listen={args.api_listen}")
    if args.bootstrap:
        sets.append("net.bootstrap=" + ",".join(args.bootstrap))
    if args.mine:
        sets.append("mining.enabled=true")
    if args.log_level:
        sets.append(f"node.log_level={args.log_level}")
    return flag_layer(sets)


def load(args: argparse.Namespace) -> NodeConfig:
    return load_config(
        Path(args.data_dir).expanduser(),
        config_file=Path(args.config) if args.config else None,
        flags=node_flags(args),
    )


def cmd_node_run(args: argparse.Namespace) -> int:
    out = Out(args.json)
    try:
        config = load(args)
        configure_logging(
            config.node.log_level,
            "json" if args.json else config.node.log_format,
            config.data_dir / "logs" / "node.log" if config.node.log_file else None,
        )
    except (BcaiError, ValueError) as err:
        return out.error(getattr(err, "code", "config-bad-value"), str(err), EXIT_USAGE)

    def started(info: dict[str, Any]) -> None:
        if not args.json:
            out.err.print(
                f"[bold green]node running[/] — API {info['api']}, metrics {info['metrics']}, "
                f"p2p port {info['p2p_port']}; Ctrl-C stops it"
            )

    async def main() -> None:
        await serve_until_signal(Node(config), started)

    try:
        trio.run(main)
    except BcaiError as err:
        code = EXIT_UNREACHABLE if err.code == "datadir-locked" else EXIT_USAGE
        if not err.code.startswith(USAGE_CODES) and code == EXIT_USAGE:
            code = EXIT_FAILED
        return out.error(err.code, err.message, code)
    except BaseExceptionGroup as group:
        failed = service_failure(group)
        if failed is None:
            raise
        return out.error(
            failed.code,
            f"{failed.message}; the node stopped: every service was shut down and the store "
            f"closed cleanly. Log: {config.data_dir / 'logs' / 'node.log'}",
            EXIT_CRASHED,
        )
    return EXIT_OK


def api_url(args: argparse.Namespace) -> str:
    """--api, else $BCAI_API (argparse default), else the running node's
    node.json in the data dir, else the default address."""
    if args.api:
        return str(args.api)
    info = DataDir(Path(args.data_dir)).read_info()
    if info and info.get("api"):
        return str(info["api"])
    return "http://127.0.0.1:9380"


def client(args: argparse.Namespace) -> Client:
    return Client(api_url(args), token=args.token or None)


def run_client(args: argparse.Namespace, fn: Any) -> int:
    """Runs fn(client, out) and turns SDK errors into messages and exit codes."""
    out = Out(args.json)
    try:
        with client(args) as c:
            code: int = fn(c, out)
            return code
    except NodeUnreachable as err:
        return out.error(
            err.code, f"{err.message} — is a node running? (bcai node run)", EXIT_UNREACHABLE
        )
    except ApiError as err:
        return out.error(err.code, err.message, EXIT_USAGE if err.status == 400 else EXIT_FAILED)
    except JobFailed as err:
        return out.error(err.code, err.message, EXIT_FAILED)
    except BcaiError as err:
        return out.error(err.code, err.message, EXIT_USAGE)
    except TimeoutError as err:
        return out.error("cli-timeout", str(err), EXIT_FAILED)


def cmd_node_status(args: argparse.Namespace) -> int:
    def status(c: Client, out: Out) -> int:
        info = c.info()
        doc = {"api": c.url, **info.raw}
        out.result(doc)
        return EXIT_OK

    return run_client(args, status)


def cmd_config_init(args: argparse.Namespace) -> int:
    out = Out(args.json)
    data_dir = Path(args.data_dir).expanduser()
    path = Path(args.config) if args.config else data_dir / "config.toml"
    if path.exists() and not args.force:
        return out.error("config-exists", f"{path} exists; pass --force to overwrite", EXIT_USAGE)
    datadir = DataDir(data_dir)
    try:
        datadir.prepare()
    except BcaiError as err:
        return out.error(err.code, err.message, EXIT_USAGE)
    overrides: dict[str, dict[str, Any]] = {}
    written = {"config": str(path)}
    if args.devnet:
        overrides = {"mining": {"enabled": True, "period_s": 1.0}, "net": {"allow_local": True}}
        genesis_path = data_dir / "genesis.json"
        if not genesis_path.exists():
            save_genesis(genesis_path, devnet_genesis(seal=args.seal))
            written["genesis"] = str(genesis_path)
    path.write_text(default_toml(overrides))
    out.result(written, f"wrote {', '.join(written.values())}")
    return EXIT_OK
