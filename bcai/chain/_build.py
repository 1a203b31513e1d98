"""Assembling a valid block on top of a state: what a producer does, and what
tests use to make valid chains quickly. Pure (signing is deterministic)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from bcai.chain._fees import next_base_fee
from bcai.chain._params import Genesis
from bcai.chain._seal import HashSeal
from bcai.chain._state import Overlay, State
from bcai.chain._transition import (
    BLOCK_VERSION,
    ZERO_SIG,
    ParentContext,
    apply_transactions,
    check_no_duplicates,
    claim_job,
    expected_target,
    mint_reward,
    pay_job,
    refund_expired_jobs,
    release_unbonding,
)
from bcai.chain._types import Block, Header, Transaction, UnsignedTransaction
from bcai.crypto import PrivateKey, merkle_root


def assemble_block(
    state: State,
    genesis: Genesis,
    ctx: ParentContext,
    txs: Sequence[Transaction],
    producer: PrivateKey,
    timestamp_ms: int,
    sealer: Callable[[Header], bytes] = HashSeal.mine,
    job: tuple[bytes, bytes] | None = None,
) -> Block:
    """A block with every header field computed and its seal mined by
    `sealer` (a hash seal unless given; PoUW: `bcai.mining.sealer`). `job`:
    (job id, product id) of the MatMul job the seal computes.

    Raises InvalidBlock if a transaction does not apply (nothing is changed).
    """
    draft = block_template(state, genesis, ctx, txs, producer.public_key, timestamp_ms, job)
    return finish_block(draft, sealer(draft.header), producer)


def block_template(
    state: State,
    genesis: Genesis,
    ctx: ParentContext,
    txs: Sequence[Transaction],
    producer: bytes,
    timestamp_ms: int,
    job: tuple[bytes, bytes] | None = None,
) -> Block:
    """A block with every header field but the seal and signature computed
    (what a miner seals; `finish_block` completes it). `job`: (job id,
    product id) of the MatMul job the seal will compute (paid its escrow).

    Raises InvalidBlock if a transaction does not apply (nothing is changed).
    """
    header = Header(
        version=BLOCK_VERSION,
        chain_id=genesis.params.chain_id,
        height=ctx.parent.height + 1,
        parent=ctx.parent.block_hash(),
        timestamp_ms=timestamp_ms,
        tx_root=merkle_root([tx.encode() for tx in txs]),
        state_root=bytes(32),
        base_fee=next_base_fee(genesis.params, ctx.parent.base_fee, ctx.parent_tx_bytes),
        target=expected_target(genesis, ctx),
        producer=producer,
        seal=b"",
        signature=ZERO_SIG,
    )
    draft = Block(header=header, txs=tuple(txs))
    check_no_duplicates(draft)
    overlay = Overlay(state)
    release_unbonding(overlay, header.height)
    refund_expired_jobs(overlay, header.height)
    claimed = claim_job(overlay, header, job)
    apply_transactions(overlay, draft, genesis)
    pay_job(overlay, header, job, claimed)
    mint_reward(overlay, header.producer, genesis)
    header = dataclasses.replace(header, state_root=overlay.compute_root())
    return Block(header=header, txs=draft.txs)


def finish_block(template: Block, seal: bytes, producer: PrivateKey) -> Block:
    """The template with its seal and the producer's signature."""
    header = dataclasses.replace(template.header, seal=seal)
    header = dataclasses.replace(header, signature=producer.sign(header.signing_message()))
    return Block(header=header, txs=template.txs)


def sign_transaction(key: PrivateKey, body: UnsignedTransaction) -> Transaction:
    """Signs a transaction body with `key` (its public key must be the sender)."""
    return Transaction(body=body, signature=key.sign(body.object_id()))
