"""A node's services wired in one nursery: the chain store, the host
(connections and gossip), the chain's topics, sync, reachability, relaying
and hole punching, and block production on demand.

The operator-facing node (config file, CLI, API) builds on this; the NAT
harness runs it in network namespaces.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lmdb
import trio

from bcai import chain, pouw
from bcai.chain import Block, Genesis
from bcai.crypto import PrivateKey
from bcai.errors import BcaiError
from bcai.mining import new_miner
from bcai.net import Host, HostConfig, NetError, NodeKeys, RequestFailed, Syncer, serve_sync
from bcai.net import _upnp as upnp
from bcai.net._autonat import AutoNat, Reach, split_address
from bcai.net._dht import Dht
from bcai.net._discovery import Discovery, DiscoveryConfig
from bcai.net._holepunch import HolePuncher
from bcai.net._kademlia import Contact
from bcai.net._natpmp import Mapping, map_port
from bcai.net._relay import Relay, RelayLimits
from bcai.node.blobs import fetch_and_store, serve_blobs
from bcai.node.mempool import Mempool
from bcai.node.relay import ChainRelay
from bcai.pouw import BlobJobs, PouwSealVerifier
from bcai.store import (
    MAX_BLOB,
    ChainStore,
    blob_size,
    get_blob,
    load_addrbook,
    load_bans,
    save_addrbook,
    save_ban,
)

log = logging.getLogger("bcai.node")
BLOB_FETCH_TIMEOUT_S = 60.0
JOB_BLOB_JOBS = 4  # the best-paid pending jobs whose A and B a mining node fetches
JOB_BLOB_RETRY_S = 30.0  # a blob no peer gave is asked for again after this

Event = Callable[..., None]


@dataclass(frozen=True)
class RuntimeConfig:
    data_dir: Path
    genesis: Genesis
    host: HostConfig = HostConfig()
    relay: RelayLimits = RelayLimits()
    sync_interval_s: float = 2.0
    nat_interval_s: float = 60.0
    port_mapping: bool = True  # try NAT-PMP on the default gateway
    discovery: DiscoveryConfig = DiscoveryConfig()
    dht_server: bool | None = None  # None: serve the DHT once found publicly reachable
    # PoUW chains: 0 (the default) re-verifies every seal in full — spot checks
    # alone can be ground at hash speed (docs/pouw.md, "Grinding fake leaves"),
    # so a chain's weight counts only for fully checked seals; N > 0 re-verifies
    # only headers within 2 × N block intervals of the clock (at least 30 s) and
    # trusts older ones (catch-up) to their spot checks, at that risk
    pouw_full_within: int = 0
    # the miner whose attempts re-verify seals in full: "cpu" (the host's Rust
    # transcript) or a GPU backend (`bcai.mining.new_miner`; the node passes its
    # mining backend, so a GPU node verifies on the device it mines on)
    pouw_verify_backend: str = "cpu"


def _now_ms() -> int:
    return int(time.time() * 1000)


def seal_verifier(
    params: pouw.PouwParams,
    spacing_ms: int,
    full_within: int,
    now_ms: Callable[[], int] = _now_ms,
    backend: str = "cpu",
) -> PouwSealVerifier:
    """The node's PoUW seal verifier (`RuntimeConfig.pouw_full_within`):
    every seal re-verified in full when `full_within` is 0, else only those
    of headers within 2 × `full_within` block intervals of the clock (at
    least 30 s); the full checks by a `backend` miner of their own (not
    shared with the producer's), the host's Rust transcript for "cpu" or
    where that backend is not available here (logged)."""
    leaves_of = None
    if backend != "cpu":
        try:
            leaves_of = new_miner(backend).attempt_leaves
        except BcaiError as err:
            log.warning("full re-verification on the host: %s", err)
    if full_within <= 0:
        return PouwSealVerifier(params, full=True, leaves_of=leaves_of)
    window_ms = max(30_000, 2 * full_within * spacing_ms)
    return PouwSealVerifier(
        params, recent=lambda h: now_ms() - h.timestamp_ms <= window_ms, leaves_of=leaves_of
    )


RENEW_FLOOR_S = 1.0  # the least time between two reservations at one relay


@dataclass
class NatState:
    reach: Reach = Reach.UNKNOWN
    observed: list[str] = field(default_factory=list)
    relays: list[bytes] = field(default_factory=list)  # where we hold a reservation
    renew_at: dict[bytes, float] = field(default_factory=dict)  # relay -> when to reserve again
    mapping: Mapping | None = None


class NodeRuntime:
    def __init__(
        self, keys: NodeKeys, config: RuntimeConfig, *, on_event: Event | None = None
    ) -> None:
        self.keys = keys
        self.config = config
        self.on_event = on_event or (lambda name, **fields: None)
        # the genesis decides the seal rule: PoUW (docs/pouw.md) or the hash seal
        self.pouw = pouw.params_from_extra(config.genesis.extra)
        self.seal: PouwSealVerifier | None = None
        if self.pouw is not None:
            spacing = config.genesis.params.target_spacing_ms
            self.seal = seal_verifier(
                self.pouw, spacing, config.pouw_full_within, backend=config.pouw_verify_backend
            )
        self.store = ChainStore(config.data_dir / "chain", config.genesis, seal=self.seal)
        if self.seal is not None:
            self.seal.jobs = BlobJobs(self._blob)
        self.host = Host(
            keys,
            self.store.genesis_id,
            config.host,
            bans=load_bans(self.store, time.time()),
            save_ban=functools.partial(save_ban, self.store),
        )
        self.mempool = Mempool(config.genesis.params.chain_id)
        self.chain = ChainRelay(self.host, self.store, self.mempool, now_ms=_now_ms)
        serve_sync(self.host, self.store)
        serve_blobs(self.host, self.store)
        self.blobs_prefetched = 0  # a gossiped job block's blobs fetched before its import
        self.blobs_fetched_in_import = 0  # (synced blocks: fetched during the import)
        self.job_blobs_fetched = 0  # pending jobs' A and B fetched for the producer
        self._blob_retry: dict[bytes, float] = {}  # blob id -> when to ask again
        self._fetching: dict[bytes, trio.Event] = {}  # blobs being fetched
        if self.seal is not None:
            self.chain.before_import = self._prefetch_job_blobs
        self.autonat = AutoNat(self.host)
        self.nat = NatState()
        # one reachability check at a time (the periodic loop and a caller's
        # check): two at once each tried a port mapping, and the one that lost
        # the race at the gateway set the node's mapping back to None
        self._nat_check = trio.Lock()
        self._reserving = trio.Lock()  # reservations made or renewed one pass at a time
        self.relay = Relay(self.host, config.relay)
        self.puncher = HolePuncher(self.host, self.nat.observed)
        self.dht = Dht(self.host, server=bool(config.dht_server))
        self.discovery = Discovery(
            self.host,
            config.discovery,
            load=functools.partial(load_addrbook, self.store),
            save=functools.partial(save_addrbook, self.store),
        )

    def _blob(self, cid: bytes, size: int) -> bytes | None:
        """A job's blob for the seal verifier: from the store, or, when an
        import (a worker thread of this trio run) lacks it, fetched from the
        connected peers — the block's sender validated it, so it has it."""
        data = get_blob(self.store, cid)
        if data is not None:
            return data
        try:
            data = trio.from_thread.run(self._fetch_blob, cid, size)
        except RuntimeError:  # not called from one of our worker threads
            return None
        if data is not None:
            self.blobs_fetched_in_import += 1
        return data

    async def _prefetch_job_blobs(self, block: chain.Block, source: bytes) -> None:
        """Before a gossiped block that seals a MatMul job is imported: its
        A, B and C from the peer that sent it (it validated them) or any
        other, so the import finds them and holds no lock over the network."""
        try:
            sealed = pouw.decode_seal(block.header)
        except pouw.InvalidSeal:
            return  # the import will say why
        job = self.store.state.jobs.get(sealed.job)
        if job is None or sealed.product == bytes(32):
            return
        post = job.post
        wanted = [(post.a, post.n * post.k), (post.b, post.k * post.m)]
        wanted.append((sealed.product, 4 * post.n * post.m))
        for cid, size in wanted:
            if blob_size(self.store, cid) is None and await self._fetch_blob(
                cid, size, first=source
            ):
                self.blobs_prefetched += 1

    def _pending_jobs(self) -> list[tuple[bytes, chain.MatMulPost]]:
        """Pending jobs a producer could still seal in the next block, best
        paid first (its order: amount, then id), read under the store's lock."""
        with self.store.lock:
            next_height = self.store.head.height + 1
            jobs = [
                (job.amount, job_id, job.post)
                for job_id, job in self.store.state.jobs.items()
                if job.status == chain.JOB_PENDING and job.deadline >= next_height
            ]
        jobs.sort(key=lambda item: (item[0], item[1]), reverse=True)
        return [(job_id, post) for _, job_id, post in jobs]

    async def fetch_job_blobs(
        self,
        count: int = JOB_BLOB_JOBS,
        *,
        max_size: int = MAX_BLOB,
        skip: Container[bytes] = (),
    ) -> int:
        """A and B of the `count` best-paid pending jobs a producer could
        seal, fetched from the connected peers where this node lacks them: a
        producer seals only jobs whose matrices it holds, and a user may have
        uploaded them to any node. Jobs in `skip` (found unsealable), with a
        matrix over `max_size` bytes, or with a matrix no peer gave within
        JOB_BLOB_RETRY_S do not take a place among the `count`. A failure
        here (a full disk, no memory) is logged, not raised: the node goes
        on. Returns how many blobs came."""
        now = trio.current_time()
        self._blob_retry = {cid: t for cid, t in self._blob_retry.items() if t > now}
        fetched = taken = 0
        for job_id, post in await trio.to_thread.run_sync(self._pending_jobs):
            if taken >= count:
                break
            wanted = [(post.a, post.n * post.k), (post.b, post.k * post.m)]
            if job_id in skip or any(size > max_size for _, size in wanted):
                continue
            missing = [(cid, size) for cid, size in wanted if blob_size(self.store, cid) is None]
            if any(cid in self._blob_retry for cid, _ in missing):
                continue
            taken += 1
            for cid, size in missing:
                try:
                    data = await self._fetch_blob(cid, size, exact=True)
                except (MemoryError, OSError, lmdb.Error) as err:
                    log.warning(
                        "job %s: blob %s not stored: %r", job_id.hex()[:16], cid.hex()[:16], err
                    )
                    data = None
                if data is None:
                    self._blob_retry[cid] = trio.current_time() + JOB_BLOB_RETRY_S
                    break
                fetched += 1
                self.job_blobs_fetched += 1
        return fetched

    async def _fetch_blob(
        self, cid: bytes, size: int, first: bytes | None = None, exact: bool = False
    ) -> bytes | None:
        """Blob `cid` (at most, or with `exact` exactly, `size` bytes) from
        the connected peers (`first` first), stored; None if none gave it.
        One fetch a blob at a time: a second caller waits for the first."""
        busy = self._fetching.get(cid)
        if busy is not None:
            await busy.wait()
            return get_blob(self.store, cid)
        self._fetching[cid] = done = trio.Event()
        try:
            peers = self.host.connected()
            if first in peers:
                peers.remove(first)
                peers.insert(0, first)
            for peer in peers:
                with trio.move_on_after(BLOB_FETCH_TIMEOUT_S):
                    try:
                        return await fetch_and_store(
                            self.host, self.store, peer, cid, max_size=size, exact=exact
                        )
                    except (NetError, BcaiError) as err:
                        log.info("blob %s not from %s: %s", cid.hex()[:16], peer.hex()[:16], err)
            return None
        finally:
            del self._fetching[cid]
            done.set()

    # ------------------------------------------------------------ running

    async def run(
        self, *, task_status: Any = trio.TASK_STATUS_IGNORED, close_store: bool = True
    ) -> None:
        """Runs the services until cancelled; closes the store at the end
        unless `close_store` is False (the operator's node closes it once
        every other service is done with it)."""
        try:
            async with trio.open_nursery() as nursery:
                port = await nursery.start(self.host.run)
                nursery.start_soon(self._sync_loop)
                nursery.start_soon(self._watch_blocks)
                nursery.start_soon(self._nat_loop)
                nursery.start_soon(self._renew_loop)
                nursery.start_soon(self.discovery.run)
                if self.config.dht_server:
                    self.dht.own_contact = self._public_contact()
                self.on_event("started", port=port, peer_id=self.host.peer_id.hex())
                task_status.started(port)
        finally:
            if close_store:
                self.store.close()

    async def _watch_blocks(self) -> None:
        async for _ in self.chain.blocks:
            self.on_event("head", height=self.store.head.height, hash=self.store.head_hash.hex())

    async def _sync_loop(self) -> None:
        while True:
            with trio.move_on_after(self.config.sync_interval_s):
                await self.chain.need_sync.wait()
            self.chain.need_sync = trio.Event()
            if not self.host.connected():
                continue
            before = self.store.head.height
            syncer = Syncer(
                self.host,
                self.store,
                now_ms=_now_ms,
                on_import=self.chain.settle,
                lock=self.chain.write_lock,
            )
            report = await syncer.sync()
            if report.imported:
                self.on_event(
                    "synced", imported=report.imported, height=self.store.head.height, before=before
                )

    async def _nat_loop(self) -> None:
        await trio.sleep(0.5)  # let the bootstrap connections come up
        while True:
            await self.check_reachability()
            await trio.sleep(self.config.nat_interval_s)

    # ------------------------------------------------------------ NAT

    async def check_reachability(self) -> NatState:
        """Probes reachability; a private node tries a port mapping, and
        failing that reserves a slot at every connected relay."""
        async with self._nat_check:
            return await self._check_reachability()

    async def _check_reachability(self) -> NatState:
        if self.config.port_mapping and self.nat.mapping is None:
            port = self.host.listen_port
            self.nat.mapping = await map_port(port) or await upnp.map_port(port)
            if self.nat.mapping is not None:
                self.on_event(
                    "mapped",
                    external=f"{self.nat.mapping.external_ip}:{self.nat.mapping.external_port}",
                )
        reach = await self.autonat.probe()
        self.nat.reach = reach.status
        self.nat.observed[:] = reach.observed
        if reach.status == Reach.PUBLIC:
            if self.config.dht_server is None and not self.dht.server:
                self.dht.serve()
            self.dht.own_contact = self._public_contact()
        if reach.status == Reach.PRIVATE:
            await self._reserve_at_relays()
            relay_conn = self.host.conns.get(self.nat.relays[0]) if self.nat.relays else None
            if relay_conn is not None and relay_conn.address is not None:
                # others reach us at our relay's address, under our own id
                self.dht.own_contact = Contact(self.host.peer_id, *relay_conn.address)
        self.on_event(
            "reachability",
            status=reach.status.value,
            observed=reach.observed,
            inconclusive=reach.inconclusive,
            relays=[r.hex() for r in self.nat.relays],
        )
        return self.nat

    async def _reserve_at_relays(self) -> None:
        """A private node's reservations: at every connected peer that
        relays, renewed once half their time has passed (the relay forgets
        them when it expires); a relay no longer connected is dropped from
        `nat.relays` (reserved again when a connection comes back)."""
        async with self._reserving:
            self._drop_gone_relays()
            for pid, conn in list(self.host.conns.items()):
                if conn.relayed_via is None:
                    await self._reserve_if_due(pid)

    async def _renew_loop(self) -> None:
        """Renews the reservations on their own schedule, not only at the
        reachability checks: a check of a private node can take a whole
        dial-back timeout, and a reservation held for less than a check
        and its interval lapsed between them (`relay-no-reservation`). Until
        a check finds the node public, every relay in `nat.relays` is
        reserved again once its `renew_at` has passed."""
        while True:
            due = min(self.nat.renew_at.values(), default=None)
            wait = 1.0 if due is None else due - trio.current_time()
            await trio.sleep(max(0.05, min(wait, 1.0)))
            if self.nat.reach == Reach.PUBLIC or not self.nat.relays:
                continue
            async with self._reserving:
                self._drop_gone_relays()
                for pid in list(self.nat.relays):
                    await self._reserve_if_due(pid)

    def _drop_gone_relays(self) -> None:
        self.nat.relays[:] = [r for r in self.nat.relays if r in self.host.conns]
        self.nat.renew_at = {r: t for r, t in self.nat.renew_at.items() if r in self.nat.relays}

    async def _reserve_if_due(self, pid: bytes) -> None:
        """A reservation at `pid`, unless the one held there is not yet
        half spent (renewed no more often than every RENEW_FLOOR_S, whatever
        a relay says its hold is); a relay of ours that refuses is asked
        again after RENEW_FLOOR_S."""
        now = trio.current_time()
        if pid in self.nat.relays and self.nat.renew_at.get(pid, 0.0) > now:
            return
        try:
            reservation = await self.relay.reserve(pid)
        except RequestFailed:
            if pid in self.nat.relays:
                self.nat.renew_at[pid] = trio.current_time() + RENEW_FLOOR_S
            return
        hold = max(reservation.expires_s / 2, RENEW_FLOOR_S)
        self.nat.renew_at[pid] = trio.current_time() + hold
        if pid not in self.nat.relays:
            self.nat.relays.append(pid)

    def _public_contact(self) -> Contact:
        host, port = split_address(self.host.advertise[0])
        if self.nat.observed:
            host = split_address(self.nat.observed[0])[0]
        return Contact(self.host.peer_id, host, port)

    async def reach(self, contact: Contact, *, punch: bool = True) -> bool:
        """Connects to a peer found in the DHT: directly, or through the
        relay at its address and then by hole punching; True if direct."""
        pid = contact.peer_id
        if pid not in self.host.conns:
            first = await self.host.dial(contact.host, contact.port)
            if first != pid:
                return await self.connect(pid, first, punch=punch)
        conn = self.host.conns.get(pid)
        return conn is not None and conn.relayed_via is None

    async def connect(self, target: bytes, relay: bytes, *, punch: bool = True) -> bool:
        """Reaches `target` through `relay`, then tries to punch a direct
        connection; True if the connection ended up direct."""
        if target not in self.host.conns:
            await self.relay.dial_via(relay, target)
            self.on_event("relayed", peer=target.hex())
        direct = False
        if punch:
            direct = await self.puncher.punch(target)
        self.on_event("connected", peer=target.hex(), direct=direct)
        return direct

    # ------------------------------------------------------------ blocks

    async def produce(self, producer: PrivateKey) -> Block:
        """Builds a block on our head, imports and publishes it."""
        head = self.store.head
        ctx = self.store.context_for(self.store.head_hash)
        params = self.config.genesis.params
        txs = self.mempool.select(
            self.store.read_account,
            self.chain.base_fee(),
            params.max_block_bytes,
            params.max_block_txs,
        )
        stamp = max(_now_ms(), max(ctx.recent_timestamps_ms) + 1)
        block = await trio.to_thread.run_sync(
            chain.assemble_block, self.store.state, self.config.genesis, ctx, txs, producer, stamp
        )
        assert block.header.parent == head.block_hash()
        try:
            await self.chain.publish_block(block)
        except NetError as err:  # pragma: no cover - publishing never raises today
            log.warning("publish failed: %s", err)
        self.on_event("produced", height=block.header.height, hash=block.block_hash().hex())
        return block
