"""The `blocks` and `txs` topics over real TCP, validated against real LMDB
stores and mempools: valid ones spread, invalid senders are punished."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import trio

from bcai.chain import Transfer
from bcai.net import Host, NodeKeys
from bcai.node import ChainRelay, Mempool
from bcai.store import ChainStore
from tests.chain.builder import Chain, make_genesis, make_keys
from tests.net.cluster import CONFIG

KEYS = make_keys(3)
GENESIS = make_genesis(KEYS)


async def wait_for(predicate: object, timeout_s: float = 10.0) -> None:
    with trio.fail_after(timeout_s):
        while not predicate():  # type: ignore[operator]
            await trio.sleep(0.02)


async def start(nursery: trio.Nursery, path: Path, now_ms: int) -> tuple[ChainRelay, int]:
    store = ChainStore(path, GENESIS)
    host = Host(NodeKeys.generate(), store.genesis_id, CONFIG)
    port = await nursery.start(host.run)
    relay = ChainRelay(host, store, Mempool(GENESIS.params.chain_id), now_ms=lambda: now_ms)
    return relay, port


async def test_blocks_and_txs_spread_and_invalid_ones_are_rejected(tmp_path: Path) -> None:
    builder = Chain.start(GENESIS)
    blocks = [builder.extend([], KEYS[2]) for _ in range(3)]
    now = blocks[-1].header.timestamp_ms + 1000
    async with trio.open_nursery() as nursery:
        relays = [await start(nursery, tmp_path / f"n{i}", now) for i in range(3)]
        (a, _), (b, port_b), (c, port_c) = relays
        await a.host.dial("127.0.0.1", port_b)
        await b.host.dial("127.0.0.1", port_c)
        await wait_for(lambda: all(r.host.router.mesh["blocks"] for r, _ in relays))
        # a block made by a, imported by the others as it spreads
        await a.publish_block(blocks[0])
        await wait_for(lambda: c.store.head.height == 1)
        assert b.store.head_hash == blocks[0].block_hash()
        # a block whose parent is unknown is ignored, and asks for a sync
        assert not b.need_sync.is_set()
        a.host.publish("blocks", blocks[2].encode())
        with trio.fail_after(10):
            await b.need_sync.wait()
        assert b.store.head.height == 1
        # a transaction enters every mempool
        tx = builder.tx(KEYS[0], Transfer(to=KEYS[1].address, amount=5), nonce=0)
        a.publish_tx(tx)
        await wait_for(lambda: tx.tx_id() in c.mempool)
        # a forged block (bad signature) is rejected and costs the sender
        forged = dataclasses.replace(
            blocks[1], header=dataclasses.replace(blocks[1].header, signature=bytes(64))
        )
        a.host.publish("blocks", forged.encode())
        await wait_for(lambda: b.host.router.peer_score(a.host.peer_id, trio.current_time()) < 0)
        assert b.store.head.height == 1 and c.store.head.height == 1
        # garbage on `txs` is rejected too
        a.host.publish("txs", b"not a transaction")
        await wait_for(
            lambda: (
                b.host.router.score.peers[a.host.peer_id].topics["txs"].invalid_message_deliveries
                > 0
            )
        )
        nursery.cancel_scope.cancel()
    for r, _ in relays:
        r.store.close()
