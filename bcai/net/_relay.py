"""Relayed connections: a public node forwards bytes between two peers that
cannot reach each other, and each end runs an ordinary Noise session over
the circuit (end-to-end encrypted; the relay sees only ciphertext).

Protocol (docs/protocol.md, "Relay"):
- ``relay/reserve`` (empty) from the private node B to relay R →
  `Reservation(expires_s, max_bytes, max_duration_s)`, or an error code
  (``relay-disabled``, ``relay-full``). B renews before it expires.
- ``relay/connect`` `ConnectRequest(target)` from A to R. R checks B's
  reservation and its limits, asks B with ``relay/incoming``
  `Incoming(source, circuit)` and, once B accepts, answers A with
  `Circuit(circuit)`. Codes: ``relay-no-reservation``, ``relay-full``,
  ``relay-peer-limit``, ``relay-refused``.
- Then RELAY frames carry the circuit: ``circuit u32 ‖ op u8 ‖ data``; op 0 =
  data (≤ 64 KiB), op 1 = close (data = a reason code). R rewrites the
  circuit id and forwards, counting bytes; past `max_bytes` or
  `max_duration_s` it closes both ends (``relay-limit-bytes``,
  ``relay-limit-duration``). Circuit ids are per session.

Limits (`RelayLimits`): reservations, circuits in all and per peer, bytes and
duration per circuit. A relay is opt-in (`enabled=False` by default).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import trio

from bcai import codec
from bcai.net._errors import ConnectionClosed, NetError, PeerMisbehaved
from bcai.net._host import Host
from bcai.net._peer import RequestFailed
from bcai.net._session import FrameKind

OP_DATA = 0
OP_CLOSE = 1
CHUNK = 64 << 10
HEADER = 5
CIRCUIT_BUFFER = 64  # chunks waiting to be read at one end
GONE = (ConnectionClosed, trio.BrokenResourceError)


@dataclass(frozen=True)
class RelayLimits:
    enabled: bool = False
    max_reservations: int = 128
    max_circuits: int = 64
    max_circuits_per_peer: int = 4
    max_bytes: int = 64 << 20
    max_duration_s: float = 3600.0
    reservation_ttl_s: float = 3600.0


@dataclass(frozen=True, slots=True)
class Reservation(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/relay/reservation"
    expires_s: int = codec.field(codec.U32)
    max_bytes: int = codec.field(codec.U64)
    max_duration_s: int = codec.field(codec.U32)


@dataclass(frozen=True, slots=True)
class ConnectRequest(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/relay/connect"
    target: bytes = codec.field(codec.FixedBytes(32))


@dataclass(frozen=True, slots=True)
class Incoming(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/relay/incoming"
    source: bytes = codec.field(codec.FixedBytes(32))
    circuit: int = codec.field(codec.U32)


@dataclass(frozen=True, slots=True)
class Circuit(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/relay/circuit"
    circuit: int = codec.field(codec.U32)


def frame(circuit: int, op: int, data: bytes = b"") -> bytes:
    return circuit.to_bytes(4, "big") + bytes([op]) + data


def parse_frame(body: bytes) -> tuple[int, int, bytes]:
    if len(body) < HEADER or body[4] not in (OP_DATA, OP_CLOSE):
        raise PeerMisbehaved("relay-malformed", "a RELAY frame needs circuit u32, op 0|1")
    return int.from_bytes(body[:4], "big"), body[4], body[HEADER:]


class CircuitStream(trio.abc.Stream):
    """One end of a circuit as a trio stream."""

    def __init__(self, host: Host, relay: bytes, circuit: int) -> None:
        self.host = host
        self.relay = relay
        self.circuit = circuit
        self._send, self._receive = trio.open_memory_channel[bytes](CIRCUIT_BUFFER)
        self._buffer = b""
        self.closed_reason: str | None = None
        self.on_end: Callable[[], None] | None = None

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.closed_reason is not None:
            raise trio.ClosedResourceError(self.closed_reason)
        conn = self.host.conns.get(self.relay)
        if conn is None:
            raise trio.BrokenResourceError("the relay connection is gone")
        raw = bytes(data)
        try:
            for start in range(0, len(raw), CHUNK):
                await conn.peer.session.send_frame(
                    FrameKind.RELAY, frame(self.circuit, OP_DATA, raw[start : start + CHUNK])
                )
        except ConnectionClosed as err:
            raise trio.BrokenResourceError("the relay connection is gone") from err

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.checkpoint()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if not self._buffer:
            try:
                self._buffer = await self._receive.receive()
            except (trio.EndOfChannel, trio.ClosedResourceError):
                return b""
        n = len(self._buffer) if max_bytes is None else max_bytes
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    async def deliver(self, data: bytes) -> None:
        if self.closed_reason is None:  # data for a closed end is dropped
            with contextlib.suppress(trio.ClosedResourceError):
                await self._send.send(data)

    def ended(self, reason: str) -> None:
        self.closed_reason = self.closed_reason or reason
        self._send.close()
        if self.on_end is not None:
            self.on_end()

    async def aclose(self) -> None:
        if self.closed_reason is None:
            self.ended("closed")
            conn = self.host.conns.get(self.relay)
            if conn is not None:
                # shielded: aclose is often called from a cancelled session,
                # and the relay must hear that the circuit is done
                with trio.CancelScope(shield=True) as scope, contextlib.suppress(*GONE):
                    scope.deadline = trio.current_time() + 1
                    await conn.peer.session.send_frame(
                        FrameKind.RELAY, frame(self.circuit, OP_CLOSE, b"closed")
                    )
        await trio.lowlevel.checkpoint()


@dataclass
class _Hop:
    """A circuit at the relay: one side's (peer, circuit id)."""

    peer: bytes
    circuit: int
    other: _Hop | None = None
    started: float = 0.0
    bytes: int = 0


