"""The mempool: ordering, priority, replacement, limits and eviction,
re-validation on a new head, re-admission after a reorg, and reason codes."""

from __future__ import annotations

import dataclasses

import pytest

from bcai.chain import COIN, Account, MatMulPost, Transfer, Unstake
from bcai.node import Mempool, MempoolReject
from tests.chain.builder import Chain, make_genesis, make_keys

KEYS = make_keys(6, salt=7)
A, B, C, D, MINER, _ = KEYS
GENESIS = make_genesis(KEYS[:4], balance=10 * COIN)
BASE_FEE = 1


@pytest.fixture
def c() -> Chain:
    return Chain.start(GENESIS)


def view(c: Chain):  # type: ignore[no-untyped-def]
    return lambda addr: c.state.accounts.get(addr, Account(balance=0, nonce=0))


def pay(c: Chain, key, nonce: int, tip: int = 1, max_fee: int = 10, amount: int = 1):  # type: ignore[no-untyped-def]
    return c.tx(key, Transfer(to=D.address, amount=amount), nonce=nonce, tip=tip, max_fee=max_fee)


def code(pool: Mempool, c: Chain, tx) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(MempoolReject) as info:
        pool.add(tx, view(c), BASE_FEE)
    return info.value.code


def test_select_orders_by_nonce_then_tip(c: Chain) -> None:
    pool = Mempool(GENESIS.params.chain_id)
    for n in (2, 0, 1):
        pool.add(pay(c, A, n, tip=1), view(c), BASE_FEE)
    pool.add(pay(c, B, 0, tip=5), view(c), BASE_FEE)
    chosen = pool.select(view(c), BASE_FEE, 10**6, 100)
    assert chosen[0].body.sender == B.public_key  # best tip first
    assert [t.body.nonce for t in chosen if t.body.sender == A.public_key] == [0, 1, 2]
    c.extend(chosen, MINER)  # and the selection is a valid block
    assert pool.on_new_head(view(c), BASE_FEE) == 4
    assert len(pool) == 0 and pool.bytes == 0


def test_gap_waits_and_limits(c: Chain) -> None:
    pool = Mempool(GENESIS.params.chain_id, max_per_sender=3)
    pool.add(pay(c, A, 1), view(c), BASE_FEE)
    assert pool.select(view(c), BASE_FEE, 10**6, 10) == []  # nonce 0 missing
    assert code(pool, c, pay(c, A, 3)) == "mempool-nonce-gap"
    pool.add(pay(c, A, 0), view(c), BASE_FEE)
    pool.add(pay(c, A, 2), view(c), BASE_FEE)
    assert len(pool.select(view(c), BASE_FEE, 10**6, 10)) == 3


def test_rejections_carry_codes(c: Chain) -> None:
    pool = Mempool(GENESIS.params.chain_id)
    tx = pay(c, A, 0)
    pool.add(tx, view(c), BASE_FEE)
    assert code(pool, c, tx) == "mempool-duplicate"
    assert code(pool, c, pay(c, B, 0, max_fee=0, tip=0)) == "mempool-fee-too-low"
    assert code(pool, c, c.tx(B, Transfer(to=D.address, amount=1), chain_id=5)) == "tx-wrong-chain"
    assert code(pool, c, c.tx(B, Transfer(to=D.address, amount=0))) == "tx-zero-amount"
    assert code(pool, c, pay(c, B, 0, amount=11 * COIN)) == "tx-insufficient-funds"
    forged = dataclasses.replace(pay(c, B, 0), signature=bytes(64))
    assert code(pool, c, forged) == "tx-bad-signature"
    c.extend([pay(c, C, 0)], MINER)
    assert code(pool, c, pay(c, C, 0, tip=2)) == "tx-nonce-too-low"
    assert len(pool) == 1


def test_cumulative_balance_per_sender(c: Chain) -> None:
    pool = Mempool(GENESIS.params.chain_id)
    pool.add(pay(c, A, 0, amount=6 * COIN), view(c), BASE_FEE)
    assert code(pool, c, pay(c, A, 1, amount=5 * COIN)) == "tx-insufficient-funds"


