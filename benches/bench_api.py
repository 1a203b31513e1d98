"""API benchmarks (issue 8). Requests per second for the head and an
account (with its state proof) on a real node, against a plain ASGI hello
served by the same hypercorn trio worker (the baseline: what the server
stack itself costs); and the latency from submitting a transfer to seeing
it included on a 4-node devnet, against that devnet's block interval
measured in the same run (a transaction waits about one interval)."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from bcai.chain import COIN, Transfer
from bcai.cli._devnet import Devnet
from bcai.crypto import PrivateKey
from bcai.node.config import flag_layer, load_config
from bcai.node.genesis_file import dev_wallet_key, devnet_genesis, save_genesis
from bcai.node.service import Node

HELLO = b'{"hello":"world"}'


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": HELLO})


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A node (mining slowly) and a hello server, on one trio loop in a thread."""
    tmp = tmp_path_factory.mktemp("api")
    save_genesis(tmp / "genesis.json", devnet_genesis(2))
    sets = ["net.listen=127.0.0.1:0", "api.listen=127.0.0.1:0", "metrics.enabled=false",
            "net.port_mapping=false", "mining.enabled=true", "mining.period_s=1"]  # fmt: skip
    config = load_config(Path(tmp), environ={}, flags=flag_layer(sets))
    urls: dict[str, str] = {}
    ready = threading.Event()
    stop: list[Any] = []

    async def main() -> None:
        node = Node(config)
        hello = Config()
        hello.bind = ["127.0.0.1:0"]
        hello.accesslog = None
        async with trio.open_nursery() as nursery:
            stop.append((trio.lowlevel.current_trio_token(), node, nursery))
            info = await nursery.start(node.run)
            binds = await nursery.start(
                lambda task_status: serve(hello_app, hello, task_status=task_status)
            )  # type: ignore[arg-type]
            urls.update(node=info["api"], hello=binds[0])
            ready.set()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    assert ready.wait(60)
    yield urls
    token, node, nursery = stop[0]

    async def halt() -> None:
        await node.shutdown()
        nursery.cancel_scope.cancel()

    trio.from_thread.run(halt, trio_token=token)
    thread.join(10)


def _get(client: httpx.Client, path: str, check: Any) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert check(response.json())


@pytest.mark.benchmark(group="api-requests")
def test_baseline_hello(benchmark: Any, role: Any, servers: dict[str, str]) -> None:
    role("baseline")
    with httpx.Client(base_url=servers["hello"]) as client:
        benchmark(_get, client, "/", lambda d: d == {"hello": "world"})


@pytest.mark.benchmark(group="api-requests")
def test_head(benchmark: Any, role: Any, servers: dict[str, str]) -> None:
    role("bcai")
    with httpx.Client(base_url=servers["node"]) as client:
        benchmark(_get, client, "/v1/chain/head", lambda d: len(d["hash"]) == 64)


@pytest.mark.benchmark(group="api-requests")
def test_account_with_proof(benchmark: Any, role: Any, servers: dict[str, str]) -> None:
    role("bcai")
    addr = dev_wallet_key(0).address.hex()
    with httpx.Client(base_url=servers["node"]) as client:
        benchmark(_get, client, f"/v1/chain/accounts/{addr}", lambda d: d["balance"] > 0)


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    net = Devnet(tmp_path_factory.mktemp("devnet"), 4, period_s=0.5, spacing_ms=500)
    net.setup()
    net.start()
    yield net
    net.stop_all()


def _block_interval(devnet: Devnet, blocks: int = 8) -> float:
    with devnet.nodes[0].client() as c:
        head = c.head()
        start = c.block(max(0, head.height - blocks))
        return (head.timestamp_ms - start.timestamp_ms) / 1000 / max(1, head.height - start.height)


@pytest.mark.benchmark(group="api-inclusion")
def test_submit_to_inclusion(benchmark: Any, role: Any, devnet: Devnet) -> None:
    """Submit on node 0, poll node 3 until the transfer is included there."""
    role("bcai")
    key = dev_wallet_key(1)
    devnet.wait_agreement(min_height=8)
    with devnet.nodes[0].client() as sender, devnet.nodes[3].client() as watcher:

        def once() -> None:
            sent = sender.send(key, Transfer(to=PrivateKey.generate().address, amount=COIN))
            status = watcher.wait_for_tx(sent.id, timeout=30, poll=0.01)
            assert status.status == "included"

        benchmark.pedantic(once, rounds=8, iterations=1)
    benchmark.extra_info["block_interval_s"] = _block_interval(devnet)


@pytest.mark.benchmark(group="api-inclusion")
def test_baseline_block_interval(benchmark: Any, role: Any, devnet: Devnet) -> None:
    """The devnet's block interval, measured by waiting for new heads."""
    role("baseline")
    with devnet.nodes[3].client() as c:

        def one_block() -> None:
            start = c.head().height
            while c.head().height == start:
                time.sleep(0.01)

        one_block()
        benchmark.pedantic(one_block, rounds=8, iterations=1)
    assert statistics.median(benchmark.stats.stats.data) > 0
