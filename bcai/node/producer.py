"""The block producer: builds a block on the head from the mempool, seals
it on worker threads in batches (checking for a new head between batches,
so a block found elsewhere stops the search at once), imports and publishes
it.

Sealing follows the chain's genesis: the hash seal (`search_seal`), or the
proof of useful work (`PouwSearch`: `bcai.mining` on CPU threads or a GPU,
over a pending MatMul job whose matrices this node holds, else over the
matrices derived from the parent). `period_s` paces a devnet: a miner waits
that long after its head before sealing, so local chains advance at a steady
rate without burning every core.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import trio

from bcai import chain, pouw
from bcai.chain import Block, InvalidBlock
from bcai.crypto import PrivateKey, blake3
from bcai.errors import BcaiError
from bcai.mining import mine, new_miner
from bcai.node.mempool import Mempool
from bcai.node.relay import ChainRelay
from bcai.store import ChainStore, get_blob, put_blob

log = logging.getLogger("bcai.node.producer")
HEAD_POLL_S = 0.05
TX_INDEX = re.compile(r"transaction (\d+):")


class ProducerError(BcaiError):
    """Codes: ``mining-backend-unavailable``."""


def search_seal(header: chain.Header, start: int, count: int) -> bytes | None:
    """A hash-seal nonce in [start, start + count) under the header's target."""
    prefix = header.seal_prefix()
    target = header.target
    for nonce in range(start, start + count):
        seal = nonce.to_bytes(8, "big")
        if int.from_bytes(blake3(prefix + seal), "big") <= target:
            return seal
    return None


class PouwSearch:
    """PoUW sealing for the producer: `attempts` per batch."""

    def __init__(self, store: ChainStore, params: pouw.PouwParams, backend: str) -> None:
        self.store = store
        self.params = params
        try:
            self.miner = new_miner(backend)
        except pouw.InvalidSeal as err:
            raise ProducerError("mining-backend-unavailable", err.message) from err
        self.attempts = 4
        self.products: dict[bytes, bytes] = {}  # job id -> product id (computed once)
        self.skipped: set[bytes] = set()  # jobs found unsealable

    def pick_job(self, next_height: int) -> tuple[pouw.Work, bytes] | None:
        """The best-paid pending job whose A and B are in the blob store,
        with C computed and stored; None to mine derived matrices."""
        jobs = self.store.state.jobs
        pending = [
            (job.amount, job_id)
            for job_id, job in jobs.items()
            if job.status == chain.JOB_PENDING and job.deadline >= next_height
        ]
        for _, job_id in sorted(pending, reverse=True):
            if job_id in self.skipped:
                continue
            try:
                found = self._prepare(job_id, jobs[job_id].post)
            except (BcaiError, ValueError, MemoryError) as err:
                log.warning("skipping job %s: %s", job_id.hex()[:16], err)
                self.skipped.add(job_id)
                continue
            if found is not None:
                return found
        return None

    def _prepare(self, job_id: bytes, post: chain.MatMulPost) -> tuple[pouw.Work, bytes] | None:
        """The job's Work and the id of its stored product; None while its
        matrices are not here. Raises for a job nobody can seal."""
        cached = self.products.get(job_id)
        a_raw, b_raw = get_blob(self.store, post.a), get_blob(self.store, post.b)
        if a_raw is None or b_raw is None:
            return None
        if len(a_raw) != post.n * post.k or len(b_raw) != post.k * post.m:
            raise ValueError("a blob's size does not match the job's shape")
        a = np.frombuffer(a_raw, np.int8).reshape(post.n, post.k)
        b = np.frombuffer(b_raw, np.int8).reshape(post.k, post.m)
        work = pouw.Work(a.copy(), b.copy(), job=job_id)
        pouw.check_work(work, self.params)  # a job nobody can seal (bad entries)
        if cached is None:
            cached = put_blob(self.store, pouw.matrix_blob(pouw.work_product(work)))
            self.products[job_id] = cached
        return work, cached

    def search(
        self, header: chain.Header, job: tuple[pouw.Work, bytes] | None, start: int
    ) -> bytes | None:
        work = job[0] if job is not None else pouw.derived_work(header.parent, self.params)
        found = mine(
            header.seal_prefix(),
            header.target,
            work,
            self.params,
            miner=self.miner,
            start=start,
            attempts=self.attempts,
            product=job[1] if job is not None else bytes(32),
        )
        return None if found is None else found.encode()


@dataclass
class MiningStats:
    hashes: int = 0
    blocks: int = 0
    abandoned: int = 0  # templates dropped for a new head
    recent: list[tuple[float, int]] = field(default_factory=list)  # (monotonic s, hashes)

    def hashrate(self) -> float:
        if len(self.recent) < 2:
            return 0.0
        (t0, h0), (t1, h1) = self.recent[0], self.recent[-1]
        return (h1 - h0) / (t1 - t0) if t1 > t0 else 0.0

    def count(self, hashes: int) -> None:
        self.hashes += hashes
        now = time.monotonic()
        self.recent.append((now, self.hashes))
        while len(self.recent) > 2 and now - self.recent[0][0] > 30:
            self.recent.pop(0)