@dataclass
class RelayStats:
    reservations: int = 0
    circuits: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    closed: dict[str, int] = field(default_factory=dict)

    def count(self, table: dict[str, int], code: str) -> None:
        table[code] = table.get(code, 0) + 1


class Relay:
    """Both roles on one host: a relay server (if `limits.enabled`) and the
    endpoint that reserves, dials through, and accepts relayed circuits."""

    def __init__(
        self,
        host: Host,
        limits: RelayLimits = RelayLimits(),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.limits = limits
        self.clock = clock
        self.stats = RelayStats()
        self.reservations: dict[bytes, float] = {}  # peer -> expires (server)
        self.hops: dict[tuple[bytes, int], _Hop] = {}  # (peer, circuit) -> hop (server)
        self.ends: dict[tuple[bytes, int], CircuitStream] = {}  # (relay, circuit) -> end
        self._ids = itertools.count(1)
        host.relay_frames = self.on_frame
        host.handle("relay/reserve", self._reserve)
        host.handle("relay/connect", self._connect)
        host.handle("relay/incoming", self._incoming)

    # ------------------------------------------------------------ server

    def _refuse(self, code: str, message: str) -> RequestFailed:
        self.stats.count(self.stats.refused, code)
        return RequestFailed(code, message)

    async def _reserve(self, peer: bytes, _body: bytes) -> bytes:
        lim = self.limits
        if not lim.enabled:
            raise self._refuse("relay-disabled", "this node does not relay")
        now = self.clock()
        self._expire(now)
        if peer not in self.reservations and len(self.reservations) >= lim.max_reservations:
            raise self._refuse("relay-full", "no reservation slot left")
        self.reservations[peer] = now + lim.reservation_ttl_s
        self.stats.reservations += 1
        return Reservation(
            expires_s=int(lim.reservation_ttl_s),
            max_bytes=lim.max_bytes,
            max_duration_s=int(lim.max_duration_s),
        ).encode()

    def _expire(self, now: float) -> None:
        for peer in [p for p, until in self.reservations.items() if until <= now]:
            del self.reservations[peer]

    async def _connect(self, source: bytes, body: bytes) -> bytes:
        lim = self.limits
        if not lim.enabled:
            raise self._refuse("relay-disabled", "this node does not relay")
        try:
            target = ConnectRequest.decode(body).target
        except codec.DecodeError as err:
            raise self._refuse("relay-malformed", err.message) from err
        now = self.clock()
        self._expire(now)
        if target not in self.reservations or target not in self.host.conns:
            raise self._refuse("relay-no-reservation", "the target has no reservation here")
        if len(self.hops) // 2 >= lim.max_circuits:
            raise self._refuse("relay-full", "no circuit slot left")
        for who in (source, target):
            if sum(h.peer == who for h in self.hops.values()) >= lim.max_circuits_per_peer:
                raise self._refuse("relay-peer-limit", "too many circuits for one peer")
        a = _Hop(source, next(self._ids), started=now)
        b = _Hop(target, next(self._ids), other=a, started=now)
        a.other = b
        try:
            await self.host.request(
                target, "relay/incoming", Incoming(source=source, circuit=b.circuit).encode()
            )
        except RequestFailed as err:
            raise self._refuse("relay-refused", f"the target said {err.code}") from err
        self.hops[(source, a.circuit)] = a
        self.hops[(target, b.circuit)] = b
        self.stats.circuits += 1
        return Circuit(circuit=a.circuit).encode()

    async def _forward(self, hop: _Hop, op: int, data: bytes) -> None:
        other = hop.other
        assert other is not None
        if op == OP_CLOSE:
            await self._close_hops(
                hop, data.decode("utf-8", "replace")[:64] or "closed", notify=hop
            )
            return
        hop.bytes += len(data)
        now = self.clock()
        if hop.bytes + other.bytes > self.limits.max_bytes:
            await self._close_hops(hop, "relay-limit-bytes")
            return
        if now - hop.started > self.limits.max_duration_s:
            await self._close_hops(hop, "relay-limit-duration")
            return
        conn = self.host.conns.get(other.peer)
        if conn is None:
            await self._close_hops(hop, "relay-peer-gone")
            return
        try:
            await conn.peer.session.send_frame(FrameKind.RELAY, frame(other.circuit, OP_DATA, data))
        except ConnectionClosed:
            await self._close_hops(hop, "relay-peer-gone")

    async def _close_hops(self, hop: _Hop, reason: str, notify: _Hop | None = None) -> None:
        """Forgets both sides and tells each (but `notify`'s own sender)."""
        other = hop.other
        assert other is not None
        self.stats.count(self.stats.closed, reason)
        for side in (hop, other):
            self.hops.pop((side.peer, side.circuit), None)
        for side in (hop, other):
            if side is notify:
                continue
            conn = self.host.conns.get(side.peer)
            if conn is not None:
                with contextlib.suppress(*GONE):
                    await conn.peer.session.send_frame(
                        FrameKind.RELAY, frame(side.circuit, OP_CLOSE, reason.encode())
                    )

    # ------------------------------------------------------------ frames

    async def on_frame(self, peer: bytes, body: bytes) -> None:
        circuit, op, data = parse_frame(body)
        hop = self.hops.get((peer, circuit))
        if hop is not None:
            await self._forward(hop, op, data)
            return
        end = self.ends.get((peer, circuit))
        if end is None:
            return  # a circuit closed a moment ago; late frames are dropped
        if op == OP_CLOSE:
            end.ended(data.decode("utf-8", "replace")[:64] or "closed")
        else:
            await end.deliver(data)

    # ------------------------------------------------------------ endpoint

    def _end(self, relay: bytes, circuit: int) -> CircuitStream:
        end = CircuitStream(self.host, relay, circuit)
        self.ends[(relay, circuit)] = end

        def forget() -> None:
            self.ends.pop((relay, circuit), None)

        end.on_end = forget
        return end

    async def reserve(self, relay: bytes) -> Reservation:
        """Asks `relay` (connected) to hold a slot for us."""
        return Reservation.decode(await self.host.request(relay, "relay/reserve", b""))

    async def dial_via(self, relay: bytes, target: bytes) -> bytes:
        """Opens a circuit to `target` through `relay` and runs a session
        over it; returns the target's peer id (checked by the handshake)."""
        raw = await self.host.request(
            relay, "relay/connect", ConnectRequest(target=target).encode()
        )
        end = self._end(relay, Circuit.decode(raw).circuit)
        ip = self.host.conns[relay].info.ip
        pid = await self.host.adopt(end, initiator=True, ip=ip, relayed_via=relay)
        if pid != target:
            await end.aclose()
            raise RequestFailed("relay-wrong-peer", "the circuit reached another peer")
        return pid

    async def _incoming(self, relay: bytes, body: bytes) -> bytes:
        try:
            inc = Incoming.decode(body)
        except codec.DecodeError as err:
            raise RequestFailed("relay-malformed", err.message) from err
        end = self._end(relay, inc.circuit)
        ip = self.host.conns[relay].info.ip

        async def accept() -> None:
            with contextlib.suppress(NetError):
                await self.host.adopt(end, initiator=False, ip=ip, relayed_via=relay)

        assert self.host._nursery is not None
        self.host._nursery.start_soon(accept)
        return b""