def test_replacement_needs_ten_percent_more(c: Chain) -> None:
    pool = Mempool(GENESIS.params.chain_id)
    pool.add(pay(c, A, 0, tip=10, max_fee=20), view(c), BASE_FEE)
    assert (
        code(pool, c, pay(c, A, 0, tip=10, max_fee=30, amount=2))
        == "mempool-replacement-underpriced"
    )
    assert (
        code(pool, c, pay(c, A, 0, tip=11, max_fee=21, amount=2))
        == "mempool-replacement-underpriced"
    )
    better = pay(c, A, 0, tip=11, max_fee=22, amount=2)
    pool.add(better, view(c), BASE_FEE)
    assert len(pool) == 1 and better.tx_id() in pool


def test_full_pool_evicts_the_cheapest_tail(c: Chain) -> None:
    weight = pay(c, A, 0).weight()
    pool = Mempool(GENESIS.params.chain_id, max_bytes=3 * weight)
    cheap = pay(c, A, 0, tip=1)
    pool.add(cheap, view(c), BASE_FEE)
    pool.add(pay(c, B, 0, tip=3), view(c), BASE_FEE)
    pool.add(pay(c, B, 1, tip=3), view(c), BASE_FEE)
    assert code(pool, c, pay(c, C, 0, tip=1)) == "mempool-full"  # pays no more than the cheapest
    rich = pay(c, C, 0, tip=5)
    pool.add(rich, view(c), BASE_FEE)
    assert cheap.tx_id() not in pool and rich.tx_id() in pool
    assert pool.bytes <= 3 * weight


def test_new_head_and_reorg_readmission(c: Chain) -> None:
    pool = Mempool(GENESIS.params.chain_id)
    txs = [pay(c, A, n) for n in range(3)] + [pay(c, B, 0)]
    assert pool.add_many(txs, view(c), BASE_FEE) == [None] * 4
    block = c.extend(txs[:2], MINER)
    assert pool.on_new_head(view(c), BASE_FEE) == 2  # mined ones leave
    assert len(pool) == 2
    # the block is orphaned by a reorg: its transactions come back
    c.rewind(0)
    assert pool.readd(block.txs, view(c), BASE_FEE) == 2
    assert len(pool) == 4
    assert len(pool.select(view(c), BASE_FEE, 10**6, 10)) == 4


def test_unstake_costs_only_the_fee(c: Chain) -> None:
    pool = Mempool(GENESIS.params.chain_id)
    tx = c.tx(A, Unstake(amount=100 * COIN), nonce=0)
    pool.add(tx, view(c), BASE_FEE)  # stake is checked at block time, the fee now
    assert tx.tx_id() in pool


def test_a_job_whose_deadline_the_next_block_passes_is_refused(c: Chain) -> None:
    """Given the head's height, a MatMul post whose deadline is not after
    the next block's height is refused at admission (no block could take
    it); without a height (orphans coming back after a reorg) the producer
    drops such posts when it builds."""
    pool = Mempool(GENESIS.params.chain_id)
    c.extend([], MINER)
    c.extend([], MINER)  # the head at height 2: the next block is 3

    def post(deadline: int, nonce: int = 0):  # type: ignore[no-untyped-def]
        job = MatMulPost(a=bytes(32), b=bytes(32), n=128, k=128, m=128, amount=5, deadline=deadline)
        return c.tx(A, job, nonce=nonce)

    for late in (0, 2, 3):
        with pytest.raises(MempoolReject) as info:
            pool.add(post(late), view(c), BASE_FEE, height=2)
        assert info.value.code == "tx-job-deadline"
    pool.add(post(4), view(c), BASE_FEE, height=2)
    pool.add(post(3, nonce=1), view(c), BASE_FEE)  # no height given: admitted
    assert len(pool) == 2
