"""The block producer against a real LMDB store and mempool: what it builds
on, and that no transaction is lost when the head moves under it."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from bcai.chain import Transfer
from bcai.net import Host, NodeKeys
from bcai.node import ChainRelay, Mempool
from bcai.node.producer import Producer
from bcai.store import ChainStore
from tests.chain.builder import Chain, make_genesis, make_keys
from tests.net.cluster import CONFIG

KEYS = make_keys(4, salt=11)
GENESIS = make_genesis(KEYS[:2])
SENDER, RECIPIENT, MINER, OTHER = KEYS


async def test_a_reorg_while_a_template_is_built_loses_no_transaction(tmp_path: Path) -> None:
    """The node is on branch A, whose block holds the sender's nonce-0
    transfer; nonce 1 waits in the mempool. A heavier branch B (without
    either) is imported while the producer is about to build: the template
    must come from B's head and carry both transfers. Before, the producer
    chose nonce 1 on A's head, built on B's (where nonce 0 is missing again),
    and dropped nonce 1 from the mempool as invalid — for good."""
    a, b = Chain.start(GENESIS), Chain.start(GENESIS)
    first = a.tx(SENDER, Transfer(to=RECIPIENT.address, amount=10))
    a.extend([first], MINER)
    second = a.tx(SENDER, Transfer(to=RECIPIENT.address, amount=11))
    fork = [b.extend([], OTHER) for _ in range(2)]
    now = max(a.now_ms(), b.now_ms()) + 1000
    store = ChainStore(tmp_path / "chain", GENESIS)
    try:
        store.import_block(a.blocks[0], now)
        mempool = Mempool(GENESIS.params.chain_id)
        relay = ChainRelay(
            Host(NodeKeys.generate(), store.genesis_id, CONFIG), store, mempool, now_ms=lambda: now
        )
        mempool.add(second, store.read_account, relay.base_fee())
        producer = Producer(store, relay, mempool, MINER, now_ms=lambda: now)
        built = []
        # the write lock held as by an import under way (gossip or sync)
        async with trio.open_nursery() as nursery, relay.write_lock:
            nursery.start_soon(lambda: _collect(producer, built))
            await trio.testing.wait_all_tasks_blocked()
            for block in fork:
                relay.settle(store.import_block(block, now))
        assert store.head_hash == fork[-1].block_hash()
        (template, _job) = built[0]
        assert template.header.parent == fork[-1].block_hash()
        assert [tx.tx_id() for tx in template.txs] == [first.tx_id(), second.tx_id()]
        assert first.tx_id() in mempool and second.tx_id() in mempool
    finally:
        store.close()


async def _collect(producer: Producer, out: list[object]) -> None:
    out.append(await producer._template())
