"""The LMDB chain store: genesis and reopening, data-dir guards, imports and
queries (with state proofs), invalid blocks written nowhere, reorgs (deep,
failed, over the limit), and the trio wrapper."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import lmdb
import pytest
import trio
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import bcai_native
from bcai import chain
from bcai.chain import COIN, InvalidBlock, Transfer
from bcai.codec import DecodeError
from bcai.crypto import PrivateKey, merkle_root
from bcai.store import AsyncChainStore, ChainStore, StoreError, load_bans, save_ban
from tests.chain.builder import Chain, make_genesis, make_keys

KEYS = make_keys(6, salt=3)
A, B, C, MINER, OTHER, _ = KEYS
GENESIS = make_genesis(KEYS[:3])


def grow(
    c: Chain, n: int, producer: PrivateKey = MINER, pay: int = 1, spacing_ms: int | None = None
) -> list[chain.Block]:
    out = []
    for i in range(n):
        tx = c.tx(A, Transfer(to=B.address, amount=pay * COIN + i))
        out.append(c.build([tx], producer, spacing_ms))
        c.import_block(out[-1])
    return out


def test_genesis_reopen_and_guards(tmp_path: Path) -> None:
    with ChainStore(tmp_path / "d", GENESIS) as store:
        assert store.head.height == 0
        genesis_hash = store.head_hash
        store.verify_consistency()
    with ChainStore(tmp_path / "d", GENESIS) as store:
        assert store.head_hash == genesis_hash
    data = (tmp_path / "d" / "data.mdb").read_bytes()
    other = make_genesis(KEYS[:2])
    with pytest.raises(StoreError) as info:
        ChainStore(tmp_path / "d", other)
    assert info.value.code == "store-wrong-chain"
    assert (tmp_path / "d" / "data.mdb").read_bytes() == data  # nothing changed


def test_unknown_format_is_refused(tmp_path: Path) -> None:
    env = lmdb.open(str(tmp_path / "x"), max_dbs=2)
    env.open_db(b"meta")
    env.close()
    with pytest.raises(StoreError) as info:
        ChainStore(tmp_path / "x", GENESIS)
    assert info.value.code == "store-unknown-format"
    env = lmdb.open(str(tmp_path / "y"), max_dbs=2)
    with env.begin(write=True) as txn:
        txn.put(b"k", b"v")
    env.close()
    with pytest.raises(StoreError) as info:
        ChainStore(tmp_path / "y", GENESIS)
    assert info.value.code == "store-unknown-format"


def test_import_and_queries(tmp_path: Path) -> None:
    c = Chain.start(GENESIS)
    blocks = grow(c, 5)
    with ChainStore(tmp_path / "d", GENESIS) as store:
        for b in blocks:
            assert store.import_block(b, c.now_ms()).status == "head"
        assert store.import_block(blocks[2], c.now_ms()).status == "known"
        assert store.head_hash == blocks[-1].block_hash()
        assert store.state.root == c.state.root
        assert store.get_block_by_height(3) == blocks[2]
        assert store.get_block(blocks[1].block_hash()) == blocks[1]
        tx = blocks[4].txs[0]
        assert store.get_transaction(tx.tx_id()) == (tx, blocks[4].block_hash(), 0)
        headers = store.get_headers(1, 10)
        assert [h.height for h in headers] == [1, 2, 3, 4, 5]
        acct, (siblings, terminal) = store.get_account(B.address)
        assert acct == c.state.accounts[B.address]
        key = chain.tree_key(("account", B.address, 0))
        assert bcai_native.smt_verify(
            store.head.state_root, key, bcai_native.blake3_hash(acct.encode()), siblings, terminal
        )
        nobody, (s2, t2) = store.get_account(b"\x00" * 20)
        assert nobody.balance == 0
        key0 = chain.tree_key(("account", b"\x00" * 20, 0))
        assert bcai_native.smt_verify(store.head.state_root, key0, None, s2, t2)
        with pytest.raises(StoreError) as info:
            store.get_transaction(b"\x01" * 32)
        assert info.value.code == "store-not-found"
        store.verify_consistency()
    with ChainStore(tmp_path / "d", GENESIS) as again:  # restart: same head and state
        assert again.head_hash == blocks[-1].block_hash()
        assert again.state.accounts == c.state.accounts
        assert again.state.root == c.state.root


def test_invalid_block_writes_nothing(tmp_path: Path) -> None:
    c = Chain.start(GENESIS)
    good = c.build([c.tx(A, Transfer(to=B.address, amount=COIN))], MINER)
    bad_header = dataclasses.replace(good.header, state_root=bytes(32))
    bad_header = dataclasses.replace(bad_header, seal=chain.HashSeal.mine(bad_header))
    bad_header = dataclasses.replace(bad_header, signature=MINER.sign(bad_header.signing_message()))
    bad = chain.Block(header=bad_header, txs=good.txs)
    with ChainStore(tmp_path / "d", GENESIS) as store:
        before = hashlib.sha256((tmp_path / "d" / "data.mdb").read_bytes()).digest()
        with pytest.raises(InvalidBlock) as info:
            store.import_block(bad, c.now_ms())
        assert info.value.code == "block-bad-state-root"
        assert not store.has_block(bad.block_hash())
        assert hashlib.sha256((tmp_path / "d" / "data.mdb").read_bytes()).digest() == before
        orphan = dataclasses.replace(good.header, parent=bytes(32))
        with pytest.raises(InvalidBlock) as info:
            store.import_block(chain.Block(header=orphan, txs=good.txs), c.now_ms())
        assert info.value.code == "block-unknown-parent"
        assert store.import_block(good, c.now_ms()).status == "head"


def branches(
    fork: int, a_len: int, b_len: int, a_spacing_ms: int | None = None
) -> tuple[Chain, list[chain.Block], Chain, list[chain.Block]]:
    a = Chain.start(GENESIS)
    common = grow(a, fork)
    b = Chain.start(GENESIS)
    for blk in common:
        b.import_block(blk)
    a_blocks = grow(a, a_len, MINER, pay=2, spacing_ms=a_spacing_ms)
    b_blocks = grow(b, b_len, OTHER, pay=3)
    return a, common + a_blocks, b, common + b_blocks


def test_reorg_to_the_heavier_branch(tmp_path: Path) -> None:
    a, a_blocks, b, b_blocks = branches(fork=1, a_len=3, b_len=4)
    with ChainStore(tmp_path / "d", GENESIS) as store:
        for blk in a_blocks:
            store.import_block(blk, a.now_ms())
        results = [store.import_block(blk, b.now_ms()) for blk in b_blocks[1:]]
        assert [r.status for r in results] == ["side", "side", "side", "head"]
        assert results[-1].reorg_depth == 3
        orphaned = {tx.tx_id() for tx in results[-1].orphaned}
        assert orphaned == {tx.tx_id() for blk in a_blocks[1:] for tx in blk.txs}
        assert store.head_hash == b_blocks[-1].block_hash()
        assert store.state.root == b.state.root
        assert store.state.accounts == b.state.accounts
        assert store.get_block_by_height(2) == b_blocks[1]
        with pytest.raises(StoreError):
            store.get_transaction(a_blocks[2].txs[0].tx_id())
        store.verify_consistency()
        # and back again when A grows heavier
        grown = grow(a, 2, MINER, pay=4)
        back = [store.import_block(blk, a.now_ms()) for blk in grown]
        # equal work after the first block: the lower hash decides; after the
        # second, A is heavier either way
        assert back[-1].status == "head"
        assert max(r.reorg_depth for r in back) == 4
        assert store.state.root == a.state.root
        store.verify_consistency()
    with ChainStore(tmp_path / "d", GENESIS) as again:
        assert again.state.root == a.state.root
        again.verify_consistency()


def test_failed_reorg_keeps_the_old_head(tmp_path: Path) -> None:
    # A's blocks come late, so ASERT eases its targets: 3 of them weigh less
    # than B's 2 + 1, yet more than B's 2.
    a, a_blocks, b, b_blocks = branches(fork=1, a_len=3, b_len=2, a_spacing_ms=5_000)
    # B's next block overspends: valid without state, invalid with it, and
    # it would make B the heavier branch
    tx = b.tx(C, Transfer(to=A.address, amount=10**15))
    good = b.build([], OTHER)
    h = dataclasses.replace(good.header, tx_root=merkle_root([tx.encode()]))
    h = dataclasses.replace(h, seal=chain.HashSeal.mine(h))
    h = dataclasses.replace(h, signature=OTHER.sign(h.signing_message()))
    bad = chain.Block(header=h, txs=(tx,))
    with ChainStore(tmp_path / "d", GENESIS) as store:
        for blk in a_blocks:
            store.import_block(blk, a.now_ms())
        head, root = store.head_hash, store.state.root
        for blk in b_blocks[1:]:
            assert store.import_block(blk, b.now_ms()).status == "side"
        with pytest.raises(InvalidBlock) as info:
            store.import_block(bad, b.now_ms())
        assert info.value.code == "tx-insufficient-funds"
        assert store.head_hash == head and store.state.root == root
        assert store.state.accounts == a.state.accounts
        store.verify_consistency()
        with pytest.raises(InvalidBlock) as info:
            store.import_block(bad, b.now_ms())
        assert info.value.code == "block-known-invalid"


def test_reorg_limit(tmp_path: Path) -> None:
    a, a_blocks, b, b_blocks = branches(fork=0, a_len=3, b_len=5)
    with ChainStore(tmp_path / "d", GENESIS, reorg_limit=2) as store:
        for blk in a_blocks:
            store.import_block(blk, a.now_ms())
        statuses = [store.import_block(blk, b.now_ms()).status for blk in b_blocks]
        assert statuses == ["side"] * 5
        assert store.head_hash == a_blocks[-1].block_hash()


async def test_async_store(tmp_path: Path) -> None:
    c = Chain.start(GENESIS)
    blocks = grow(c, 3)
    store = AsyncChainStore(ChainStore(tmp_path / "d", GENESIS))
    async with trio.open_nursery() as nursery:
        for blk in blocks:  # imports are serialized by the writer limiter
            await store.import_block(blk, c.now_ms())
        nursery.start_soon(store.get_block_by_height, 1)
    assert store.head.height == 3
    assert (await store.get_account(B.address)) == c.state.accounts[B.address]
    assert len(await store.get_headers(0, 10)) == 4
    store.store.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_malformed_blocks_are_rejected_and_write_nothing(
    tmp_path: Path, data: st.DataObject
) -> None:
    c = Chain.start(GENESIS)
    block = c.build([c.tx(A, Transfer(to=B.address, amount=COIN))], MINER)
    raw = bytearray(block.encode())
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] ^= data.draw(st.integers(1, 255))
    assume(bytes(raw) != block.encode())  # two flips of one byte can cancel out
    path = tmp_path / f"d{data.draw(st.integers(0, 10**9))}"
    with ChainStore(path, GENESIS) as store:
        before = store.head_hash
        try:
            mutated = chain.Block.decode(bytes(raw))
        except DecodeError as err:
            assert err.code.startswith("codec-")
            return
        with pytest.raises(InvalidBlock) as info:
            store.import_block(mutated, c.now_ms())
        assert info.value.code.startswith(("block-", "tx-"))
        assert store.head_hash == before
        assert not store.has_block(mutated.block_hash())
        store.verify_consistency()


def test_bans_persist_and_expire(tmp_path: Path) -> None:
    with ChainStore(tmp_path / "d", GENESIS) as store:
        save_ban(store, "10.0.0.1", 1_000.0)
        save_ban(store, "10.0.0.2", 500.0)
        save_ban(store, "10.0.0.1", 900.0)  # shorter: the longer ban stays
    with ChainStore(tmp_path / "d", GENESIS) as store:  # survives a restart
        assert load_bans(store, now_s=600.0) == {"10.0.0.1": 1_000.0}
        assert load_bans(store, now_s=100.0) == {"10.0.0.1": 1_000.0}  # 10.0.0.2 was deleted
        assert load_bans(store, now_s=1_000.0) == {}
