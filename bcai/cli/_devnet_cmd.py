"""`bcai devnet up [--nodes N] [--demo]`: start a local devnet, show where
everything is, and stop every node cleanly on Ctrl-C; with `--demo`, run a
short scripted demonstration (transfers submitted through the SDK, blocks
mined, every node agreeing on the chain; on a PoUW devnet also a MatMul job
paid for, sealed by a block and its product fetched from another node and
checked; a summary) and stop."""

from __future__ import annotations

import argparse
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bcai import pouw
from bcai.chain import COIN, Transfer
from bcai.cli._devnet import Devnet, describe, print_json
from bcai.cli._output import EXIT_FAILED, EXIT_OK, Out, rows_table
from bcai.crypto import PrivateKey
from bcai.errors import BcaiError
from bcai.sdk import Client, JobInfo

REINCLUDE_S = 90.0  # how long the demo waits for transfers a reorg took back out of the chain
JOB_SHAPE = (128, 256, 128)  # the demo's MatMul job: A (n×k) · B (k×m), entries within ±63
JOB_WAIT_S = 120.0

COLUMNS = (
    TextColumn("{task.description}"),
    BarColumn(),
    MofNCompleteColumn(),
    TimeElapsedColumn(),
)


def cmd_devnet_up(args: argparse.Namespace) -> int:
    out = Out(args.json)
    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bcai-devnet-"))
    devnet = Devnet(root, args.nodes, period_s=args.period, seal=args.seal)
    devnet.setup()
    try:
        with Progress(*COLUMNS, disable=args.json, transient=True) as progress:
            task = progress.add_task("starting nodes", total=args.nodes)
            devnet.start(progress=lambda: progress.advance(task))
        doc = describe(devnet)
        if not args.json:
            _print_devnet(out, doc)
        if args.demo:
            report = run_demo(devnet, out, transfers=args.transfers)
            if args.json:
                print_json({**doc, "demo": report})
            return EXIT_OK if report["ok"] else EXIT_FAILED
        if args.json:
            print_json(doc)
        else:
            out.console.print("\n[bold]devnet running[/] — Ctrl-C stops every node")
        _wait_until_interrupted(devnet, out)
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        codes = devnet.stop_all()
        if not args.json:
            out.err.print(f"stopped {len(codes)} nodes (exit codes {codes})")
        if not args.dir and not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def _wait_until_interrupted(devnet: Devnet, out: Out) -> None:
    while True:
        time.sleep(0.5)
        for node in devnet.nodes:
            if node.proc is not None and node.proc.poll() is not None:
                out.error(
                    "devnet-node-exited",
                    f"node{node.index} exited with {node.proc.returncode}; see "
                    f"{node.data_dir / 'stderr.log'}",
                    EXIT_FAILED,
                )
                node.proc = None


def _print_devnet(out: Out, doc: dict[str, Any]) -> None:
    out.console.print(f"devnet in [bold]{doc['dir']}[/] — genesis {doc['genesis'][:16]}…")
    out.console.print(
        rows_table(
            "nodes",
            ["node", "API", "metrics", "p2p", "pid"],
            [[n["node"], n["api"], n["metrics"], n["p2p_port"], n["pid"]] for n in doc["nodes"]],
        )
    )
    out.console.print(
        rows_table(
            f"dev wallets (password '{doc['wallets'][0]['password']}')",
            ["name", "address", "keystore"],
            [[w["name"], w["address"], w["keystore"]] for w in doc["wallets"]],
        )
    )
    first = doc["nodes"][0]
    out.console.print(
        f"try: [cyan]bcai --api {first['api']} chain head[/]  or  "
        f"[cyan]BCAI_PASSWORD=devnet bcai --api {first['api']} tx send "
        f"--wallet {doc['wallets'][0]['keystore']} --to <address> --amount 1 --wait[/]"
    )


