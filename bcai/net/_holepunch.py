"""Hole punching over a relayed connection (after libp2p's DCUtR).

A is connected to B through a relay; both listen on a port that their
outbound dials share (`HostConfig.reuse_port`), so each one's observed
address is the public mapping of that port.

1. A → B ``hp/connect`` `Addrs(A's observed addresses)`; B answers with its
   own. A measures the round trip.
2. A → B ``hp/sync``; B starts dialing A's addresses at once and answers;
   A waits half the round trip and dials B's addresses. The two SYNs cross
   in the NATs: each NAT has a mapping for the other's address by the time
   the other's SYN arrives (TCP simultaneous open), and one connection forms.
3. A runs the Noise handshake as initiator and B as responder over it; the
   host keeps the direct session and drops the relayed one
   (``conn-upgraded``).

A retries up to `attempts` times; if every attempt fails the relayed
connection simply stays. Codes: ``hp-malformed``, ``hp-not-relayed``,
``hp-no-addresses``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

import trio

from bcai import codec
from bcai.net._autonat import split_address
from bcai.net._errors import NetError
from bcai.net._host import Host
from bcai.net._peer import RequestFailed
from bcai.net._sockets import dial_from

DIAL_TIMEOUT_S = 3.0
ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class Addrs(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/holepunch/addrs"
    addrs: tuple[str, ...] = codec.field(codec.ListOf(codec.Text(64), 8))


@dataclass
class PunchStats:
    attempts: int = 0
    successes: int = 0
    first_try_successes: int = 0
    failures: int = 0
    seconds_to_direct: list[float] = field(default_factory=list)


class HolePuncher:
    def __init__(self, host: Host, observed: list[str] | None = None) -> None:
        """`observed`: our public addresses as peers see them (AutoNat's
        probe); the list may be updated in place later."""
        self.host = host
        self.observed = observed if observed is not None else []
        self.stats = PunchStats()
        self._their: dict[bytes, list[str]] = {}
        host.handle("hp/connect", self._on_connect)
        host.handle("hp/sync", self._on_sync)

    def _relayed(self, peer: bytes) -> None:
        conn = self.host.conns.get(peer)
        if conn is None or conn.relayed_via is None:
            raise RequestFailed("hp-not-relayed", "hole punching needs a relayed connection")

    @staticmethod
    def _parse(body: bytes) -> list[tuple[str, int]]:
        try:
            addrs = Addrs.decode(body).addrs
            return [split_address(a) for a in addrs]
        except (codec.DecodeError, ValueError) as err:
            raise RequestFailed("hp-malformed", str(err)) from err

    async def _on_connect(self, peer: bytes, body: bytes) -> bytes:
        self._relayed(peer)
        theirs = self._parse(body)
        if not theirs:
            raise RequestFailed("hp-no-addresses", "no address to dial")
        self._their[peer] = [f"{h}:{p}" for h, p in theirs]
        return Addrs(addrs=tuple(self.observed[:8])).encode()

    async def _on_sync(self, peer: bytes, _body: bytes) -> bytes:
        self._relayed(peer)
        addrs = self._their.pop(peer, None)
        if not addrs:
            raise RequestFailed("hp-no-addresses", "hp/connect first")
        assert self.host._nursery is not None
        self.host._nursery.start_soon(self._dial_any, [split_address(a) for a in addrs], False)
        return b""

    async def _dial_any(self, addrs: list[tuple[str, int]], initiator: bool) -> bytes | None:
        """Dials every address at once from the listening port; the first
        TCP connection to form gets the handshake."""
        won: list[tuple[trio.SocketStream, str]] = []

        async def one(host: str, port: int, cancel: trio.CancelScope) -> None:
            try:
                stream = await dial_from(
                    self.host.listen_port, host, port, timeout_s=DIAL_TIMEOUT_S
                )
            except (OSError, trio.TooSlowError):
                return
            if won:
                await stream.aclose()
                return
            won.append((stream, host))
            cancel.cancel()

        async with trio.open_nursery() as nursery:
            for host, port in addrs:
                nursery.start_soon(one, host, port, nursery.cancel_scope)
        if not won:
            return None
        stream, ip = won[0]
        try:
            return await self.host.adopt(stream, initiator=initiator, ip=ip)
        except NetError:
            return None

    async def punch(self, peer: bytes, *, attempts: int = ATTEMPTS) -> bool:
        """From the side that dialed through the relay: tries to replace the
        relayed connection to `peer` with a direct one."""
        start = time.monotonic()
        for attempt in range(attempts):
            self.stats.attempts += 1
            conn = self.host.conns.get(peer)
            if conn is not None and conn.relayed_via is None:
                break  # already direct (the other side's dial won)
            try:
                t0 = time.monotonic()
                raw = await self.host.request(
                    peer, "hp/connect", Addrs(addrs=tuple(self.observed[:8])).encode()
                )
                rtt = time.monotonic() - t0
                theirs = self._parse(raw)
                await self.host.request(peer, "hp/sync", b"")
            except RequestFailed:
                self.stats.failures += 1
                continue
            await trio.sleep(rtt / 2)
            if await self._dial_any(theirs, True) == peer or self._direct(peer):
                self.stats.successes += 1
                self.stats.first_try_successes += attempt == 0
                self.stats.seconds_to_direct.append(time.monotonic() - start)
                return True
            self.stats.failures += 1
        return self._direct(peer)

    def _direct(self, peer: bytes) -> bool:
        conn = self.host.conns.get(peer)
        return conn is not None and conn.relayed_via is None
