"""Sync over real TCP between hosts with real LMDB stores: a fresh node
syncs 5,000 blocks from 3 peers, one of which serves a bad block; a sync
that loses a peer mid-way finishes from the others; a second call resumes."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from bcai import codec
from bcai.chain import Block, Genesis, Transfer
from bcai.net import NodeKeys, RequestFailed
from bcai.net._host import Host
from bcai.net._sync import (
    BlocksRequest,
    BlocksResponse,
    HeadersRequest,
    HeadersResponse,
    Status,
    Syncer,
    locator,
    serve_sync,
)
from bcai.store import ChainStore
from tests.chain.builder import Chain, make_genesis, make_keys
from tests.net.cluster import CONFIG

BLOCKS = 5000


@pytest.fixture(scope="module")
def built_chain(tmp_path_factory: pytest.TempPathFactory) -> tuple[Genesis, list[Block], Path]:
    """5,000 blocks (a transfer every 25th), and a store holding them."""
    keys = make_keys(3)
    genesis = make_genesis(keys)
    c = Chain.start(genesis)
    for i in range(BLOCKS):
        txs = [c.tx(keys[0], Transfer(to=keys[1].address, amount=1))] if i % 25 == 0 else []
        c.extend(txs, keys[2])
    path = tmp_path_factory.mktemp("full") / "chain"
    with ChainStore(path, genesis) as store:
        for block in c.blocks:
            store.import_block(block, block.header.timestamp_ms + 1000)
    return genesis, c.blocks, path


def copy_store(src: Path, dst: Path, genesis: Genesis) -> ChainStore:
    shutil.copytree(src, dst)
    return ChainStore(dst, genesis)


def tamper(body: bytes) -> bytes:
    """What a bad peer serves: the first block with a transaction, stripped
    of it (the header still claims it: the tx root no longer matches)."""
    blocks = list(BlocksResponse.decode(body).blocks)
    for i, b in enumerate(blocks):
        if b.txs:
            blocks[i] = dataclasses.replace(b, txs=())
            break
    return BlocksResponse(blocks=tuple(blocks)).encode()


async def serving_peer(
    nursery: trio.Nursery, store: ChainStore, *, bad: bool = False
) -> tuple[Host, int]:
    host = Host(NodeKeys.generate(), store.genesis_id, CONFIG)
    port = await nursery.start(host.run)
    serve_sync(host, store)
    if bad:
        honest = host.handlers["sync/blocks"]

        async def tampered(peer: bytes, body: bytes) -> bytes:
            return tamper(await honest(peer, body))

        host.handle("sync/blocks", tampered)
    return host, port


async def connected_host(nursery: trio.Nursery, store: ChainStore, ports: list[int]) -> Host:
    host = Host(NodeKeys.generate(), store.genesis_id, CONFIG)
    await nursery.start(host.run)
    for port in ports:
        await host.dial("127.0.0.1", port)
    return host


async def test_fresh_node_syncs_5000_blocks_from_3_peers_one_bad(
    built_chain: tuple[Genesis, list[Block], Path], tmp_path: Path
) -> None:
    genesis, blocks, full = built_chain
    stores = [copy_store(full, tmp_path / f"peer{i}", genesis) for i in range(3)]
    fresh = ChainStore(tmp_path / "fresh", genesis)
    async with trio.open_nursery() as nursery:
        peers = [
            await serving_peer(nursery, stores[0]),
            await serving_peer(nursery, stores[1]),
            await serving_peer(nursery, stores[2], bad=True),
        ]
        host = await connected_host(nursery, fresh, [port for _, port in peers])
        progress: list[int] = []
        syncer = Syncer(
            host,
            fresh,
            now_ms=lambda: blocks[-1].header.timestamp_ms + 1000,
            progress=lambda height, _n: progress.append(height),
        )
        report = await syncer.sync()
        assert fresh.head.height == BLOCKS
        assert fresh.head_hash == blocks[-1].block_hash()
        assert report.imported == BLOCKS
        bad_id = peers[2][0].peer_id
        assert report.banned == [bad_id]
        assert bad_id not in host.connected()
        assert progress == sorted(progress) and progress[-1] == BLOCKS
        fresh.verify_consistency()
        # the honest peers stay connected and the synced node now serves
        honest = {peers[0][0].peer_id, peers[1][0].peer_id}
        assert honest <= set(host.connected()), report
        nursery.cancel_scope.cancel()
    for s in [*stores, fresh]:
        s.close()


async def test_sync_survives_a_peer_leaving_and_resumes(
    built_chain: tuple[Genesis, list[Block], Path], tmp_path: Path
) -> None:
    genesis, blocks, full = built_chain
    stores = [copy_store(full, tmp_path / f"peer{i}", genesis) for i in range(2)]
    fresh = ChainStore(tmp_path / "fresh", genesis)
    now = blocks[-1].header.timestamp_ms + 1000
    async with trio.open_nursery() as nursery:
        peer_scopes = []
        ports = []
        for store in stores:
            scope = trio.CancelScope()
            peer_scopes.append(scope)

            async def run(
                store: ChainStore = store,
                scope: trio.CancelScope = scope,
                task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
            ) -> None:
                with scope:
                    async with trio.open_nursery() as inner:
                        _, port = await serving_peer(inner, store)
                        task_status.started(port)

            ports.append(await nursery.start(run))
        host = await connected_host(nursery, fresh, ports)

        def progress(height: int, _n: int) -> None:
            if height >= 1000:
                peer_scopes[0].cancel()  # one peer vanishes mid-sync

        report = await Syncer(host, fresh, now_ms=lambda: now, progress=progress).sync()
        assert fresh.head.height == BLOCKS and report.imported == BLOCKS
        assert len(host.connected()) == 1
        # a later call with nothing new imports nothing and says so
        again = await Syncer(host, fresh, now_ms=lambda: now).sync()
        assert again.imported == 0 and again.height == BLOCKS
        nursery.cancel_scope.cancel()
    for s in [*stores, fresh]:
        s.close()


async def test_a_stopped_sync_resumes_from_the_store(
    built_chain: tuple[Genesis, list[Block], Path], tmp_path: Path
) -> None:
    genesis, blocks, full = built_chain
    store = copy_store(full, tmp_path / "peer", genesis)
    fresh = ChainStore(tmp_path / "fresh", genesis)
    now = blocks[-1].header.timestamp_ms + 1000
    async with trio.open_nursery() as nursery:
        _, port = await serving_peer(nursery, store)
        host = await connected_host(nursery, fresh, [port])
        with trio.move_on_after(60) as scope:

            def stop_early(height: int, _n: int) -> None:
                if height >= 700:
                    scope.cancel()

            await Syncer(host, fresh, now_ms=lambda: now, progress=stop_early).sync()
        stopped_at = fresh.head.height
        assert 700 <= stopped_at < BLOCKS
        # the request the second sync starts from is the store's own locator
        assert locator(fresh)[0] == fresh.head_hash
        report = await Syncer(host, fresh, now_ms=lambda: now).sync()
        assert report.imported == BLOCKS - stopped_at
        assert fresh.head_hash == blocks[-1].block_hash()
        nursery.cancel_scope.cancel()
    store.close()
    fresh.close()


async def test_headers_request_answers_after_the_common_ancestor(
    built_chain: tuple[Genesis, list[Block], Path], tmp_path: Path
) -> None:
    genesis, blocks, full = built_chain
    store = copy_store(full, tmp_path / "peer", genesis)
    async with trio.open_nursery() as nursery:
        _, port = await serving_peer(nursery, store)
        client = Host(NodeKeys.generate(), store.genesis_id, CONFIG)
        await nursery.start(client.run)
        pid = await client.dial("127.0.0.1", port)
        unknown = b"\xee" * 32
        req = HeadersRequest(locator=(unknown, blocks[99].block_hash()), count=10)
        got = HeadersResponse.decode(await client.request(pid, "sync/headers", req.encode()))
        assert [h.height for h in got.headers] == list(range(101, 111))
        with pytest.raises(RequestFailed) as err:
            await client.request(pid, "sync/headers", b"\x00junk")
        assert err.value.code == "sync-malformed"
        assert pid in client.connected()  # a bad request is answered, not fatal
        nursery.cancel_scope.cancel()
    store.close()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_sync_decoders_only_raise_decode_errors(data: bytes) -> None:
    for record in (Status, HeadersRequest, HeadersResponse, BlocksRequest, BlocksResponse):
        try:
            decoded = record.decode(data)
        except codec.DecodeError as err:
            assert err.code
        else:
            assert decoded.encode() == data


async def test_a_reorg_by_sync_reports_the_orphaned_transactions(tmp_path: Path) -> None:
    """A node on branch A (two blocks, a transfer in each) syncs the heavier
    branch B from a peer: the import that moves its head to B reports A's
    transactions as orphaned to `on_import`, which a node uses to take them
    back into its mempool (before, a reorg by sync lost them)."""
    keys = make_keys(4, salt=9)
    genesis = make_genesis(keys[:2])
    a, b = Chain.start(genesis), Chain.start(genesis)
    a_txs = []
    for i in range(2):
        tx = a.tx(keys[0], Transfer(to=keys[1].address, amount=10 + i))
        a_txs.append(tx)
        a.extend([tx], keys[2])
    for _ in range(4):
        b.extend([], keys[3])
    now = max(a.now_ms(), b.now_ms()) + 1000
    local = ChainStore(tmp_path / "local", genesis)
    remote = ChainStore(tmp_path / "remote", genesis)
    for blk in a.blocks:
        local.import_block(blk, now)
    for blk in b.blocks:
        remote.import_block(blk, now)
    seen: list[tuple[str, int, set[bytes]]] = []
    async with trio.open_nursery() as nursery:
        _, port = await serving_peer(nursery, remote)
        host = await connected_host(nursery, local, [port])
        report = await Syncer(
            host,
            local,
            now_ms=lambda: now,
            on_import=lambda r: seen.append(
                (r.status, r.reorg_depth, {tx.tx_id() for tx in r.orphaned})
            ),
        ).sync()
        nursery.cancel_scope.cancel()
    assert report.imported == 4 and local.head_hash == b.blocks[-1].block_hash()
    assert len(seen) == 4  # every imported block reported, in order
    reorgs = [s for s in seen if s[1] > 0]
    assert len(reorgs) == 1 and reorgs[0][:2] == ("head", 2)  # A's two blocks left
    assert reorgs[0][2] == {tx.tx_id() for tx in a_txs}
    assert seen[-1][0] == "head" and all(not s[2] for s in seen if s[1] == 0)
    local.close()
    remote.close()
