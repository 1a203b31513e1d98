"""Chain core benchmarks (issue 3): block import end to end with its stages,
the sparse Merkle tree against a pure-Python one, commit time per block, and
account reads. Targets: import >= 5,000 tx/s per core (measured as CPU time,
all threads counted), SMT >= 20x the Python reference, commit <= 1 ms."""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

import lmdb
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import bcai_native
from bcai import chain
from bcai.chain import COIN, Block, Transfer
from bcai.chain._state import Overlay
from bcai.chain._transition import (
    apply_transactions,
    check_tx_signatures,
    mint_reward,
    release_unbonding,
)
from bcai.store import ChainStore
from tests.chain.builder import Chain, make_genesis, make_keys
from tests.native.smt_reference import ReferenceTree

ACCOUNTS, PER_BLOCK, BLOCKS = 10_000, 1_000, 5
KEYS = make_keys(ACCOUNTS, salt=11)
GENESIS = make_genesis(KEYS, balance=1_000 * COIN, max_block_txs=5_000, max_block_bytes=4_000_000)


def build_chain() -> tuple[Chain, list[bytes]]:
    rng = random.Random(1)
    c = Chain.start(GENESIS)
    raw = []
    for b in range(BLOCKS):
        senders = rng.sample(range(ACCOUNTS), PER_BLOCK)
        txs = [
            c.tx(KEYS[s], Transfer(to=KEYS[rng.randrange(ACCOUNTS)].address, amount=1 + b))
            for s in senders
        ]
        raw.append(c.extend(txs, KEYS[0]).encode())
    return c, raw


CHAIN, RAW = build_chain()


def import_all(store: ChainStore) -> ChainStore:
    for raw in RAW:
        store.import_block(Block.decode(raw), CHAIN.now_ms())
    return store


