"""Chain sync: status exchange, headers first, then bodies in parallel.

Requests (docs/protocol.md, "Sync"):
- ``sync/status`` → Status: genesis, head hash, height, cumulative work;
- ``sync/headers`` (a block locator, newest first, and a count ≤ 2000) → the
  main-chain headers after the newest locator hash the server knows;
- ``sync/blocks`` (≤ 128 hashes) → those blocks, in order, stopping before
  the response would pass 8 MiB (the client asks again for the rest).

The client asks every peer for its status, takes headers from the peer with
the most work and checks each (links, ASERT target, seal, signature) before
asking for any body. Bodies come from every peer at least as far along, in
batches over a bounded window, at most `per_peer_inflight` batches per peer;
each block must match its header (hash and transaction root) on arrival and
is imported in order. A peer that serves a wrong block or header is
disconnected and banned; one that withholds (timeout, short answer) loses a
strike, three strikes and it is dropped; its batches go to others. A sync
that loses its peers stops with what it imported and resumes from the
store's head on the next call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import trio

from bcai import chain, codec
from bcai.chain import Block, Header, InvalidBlock, ParentContext
from bcai.net._host import Host
from bcai.net._peer import RequestFailed
from bcai.store import ChainStore, ImportResult, StoreError

log = logging.getLogger("bcai.sync")
# Import failures that are not a verdict on the block (data still to come).
RETRYABLE_BLOCK_CODES = {"block-data-missing"}

MAX_LOCATOR = 64
MAX_HEADERS = 2000
MAX_BLOCKS = 128
MAX_BLOCKS_BYTES = 8 << 20
BAN_S = 3600.0


@dataclass(frozen=True, slots=True)
class Status(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/sync/status"
    genesis: bytes = codec.field(codec.FixedBytes(32))
    head: bytes = codec.field(codec.FixedBytes(32))
    height: int = codec.field(codec.U64)
    work: int = codec.field(codec.UInt(512))


@dataclass(frozen=True, slots=True)
class HeadersRequest(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/sync/headers-req"
    locator: tuple[bytes, ...] = codec.field(codec.ListOf(codec.FixedBytes(32), MAX_LOCATOR))
    count: int = codec.field(codec.U16)


@dataclass(frozen=True, slots=True)
class HeadersResponse(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/sync/headers"
    headers: tuple[Header, ...] = codec.field(codec.ListOf(codec.RecordCodec(Header), MAX_HEADERS))


@dataclass(frozen=True, slots=True)
class BlocksRequest(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/sync/blocks-req"
    hashes: tuple[bytes, ...] = codec.field(codec.ListOf(codec.FixedBytes(32), MAX_BLOCKS))


@dataclass(frozen=True, slots=True)
class BlocksResponse(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/sync/blocks"
    blocks: tuple[Block, ...] = codec.field(codec.ListOf(codec.RecordCodec(Block), MAX_BLOCKS))


def locator(store: ChainStore) -> tuple[bytes, ...]:
    """Main-chain hashes from the head back: 10 one apart, then doubling
    gaps, always ending with genesis (Bitcoin's block locator)."""
    heights: list[int] = []
    h, step = store.head.height, 1
    while h > 0 and len(heights) < MAX_LOCATOR - 1:
        heights.append(h)
        if len(heights) >= 10:
            step *= 2
        h -= step
    heights.append(0)
    return tuple(store.get_headers(x, 1)[0].block_hash() for x in heights)


def _status(store: ChainStore) -> Status:
    head = store.head_hash
    return Status(
        genesis=store.genesis_id,
        head=head,
        height=store.head.height,
        work=store.get_block_info(head).work,
    )


R = TypeVar("R", HeadersRequest, BlocksRequest)


def _decode(record: type[R], body: bytes) -> R:
    try:
        return record.decode(body)
    except codec.DecodeError as err:
        raise RequestFailed("sync-malformed", err.message) from err


def serve_sync(host: Host, store: ChainStore) -> None:
    """Registers the three sync request handlers on `host`."""

    async def status(_peer: bytes, _body: bytes) -> bytes:
        return _status(store).encode()

    async def headers(_peer: bytes, body: bytes) -> bytes:
        req = _decode(HeadersRequest, body)
        start = 0
        for bh in req.locator:
            try:
                info = store.get_block_info(bh)
            except StoreError:
                continue
            if store.get_headers(info.height, 1)[0].block_hash() == bh:
                start = info.height + 1
                break
        found = await trio.to_thread.run_sync(store.get_headers, start, min(req.count, MAX_HEADERS))
        return HeadersResponse(headers=tuple(found)).encode()

    async def blocks(_peer: bytes, body: bytes) -> bytes:
        req = _decode(BlocksRequest, body)

        def read() -> list[Block]:
            out: list[Block] = []
            size = 0
            for bh in req.hashes:
                try:
                    block = store.get_block(bh)
                except StoreError:
                    break
                size += len(block.encode())
                if out and size > MAX_BLOCKS_BYTES:
                    break
                out.append(block)
            return out

        found = await trio.to_thread.run_sync(read)
        return BlocksResponse(blocks=tuple(found)).encode()

    host.handle("sync/status", status)
    host.handle("sync/headers", headers)
    host.handle("sync/blocks", blocks)


@dataclass
class _Download:
    hashes: list[bytes]
    inflight: dict[bytes, int]
    todo: list[int] = field(default_factory=list)
    ready: dict[int, Block] = field(default_factory=dict)
    wake: trio.Event = field(default_factory=trio.Event)


@dataclass
class SyncReport:
    imported: int = 0
    height: int = 0
    rounds: int = 0
    banned: list[bytes] = field(default_factory=list)
    strikes: dict[bytes, int] = field(default_factory=dict)


class Syncer:
    def __init__(
        self,
        host: Host,
        store: ChainStore,
        *,
        batch: int = 64,
        window: int = 1024,
        per_peer_inflight: int = 2,
        timeout_s: float = 10.0,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        progress: Callable[[int, int], None] | None = None,
        on_import: Callable[[ImportResult], None] | None = None,
        lock: trio.Lock | None = None,
    ) -> None:
        self.host = host
        # told of every import (after each batch, in order): a node takes
        # back the transactions of blocks a reorg orphaned, as for gossip
        self.on_import = on_import
        self.lock = lock  # held around each batch's import and its `on_import` calls
        self.store = store
        self.batch = batch
        self.window = window
        self.per_peer_inflight = per_peer_inflight
        self.timeout_s = timeout_s
        self.now_ms = now_ms
        self.progress = progress
        self.report = SyncReport()

    # ------------------------------------------------------------ penalties

    async def _ban(self, peer: bytes, reason: str) -> None:
        if peer in self.report.banned:
            return  # two answers in flight can both be bad
        log.warning("sync: dropping peer %s: %s", peer.hex()[:12], reason)
        self.report.banned.append(peer)
        await self.host.disconnect(peer, reason, ban_s=BAN_S)

    async def _strike(self, peer: bytes, reason: str) -> None:
        """Slow or silent is not proof of malice (a partition looks the
        same): three strikes disconnect the peer, without a ban."""
        strikes = self.report.strikes[peer] = self.report.strikes.get(peer, 0) + 1
        if strikes >= 3:
            log.warning("sync: dropping unresponsive peer %s: %s", peer.hex()[:12], reason)
            await self.host.disconnect(peer, "sync-unresponsive")

    # ------------------------------------------------------------ status

    async def _statuses(self) -> dict[bytes, Status]:
        out: dict[bytes, Status] = {}

        async def one(peer: bytes) -> None:
            try:
                raw = await self.host.request(peer, "sync/status", b"", timeout_s=self.timeout_s)
                st = Status.decode(raw)
            except (RequestFailed, codec.DecodeError):
                return
            if st.genesis == self.store.genesis_id:
                out[peer] = st

        async with trio.open_nursery() as nursery:
            for peer in self.host.connected():
                nursery.start_soon(one, peer)
        return out

    # ------------------------------------------------------------ run

    async def sync(self) -> SyncReport:
        """Syncs until no connected peer has more work; returns a report."""
        while True:
            self.report.rounds += 1
            our_work = self.store.get_block_info(self.store.head_hash).work
            statuses = await self._statuses()
            ahead = {p: s for p, s in statuses.items() if s.work > our_work}
            if not ahead:
                break
            best = max(ahead, key=lambda p: ahead[p].work)
            headers = await self._headers_from(best)
            if not headers:
                continue  # that peer was dropped or had nothing new; ask again
            helpers = [p for p in ahead if p in self.host.conns]
            if not await self._bodies(headers, helpers):
                await self._ban(best, "sync-invalid-chain")
        self.report.height = self.store.head.height
        return self.report

    async def _headers_from(self, peer: bytes) -> list[Header]:
        """Headers from our head to `peer`'s, checked as they arrive."""
        out: list[Header] = []
        loc = locator(self.store)
        while True:
            req = HeadersRequest(locator=loc, count=MAX_HEADERS)
            try:
                raw = await self.host.request(
                    peer, "sync/headers", req.encode(), timeout_s=self.timeout_s
                )
                got = HeadersResponse.decode(raw).headers
            except codec.DecodeError:
                await self._ban(peer, "sync-malformed")
                return []
            except RequestFailed:
                await self._strike(peer, "sync-headers-withheld")
                return out
            if not got:
                return out
            try:
                self._check_headers(out, got)
            except (InvalidBlock, StoreError) as err:
                await self._ban(peer, f"sync-bad-header: {err}")
                return []
            out.extend(got)
            if len(got) < MAX_HEADERS:
                return out
            loc = (got[-1].block_hash(),)

    def _check_headers(self, before: list[Header], new: tuple[Header, ...]) -> None:
        genesis = self.store.genesis
        first_parent = before[-1] if before else self.store.get_header(new[0].parent)
        genesis_header = self.store.get_headers(0, 1)[0]
        recent = [first_parent]
        if not before:
            h = first_parent
            while len(recent) < 11 and h.height > 0:
                h = self.store.get_header(h.parent)
                recent.insert(0, h)
        else:
            recent = before[-11:]
        for header in new:
            ctx = ParentContext(
                parent=recent[-1],
                parent_tx_bytes=0,
                recent_timestamps_ms=tuple(x.timestamp_ms for x in recent[-11:]),
                genesis=genesis_header,
            )
            chain.check_header(header, genesis, ctx, self.store.seal)
            recent.append(header)
            if len(recent) > 11:
                del recent[0]

    async def _bodies(self, headers: list[Header], peers: list[bytes]) -> bool:
        """Fetches and imports the bodies; False if a block that matched its
        header failed to import (the headers' chain is invalid)."""
        dl = _Download(hashes=[h.block_hash() for h in headers], inflight=dict.fromkeys(peers, 0))
        dl.todo = list(range(0, len(dl.hashes), self.batch))  # batch start indexes
        next_import, failed = 0, False
        async with trio.open_nursery() as nursery:
            while next_import < len(dl.hashes) and not failed:
                live = [p for p in dl.inflight if p in self.host.conns]
                if not live:
                    break
                for peer in sorted(live, key=lambda p: dl.inflight[p]):
                    while (
                        dl.todo
                        and dl.inflight[peer] < self.per_peer_inflight
                        and dl.todo[0] < next_import + self.window
                    ):
                        dl.inflight[peer] += 1
                        nursery.start_soon(self._fetch, dl, peer, dl.todo.pop(0))
                batch: list[Block] = []
                while next_import + len(batch) in dl.ready:
                    batch.append(dl.ready.pop(next_import + len(batch)))
                if batch:
                    failed = not await self._import(batch)
                    next_import += len(batch)
                    continue
                await dl.wake.wait()
                dl.wake = trio.Event()
            nursery.cancel_scope.cancel()
        return not failed

    async def _fetch(self, dl: _Download, peer: bytes, start: int) -> None:
        want = dl.hashes[start : start + self.batch]
        try:
            raw = await self.host.request(
                peer,
                "sync/blocks",
                BlocksRequest(hashes=tuple(want)).encode(),
                timeout_s=self.timeout_s,
            )
            got = BlocksResponse.decode(raw).blocks
        except codec.DecodeError:
            await self._ban(peer, "sync-malformed")
            got = ()
        except RequestFailed:
            got = ()
        bad = None
        for i, block in enumerate(got):
            if block.header.block_hash() != want[i]:
                bad = "sync-wrong-block"
                break
            try:
                chain.check_tx_root(block)
            except InvalidBlock:
                bad = "sync-bad-body"
                break
            dl.ready[start + i] = block
        if bad is not None:
            await self._ban(peer, bad)
        elif not got and peer in self.host.conns:
            await self._strike(peer, "sync-blocks-withheld")
        served = len(got) if bad is None else 0
        if served < len(want):
            dl.todo.insert(0, start + served)  # the rest goes back to the queue
        dl.inflight[peer] -= 1
        dl.wake.set()

    async def _import(self, blocks: list[Block]) -> bool:
        if self.lock is None:
            return await self._import_batch(blocks)
        async with self.lock:
            return await self._import_batch(blocks)

    async def _import_batch(self, blocks: list[Block]) -> bool:
        results: list[ImportResult] = []

        def run() -> InvalidBlock | None:
            for block in blocks:
                try:
                    results.append(self.store.import_block(block, self.now_ms()))
                except InvalidBlock as err:
                    return err
                self.report.imported += 1
            return None

        err = await trio.to_thread.run_sync(run)
        if self.on_import is not None:
            for result in results:
                self.on_import(result)
        if self.progress is not None:
            self.progress(self.store.head.height, self.report.imported)
        if err is not None and err.code in RETRYABLE_BLOCK_CODES:
            log.info("sync: paused on a block whose data is not here yet: %s", err)
            return True  # not the peer's fault: the next round tries again
        if err is not None:
            log.warning("sync: invalid block behind valid headers: %s", err)
            return False
        return True
