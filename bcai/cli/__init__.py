"""The `bcai` command line. Human output by default, `--json` for scripts;
exit code 0 on success, 1 on a failed check, 2 on bad usage."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import bcai_native
from bcai import __version__
from bcai.cli._demo import run_demo
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bcai", description=__doc__)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("version", help="print versions")
    p.set_defaults(func=_cmd_version)
    p = sub.add_parser("hash", help="BLAKE3 of files (like b3sum)")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=_cmd_hash)
    p = sub.add_parser("demo", help="a short tour of what bcai can do today")
    p.set_defaults(func=_cmd_demo)
    for p in sub.choices.values():
        p.add_argument(
            "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
