"""Honest PoUW seals: mined by the CPU miner, valid under the chain's seal
interface, imported by a real LMDB chain store; and the simple rejections
(encoding, ticket, job, openings) with their codes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from bcai import chain, pouw
from bcai.chain import InvalidBlock
from bcai.mining import CpuMiner, MiningStats, mine, sealer
from bcai.pouw import InvalidSeal, PouwParams, PouwSeal, PouwSealVerifier, Work
from bcai.store import ChainStore
from tests.chain.builder import Chain, make_genesis, make_keys
from tests.pouw.cheats import MAX_TARGET

SMALL = PouwParams(tile=8, checks=4, rounds=2, n=32, k=32, m=32)
EASY = MAX_TARGET >> 3  # one ticket in 8


def test_mined_seal_round_trips_and_verifies() -> None:
    work = pouw.derived_work(b"\x07" * 32, SMALL)
    stats = MiningStats()
    seal = mine(b"prefix", EASY, work, SMALL, stats=stats)
    assert seal is not None and stats.attempts >= 1
    assert stats.ops == stats.attempts * 2 * 32**3
    decoded = PouwSeal.decode(seal.encode())
    assert decoded == seal
    pouw.verify(b"prefix", EASY, decoded, work, SMALL)
    pouw.full_verify(b"prefix", decoded, work, SMALL)
    t = pouw.ticket(b"prefix", seal.nonce, seal.root, seal.product)
    assert int.from_bytes(t, "big") <= EASY
    # the same seal under a harder target, another header, or a job it did not do
    with pytest.raises(InvalidSeal) as err:
        pouw.verify(b"prefix", int.from_bytes(t, "big") - 1, decoded, work, SMALL)
    assert err.value.code == "pouw-ticket"
    with pytest.raises(InvalidSeal) as err:
        pouw.verify(b"prefix", EASY, decoded, Work(work.a, work.b, b"\x01" * 32), SMALL)
    assert err.value.code == "pouw-job"
    short = dataclasses.replace(decoded, openings=decoded.openings[:-1])
    with pytest.raises(InvalidSeal) as err:
        pouw.verify(b"prefix", EASY, short, work, SMALL)
    assert err.value.code == "pouw-openings"


def test_a_job_seal_carries_the_product() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(-63, 64, (32, 64)).astype(np.int8)
    b = rng.integers(-63, 64, (64, 16)).astype(np.int8)
    params = PouwParams(tile=8, checks=4, n=32, k=64, m=16)
    work = Work(a, b, job=b"\x09" * 32)
    c = pouw.work_product(work)
    assert np.array_equal(c, a.astype(np.int64) @ b.astype(np.int64))
    seal = mine(b"job", EASY, work, params, product=b"\x05" * 32)
    assert seal is not None and seal.product == b"\x05" * 32
    pouw.verify(b"job", EASY, seal, work, params, c)
    with pytest.raises(InvalidSeal) as err:
        pouw.verify(b"job", EASY, seal, work, params, None)
    assert err.value.code == "pouw-product"


def test_a_pouw_chain_is_imported_by_the_store(tmp_path: Path) -> None:
    keys = make_keys(2)
    genesis = make_genesis(keys, genesis_target=EASY)
    verifier = PouwSealVerifier(SMALL)
    builder = Chain.start(genesis)
    for height in range(1, 6):
        block = chain.assemble_block(
            builder.state,
            genesis,
            builder.context(),
            [],
            keys[height % 2],
            builder.head.timestamp_ms + 1000,
            sealer=sealer(SMALL),
        )
        ctx = builder.context()
        result = chain.process_block(
            builder.state, block, genesis, ctx, block.header.timestamp_ms, verifier
        )
        builder.undos.append(result.commit())
        builder.headers.append(block.header)
        builder.tx_bytes.append(result.tx_bytes)
        builder.blocks.append(block)
    blocks = builder.blocks
    full = PouwSealVerifier(SMALL, full=True)
    store = ChainStore(tmp_path / "db", genesis, seal=full)
    for block in blocks:
        store.import_block(block, block.header.timestamp_ms)
    assert store.head_hash == blocks[-1].block_hash()
    assert full.full_checks == len(blocks)
    store.close()
    # the node option: only blocks within 2 of the tip are re-verified in full
    recent = PouwSealVerifier(SMALL, full_within=2)
    recent.tip_height = 5
    for block in blocks:
        recent.verify_seal(block.header)
    assert recent.full_checks == 2  # heights 4 and 5
    # the node's form: a header is recent by its own measure (here: the last
    # two timestamps); `full=True` re-verifies every seal whatever it says
    cutoff = blocks[-2].header.timestamp_ms
    timed = PouwSealVerifier(SMALL, recent=lambda h: h.timestamp_ms >= cutoff)
    for block in blocks:
        timed.verify_seal(block.header)
    assert timed.full_checks == 2
    every = PouwSealVerifier(SMALL, full=True, recent=lambda h: False)
    for block in blocks:
        every.verify_seal(block.header)
    assert every.full_checks == len(blocks)
    # the full checks by another miner's attempts (a GPU node passes its GPU miner's):
    # used for every one, and a miner computing other leaves fails them
    calls = []

    def counted(work: pouw.Work, seed: pouw.Seed, params: pouw.PouwParams) -> bytes:
        calls.append(seed)
        return CpuMiner().attempt_leaves(work, seed, params)

    by_miner = PouwSealVerifier(SMALL, full=True, leaves_of=counted)
    for block in blocks:
        by_miner.verify_seal(block.header)
    assert len(calls) == len(blocks) == by_miner.full_checks

    def other(work: pouw.Work, seed: pouw.Seed, params: pouw.PouwParams) -> bytes:
        return CpuMiner().attempt_leaves(work, pouw.Seed(seed.attempt, seed.f, seed.e), params)

    with pytest.raises(InvalidSeal) as err:
        PouwSealVerifier(SMALL, full=True, leaves_of=other).check(blocks[0].header)
    assert err.value.code == "pouw-full-mismatch"
    # a hash seal (or any non-PoUW bytes) is not a PoUW seal
    bad = dataclasses.replace(blocks[0].header, seal=b"\x00" * 8)
    with pytest.raises(InvalidBlock) as err:
        verifier.verify_seal(bad)
    assert err.value.code == "block-bad-seal" and "pouw-encoding" in str(err.value)
    # a seal moved to another header fails its checks
    moved = dataclasses.replace(blocks[1].header, seal=blocks[0].header.seal)
    with pytest.raises(InvalidBlock, match="pouw-"):
        verifier.verify_seal(moved)
