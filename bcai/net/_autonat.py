"""Observed addresses and reachability (after libp2p's identify + AutoNAT).

- ``net/observed`` (empty) → the requester's address as this node sees it,
  "ip:port" text. With the listening port shared by outbound dials
  (`HostConfig.reuse_port`), that is the public mapping of the requester's
  listening port when it is behind an endpoint-independent NAT.
- ``net/dialback`` `DialBack(port u16)` → this node dials the requester's
  observed IP at `port` on a fresh connection, runs the handshake, checks the
  peer id, hangs up, and answers empty; or the code ``dialback-failed``. At
  most one dial-back per peer at a time (``dialback-busy``) and
  `MAX_DIALBACKS_PER_MINUTE` in all (``dialback-rate``).

`Reachability.probe` asks up to three directly connected peers and decides
public (enough dial-backs succeeded), private (enough failed and none
succeeded) or unknown, and which observed address the others agree on.
"""

from __future__ import annotations

import enum
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import ClassVar

import trio

from bcai import codec
from bcai.net._errors import NetError
from bcai.net._host import Host
from bcai.net._peer import RequestFailed
from bcai.net._transport import connect

MAX_DIALBACKS_PER_MINUTE = 120
DIALBACK_TIMEOUT_S = 5.0


class Reach(enum.Enum):
    UNKNOWN = "unknown"
    PUBLIC = "public"
    PRIVATE = "private"


@dataclass(frozen=True, slots=True)
class DialBack(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/autonat/dialback"
    port: int = codec.field(codec.U16)


def split_address(text: str) -> tuple[str, int]:
    """ "ip:port" (IPv6 as "[ip]:port") → (ip, port); ValueError if it is not."""
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not an ip:port address: {text!r}")
    return host, int(port)


@dataclass
class Reachability:
    """The outcome of the last probe."""

    status: Reach = Reach.UNKNOWN
    observed: list[str] = field(default_factory=list)  # agreed first
    successes: int = 0
    failures: int = 0
    # why asked peers gave no verdict (their error codes), for the logs
    inconclusive: list[str] = field(default_factory=list)


class AutoNat:
    def __init__(self, host: Host, *, dialback_timeout_s: float = DIALBACK_TIMEOUT_S) -> None:
        self.host = host
        self.dialback_timeout_s = dialback_timeout_s
        self.reachability = Reachability()
        self._busy: set[bytes] = set()
        self._recent: list[float] = []
        self._probing = trio.Lock()  # one probe at a time: peers serve one dial-back each
        host.handle("net/observed", self._observed)
        host.handle("net/dialback", self._dialback)

    def _remote(self, peer: bytes) -> tuple[str, int]:
        conn = self.host.conns.get(peer)
        if conn is None or conn.relayed_via is not None:
            raise RequestFailed("observed-relayed", "no direct connection to observe")
        stream = conn.peer.session.stream
        ip, port = stream.socket.getpeername()[:2]  # type: ignore[attr-defined]
        return str(ip), int(port)

    async def _observed(self, peer: bytes, _body: bytes) -> bytes:
        ip, port = self._remote(peer)
        return f"{ip}:{port}".encode()

    async def _dialback(self, peer: bytes, body: bytes) -> bytes:
        try:
            port = DialBack.decode(body).port
        except codec.DecodeError as err:
            raise RequestFailed("dialback-malformed", err.message) from err
        ip, _ = self._remote(peer)
        now = time.monotonic()
        self._recent = [t for t in self._recent if now - t < 60]
        if peer in self._busy:
            raise RequestFailed("dialback-busy", "one dial-back at a time")
        if len(self._recent) >= MAX_DIALBACKS_PER_MINUTE:
            raise RequestFailed("dialback-rate", "too many dial-backs this minute")
        self._busy.add(peer)
        self._recent.append(now)
        try:
            session = await connect(
                ip, port, self.host.keys, self.host.genesis_id, timeout_s=self.dialback_timeout_s
            )
        except (OSError, trio.TooSlowError, NetError) as err:
            raise RequestFailed("dialback-failed", f"{ip}:{port}: {err}") from err
        finally:
            self._busy.discard(peer)
        try:
            if session.peer_id != peer:
                raise RequestFailed("dialback-failed", "another node answered there")
        finally:
            await session.goodbye("dialback-done")
        return b""

    async def probe(self, *, peers: int = 3) -> Reachability:
        """Asks up to `peers` directly connected peers for our observed
        address and for a dial-back to our listening port."""
        async with self._probing:
            return await self._probe(peers)

    async def _probe(self, peers: int) -> Reachability:
        asked = [pid for pid, conn in self.host.conns.items() if conn.relayed_via is None][:peers]
        observed: Counter[str] = Counter()
        result = Reachability()

        async def ask(pid: bytes) -> None:
            try:
                observed[(await self.host.request(pid, "net/observed", b"")).decode()] += 1
            except RequestFailed as err:
                result.inconclusive.append(err.code)
                return
            except UnicodeDecodeError:
                result.inconclusive.append("observed-malformed")
                return
            try:
                with self.host.expecting_dialback(pid):
                    await self.host.request(
                        pid,
                        "net/dialback",
                        DialBack(port=self.host.listen_port).encode(),
                        timeout_s=self.dialback_timeout_s + 2,
                    )
                result.successes += 1
            except RequestFailed as err:
                if err.code in ("dialback-failed", "request-timeout"):
                    result.failures += 1
                else:
                    result.inconclusive.append(err.code)

        async with trio.open_nursery() as nursery:
            for pid in asked:
                nursery.start_soon(ask, pid)
        need = min(2, len(asked)) or 1
        if result.successes >= need:
            result.status = Reach.PUBLIC
        elif result.failures >= need and result.successes == 0:
            result.status = Reach.PRIVATE
        result.observed = [addr for addr, _ in observed.most_common()]
        self.reachability = result
        return result
