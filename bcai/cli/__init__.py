"""The `bcai` command line: run a node or a devnet, manage wallets, send
transactions, post MatMul jobs and fetch their products, read the chain.
Human output by default, `--json` for scripts; exit codes are listed below
and in docs/api.md."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bcai_native
from bcai import __version__
from bcai.cli._demo import run_demo
from bcai.cli._devnet_cmd import cmd_devnet_up
from bcai.cli._job import add_job_commands
from bcai.cli._node import cmd_config_init, cmd_node_run, cmd_node_status
from bcai.cli._output import EXIT_CODES_HELP
from bcai.cli._wallet import cmd_chain, cmd_tx, cmd_wallet_balance, cmd_wallet_new, cmd_wallet_show
from bcai.crypto import Blake3


def _cmd_version(args: argparse.Namespace) -> int:
    info = {"bcai": __version__, "bcai_native": bcai_native.__version__}
    print(json.dumps(info) if args.json else f"bcai {__version__} (native {info['bcai_native']})")
    return 0


def _cmd_hash(args: argparse.Namespace) -> int:
    results = []
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            print(f"bcai hash: {name}: no such file", file=sys.stderr)
            return 2
        h = Blake3(threads=True)
        with path.open("rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        results.append({"file": name, "blake3": h.hexdigest()})
    for r in results:
        print(json.dumps(r) if args.json else f"{r['blake3']}  {r['file']}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(as_json=args.json)


def _add_node_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="config file (default: <data dir>/config.toml)")
    p.add_argument(
        "--set", action="append", metavar="SECTION.KEY=VALUE", help="override one option"
    )
    p.add_argument("--listen", help="net.listen: host:port for peers")
    p.add_argument("--api-listen", help="api.listen: host:port of the API")
    p.add_argument("--bootstrap", action="append", metavar="HOST:PORT", help="a peer to dial")
    p.add_argument("--mine", action="store_true", help="mining.enabled = true")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])


def _wallet_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default="default", help="wallet name in <data dir>/wallets/")
    p.add_argument("--wallet", help="path of a keystore file (instead of --name)")
    p.add_argument("--password-file", help="file holding the password (else $BCAI_PASSWORD)")


def _group(sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, text: str) -> Any:
    p = sub.add_parser(
        name,
        help=text,
        description=text,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return p.add_subparsers(dest=f"{name}_command", required=True)


def _seal_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seal",
        choices=("pouw", "hash"),
        default="pouw",
        help="how the devnet's blocks are sealed: proof of useful work (default) or hash",
    )


def build_parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one table of commands
    parser = argparse.ArgumentParser(
        prog="bcai",
        description=__doc__,
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("BCAI_DATA_DIR", "~/.bcai"),
        help="the node's data dir ($BCAI_DATA_DIR, default ~/.bcai)",
    )
    parser.add_argument(
        "--api",
        default=os.environ.get("BCAI_API"),
        help="node API URL ($BCAI_API; default: the node running in --data-dir, "
        "else http://127.0.0.1:9380)",
    )
    parser.add_argument(
        "--token", default=os.environ.get("BCAI_API_TOKEN"), help="API bearer token for writes"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("version", help="print versions")
    p.set_defaults(func=_cmd_version)
    p = sub.add_parser("hash", help="BLAKE3 of files (like b3sum)")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=_cmd_hash)
    p = sub.add_parser("demo", help="a short in-process tour of the building blocks")
    p.set_defaults(func=_cmd_demo)

    node = _group(sub, "node", "run a node, or ask a running one for its status")
    p = node.add_parser("run", help="run the node until Ctrl-C / SIGTERM")
    _add_node_flags(p)
    p.set_defaults(func=cmd_node_run)
    p = node.add_parser("status", help="head, peers, mempool and mining of a running node")
    p.set_defaults(func=cmd_node_status)

    config = _group(sub, "config", "the node's configuration file")
    p = config.add_parser("init", help="write a commented default config.toml")
    p.add_argument("--config", help="where to write it (default: <data dir>/config.toml)")
    p.add_argument(
        "--devnet", action="store_true", help="mine, allow local peers, write a devnet genesis"
    )
    _seal_arg(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_config_init)

    devnet = _group(sub, "devnet", "a local network of node processes")
    p = devnet.add_parser("up", help="start N nodes on loopback; Ctrl-C stops them")
    p.add_argument("--nodes", type=int, default=4, help="how many nodes (default 4)")
    p.add_argument("--dir", help="keep the devnet here (default: a temporary dir)")
    p.add_argument("--keep", action="store_true", help="keep the temporary dir at exit")
    p.add_argument("--period", type=float, default=1.0, help="seconds between blocks (default 1)")
    _seal_arg(p)
    p.add_argument("--demo", action="store_true", help="run the scripted demonstration, then stop")
    p.add_argument("--transfers", type=int, default=12, help="transfers in the demo")
    p.set_defaults(func=cmd_devnet_up)

    wallet = _group(sub, "wallet", "encrypted keys in <data dir>/wallets/")
    p = wallet.add_parser("new", help="create a wallet (asks for a password)")
    _wallet_args(p)
    p.set_defaults(func=cmd_wallet_new)
    p = wallet.add_parser("show", help="a wallet's address and public key")
    _wallet_args(p)
    p.set_defaults(func=cmd_wallet_show)
    p = wallet.add_parser("balance", help="balance, stake and nonce (proof checked)")
    _wallet_args(p)
    p.add_argument("address", nargs="?", help="any address (default: the wallet's)")
    p.set_defaults(func=cmd_wallet_balance)

    tx = _group(sub, "tx", "sign and submit transactions (amounts in BCAI, e.g. 1.5)")
    for name, text in [
        ("send", "transfer to an address"),
        ("stake", "bond stake"),
        ("unstake", "start unbonding stake"),
        ("burn", "destroy coins"),
    ]:
        p = tx.add_parser(name, help=text)
        _wallet_args(p)
        if name == "send":
            p.add_argument("--to", required=True, help="recipient address (40 hex digits)")
        p.add_argument("--amount", required=True, help="in BCAI (up to 9 decimals)")
        p.add_argument("--tip", type=int, default=1, help="tip per byte, base units (default 1)")
        p.add_argument("--wait", action="store_true", help="wait until included")
        p.add_argument("--timeout", type=float, default=60.0, help="for --wait, seconds")
        p.set_defaults(func=cmd_tx)

    job = _group(sub, "job", "MatMul jobs: pay for C = A·B, follow the job, fetch C")
    add_job_commands(job, _wallet_args)

    chain = _group(sub, "chain", "read the chain")
    p = chain.add_parser("head", help="the head block's header")
    p.set_defaults(func=cmd_chain)
    p = chain.add_parser("block", help="a block by height or hash")
    p.add_argument("id")
    p.add_argument("--full", action="store_true", help="whole transactions, not ids")
    p.set_defaults(func=cmd_chain)
    p = chain.add_parser("tx", help="a transaction by id (pending or included)")
    p.add_argument("id")
    p.set_defaults(func=cmd_chain)

    _json_everywhere(parser)
    return parser


def _json_everywhere(parser: argparse.ArgumentParser) -> None:
    """`--json` is accepted after any command too (`bcai chain head --json`)."""
    for action in parser._subparsers._group_actions if parser._subparsers else []:
        for p in getattr(action, "choices", {}).values():
            if not any("--json" in a.option_strings for a in p._actions):
                p.add_argument(
                    "--json",
                    action="store_true",
                    default=argparse.SUPPRESS,
                    help="machine-readable output",
                )
            _json_everywhere(p)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
