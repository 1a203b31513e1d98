"""Block validation: a valid block passes, and for every rule a block that
breaks it is rejected with that rule's reason code and changes nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from bcai import chain
from bcai.chain import COIN, Block, Burn, InvalidBlock, Stake, Transfer, Unstake
from bcai.crypto import PrivateKey, merkle_root
from tests.chain.builder import SEAL, Chain, make_genesis, make_keys

KEYS = make_keys(4)
ALICE, BOB, CAROL, MINER = KEYS
GENESIS = make_genesis(KEYS[:3])


@pytest.fixture
def c() -> Chain:
    return Chain.start(GENESIS)


def resign(block: Block, key: PrivateKey = MINER, reseal: bool = True, **fields: object) -> Block:
    """The block with header fields changed, resealed and re-signed so that
    only the rule under test fails."""
    h = dataclasses.replace(block.header, **fields)  # type: ignore[arg-type]
    if reseal:
        h = dataclasses.replace(h, seal=chain.HashSeal.mine(h))
    h = dataclasses.replace(h, signature=key.sign(h.signing_message()))
    return Block(header=h, txs=block.txs)


def rejects(c: Chain, block: Block, code: str, now_ms: int | None = None) -> None:
    root, accounts = c.state.root, dict(c.state.accounts)
    with pytest.raises(InvalidBlock) as info:
        c.process(block, now_ms)
    assert info.value.code == code, info.value
    assert c.state.root == root and c.state.accounts == accounts  # nothing changed


def test_valid_block_moves_money_and_pays_fees(c: Chain) -> None:
    tx = c.tx(ALICE, Transfer(to=BOB.address, amount=5 * COIN), max_fee=10, tip=2)
    block = c.extend([tx], MINER)
    weight = tx.weight()
    assert c.state.accounts[BOB.address].balance == 1_005 * COIN
    assert c.state.accounts[ALICE.address].balance == 995 * COIN - weight * 3  # base 1 + tip 2
    assert c.state.accounts[ALICE.address].nonce == 1
    assert c.state.accounts[MINER.address].balance == GENESIS.params.block_reward + 2 * weight
    assert c.state.supply.burned == weight
    assert c.state.supply_invariant_holds()
    assert block.header.state_root == c.state.root


def test_empty_blocks_and_encodings_round_trip(c: Chain) -> None:
    for _ in range(3):
        block = c.extend([], MINER)
        assert Block.decode(block.encode()) == block
    assert c.head.height == 3


def test_stake_unstake_and_unbonding_release(c: Chain) -> None:
    c.extend([c.tx(ALICE, Stake(amount=100 * COIN))], MINER)
    assert c.state.stakes[ALICE.address] == 100 * COIN
    c.extend([c.tx(ALICE, Unstake(amount=40 * COIN))], MINER)
    release = c.head.height + GENESIS.params.unbonding_blocks
    assert c.state.unbonding[release][ALICE.address] == 40 * COIN
    balance = c.state.accounts[ALICE.address].balance
    while c.head.height < release - 1:
        c.extend([], MINER)
    assert c.state.accounts[ALICE.address].balance == balance
    c.extend([], MINER)
    assert c.state.accounts[ALICE.address].balance == balance + 40 * COIN
    assert not c.state.unbonding
    assert c.state.supply_invariant_holds()


def test_burn_reduces_supply(c: Chain) -> None:
    c.extend([c.tx(BOB, Burn(amount=7 * COIN))], MINER)
    assert c.state.supply.burned >= 7 * COIN
    assert c.state.supply_invariant_holds()


def transfer(c: Chain, **kw: object) -> chain.Transaction:
    return c.tx(ALICE, Transfer(to=BOB.address, amount=COIN), **kw)  # type: ignore[arg-type]


MakeTxs = Callable[[Chain], list[chain.Transaction]]
TX_RULES: list[tuple[str, MakeTxs]] = [
    ("tx-nonce-too-high", lambda c: [transfer(c, nonce=1)]),
    (
        "tx-nonce-too-low",
        lambda c: [transfer(c), c.tx(ALICE, Transfer(to=CAROL.address, amount=2))],
    ),
    ("tx-wrong-chain", lambda c: [transfer(c, chain_id=99)]),
    ("tx-fee-below-base", lambda c: [transfer(c, max_fee=0, tip=0)]),
    ("tx-tip-above-max-fee", lambda c: [transfer(c, max_fee=2, tip=3)]),
    ("tx-zero-amount", lambda c: [c.tx(ALICE, Transfer(to=BOB.address, amount=0))]),
    ("tx-insufficient-funds", lambda c: [c.tx(ALICE, Transfer(to=BOB.address, amount=10**12))]),
    ("tx-insufficient-stake", lambda c: [c.tx(ALICE, Unstake(amount=1))]),
    ("block-duplicate-tx", lambda c: [transfer(c)] * 2),
]


@pytest.mark.parametrize(("code", "make"), TX_RULES, ids=[r[0] for r in TX_RULES])
def test_transaction_rules(c: Chain, code: str, make: MakeTxs) -> None:
    txs = make(c)
    with pytest.raises(InvalidBlock) as info:
        c.build(txs, MINER)  # a producer cannot even assemble it
    assert info.value.code == code
    # and a block carrying it (with a forged state root) is rejected by the same rule
    good = c.build([], MINER)
    forged = resign(
        Block(header=good.header, txs=tuple(txs)),
        tx_root=merkle_root([t.encode() for t in txs]),
    )
    rejects(c, forged, code)


def test_bad_signature_is_caught_in_the_batch(c: Chain) -> None:
    tx = transfer(c)
    forged_tx = dataclasses.replace(tx, signature=tx.signature[:-1] + bytes([tx.signature[-1] ^ 1]))
    good = c.build([tx], MINER)
    block = resign(
        Block(header=good.header, txs=(forged_tx,)), tx_root=merkle_root([forged_tx.encode()])
    )
    rejects(c, block, "tx-bad-signature")


HEADER_RULES: list[tuple[str, dict[str, object]]] = [
    ("block-bad-version", {"version": 2}),
    ("block-wrong-chain", {"chain_id": 7}),
    ("block-unknown-parent", {"parent": bytes(32)}),
    ("block-bad-height", {"height": 5}),
    ("block-bad-base-fee", {"base_fee": 2}),
    ("block-bad-tx-root", {"tx_root": bytes(32)}),
    ("block-bad-state-root", {"state_root": bytes(32)}),
]


@pytest.mark.parametrize(("code", "fields"), HEADER_RULES, ids=[r[0] for r in HEADER_RULES])
def test_header_rules(c: Chain, code: str, fields: dict[str, object]) -> None:
    block = c.build([transfer(c)], MINER)
    c.process(block)  # the untouched block is valid
    rejects(c, resign(block, **fields), code)


def test_target_rule(c: Chain) -> None:
    block = c.build([], MINER)
    rejects(c, resign(block, target=block.header.target // 2), "block-bad-target")


def test_timestamp_rules(c: Chain) -> None:
    for _ in range(5):
        c.extend([], MINER)
    block = c.build([], MINER)
    median = sorted(h.timestamp_ms for h in c.headers[-11:])[len(c.headers[-11:]) // 2]
    too_old = resign(block, timestamp_ms=median)
    with pytest.raises(InvalidBlock) as info:
        c.process(too_old)
    assert info.value.code in ("block-time-too-old", "block-bad-target")
    # the time rule is checked before the target rule
    assert info.value.code == "block-time-too-old"
    rejects(c, block, "block-time-too-new", now_ms=block.header.timestamp_ms - 15_001)
    c.process(block, now_ms=block.header.timestamp_ms - 15_000)


def test_seal_and_signature_rules(c: Chain) -> None:
    block = c.build([], MINER)
    bad_seal = block.header.seal
    while chain.seal_hash(block.header, bad_seal) <= block.header.target:
        bad_seal = bytes([bad_seal[0] ^ 0xFF]) + bad_seal[1:] + b"x"
    rejects(c, resign(block, reseal=False, seal=bad_seal), "block-bad-seal")
    rejects(c, resign(block, key=ALICE, reseal=False), "block-bad-signature")
    rejects(c, resign(block, reseal=False, seal=b"\x00" * 33), "block-bad-seal")


def test_size_rules() -> None:
    small = Chain.start(make_genesis(KEYS[:3], max_block_txs=1, max_block_bytes=100_000))
    txs = [
        small.tx(ALICE, Transfer(to=BOB.address, amount=1)),
        small.tx(BOB, Transfer(to=ALICE.address, amount=1)),
    ]
    with pytest.raises(InvalidBlock) as info:
        small.process(Block(header=small.build([], MINER).header, txs=tuple(txs)))
    assert info.value.code == "block-too-many-txs"
    tiny = Chain.start(make_genesis(KEYS[:3], max_block_bytes=150))
    with pytest.raises(InvalidBlock) as info:
        tiny.process(Block(header=tiny.build([], MINER).header, txs=tuple(txs[:1] * 2)))
    assert info.value.code == "block-too-large"


def test_seal_verifier_is_pluggable(c: Chain) -> None:
    class RejectAll:
        def verify_seal(self, header: chain.Header) -> None:
            raise InvalidBlock("block-bad-seal", "no")

    block = c.build([], MINER)
    with pytest.raises(InvalidBlock):
        chain.process_block(c.state, block, GENESIS, c.context(), c.now_ms(), RejectAll())
    chain.process_block(c.state, block, GENESIS, c.context(), c.now_ms(), SEAL)


def test_light_client_account_proofs(c: Chain) -> None:
    c.extend([c.tx(ALICE, Transfer(to=BOB.address, amount=COIN))], MINER)
    root = c.head.state_root
    acct, proof = chain.prove_account(c.state, BOB.address)
    assert acct is not None and acct.balance == 1_001 * COIN
    assert chain.verify_account(root, BOB.address, acct, proof)
    richer = chain.Account(balance=acct.balance + 1, nonce=acct.nonce)
    assert not chain.verify_account(root, BOB.address, richer, proof)
    assert not chain.verify_account(root, ALICE.address, acct, proof)
    nobody = b"\x42" * 20
    none, absent = chain.prove_account(c.state, nobody)
    assert none is None
    assert chain.verify_account(root, nobody, None, absent)
    assert not chain.verify_account(root, nobody, chain.Account(balance=1, nonce=0), absent)
    old_root = c.headers[0].state_root  # the proof is for this root only
    assert not chain.verify_account(old_root, BOB.address, acct, proof)


def test_light_client_job_proofs(c: Chain) -> None:
    post = chain.MatMulPost(
        a=b"\x0a" * 32, b=b"\x0b" * 32, n=128, k=128, m=128, amount=9, deadline=50
    )
    tx = c.tx(ALICE, post)
    c.extend([tx], MINER)
    root, job_id = c.head.state_root, tx.tx_id()
    job, proof = chain.prove_job(c.state, job_id)
    assert job is not None and job.status == chain.JOB_PENDING and job.post == post
    assert chain.verify_job(root, job_id, job, proof)
    for changed in (
        dataclasses.replace(job, status=chain.JOB_SEALED),
        dataclasses.replace(job, product=b"\x01" * 32),
        dataclasses.replace(job, post=dataclasses.replace(post, amount=10)),
    ):
        assert not chain.verify_job(root, job_id, changed, proof)
    assert not chain.verify_job(root, job_id, None, proof)  # a node cannot hide the job
    other = b"\x42" * 32
    none, absent = chain.prove_job(c.state, other)
    assert none is None and chain.verify_job(root, other, None, absent)
    assert not chain.verify_job(root, other, job, absent)
