"""The chain's two gossip topics, validated against the store and the mempool
before anything is forwarded (docs/protocol.md, "Topics").

- ``blocks``: a Block. REJECT if it does not decode or breaks a consensus
  rule; IGNORE if it is known, its parent is unknown (a sync is asked for),
  or it is too far in the future (it may become valid); ACCEPT once imported.
- ``txs``: a Transaction. REJECT if it does not decode or its signature or
  static checks fail; IGNORE for mempool policy (duplicate, nonce, fee, full);
  ACCEPT once admitted.

Imports run in a worker thread (LMDB writes block), one at a time.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import trio

from bcai import codec
from bcai.chain import Block, InvalidBlock, Transaction, next_base_fee
from bcai.net import Host, Validation
from bcai.node.mempool import Mempool, MempoolReject
from bcai.store import ChainStore, ImportResult

BLOCKS = "blocks"
TXS = "txs"
# Codes for blocks that may be fine later or elsewhere: not the sender's fault.
# (block-data-missing: a MatMul job's blob no peer gave us yet.)
IGNORED_BLOCK_CODES = {"block-unknown-parent", "block-time-too-new", "block-data-missing"}
# Transaction rejections no state can cure (the sender relayed garbage);
# the rest (nonce, funds, fee, pool policy) are ignored, not punished.
REJECTED_TX_CODES = {"tx-bad-signature", "tx-wrong-chain", "tx-tip-above-max-fee", "tx-zero-amount"}


async def _nothing(_block: Block, _source: bytes) -> None:
    return None


class ChainRelay:
    def __init__(
        self,
        host: Host,
        store: ChainStore,
        mempool: Mempool,
        *,
        now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.host = host
        self.store = store
        self.mempool = mempool
        self.now_ms = now_ms
        self.need_sync = trio.Event()
        # held by every import with its mempool update (gossip, our own
        # blocks, sync) and by readers that need the head and the mempool
        # to agree (the API's next nonce)
        self.write_lock = trio.Lock()
        # told of every import (result, seconds), for metrics and events
        self.on_import: Callable[[ImportResult, float], None] = lambda result, seconds: None
        # awaited before a gossiped block is imported, outside the import's
        # locks (the node fetches a MatMul job's blobs from the sender here)
        self.before_import: Callable[[Block, bytes], Awaitable[None]] = _nothing
        self.blocks = host.subscribe(BLOCKS, self.validate_block)
        self.txs = host.subscribe(TXS, self.validate_tx)

    def base_fee(self) -> int:
        head = self.store.head
        info = self.store.get_block_info(self.store.head_hash)
        return next_base_fee(self.store.genesis.params, head.base_fee, info.tx_bytes)

    async def validate_block(self, _topic: str, data: bytes, source: bytes) -> Validation:
        try:
            block = Block.decode(data)
        except codec.DecodeError:
            return Validation.REJECT
        if self.store.has_block(block.block_hash()):
            return Validation.IGNORE
        await self.before_import(block, source)
        async with self.write_lock:
            started = time.perf_counter()
            try:
                result = await trio.to_thread.run_sync(
                    self.store.import_block, block, self.now_ms()
                )
                self.on_import(result, time.perf_counter() - started)
            except InvalidBlock as err:
                if err.code == "block-unknown-parent":
                    self.need_sync.set()
                return Validation.IGNORE if err.code in IGNORED_BLOCK_CODES else Validation.REJECT
            self.settle(result)
        return Validation.ACCEPT

    def settle(self, result: ImportResult) -> None:
        """After an import — by gossip or by sync — that moved the head: the
        transactions of blocks a reorg orphaned come back to the mempool,
        and what the new head included or made invalid leaves it."""
        if result.status == "head":
            self.mempool.readd(result.orphaned, self.store.read_account, self.base_fee())
            self.mempool.on_new_head(self.store.read_account, self.base_fee())

    async def validate_tx(self, _topic: str, data: bytes, _source: bytes) -> Validation:
        try:
            tx = Transaction.decode(data)
        except codec.DecodeError:
            return Validation.REJECT
        try:
            self.mempool.add(tx, self.store.read_account, self.base_fee(), self.store.head.height)
        except MempoolReject as err:
            if err.code in REJECTED_TX_CODES:
                return Validation.REJECT
            return Validation.IGNORE
        return Validation.ACCEPT

    async def publish_block(self, block: Block) -> bytes:
        """Imports our own block, settles the mempool, then publishes it."""
        async with self.write_lock:
            started = time.perf_counter()
            result = await trio.to_thread.run_sync(self.store.import_block, block, self.now_ms())
            self.on_import(result, time.perf_counter() - started)
            self.settle(result)
        return self.host.publish(BLOCKS, block.encode())

    def publish_tx(self, tx: Transaction) -> bytes:
        """Admits our own transaction to the mempool, then publishes it."""
        self.mempool.add(tx, self.store.read_account, self.base_fee(), self.store.head.height)
        return self.host.publish(TXS, tx.encode())
