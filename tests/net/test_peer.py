"""Peers over real sockets: pings, request/response with ids, deadlines (with
trio's MockClock), the inbound concurrency bound, error codes, malformed
frames, and requests failing cleanly when the session ends."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from bcai.net import (
    FrameKind,
    NetError,
    NodeKeys,
    Peer,
    RequestFailed,
    SecureSession,
    connect,
    serve,
)
from tests.net.test_session import GENESIS


async def pair(nursery: trio.Nursery, handler) -> Peer:  # type: ignore[no-untyped-def]
    """A server peer with `handler`, and the client peer returned (running)."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def on_session(session: SecureSession) -> None:
        await Peer(session, handler, max_inflight=4).run()

    nursery.start_soon(serve, listeners, NodeKeys.generate(), GENESIS, on_session)
    client = Peer(await connect("127.0.0.1", port, NodeKeys.generate(), GENESIS))
    nursery.start_soon(client.run)
    return client


async def handler(method: str, body: bytes) -> bytes:
    if method == "echo":
        return body
    if method == "slow":
        await trio.sleep(100)
        return b""
    if method == "boom":
        raise RuntimeError("bug")
    raise RequestFailed("unknown-method", method)


async def test_requests_pings_and_error_codes() -> None:
    async with trio.open_nursery() as nursery:
        client = await pair(nursery, handler)
        assert await client.request("echo", b"hello") == b"hello"
        big = bytes(range(256)) * 200
        assert await client.request("echo", big) == big
        results: list[bytes] = []

        async def one(i: int) -> None:
            results.append(await client.request("echo", b"%d" % i))

        async with trio.open_nursery() as many:
            for i in range(20):
                many.start_soon(one, i)
        assert sorted(results) == sorted(b"%d" % i for i in range(20))
        assert await client.ping() >= 0
        for method, code in (("nope", "unknown-method"), ("boom", "handler-error")):
            with pytest.raises(RequestFailed) as info:
                await client.request(method, b"")
            assert info.value.code == code
        await client.session.aclose()
        # on a session closed under it, a ping or a request fails with a code
        # (the host's keepalive crashed the node on the ping's raw error)
        for call in (client.ping, lambda: client.request("echo", b"x")):
            with pytest.raises(RequestFailed) as info:
                await call()
            assert info.value.code == "request-closed"
        nursery.cancel_scope.cancel()


async def test_deadline_and_busy(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        client = await pair(nursery, handler)
        with pytest.raises(RequestFailed) as info:
            await client.request("slow", b"", timeout_s=5)
        assert info.value.code == "request-timeout"
        # the server serves at most 4 at once; the 5th is told "busy" at once
        codes: list[str] = []

        async def slow() -> None:
            try:
                await client.request("slow", b"", timeout_s=50)
            except RequestFailed as err:
                codes.append(err.code)

        async with trio.open_nursery() as many:
            for _ in range(4):  # one earlier "slow" still runs on the server
                many.start_soon(slow)
        assert codes.count("busy") >= 1
        assert set(codes) <= {"busy", "request-timeout"}
        await client.session.aclose()
        nursery.cancel_scope.cancel()


async def test_malformed_request_closes_and_pending_requests_fail() -> None:
    async with trio.open_nursery() as nursery:
        client = await pair(nursery, handler)
        results: list[NetError] = []

        async def waiting() -> None:
            try:
                await client.request("slow", b"", timeout_s=30)
            except RequestFailed as err:
                results.append(err)

        nursery.start_soon(waiting)
        await trio.sleep(0.05)
        await client.session.send_frame(FrameKind.REQUEST, b"\x00\x01")  # not a Request
        with trio.fail_after(5):
            while not results:
                await trio.sleep(0.01)
        assert results[0].code == "request-closed"
        nursery.cancel_scope.cancel()