class Producer:
    def __init__(
        self,
        store: ChainStore,
        relay: ChainRelay,
        mempool: Mempool,
        key: PrivateKey,
        *,
        backend: str = "cpu",
        period_s: float = 0.0,
        batch: int = 20_000,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        on_block: Callable[[Block], None] = lambda b: None,
    ) -> None:
        params = pouw.params_from_extra(store.genesis.extra)
        self.pouw = None if params is None else PouwSearch(store, params, backend)
        if self.pouw is None and backend != "cpu":
            raise ProducerError(
                "mining-backend-unavailable",
                f"mining backend {backend!r} needs a PoUW chain (this genesis uses the hash "
                "seal); use mining.backend = 'cpu'",
            )
        self.store = store
        self.relay = relay
        self.mempool = mempool
        self.key = key
        self.period_s = period_s
        self.batch = batch
        self.now_ms = now_ms
        self.on_block = on_block
        self.stats = MiningStats()
        self.rng = random.Random()

    async def run(self) -> None:
        while True:
            await self._wait_for_turn()
            block = await self.produce_once()
            if block is not None:
                self.on_block(block)

    async def _wait_for_turn(self) -> None:
        """Waits `period_s` (plus a little jitter, so devnet miners rarely
        tie) after the head's timestamp; starts over if the head moves."""
        if self.period_s <= 0:
            return
        jitter = self.rng.uniform(0, 0.25)
        while True:
            head = self.store.head
            due_ms = head.timestamp_ms + self.period_s * (1 + jitter) * 1000
            wait = (due_ms - self.now_ms()) / 1000
            if wait <= 0:
                return
            with trio.move_on_after(min(wait, HEAD_POLL_S)):
                await trio.sleep_forever()
            if self.store.head_hash != head.block_hash():
                jitter = self.rng.uniform(0, 0.25)

    def _build(self, txs: list[chain.Transaction]) -> tuple[Block, tuple[pouw.Work, bytes] | None]:
        """A template on the head (and the MatMul job it will seal, if any),
        built under the store's lock so that no import (gossip, sync) moves
        the state while it is read."""
        store = self.store
        with store.lock:
            ctx = store.context_for(store.head_hash)
            stamp = max(self.now_ms(), max(ctx.recent_timestamps_ms) + 1)
            job = None if self.pouw is None else self.pouw.pick_job(ctx.parent.height + 1)
            claim = None if job is None else (job[0].job, job[1])
            template = chain.block_template(
                store.state, store.genesis, ctx, txs, self.key.public_key, stamp, claim
            )
            return template, job

    async def _template(self) -> tuple[Block, tuple[pouw.Work, bytes] | None]:
        """A template on the head; invalid transactions are dropped from the
        mempool and the template rebuilt without them."""
        store, pool = self.store, self.mempool
        # Under the relay's write lock, so that no import (gossip, sync)
        # moves the head between choosing the transactions and building on
        # them: a reorg in between made a chosen transaction's nonce look
        # wrong against the new head, and it was dropped from the mempool
        # for good (CI's devnet test lost a transfer this way).
        async with self.relay.write_lock:
            while True:
                base_fee = self.relay.base_fee()
                pool.on_new_head(store.read_account, base_fee)
                p = store.genesis.params
                txs = pool.select(store.read_account, base_fee, p.max_block_bytes, p.max_block_txs)
                try:
                    return await trio.to_thread.run_sync(self._build, txs)
                except InvalidBlock as err:
                    match = TX_INDEX.match(err.message)
                    if match is None or int(match.group(1)) >= len(txs):
                        raise
                    bad = txs[int(match.group(1))]
                    log.warning("dropping transaction %s: %s", bad.tx_id().hex(), err.code)
                    pool.remove(bad.tx_id())

    async def produce_once(self) -> Block | None:
        """Seals one block on the head; None if the head moved first."""
        template, job = await self._template()
        parent = template.header.parent
        start = self.rng.getrandbits(62)
        while True:
            if self.pouw is not None:
                step = self.pouw.attempts
                seal = await trio.to_thread.run_sync(self.pouw.search, template.header, job, start)
                self.stats.count(step)
            else:
                step = self.batch
                seal = await trio.to_thread.run_sync(search_seal, template.header, start, step)
                self.stats.count(step if seal is None else int.from_bytes(seal, "big") - start)
            if seal is not None:
                break
            start += step
            if self.store.head_hash != parent:
                self.stats.abandoned += 1
                return None
            await trio.lowlevel.checkpoint()
        block = chain.finish_block(template, seal, self.key)
        if self.store.head_hash != parent:
            self.stats.abandoned += 1
            return None
        try:
            await self.relay.publish_block(block)
        except InvalidBlock as err:  # a race with an import: try again on the new head
            log.warning("own block %d not imported: %s", block.header.height, err)
            return None
        self.stats.blocks += 1
        return block
