"""A peer: one secure session with a receive loop that answers pings,
dispatches requests to a handler and matches responses to their requests.

Requests carry a u64 id and a method name; each has a deadline; at most
`max_inflight` of our requests wait at once (callers queue on a semaphore),
and at most `max_inflight` of the peer's are served at once (more are
answered `busy` at once, never queued without bound).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar, TypeVar

import trio

from bcai import codec
from bcai.net._errors import ConnectionClosed, NetError, PeerMisbehaved
from bcai.net._session import MAX_FRAME, FrameKind, SecureSession

STATUS_OK = 0
STATUS_ERROR = 1
DEFAULT_TIMEOUT_S = 10.0
MAX_INFLIGHT = 32

Handler = Callable[[str, bytes], Awaitable[bytes]]
GossipHandler = Callable[[bytes], Awaitable[None]]  # a frame body


class RequestFailed(NetError):
    """Codes: ``request-timeout``, ``request-closed``, and the error codes a
    peer answers with (``unknown-method``, ``busy``, ``handler-error``, …)."""


@dataclass(frozen=True, slots=True)
class Request(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/net/request"
    request_id: int = codec.field(codec.U64)
    method: str = codec.field(codec.Text(32))
    body: bytes = codec.field(codec.Bytes(MAX_FRAME[FrameKind.REQUEST] - 64))


@dataclass(frozen=True, slots=True)
class Response(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/net/response"
    request_id: int = codec.field(codec.U64)
    status: int = codec.field(codec.U8)
    body: bytes = codec.field(codec.Bytes(MAX_FRAME[FrameKind.RESPONSE] - 64))


M = TypeVar("M", Request, Response)


def _decode(record: type[M], body: bytes) -> M:
    try:
        return record.decode(body)
    except codec.DecodeError as err:
        raise PeerMisbehaved("frame-malformed", f"{record.__name__}: {err.message}") from err


class Peer:
    def __init__(
        self,
        session: SecureSession,
        handler: Handler | None = None,
        *,
        max_inflight: int = MAX_INFLIGHT,
        on_gossip: GossipHandler | None = None,
        on_relay: GossipHandler | None = None,
    ) -> None:
        self.session = session
        self.handler = handler
        self.on_gossip = on_gossip
        self.on_relay = on_relay
        self._ids = itertools.count(1)
        self._waiting: dict[int, trio.MemorySendChannel[Response]] = {}
        self._slots = trio.Semaphore(max_inflight)
        self._serving = 0
        self._max_inflight = max_inflight
        self._pongs: dict[bytes, trio.Event] = {}
        self.closed_reason: NetError | None = None

    async def run(self) -> None:
        """Receives until the session ends; then fails what still waits."""
        try:
            async with trio.open_nursery() as nursery:
                try:
                    while True:
                        kind, body = await self.session.receive_frame()
                        await self._dispatch(nursery, kind, body)
                except NetError as err:
                    self.closed_reason = err
                nursery.cancel_scope.cancel()  # requests being served end too
        finally:
            for channel in self._waiting.values():
                channel.close()
            for event in self._pongs.values():
                event.set()
            if not self.session.closed:
                await self.session.aclose()

    async def _dispatch(self, nursery: trio.Nursery, kind: FrameKind, body: bytes) -> None:
        if kind == FrameKind.PING:
            await self.session.send_frame(FrameKind.PONG, body)
        elif kind == FrameKind.PONG:
            event = self._pongs.pop(body, None)
            if event is not None:
                event.set()
        elif kind == FrameKind.REQUEST:
            request = _decode(Request, body)
            if self._serving >= self._max_inflight:
                await self._answer(request.request_id, STATUS_ERROR, b"busy")
            else:
                self._serving += 1
                nursery.start_soon(self._serve, request)
        elif kind == FrameKind.GOSSIP and self.on_gossip is not None:
            await self.on_gossip(body)
        elif kind == FrameKind.RELAY and self.on_relay is not None:
            await self.on_relay(body)
        elif kind == FrameKind.RESPONSE:
            response = _decode(Response, body)
            channel = self._waiting.pop(response.request_id, None)
            if channel is not None:  # a late answer to a request given up on is dropped
                channel.send_nowait(response)
        else:
            raise PeerMisbehaved("frame-unexpected", f"{kind.name} frames are not expected here")

    async def _serve(self, request: Request) -> None:
        try:
            if self.handler is None:
                status, body = STATUS_ERROR, b"unknown-method"
            else:
                try:
                    status, body = STATUS_OK, await self.handler(request.method, request.body)
                except RequestFailed as err:
                    status, body = STATUS_ERROR, err.code.encode()
                except Exception:  # a handler bug must not kill the session
                    status, body = STATUS_ERROR, b"handler-error"
            await self._answer(request.request_id, status, body)
        except ConnectionClosed:
            pass
        finally:
            self._serving -= 1

    async def _answer(self, request_id: int, status: int, body: bytes) -> None:
        response = Response(request_id=request_id, status=status, body=body)
        await self.session.send_frame(FrameKind.RESPONSE, response.encode())

    async def request(
        self, method: str, body: bytes, *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> bytes:
        """Sends a request and waits for its response, at most `timeout_s`.

        Raises:
            RequestFailed: timeout, closed session, or the peer's error code.
        """
        async with self._slots:
            request_id = next(self._ids)
            send, receive = trio.open_memory_channel[Response](1)
            self._waiting[request_id] = send
            try:
                with trio.fail_after(timeout_s):
                    await self.session.send_frame(
                        FrameKind.REQUEST,
                        Request(request_id=request_id, method=method, body=body).encode(),
                    )
                    try:
                        response = await receive.receive()
                    except trio.EndOfChannel as err:
                        raise RequestFailed("request-closed", "the session ended") from err
            except trio.TooSlowError as err:
                raise RequestFailed(
                    "request-timeout", f"{method}: no answer in {timeout_s} s"
                ) from err
            except ConnectionClosed as err:
                raise RequestFailed("request-closed", f"{method}: {err.message}") from err
            finally:
                self._waiting.pop(request_id, None)
        if response.status != STATUS_OK:
            code = response.body.decode("utf-8", "replace")[:64]
            raise RequestFailed(code, f"{method}: the peer answered {code}")
        return response.body

    async def ping(self, *, timeout_s: float = 5.0) -> float:
        """Round-trip time in seconds."""
        nonce = os.urandom(8)
        event = trio.Event()
        self._pongs[nonce] = event
        start = trio.current_time()
        try:
            with trio.fail_after(timeout_s):
                await self.session.send_frame(FrameKind.PING, nonce)
                await event.wait()
        except trio.TooSlowError as err:
            raise RequestFailed("request-timeout", "no pong") from err
        except ConnectionClosed as err:  # closed before the ping went out (either side)
            raise RequestFailed("request-closed", f"ping: {err.message}") from err
        finally:
            self._pongs.pop(nonce, None)
        if self.closed_reason is not None:
            raise RequestFailed("request-closed", "the session ended")
        return trio.current_time() - start