def run_demo(devnet: Devnet, out: Out, *, transfers: int = 12) -> dict[str, Any]:
    """Transfers from the dev wallets through different nodes, waits for
    every one to be included and for every node to agree on the chain; returns a report."""
    started = time.monotonic()
    start_height = min(h for h, _ in devnet.heads())
    clients = [Client(n.api) for n in devnet.nodes]
    recipients = [PrivateKey.generate().address for _ in range(transfers)]
    nonces: dict[int, int] = {}
    sent: list[tuple[str, int, int]] = []  # (tx id, recipient index, amount)
    job: dict[str, Any] | None = None
    try:
        with Progress(*COLUMNS, disable=out.as_json, transient=True) as progress:
            task = progress.add_task("submitting transfers", total=transfers)
            for k in range(transfers):
                w = k % devnet.wallet_count
                client = clients[k % len(clients)]
                key = devnet.wallet_key(w)
                if w not in nonces:
                    nonces[w] = client.account(key.address).nonce
                amount = (k + 1) * COIN
                result = client.send(
                    key, Transfer(to=recipients[k], amount=amount), nonce=nonces[w]
                )
                nonces[w] += 1
                sent.append((result.id, k, amount))
                progress.advance(task)
            if pouw.params_from_extra(devnet.genesis.extra) is not None:
                job = _post_job(devnet, clients, nonces)
            task = progress.add_task("waiting for inclusion", total=transfers)
            included: dict[str, int] = {}
            for tx_id, _, _ in sent:
                status = clients[0].wait_for_tx(tx_id, timeout=60)
                included[tx_id] = status.height or 0
                progress.advance(task)
        # a competing block can take transfers back into the mempools after they were
        # seen included (a reorg between miners): wait_included waits for them again
        rounds: int | None = None
        try:
            ids = [tx_id for tx_id, _, _ in sent]
            height, head, rounds = devnet.wait_included(ids, timeout=REINCLUDE_S)
        except TimeoutError:  # reported below: the balances on the agreed chain are wrong
            height, head = devnet.wait_agreement(timeout=30, min_height=max(included.values()))
        balances_ok = all(
            clients[-1].account(recipients[k]).balance == amount for _, k, amount in sent
        )
        if job is not None:
            job = _finish_job(job, clients[-1], out)
        rows = []
        agreed = True  # every node's chain holds the agreed block (heads may have moved on)
        for node, client in zip(devnet.nodes, clients, strict=True):
            agreed = agreed and client.block(height).hash == head
            info = client.info()
            rows.append(
                {
                    "node": node.index,
                    "height": info.head_height,
                    "head": info.head_hash,
                    "peers": info.peers,
                    "mempool": info.mempool_count,
                    "mined": info.mining.get("blocks", 0),
                }
            )
    finally:
        for c in clients:
            c.close()
    report = {
        "ok": balances_ok and agreed and (job is None or job["product_ok"]),
        "transfers": transfers,
        "included": len(included),
        "blocks": height - start_height,
        "head": {"height": height, "hash": head},
        "balances_ok": balances_ok,
        "reincluded": rounds,  # times an agreed chain lacked a transfer (None: timed out)
        "seconds": round(time.monotonic() - started, 2),
        "seal": _seal_name(devnet),
        "job": job,  # None on a hash-sealed devnet
        "nodes": rows,
    }
    if not out.as_json:
        _print_demo(out, report)
    return report


def _print_demo(out: Out, report: dict[str, Any]) -> None:
    rows, job, transfers = report["nodes"], report["job"], report["transfers"]
    height, head = report["head"]["height"], report["head"]["hash"]
    balances_ok = report["balances_ok"]
    out.console.print(
        rows_table(
            "every node's head",
            ["node", "height", "head", "peers", "mempool", "blocks mined"],
            [
                [
                    r["node"],
                    r["height"],
                    r["head"][:16] + "…",
                    r["peers"],
                    r["mempool"],
                    r["mined"],
                ]
                for r in rows
            ],
        )
    )
    verdict = "[bold green]all nodes agree[/]" if report["ok"] else "[bold red]FAILED[/]"
    out.console.print(
        f"{verdict}: {report['included']}/{transfers} transfers included, "
        f"{report['blocks']} blocks mined, agreed block {height} {head[:16]}…, "
        f"recipients' balances {'correct' if balances_ok else 'WRONG'}, "
        f"{report['seconds']} s; blocks sealed by {report['seal']}"
    )
    if job is not None:
        n, k, m = JOB_SHAPE
        verdict = "checked" if job["product_ok"] else "[bold red]WRONG or missing[/]"
        out.console.print(
            f"MatMul job {job['id'][:16]}…: C = A·B ({n}×{k}·{k}×{m}) posted to node 0, "
            f"{job['status']} by {str(job['solver'])[:16]}… in {job['seconds']} s; "
            f"C from node {rows[-1]['node']} {verdict}"
        )


def _post_job(devnet: Devnet, clients: list[Client], nonces: dict[int, int]) -> dict[str, Any]:
    """Random A and B uploaded to node 0 and a job paying 1 BCAI for C = A·B
    posted from dev wallet 0 (its next nonce after the transfers)."""
    n, k, m = JOB_SHAPE
    rng = np.random.default_rng(secrets.randbits(64))
    a, b = rng.integers(-63, 64, (n, k)), rng.integers(-63, 64, (k, m))
    key = devnet.wallet_key(0)
    if 0 not in nonces:
        nonces[0] = clients[0].account(key.address).nonce
    deadline = clients[0].head().height + 1000
    sent = clients[0].post_job(key, a, b, amount=COIN, deadline=deadline, nonce=nonces[0])
    nonces[0] += 1
    return {"id": sent.id, "a": a, "b": b, "started": time.monotonic()}


def _finish_job(posted: dict[str, Any], client: Client, out: Out) -> dict[str, Any]:
    """Waits (on the last node) for the job to be sealed, fetches C there
    and checks it against A·B; the report's part on the job."""
    info: JobInfo | None = None
    with Progress(*COLUMNS, disable=out.as_json, transient=True) as progress:
        progress.add_task("waiting for a block to seal the MatMul job", total=None)
        try:
            info = client.wait_for_job(posted["id"], timeout=JOB_WAIT_S)
            product_ok = info.status == "sealed" and bool(
                np.array_equal(client.product(info), posted["a"] @ posted["b"])
            )
        except (TimeoutError, BcaiError):
            product_ok = False
    return {
        "id": posted["id"],
        "status": info.status if info else "not sealed in time",
        "solver": info.solver if info else None,
        "product": info.product if info else None,
        "proof_valid": info.verify() if info else False,
        "product_ok": product_ok,
        "seconds": round(time.monotonic() - posted["started"], 2),
    }


def _seal_name(devnet: Devnet) -> str:
    params = pouw.params_from_extra(devnet.genesis.extra)
    if params is None:
        return "the hash seal"
    return f"proof of useful work ({params.n}×{params.k}·{params.k}×{params.m}, b = {params.tile})"
