"""Four nodes as real processes on loopback (`bcai node run`, started by
the devnet launcher): transactions submitted through the SDK are included
and every head agrees; the CLI's `--json` output parses; a node killed with
SIGKILL restarts on its store and catches up; SIGTERM stops a node cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bcai
from bcai.chain import COIN, Transfer
from bcai.cli._devnet import DEV_PASSWORD, Devnet
from bcai.crypto import PrivateKey

ENV = dict(os.environ, PYTHONPATH=str(Path(bcai.__file__).resolve().parents[1]))


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    net = Devnet(tmp_path_factory.mktemp("devnet"), 4, period_s=0.5, spacing_ms=500)
    net.setup()
    try:
        net.start()
        yield net
    finally:
        codes = net.stop_all()
        assert all(c in (0, None) for c in codes), codes


def cli(devnet: Devnet, *args: str, node: int = 0) -> Any:
    result = subprocess.run(
        [sys.executable, "-m", "bcai", "--json", "--api", devnet.nodes[node].api, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**ENV, "BCAI_PASSWORD": DEV_PASSWORD},
    )
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else None


def test_sdk_transfers_are_included_and_heads_agree(devnet: Devnet) -> None:
    recipients = [PrivateKey.generate().address for _ in range(8)]
    ids = []
    for k, to in enumerate(recipients):
        with devnet.nodes[k % 4].client() as client:
            key = devnet.wallet_key(k % 4)
            ids.append(client.send(key, Transfer(to=to, amount=(k + 1) * COIN)).id)
    with devnet.nodes[3].client() as client:
        assert all(client.wait_for_tx(i, timeout=40).height for i in ids)
    # a block seen including one can lose to a competing block mined meanwhile
    # (the transaction goes back to the mempools): wait for every node's agreed
    # chain to hold them all
    height, _, _ = devnet.wait_included(ids, timeout=90)
    for node in devnet.nodes:
        with node.client() as client:
            for k, to in enumerate(recipients):
                assert client.account(to).balance == (k + 1) * COIN
            assert client.info().peers >= 1
    assert height >= 1


def test_cli_json_output(devnet: Devnet, tmp_path: Path) -> None:
    code, head = cli(devnet, "chain", "head")
    assert code == 0 and len(head["hash"]) == 64 and head["height"] >= 0
    code, block = cli(devnet, "chain", "block", "0")
    assert code == 0 and block["height"] == 0
    code, status = cli(devnet, "node", "status")
    assert code == 0 and status["chain_id"] == 1337 and status["peers"] >= 1
    to = PrivateKey.generate().address.hex()
    wallet = str(devnet.wallet_path(1))
    code, sent = cli(
        devnet, "tx", "send", "--wallet", wallet, "--to", to, "--amount", "2.5", "--wait"
    )
    assert code == 0 and sent["status"] == "included", sent
    devnet.wait_included([sent["id"]], timeout=60)  # on node 0's chain; now on every node's
    code, tx = cli(devnet, "chain", "tx", sent["id"], node=2)
    assert code == 0 and tx["tx"]["payload"] == {
        "kind": "transfer",
        "amount": 2_500_000_000,
        "to": to,
    }
    code, balance = cli(devnet, "wallet", "balance", to, node=1)
    assert code == 0 and balance["balance"] == 2_500_000_000 and balance["proof_valid"] is True
    code, err = cli(devnet, "tx", "send", "--wallet", wallet, "--to", "nothex", "--amount", "1")
    assert code == 2 and err["error"]["code"] == "cli-bad-address"
    code, err = cli(devnet, "chain", "block", "123456")
    assert code == 1 and err["error"]["code"] == "store-not-found"
    result = subprocess.run(
        [sys.executable, "-m", "bcai", "--json", "--api", "http://127.0.0.1:9", "chain", "head"],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert result.returncode == 3
    assert json.loads(result.stdout)["error"]["code"] == "sdk-unreachable"


def test_cli_job_from_post_to_product(devnet: Devnet, tmp_path: Path) -> None:
    """`bcai job post --wait --out`: A and B uploaded to node 0, the job
    sealed by a block of the devnet (PoUW), C written and checked against
    A·B; `job status` on another node (proof checked), `job result --check`
    on a third (C's blob came with the block); and the errors, each with its
    code and exit status."""
    rng = np.random.default_rng(3)
    a, b = rng.integers(-63, 64, (128, 128)), rng.integers(-63, 64, (128, 256))
    np.save(tmp_path / "a.npy", a.astype(np.int8))
    np.save(tmp_path / "b.npy", b.astype(np.int16))  # any integer dtype within ±63
    wallet = str(devnet.wallet_path(0))
    args = ["--wallet", wallet, "--a", str(tmp_path / "a.npy"), "--b", str(tmp_path / "b.npy")]
    out = str(tmp_path / "c.npy")
    post = ("job", "post", *args, "--amount", "0.5", "--wait", "--timeout", "90", "--out", out)
    code, job = cli(devnet, *post)
    assert code == 0 and job["status"] == "sealed" and job["check"] == "passed", job
    assert (job["n"], job["k"], job["m"], job["amount"]) == (128, 128, 256, 500_000_000)
    assert job["proof_valid"] is True and len(job["product"]) == 64
    assert np.array_equal(np.load(out), a @ b) and np.load(out).dtype == np.int32
    code, status = cli(devnet, "job", "status", job["id"], "--wait", "--timeout", "60", node=2)
    assert code == 0 and status["status"] == "sealed" and status["proof_valid"] is True
    # the same C whichever block sealed it (a competing block may have sealed it again,
    # by another producer, once the first one's blobs had spread)
    assert status["product"] == job["product"] and len(status["solver"]) == 40
    poster = devnet.wallet_key(0).address.hex()
    code, listed = cli(devnet, "job", "list", "--status", "all", "--poster", poster, node=2)
    assert code == 0 and job["id"] in [j["id"] for j in listed["jobs"]]
    again = str(tmp_path / "c2.bin")
    code, _ = cli(devnet, "job", "status", job["id"], "--wait", "--timeout", "60", node=3)
    assert code == 0  # node 3 has the sealing block (and C's blob, which came with it)
    code, result = cli(
        devnet, "job", "result", job["id"], "--out", again, "--check", *args[3::2], node=3
    )
    assert code == 0 and result["check"] == "passed" and result["shape"] == [128, 256]
    assert np.array_equal(np.load(again), a @ b)
    # matrices that are not the job's: refused (C is checked against the job's A and B only)
    np.save(tmp_path / "b2.npy", (b[:, ::-1]).astype(np.int8))
    code, err = cli(
        devnet, "job", "result", job["id"], "--out", again,
        "--check", args[3], str(tmp_path / "b2.npy"), node=3,
    )  # fmt: skip
    assert code == 2 and err["error"]["code"] == "cli-not-the-jobs-matrices"
    # refused before anything is uploaded
    np.save(tmp_path / "big.npy", np.full((128, 128), 64))
    for bad, reason in (
        (["--a", str(tmp_path / "big.npy"), "--b", args[5]], "pouw-range"),
        (["--a", str(tmp_path / "none.npy"), "--b", args[5]], "cli-bad-file"),
        (["--a", args[5], "--b", args[5]], "sdk-job-shape"),  # 128×256 · 128×256
        ([*args[2:], "--deadline", "1"], "tx-job-deadline"),
    ):
        code, err = cli(devnet, "job", "post", "--wallet", wallet, *bad, "--amount", "1")
        assert code == 2 and err["error"]["code"] == reason, (bad, err)
    code, err = cli(devnet, "job", "status", "ab" * 32)
    assert code == 1 and err["error"]["code"] == "job-unknown"
    code, err = cli(devnet, "job", "result", "ab" * 32, "--out", again)
    assert code == 1 and err["error"]["code"] == "job-unknown"


def test_killed_node_restarts_and_catches_up(devnet: Devnet) -> None:
    before = devnet.nodes[3].info["peer_id"]
    assert devnet.stop(3, signal.SIGKILL) == -signal.SIGKILL
    with devnet.nodes[0].client() as client:
        start = client.head().height
        deadline = time.monotonic() + 30
        while client.head().height < start + 3:  # the others go on without it
            assert time.monotonic() < deadline
            time.sleep(0.1)
    info = devnet.restart(3)
    assert info["peer_id"] == before  # same identity from keys/node.key
    height, _ = devnet.wait_agreement(timeout=40, min_height=start + 3)
    assert height >= start + 3


def test_sigterm_stops_a_node_cleanly(devnet: Devnet) -> None:
    assert devnet.stop(2, signal.SIGTERM) == 0
    assert not (devnet.nodes[2].data_dir / "node.json").exists()
    log = (devnet.nodes[2].data_dir / "logs" / "node.log").read_text().splitlines()
    events = [json.loads(line)["event"] for line in log]
    assert "shutting down" in events and events[-1] == "node stopped; store closed"
    devnet.restart(2)
    devnet.wait_agreement(timeout=40)


def test_a_crashed_service_stops_the_node_with_a_report(tmp_path: Path) -> None:
    """The API's port is taken: the api service fails, the node stops (exit 4)
    and says which service failed and why; the data dir is released."""
    init = subprocess.run(
        [sys.executable, "-m", "bcai", "--data-dir", str(tmp_path), "config", "init", "--devnet"],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert init.returncode == 0, init.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "bcai",
                "--json",
                "--data-dir",
                str(tmp_path),
                "node",
                "run",
                "--api-listen",
                f"127.0.0.1:{port}",
                "--listen",
                "127.0.0.1:0",
                "--set",
                "metrics.listen=127.0.0.1:0",
                "--set",
                "net.port_mapping=false",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=ENV,
        )
    assert result.returncode == 4, result.stderr[-2000:]
    error = json.loads(result.stdout.strip().splitlines()[-1])["error"]
    assert error["code"] == "node-service-failed"
    assert "the api service failed: OSError" in error["message"]
    assert not (tmp_path / "node.json").exists()
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "bcai",
            "--json",
            "--data-dir",
            str(tmp_path),
            "node",
            "run",
            "--set",
            "config.bad=1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
    )
    assert again.returncode == 2
    assert json.loads(again.stdout)["error"]["code"] == "config-bad-value"


def test_devnet_demo_command_end_to_end(tmp_path: Path) -> None:
    """`bcai devnet up --demo` (what `make demo` runs): its own nodes, the
    transfers included, every node agreeing, the nodes stopped and the
    devnet's directory kept only when asked."""
    root = tmp_path / "net"
    args = ["devnet", "up", "--nodes", "3", "--demo", "--transfers", "6", "--period", "0.5"]
    result = subprocess.run(
        [sys.executable, "-m", "bcai", "--json", *args, "--dir", str(root)],
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    doc = json.loads(result.stdout)
    demo = doc["demo"]
    assert demo["ok"] is True and demo["balances_ok"] is True
    assert demo["included"] == demo["transfers"] == 6 and demo["reincluded"] >= 0
    assert len(demo["nodes"]) == 3 and demo["head"]["height"] >= 1
    assert all(r["height"] >= demo["head"]["height"] for r in demo["nodes"])
    assert demo["seal"].startswith("proof of useful work")
    # and a MatMul job: sealed, its C fetched from the last node equal to A·B
    job = demo["job"]
    assert job["status"] == "sealed" and job["product_ok"] is True and job["proof_valid"] is True
    assert len(job["product"]) == 64 and len(job["solver"]) == 40
    # every node stopped: none left holding its data dir
    assert not any(root.glob("node*/node.json"))
