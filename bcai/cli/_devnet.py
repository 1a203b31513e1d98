"""`bcai devnet up`: N node processes on loopback sharing one genesis with
prefunded dev wallets, mining on CPU. The `Devnet` class is also what the
multi-process tests and the benchmarks start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcai
from bcai.crypto import PrivateKey, save_keystore
from bcai.node.config import default_toml
from bcai.node.datadir import DataDir
from bcai.node.genesis_file import dev_wallet_key, devnet_genesis, save_genesis
from bcai.sdk import ApiError, Client

DEV_PASSWORD = "devnet"
START_TIMEOUT_S = 60.0


@dataclass
class DevNode:
    index: int
    data_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return str(self.info["api"])

    def client(self) -> Client:
        return Client(self.api)


class Devnet:
    def __init__(
        self,
        root: Path,
        nodes: int = 4,
        *,
        wallets: int = 4,
        period_s: float = 1.0,
        spacing_ms: int = 1_000,
        mining: bool = True,
        seal: str = "pouw",
    ) -> None:
        self.root = root
        self.wallet_count = wallets
        self.period_s = period_s
        self.spacing_ms = spacing_ms
        self.mining = mining
        self.nodes = [DevNode(i, root / f"node{i}") for i in range(nodes)]
        self.genesis = devnet_genesis(
            wallets, spacing_ms=spacing_ms, timestamp_ms=int(time.time() * 1000), seal=seal
        )

    # ------------------------------------------------------------ setup

    def wallet_key(self, i: int) -> PrivateKey:
        return dev_wallet_key(i)

    def wallet_path(self, i: int) -> Path:
        return self.root / "wallets" / f"dev{i}.json"

    def setup(self) -> None:
        """Writes the genesis, dev wallet keystores and node data dirs."""
        self.root.mkdir(parents=True, exist_ok=True)
        save_genesis(self.root / "genesis.json", self.genesis)
        (self.root / "wallets").mkdir(exist_ok=True, mode=0o700)
        for i in range(self.wallet_count):
            if not self.wallet_path(i).exists():
                save_keystore(self.wallet_path(i), self.wallet_key(i), DEV_PASSWORD, scrypt_n=2**12)
        for node in self.nodes:
            DataDir(node.data_dir).prepare()
            save_genesis(node.data_dir / "genesis.json", self.genesis)

    def _config(self, bootstrap: list[str]) -> str:
        return default_toml(
            {
                "node": {"log_format": "json"},
                "net": {
                    "listen": "127.0.0.1:0",
                    "bootstrap": bootstrap,
                    "allow_local": True,
                    "port_mapping": False,
                    "max_per_ip": 32,
                    "max_per_subnet24": 64,
                    "colocation_whitelist": ["127.0.0.1"],
                    "sync_interval_s": 0.5,
                },
                "api": {"listen": "127.0.0.1:0"},
                "metrics": {"listen": "127.0.0.1:0"},
                "mining": {"enabled": self.mining, "period_s": self.period_s},
            }
        )

    # ------------------------------------------------------------ processes

    def spawn(self, i: int) -> None:
        """Starts node `i` (bootstrapping from the nodes already up); `wait_ready` waits."""
        node = self.nodes[i]
        peers = [f"127.0.0.1:{n.info['p2p_port']}" for n in self.nodes if n.info and n is not node]
        (node.data_dir / "config.toml").write_text(self._config(peers))
        env = dict(os.environ, PYTHONPATH=str(Path(bcai.__file__).resolve().parents[1]))
        env.pop("BCAI_DATA_DIR", None)
        log = (node.data_dir / "stderr.log").open("ab")
        node.info = {}
        node.proc = subprocess.Popen(
            [sys.executable, "-m", "bcai", "--data-dir", str(node.data_dir), "node", "run"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the devnet, which stops each node in turn
        )
        log.close()

    def wait_ready(self, i: int, timeout: float = START_TIMEOUT_S) -> dict[str, Any]:
        node = self.nodes[i]
        assert node.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if node.proc.poll() is not None:
                tail = (node.data_dir / "stderr.log").read_text()[-2000:]
                raise RuntimeError(f"node{i} exited with {node.proc.returncode}:\n{tail}")
            info = DataDir(node.data_dir).read_info()
            if info and info.get("pid") == node.proc.pid:
                node.info = info
                return info
            time.sleep(0.05)
        raise TimeoutError(f"node{i} did not start in {timeout} s")

    def start(self, progress: Any = None) -> None:
        """Node 0 first (the others bootstrap from it), then the rest."""
        self.spawn(0)
        self.wait_ready(0)
        if progress is not None:
            progress()
        for i in range(1, len(self.nodes)):
            self.spawn(i)
        for i in range(1, len(self.nodes)):
            self.wait_ready(i)
            if progress is not None:
                progress()

    def restart(self, i: int) -> dict[str, Any]:
        self.spawn(i)
        return self.wait_ready(i)

    def stop(self, i: int, sig: int | None = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        """Stops node `i` with `sig` (SIGKILL: a crash; None: it was signalled
        already, wait for it); returns its exit code. A node still running
        after `timeout` is killed."""
        proc = self.nodes[i].proc
        if proc is None:
            return None
        if proc.poll() is None:
            if sig is not None:
                proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.nodes[i].proc = None
        self.nodes[i].info = {}
        return proc.returncode

    def stop_all(self) -> list[int | None]:
        for node in self.nodes:  # signal all first: they shut down in parallel
            if node.proc is not None and node.proc.poll() is None:
                node.proc.send_signal(signal.SIGTERM)
        # a second SIGTERM would find a node mid-shutdown with the default
        # handler back (exit −15): wait instead
        return [self.stop(i, sig=None) for i in range(len(self.nodes))]

    def __enter__(self) -> Devnet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    # ------------------------------------------------------------ queries

    def heads(self) -> list[tuple[int, str]]:
        out = []
        for node in self.nodes:
            with node.client() as c:
                head = c.head()
            out.append((head.height, head.hash))
        return out

    def wait_agreement(self, timeout: float = 30.0, min_height: int = 0) -> tuple[int, str]:
        """Polls until every node's chain holds the same block at the lowest
        of their head heights, and that height is at least `min_height`;
        returns (height, hash). The nodes then agree on the whole chain up
        to there; blocks mined since may still be spreading — a devnet that
        mines every half second on a busy machine seldom has every head
        equal at one instant, which is not a disagreement."""
        deadline = time.monotonic() + timeout
        while True:
            heads = self.heads()
            low = min(h for h, _ in heads)
            at_low: set[str] = set()
            if low >= min_height:
                for node in self.nodes:
                    with node.client() as c:
                        at_low.add(c.block(low).hash)
                if len(at_low) == 1:
                    return low, at_low.pop()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nodes did not agree on a block at height >= {min_height} "
                    f"in {timeout} s: heads {heads}"
                )
            time.sleep(0.1)

    def wait_included(self, tx_ids: list[str], timeout: float = 60.0) -> tuple[int, str, int]:
        """Polls until every node's chain holds every transaction of `tx_ids`
        at or below a block every node agrees on; returns (height, hash,
        rounds). A competing block can take a transaction seen included back
        into the mempools (a reorg between miners): it is then waited for
        again — `rounds` counts the times an agreed chain still lacked one.

        Raises:
            TimeoutError: not all included and agreed on within `timeout` s.
        """
        deadline, rounds = time.monotonic() + timeout, 0
        while True:
            heights = self._inclusion_heights(tx_ids)
            if heights is not None:
                left = max(0.0, deadline - time.monotonic())
                height, head = self.wait_agreement(timeout=left, min_height=max(heights))
                again = self._inclusion_heights(tx_ids)
                if again is not None and max(again) <= height:
                    return height, head, rounds
                rounds += 1
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{len(tx_ids)} transactions not all included on every node's "
                    f"agreed chain in {timeout} s"
                )
            time.sleep(0.1)

    def _inclusion_heights(self, tx_ids: list[str]) -> list[int] | None:
        """Each node's inclusion height of each transaction (a node's index
        holds its main chain only); None while any node lacks one."""
        heights = [0]
        for node in self.nodes:
            with node.client() as c:
                for tx_id in tx_ids:
                    try:
                        status = c.tx(tx_id)
                    except ApiError as err:
                        if err.status == 404:  # neither pending nor included here yet
                            return None
                        raise
                    if status.status != "included" or status.height is None:
                        return None
                    heights.append(status.height)
        return heights


def describe(devnet: Devnet) -> dict[str, Any]:
    return {
        "dir": str(devnet.root),
        "genesis": devnet.genesis.object_id().hex(),
        "nodes": [
            {
                "node": n.index,
                "api": n.info.get("api"),
                "metrics": n.info.get("metrics"),
                "p2p_port": n.info.get("p2p_port"),
                "pid": n.info.get("pid"),
                "data_dir": str(n.data_dir),
            }
            for n in devnet.nodes
        ],
        "wallets": [
            {
                "name": f"dev{i}",
                "address": devnet.wallet_key(i).address.hex(),
                "keystore": str(devnet.wallet_path(i)),
                "password": DEV_PASSWORD,
            }
            for i in range(devnet.wallet_count)
        ],
    }


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    sys.stdout.flush()