@pytest.mark.benchmark(group="chain-import-5x1000-transfers")
def test_bcai_import_blocks(benchmark: Any, role: Any) -> None:
    role("bcai")
    with tempfile.TemporaryDirectory() as d:
        store = import_all(ChainStore(Path(d), GENESIS))
        assert store.state.root == CHAIN.state.root  # the result first
        store.close()
    dirs: list[tempfile.TemporaryDirectory[str]] = []

    def fresh() -> tuple[tuple[ChainStore], dict[str, Any]]:
        dirs.append(tempfile.TemporaryDirectory())
        return (ChainStore(Path(dirs[-1].name), GENESIS),), {}

    cpu: list[float] = []

    def timed_import(store: ChainStore) -> ChainStore:
        c0 = time.process_time()  # all threads of the process
        import_all(store)
        cpu.append(time.process_time() - c0)
        return store

    benchmark.pedantic(timed_import, setup=fresh, rounds=5, iterations=1)
    n = BLOCKS * PER_BLOCK
    benchmark.extra_info["tx_per_cpu_second"] = round(n / sorted(cpu)[len(cpu) // 2])
    benchmark.extra_info["tx_per_second_wall"] = round(n / benchmark.stats.stats.median)
    benchmark.extra_info.update(stage_split())
    for d in dirs:
        d.cleanup()


def stage_split() -> dict[str, float]:
    """Median milliseconds per 1000-transaction block for each stage."""
    stages = ("decode", "signatures", "apply", "root", "commit", "import_total")
    times: dict[str, list[float]] = {k: [] for k in stages}
    with tempfile.TemporaryDirectory() as d:
        store = ChainStore(Path(d), GENESIS)
        for raw in RAW:
            t0 = time.perf_counter()
            block = Block.decode(raw)
            t1 = time.perf_counter()
            check_tx_signatures(block)
            t2 = time.perf_counter()
            overlay = Overlay(store.state)
            release_unbonding(overlay, block.header.height)
            apply_transactions(overlay, block, GENESIS)
            mint_reward(overlay, block.header.producer, GENESIS)
            t3 = time.perf_counter()
            overlay.compute_root()
            t4 = time.perf_counter()
            store.import_block(block, CHAIN.now_ms())
            t5 = time.perf_counter()
            times["decode"].append(t1 - t0)
            times["signatures"].append(t2 - t1)
            times["apply"].append(t3 - t2)
            times["root"].append(t4 - t3)
            times["import_total"].append(t5 - t4)  # the real import: all stages again
            times["commit"].append(store.last_commit_seconds)  # its LMDB write txn
        store.close()
    return {f"ms_{k}": round(1e3 * sorted(v)[len(v) // 2], 2) for k, v in times.items()}


@pytest.mark.benchmark(group="chain-import-5x1000-transfers")
def test_cryptography_signatures_one_by_one(benchmark: Any, role: Any) -> None:
    """Baseline: only checking the same signatures one by one."""
    role("baseline")
    blocks = [Block.decode(r) for r in RAW]
    items = [
        (Ed25519PublicKey.from_public_bytes(t.body.sender), t.signing_message(), t.signature)
        for b in blocks
        for t in b.txs
    ]

    def verify_all() -> None:
        for key, msg, sig in items:
            key.verify(sig, msg)

    benchmark.pedantic(verify_all, rounds=3, iterations=1)


@pytest.mark.benchmark(group="chain-import-5x1000-transfers")
def test_raw_lmdb_put_of_the_blocks(benchmark: Any, role: Any) -> None:
    """Baseline: storing the block bytes only, one durable transaction each."""
    role("info")

    def put_all() -> None:
        with tempfile.TemporaryDirectory() as d:
            env = lmdb.open(d, map_size=1 << 30)
            for i, raw in enumerate(RAW):
                with env.begin(write=True) as txn:
                    txn.put(i.to_bytes(8, "big"), raw)
            env.close()

    benchmark.pedantic(put_all, rounds=5, iterations=1)


# ---------------------------------------------------------------- state tree

TREE_SIZE, CHANGED = 1_000_000, 1_000


def tree_key(i: int) -> bytes:
    return bcai_native.blake3_hash(b"k" + i.to_bytes(8, "big"))


def tree_value(i: int, v: int) -> bytes:
    return bcai_native.blake3_hash(i.to_bytes(8, "big") + v.to_bytes(8, "big"))


@pytest.fixture(scope="module")
def trees() -> dict[str, Any]:
    items = [(tree_key(i), tree_value(i, 0)) for i in range(TREE_SIZE)]
    native = bcai_native.SparseMerkleTree()
    root = native.update(bytes(32), items)
    reference = ReferenceTree()
    ref_root = reference.update(bytes(32), items)
    assert ref_root == root
    rng = random.Random(5)
    updates = [(tree_key(i), tree_value(i, 1)) for i in rng.sample(range(TREE_SIZE), CHANGED)]
    return {"native": native, "reference": reference, "root": root, "updates": updates}


@pytest.mark.benchmark(group="smt-1000-changes-in-1M")
def test_bcai_smt_update(benchmark: Any, role: Any, trees: dict[str, Any]) -> None:
    role("bcai", 20)
    want = trees["reference"].update(trees["root"], trees["updates"])
    assert trees["native"].update(trees["root"], trees["updates"]) == want
    benchmark(trees["native"].update, trees["root"], trees["updates"])


@pytest.mark.benchmark(group="smt-1000-changes-in-1M")
def test_python_smt_update(benchmark: Any, role: Any, trees: dict[str, Any]) -> None:
    role("baseline")
    benchmark.pedantic(
        trees["reference"].update, args=(trees["root"], trees["updates"]), rounds=5, iterations=1
    )


# ---------------------------------------------------------------- commit and reads


@pytest.mark.benchmark(group="store-commit-small-block")
def test_bcai_commit_small_block(benchmark: Any, role: Any) -> None:
    """Import of a block of 10 transfers on a 10,000-account state; the LMDB
    write transaction alone is reported as ms_commit_median."""
    role("bcai")
    with tempfile.TemporaryDirectory() as d:
        store = ChainStore(Path(d), GENESIS)
        c = Chain.start(GENESIS)
        blocks = []
        for i in range(60):
            txs = [c.tx(KEYS[j], Transfer(to=KEYS[j + 1].address, amount=1 + i)) for j in range(10)]
            blocks.append(c.extend(txs, KEYS[0]))
        it = iter(blocks)

        commits: list[float] = []

        def import_next() -> None:
            store.import_block(next(it), c.now_ms())
            commits.append(store.last_commit_seconds)

        benchmark.pedantic(import_next, rounds=50, iterations=1)
        assert store.head.height == 50
        benchmark.extra_info["ms_commit_median"] = round(1e3 * sorted(commits)[25], 3)
        store.close()


@pytest.mark.benchmark(group="store-account-reads")
def test_bcai_random_account_reads(benchmark: Any, role: Any) -> None:
    role("bcai")
    rng = random.Random(3)
    addrs = [KEYS[rng.randrange(ACCOUNTS)].address for _ in range(10_000)]
    with tempfile.TemporaryDirectory() as d:
        store = ChainStore(Path(d), GENESIS)
        assert store.read_account(addrs[0]).balance == 1_000 * COIN

        def read_all() -> None:
            for a in addrs:
                store.read_account(a)

        benchmark(read_all)
        store.close()


@pytest.mark.benchmark(group="store-account-reads")
def test_raw_lmdb_gets(benchmark: Any, role: Any) -> None:
    """Baseline: py-lmdb gets of the same number of 32-byte keys."""
    role("baseline")
    with tempfile.TemporaryDirectory() as d:
        env = lmdb.open(d, map_size=1 << 30)
        keys = [i.to_bytes(32, "big") for i in range(ACCOUNTS)]
        with env.begin(write=True) as txn:
            for k in keys:
                txn.put(k, b"x" * 16)
        rng = random.Random(3)
        probe = [keys[rng.randrange(ACCOUNTS)] for _ in range(10_000)]

        def read_all() -> None:
            with env.begin() as txn:
                for k in probe:
                    txn.get(k)

        benchmark(read_all)
        env.close()


def test_chain_module_used() -> None:
    assert chain.COIN == COIN
