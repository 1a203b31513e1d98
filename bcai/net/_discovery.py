"""Discovery: the address book (AddrMan) fed by handshakes and peer
exchange, feeding the host's dial loop, tested by feelers, kept in the store.

- ``pex/addrs`` (empty) → `AddrList(addrs ≤ 1000 of "ip:port")`: a random
  sample of the book plus our own advertised addresses. A peer may ask once
  per `PEX_MIN_INTERVAL_S` (``pex-too-soon``). Answers are read with the
  answering peer's IP as the *source*: AddrMan's bucketing then confines
  what one source can claim, so a peer that advertises thousands of fake
  addresses fills at most 64 of the 1024 new buckets and never the tried
  table (only successful connections enter it).
- Every `pex_interval_s` the node asks one random peer; on every new
  outbound connection it asks that peer once.
- The host's dial loop takes candidates from the book when its own list
  (bootstrap, learned) is used up; every dial reports success (`good`, the
  address moves to tried) or failure (`attempt`).
- Every `feeler_interval_s` a feeler connection tests one address of the new
  table, or the old side of a tried-table collision (test-before-evict), and
  hangs up at once.
- The book is saved in the store's `peers` database every `save_interval_s`
  and when discovery stops, and loaded at start.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import ClassVar

import trio

from bcai import codec
from bcai.net._addrman import AddrMan, AddrManError, NetAddr
from bcai.net._autonat import split_address
from bcai.net._errors import NetError
from bcai.net._host import Host
from bcai.net._peer import RequestFailed
from bcai.net._transport import connect

MAX_ADDRS = 1000
PEX_MIN_INTERVAL_S = 10.0


@dataclass(frozen=True, slots=True)
class AddrList(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/pex/addrs"
    addrs: tuple[str, ...] = codec.field(codec.ListOf(codec.Text(64), MAX_ADDRS))


@dataclass(frozen=True)
class DiscoveryConfig:
    pex_interval_s: float = 60.0
    feeler_interval_s: float = 120.0
    save_interval_s: float = 300.0
    allow_local: bool = False  # accept private/loopback addresses (devnets, tests)


@dataclass
class DiscoveryStats:
    pex_requests: int = 0
    pex_learned: int = 0
    pex_refused: int = 0
    feelers: int = 0
    feelers_ok: int = 0


class Discovery:
    def __init__(
        self,
        host: Host,
        config: DiscoveryConfig = DiscoveryConfig(),
        *,
        load: Callable[[], bytes | None] | None = None,
        save: Callable[[bytes], None] | None = None,
        key: bytes | None = None,
    ) -> None:
        self.host = host
        self.config = config
        self._save = save
        self.book = self._load(load, key)
        self.stats = DiscoveryStats()
        self._asked: dict[bytes, float] = {}  # peer -> when it last asked us
        self._rng = random.Random()
        host.handle("pex/addrs", self._serve_pex)
        host.dial_candidates = self._candidates
        host.on_dial_result = self._dial_result
        host.on_connect.append(self._connected)

    def _load(self, load: Callable[[], bytes | None] | None, key: bytes | None) -> AddrMan:
        raw = load() if load is not None else None
        if raw is not None:
            with contextlib.suppress(AddrManError):
                return AddrMan.decode(raw, allow_local=self.config.allow_local)
        return AddrMan(key or os.urandom(32), allow_local=self.config.allow_local)

    def save(self) -> None:
        if self._save is not None:
            self._save(self.book.encode())

    # ------------------------------------------------------------ learning

    def learn(self, text: str, source_ip: str) -> bool:
        """Adds an address to the book (not one of our own); whether it was new."""
        try:
            host, port = split_address(text)
            if f"{host}:{port}" in self.host.advertise:
                return False
            return self.book.add(NetAddr(host, port), source_ip, time.time())
        except (ValueError, AddrManError):
            return False

    def _connected(
        self, pid: bytes, ip: str, listen_addrs: tuple[str, ...], outbound: bool
    ) -> None:
        for text in listen_addrs:
            host, _, port = text.rpartition(":")
            self.learn(f"{ip if host in ('0.0.0.0', '::') else host}:{port}", ip)
        if outbound and self.host._nursery is not None:
            self.host._nursery.start_soon(self.exchange, pid)

    async def _serve_pex(self, peer: bytes, _body: bytes) -> bytes:
        now = time.monotonic()
        last = self._asked.get(peer)
        if last is not None and now - last < PEX_MIN_INTERVAL_S:
            self.stats.pex_refused += 1
            raise RequestFailed("pex-too-soon", f"once per {PEX_MIN_INTERVAL_S:.0f} s")
        self._asked[peer] = now
        own = list(self.host.advertise)
        sample = [str(a) for a in self.book.sample(MAX_ADDRS - len(own), time.time())]
        return AddrList(addrs=tuple(own + sample)).encode()

    async def exchange(self, peer: bytes) -> int:
        """Asks `peer` for addresses; returns how many were new."""
        conn = self.host.conns.get(peer)
        if conn is None:
            return 0
        self.stats.pex_requests += 1
        try:
            raw = await self.host.request(peer, "pex/addrs", b"")
            addrs = AddrList.decode(raw).addrs
        except (RequestFailed, codec.DecodeError):
            return 0
        learned = sum(self.learn(text, conn.info.ip) for text in addrs)
        self.stats.pex_learned += learned
        return learned

    # ------------------------------------------------------------ dialing

    def _candidates(self, n: int) -> list[tuple[str, int]]:
        now = time.time()
        out: list[tuple[str, int]] = []
        for _ in range(n * 4):
            addr = self.book.select(now)
            if addr is None:
                break
            pair = (addr.host, addr.port)
            if pair not in out and f"{addr.host}:{addr.port}" not in self.host.advertise:
                out.append(pair)
            if len(out) >= n:
                break
        return out

    def _dial_result(self, host: str, port: int, ok: bool) -> None:
        try:
            addr = NetAddr(host, port)
        except ValueError:
            return
        if ok:
            self.book.good(addr, time.time())
        else:
            self.book.attempt(addr, time.time())

    def _peer_listens(self) -> set[NetAddr]:
        """Where the directly connected peers say they listen."""
        out = set()
        for conn in self.host.conns.values():
            if conn.relayed_via is not None:
                continue
            for text in conn.peer.session.remote.listen_addrs:
                with contextlib.suppress(ValueError):
                    host, port = split_address(text)
                    out.add(NetAddr(conn.info.ip if host in ("0.0.0.0", "::") else host, port))
        return out

    async def feeler(self) -> bool | None:
        """Tests one address (a tried-table collision first); None if there
        was nothing to test."""
        now = time.time()
        collision = self.book.collision_to_test()
        addr = collision or self.book.feeler_candidate(now)
        if addr is None:
            return None
        self.stats.feelers += 1
        if addr in self._peer_listens():
            # a connected peer listens there: alive. And a feeler's brief
            # connection could replace that peer's own one with us at its end
            # (the simultaneous-dial rule), then close: both would lose it
            alive = True
        else:
            try:
                session = await connect(
                    addr.host, addr.port, self.host.keys, self.host.genesis_id, timeout_s=5.0
                )
            except (OSError, trio.TooSlowError, NetError):
                alive = False
            else:
                alive = True
                await session.goodbye("feeler")
        if collision is not None:
            self.book.resolve_collision(collision, alive, time.time())
        elif alive:
            self.book.good(addr, time.time())
        else:
            self.book.attempt(addr, time.time())
        self.stats.feelers_ok += alive
        return alive

    # ------------------------------------------------------------ running

    async def run(self) -> None:
        """PEX, feelers and saving, until cancelled (the book is saved then)."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._every, self.config.pex_interval_s, self._pex_round)
                nursery.start_soon(self._every, self.config.feeler_interval_s, self.feeler)
                nursery.start_soon(self._every, self.config.save_interval_s, self._save_async)
        finally:
            self.save()

    async def _pex_round(self) -> None:
        peers = self.host.connected()
        if peers:
            await self.exchange(self._rng.choice(peers))

    async def _save_async(self) -> None:
        self.save()

    @staticmethod
    async def _every(seconds: float, fn: Callable[[], Awaitable[object]]) -> None:
        while True:
            await trio.sleep(seconds)
            await fn()
