"""Network benchmarks (issue 4, first part): encrypted throughput of 1 MiB
messages over loopback against plain trio TCP (target >= 200 MB/s), and
connection setup (TCP + secure session ready; target p50 <= 10 ms) against a
plain TCP connect. py-libp2p comparisons come with the gossip work."""

from __future__ import annotations

import os
from typing import Any

import pytest
import trio

from bcai.net import FrameKind, NodeKeys, SecureSession, connect, serve

GENESIS = b"\x01" * 32
MESSAGE = os.urandom(1 << 20)
COUNT = 64
SERVER_KEYS, CLIENT_KEYS = NodeKeys.generate(), NodeKeys.generate()


async def secure_transfer() -> int:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    received = 0

    async def sink(session: SecureSession) -> None:
        nonlocal received
        for _ in range(COUNT):
            kind, body = await session.receive_frame()
            assert kind == FrameKind.RESPONSE and len(body) == len(MESSAGE)
            received += len(body)
        await session.send_frame(FrameKind.PING, b"done")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, listeners, SERVER_KEYS, GENESIS, sink)
        session = await connect("127.0.0.1", port, CLIENT_KEYS, GENESIS)
        for _ in range(COUNT):
            await session.send_frame(FrameKind.RESPONSE, MESSAGE)
        assert await session.receive_frame() == (FrameKind.PING, b"done")
        await session.aclose()
        nursery.cancel_scope.cancel()
    return received


async def plain_transfer() -> int:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    total = COUNT * len(MESSAGE)
    received = 0

    async def sink(stream: trio.SocketStream) -> None:
        nonlocal received
        while received < total:
            data = await stream.receive_some(1 << 20)
            if not data:
                break
            received += len(data)
        await stream.send_all(b"k")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.serve_listeners, sink, listeners)
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        for _ in range(COUNT):
            await stream.send_all(MESSAGE)
        assert await stream.receive_some(1) == b"k"
        await stream.aclose()
        nursery.cancel_scope.cancel()
    return received


@pytest.mark.benchmark(group="net-64x1MiB-loopback")
def test_bcai_secure_throughput(benchmark: Any, role: Any) -> None:
    role("bcai")
    assert trio.run(secure_transfer) == COUNT * len(MESSAGE)
    benchmark.pedantic(trio.run, args=(secure_transfer,), rounds=5, iterations=1)
    benchmark.extra_info["MB_per_s"] = round(
        COUNT * len(MESSAGE) / benchmark.stats.stats.median / 1e6
    )


@pytest.mark.benchmark(group="net-64x1MiB-loopback")
def test_plain_tcp_throughput(benchmark: Any, role: Any) -> None:
    role("baseline")
    assert trio.run(plain_transfer) == COUNT * len(MESSAGE)
    benchmark.pedantic(trio.run, args=(plain_transfer,), rounds=5, iterations=1)
    benchmark.extra_info["MB_per_s"] = round(
        COUNT * len(MESSAGE) / benchmark.stats.stats.median / 1e6
    )


CONNECTS = 100


async def connect_many(secure: bool) -> list[float]:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    times: list[float] = []

    async def idle(session: SecureSession) -> None:
        await session.aclose()

    async def idle_tcp(stream: trio.SocketStream) -> None:
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        if secure:
            nursery.start_soon(serve, listeners, SERVER_KEYS, GENESIS, idle)
        else:
            nursery.start_soon(trio.serve_listeners, idle_tcp, listeners)
        for _ in range(CONNECTS):
            t0 = trio.current_time()
            if secure:
                session = await connect("127.0.0.1", port, CLIENT_KEYS, GENESIS)
                assert session.remote.identity_key == SERVER_KEYS.identity.public_key
                times.append(trio.current_time() - t0)
                await session.aclose()
            else:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
                times.append(trio.current_time() - t0)
                await stream.aclose()
        nursery.cancel_scope.cancel()
    return times


def time_connects(benchmark: Any, secure: bool) -> None:
    times = sorted(
        benchmark.pedantic(trio.run, args=(connect_many, secure), rounds=3, iterations=1)
    )
    assert len(times) == CONNECTS
    benchmark.extra_info["p50_ms"] = round(times[len(times) // 2] * 1e3, 3)
    benchmark.extra_info["p99_ms"] = round(times[int(len(times) * 0.99)] * 1e3, 3)
    benchmark.extra_info["connects_per_s"] = round(CONNECTS / benchmark.stats.stats.median)


@pytest.mark.benchmark(group="net-connect")
def test_bcai_secure_connect(benchmark: Any, role: Any) -> None:
    role("bcai")
    time_connects(benchmark, secure=True)


@pytest.mark.benchmark(group="net-connect")
def test_plain_tcp_connect(benchmark: Any, role: Any) -> None:
    role("baseline")
    time_connects(benchmark, secure=False)
