"""Gossip and connection benchmarks side by side with py-libp2p (issue 4).

Each round builds its network outside the timed part and returns the seconds
of the measured operation only; the medians of those go in
`extra_info["median_s"]`, which `tools/bench_report.py` prefers over
pytest-benchmark's whole-round timing. py-libp2p runs in the same process and
run when the `bench` extra is installed (benches/libp2p_peer.py says how it
is configured fairly); without it those benchmarks skip.

- messages/s through a 10-node mesh: node 0 publishes 500 messages of 256
  bytes; the clock stops when every other node has all 500;
- connection setup to a secured, usable session, one at a time;
- secured-stream throughput of 64 MiB in 1 MiB writes;
- block propagation through a 30-node mesh: a 2 KiB block published by one
  node; per-node latency p50/p99 (bcai) and time until all 29 others have it.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio

from bcai.net import (
    FrameKind,
    Host,
    HostConfig,
    NodeKeys,
    ScoreParams,
    SecureSession,
    connect,
    serve,
)

GENESIS = b"\x02" * 32
# Spec defaults everywhere (1 s heartbeat); loopback exempt from the IP
# colocation penalty, and per-IP connection limits lifted, since all nodes
# share 127.0.0.1.
CONFIG = HostConfig(
    listen_host="127.0.0.1",
    max_per_ip=1000,
    max_per_subnet24=1000,
    target_outbound=0,
    score=ScoreParams(ip_colocation_whitelist=frozenset({"127.0.0.1"})),
)
ROUNDS = 3

try:
    from benches import libp2p_peer
except ImportError:  # the `bench` extra is not installed
    libp2p_peer = None  # type: ignore[assignment]

needs_libp2p = pytest.mark.skipif(libp2p_peer is None, reason="py-libp2p not installed")


def topology(n: int) -> set[tuple[int, int]]:
    """Ring plus chords of stride ~sqrt(n): degree 4, connected (the same
    graph benches/libp2p_peer.py builds)."""
    stride = max(2, round(math.sqrt(n)))
    edges = set()
    for i in range(n):
        for j in ((i + 1) % n, (i + stride) % n):
            if i != j:
                edges.add((min(i, j), max(i, j)))
    return edges


async def _mesh(
    nursery: trio.Nursery, n: int
) -> tuple[list[Host], list[trio.MemoryReceiveChannel[Any]]]:
    hosts = [Host(NodeKeys.generate(), GENESIS, CONFIG) for _ in range(n)]
    ports = [await nursery.start(h.run) for h in hosts]
    channels = [h.subscribe("bench") for h in hosts]
    for i, j in sorted(topology(n)):
        await hosts[i].dial("127.0.0.1", ports[j])
    with trio.fail_after(30):
        while not all(len(h.router.mesh["bench"]) >= min(4, len(h.connected())) for h in hosts):
            await trio.sleep(0.05)
    return hosts, channels


async def bcai_gossip_rate(n_nodes: int, n_messages: int, payload: int = 256) -> float:
    filler = os.urandom(payload - 8)
    async with trio.open_nursery() as nursery:
        hosts, channels = await _mesh(nursery, n_nodes)

        async def consume(channel: trio.MemoryReceiveChannel[Any]) -> None:
            seen = bytearray(n_messages)
            for _ in range(n_messages):
                d = await channel.receive()
                assert len(d.data) == payload and d.data[8:] == filler
                k = int.from_bytes(d.data[:8], "big")
                assert not seen[k]
                seen[k] = 1

        start = time.perf_counter()
        async with trio.open_nursery() as consumers:
            for channel in channels[1:]:
                consumers.start_soon(consume, channel)
            for k in range(n_messages):
                hosts[0].publish("bench", k.to_bytes(8, "big") + filler)
                if k % 32 == 31:
                    await trio.sleep(0)  # let the senders run, as a node would
        elapsed = time.perf_counter() - start
        nursery.cancel_scope.cancel()
    return elapsed


async def bcai_propagation(n_nodes: int, blocks: int = 10) -> tuple[float, list[float]]:
    """(median time until all others have a block, per-node latencies)."""
    latencies: list[float] = []
    full: list[float] = []
    async with trio.open_nursery() as nursery:
        hosts, channels = await _mesh(nursery, n_nodes)
        for b in range(blocks):
            origin = (b * 7) % n_nodes
            data = b.to_bytes(8, "big") + os.urandom(2040)
            arrived: list[float] = []

            async def wait(
                channel: trio.MemoryReceiveChannel[Any], arrived: list[float], data: bytes
            ) -> None:
                d = await channel.receive()
                assert d.data == data
                arrived.append(time.perf_counter())

            async with trio.open_nursery() as waiters:
                for i, channel in enumerate(channels):
                    if i != origin:
                        waiters.start_soon(wait, channel, arrived, data)
                await trio.sleep(0.05)
                start = time.perf_counter()
                hosts[origin].publish("bench", data)
            latencies += [t - start for t in arrived]
            full.append(max(arrived) - start)
        nursery.cancel_scope.cancel()
    return statistics.median(full), latencies


async def bcai_connect_rate(n: int) -> list[float]:
    server, client = NodeKeys.generate(), NodeKeys.generate()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def ready(session: SecureSession) -> None:
        await session.send_frame(FrameKind.PING, b"12345678")  # usable: a frame round trip
        await session.receive_frame()

    times = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, listeners, server, GENESIS, ready)
        for _ in range(n):
            start = time.perf_counter()
            session = await connect("127.0.0.1", port, client, GENESIS)
            kind, _ = await session.receive_frame()
            await session.send_frame(FrameKind.PONG, b"12345678")
            times.append(time.perf_counter() - start)
            assert kind == FrameKind.PING
            await session.aclose()
        nursery.cancel_scope.cancel()
    return times


async def bcai_stream_throughput(total: int, chunk: int = 1 << 20) -> float:
    server, client = NodeKeys.generate(), NodeKeys.generate()
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    message = os.urandom(chunk)

    async def sink(session: SecureSession) -> None:
        got = 0
        while got < total:
            _, body = await session.receive_frame()
            got += len(body)
        await session.send_frame(FrameKind.PONG, b"done")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, listeners, server, GENESIS, sink)
        session = await connect("127.0.0.1", port, client, GENESIS)
        start = time.perf_counter()
        for _ in range(total // chunk):
            await session.send_frame(FrameKind.RESPONSE, message)
        assert await session.receive_frame() == (FrameKind.PONG, b"done")
        elapsed = time.perf_counter() - start
        await session.aclose()
        nursery.cancel_scope.cancel()
    return elapsed


def measure(
    benchmark: Any, fn: Callable[..., Awaitable[Any]], *args: Any, rounds: int = ROUNDS
) -> list[Any]:
    results: list[Any] = []

    def one() -> None:
        results.append(trio.run(fn, *args))

    benchmark.pedantic(one, rounds=rounds, iterations=1)
    return results


GOSSIP_NODES, GOSSIP_MESSAGES = 10, 500


@pytest.mark.benchmark(group="gossip-10-nodes-500-msgs")
def test_bcai_gossip_rate(benchmark: Any, role: Any) -> None:
    role("bcai", target=2.0)
    times = measure(benchmark, bcai_gossip_rate, GOSSIP_NODES, GOSSIP_MESSAGES)
    benchmark.extra_info["median_s"] = statistics.median(times)
    benchmark.extra_info["msgs_per_s"] = round(GOSSIP_MESSAGES / statistics.median(times))


@needs_libp2p
@pytest.mark.benchmark(group="gossip-10-nodes-500-msgs")
def test_libp2p_gossip_rate(benchmark: Any, role: Any) -> None:
    role("baseline")
    times = measure(benchmark, libp2p_peer.libp2p_gossip_rate, GOSSIP_NODES, GOSSIP_MESSAGES)
    benchmark.extra_info["median_s"] = statistics.median(times)
    benchmark.extra_info["msgs_per_s"] = round(GOSSIP_MESSAGES / statistics.median(times))


CONNECTS = 100


def _connects(benchmark: Any, times_per_round: list[list[float]]) -> None:
    times = sorted(t for r in times_per_round for t in r)
    assert len(times) == CONNECTS * len(times_per_round)
    p50 = times[len(times) // 2]
    benchmark.extra_info["median_s"] = p50
    benchmark.extra_info["p50_ms"] = round(p50 * 1e3, 3)
    benchmark.extra_info["p99_ms"] = round(times[int(len(times) * 0.99)] * 1e3, 3)
    benchmark.extra_info["connects_per_s"] = round(len(times) / sum(times))


@pytest.mark.benchmark(group="connect-secured-usable")
def test_bcai_connect_rate(benchmark: Any, role: Any) -> None:
    role("bcai", target=2.0)
    _connects(benchmark, measure(benchmark, bcai_connect_rate, CONNECTS))


@needs_libp2p
@pytest.mark.benchmark(group="connect-secured-usable")
def test_libp2p_connect_rate(benchmark: Any, role: Any) -> None:
    role("baseline")
    _connects(benchmark, measure(benchmark, libp2p_peer.libp2p_connect_rate, CONNECTS))


STREAM_BYTES = 64 << 20


@pytest.mark.benchmark(group="secured-stream-64MiB")
def test_bcai_stream_throughput(benchmark: Any, role: Any) -> None:
    role("bcai", target=2.0)
    times = measure(benchmark, bcai_stream_throughput, STREAM_BYTES)
    benchmark.extra_info["median_s"] = statistics.median(times)
    benchmark.extra_info["MB_per_s"] = round(STREAM_BYTES / statistics.median(times) / 1e6)


@needs_libp2p
@pytest.mark.benchmark(group="secured-stream-64MiB")
def test_libp2p_stream_throughput(benchmark: Any, role: Any) -> None:
    role("baseline")
    times = measure(benchmark, libp2p_peer.libp2p_stream_throughput, STREAM_BYTES)
    benchmark.extra_info["median_s"] = statistics.median(times)
    benchmark.extra_info["MB_per_s"] = round(STREAM_BYTES / statistics.median(times) / 1e6)


PROPAGATION_NODES = 30


@pytest.mark.benchmark(group="block-propagation-30-nodes")
def test_bcai_block_propagation(benchmark: Any, role: Any) -> None:
    role("bcai")
    results = measure(benchmark, bcai_propagation, PROPAGATION_NODES, rounds=1)
    full, latencies = results[0]
    latencies.sort()
    assert len(latencies) == 10 * (PROPAGATION_NODES - 1)
    benchmark.extra_info["median_s"] = full
    benchmark.extra_info["p50_ms"] = round(latencies[len(latencies) // 2] * 1e3, 2)
    benchmark.extra_info["p99_ms"] = round(latencies[int(len(latencies) * 0.99)] * 1e3, 2)


@needs_libp2p
@pytest.mark.benchmark(group="block-propagation-30-nodes")
def test_libp2p_block_propagation(benchmark: Any, role: Any) -> None:
    role("baseline")
    times = measure(benchmark, libp2p_peer.libp2p_gossip_rate, PROPAGATION_NODES, 1, 2048, rounds=5)
    benchmark.extra_info["median_s"] = statistics.median(times)
