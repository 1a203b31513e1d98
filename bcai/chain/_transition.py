"""The state transition: genesis, transactions, blocks.

`process_block` reads as the list of its steps; each step raises
InvalidBlock (or InvalidTransaction, wrapped with the transaction's index)
with a stable reason code. Pure: the caller passes the parent context and
the current time; nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import bcai_native
from bcai.chain._difficulty import asert_target
from bcai.chain._errors import InvalidBlock, InvalidTransaction
from bcai.chain._fees import effective_tip, next_base_fee
from bcai.chain._params import Genesis
from bcai.chain._seal import SealVerifier, sealed_job
from bcai.chain._state import (
    JOB_PENDING,
    JOB_REFUNDED,
    JOB_SEALED,
    SUPPLY_KEY,
    U64_MAX,
    Account,
    Job,
    Overlay,
    State,
    Supply,
    Undo,
)
from bcai.chain._types import (
    Block,
    Burn,
    Header,
    MatMulPost,
    Stake,
    Transaction,
    Transfer,
    Unstake,
)
from bcai.crypto import address, merkle_root, verify, verify_batch

BLOCK_VERSION = 1
MEDIAN_TIME_SPAN = 11
ZERO_KEY = bytes(32)
ZERO_SIG = bytes(64)
# MatMul jobs: sides a multiple of 128 (the largest PoUW tile, so every tile
# divides them), at most 65,536 (n, m), and k small enough that no int32
# partial sum of A'·B' overflows (130,944: the largest multiple of 128 within
# the kernels' 131,071).
JOB_SIDE_MULTIPLE = 128
JOB_MAX_SIDE = 65_536
JOB_MAX_K = (2**31 - 1) // (128 * 128) // JOB_SIDE_MULTIPLE * JOB_SIDE_MULTIPLE
JOB_MAX_BLOB = 1 << 30  # A, B (int8) and C (int32) must each fit a blob


# ---------------------------------------------------------------- genesis


def genesis_state(genesis: Genesis, tree: bcai_native.SparseMerkleTree | None = None) -> State:
    state = State(tree=tree or bcai_native.SparseMerkleTree())
    overlay = Overlay(state)
    total = 0
    seen: set[bytes] = set()
    for alloc in genesis.allocations:
        if alloc.address in seen:
            raise InvalidBlock("genesis-duplicate-allocation", alloc.address.hex())
        seen.add(alloc.address)
        overlay.write(("account", alloc.address, 0), Account(balance=alloc.balance, nonce=0))
        overlay.write(("stake", alloc.address, 0), alloc.stake)
        total += alloc.balance + alloc.stake
    overlay.write(SUPPLY_KEY, Supply(genesis=total, minted=0, burned=0))
    overlay.commit(overlay.compute_root())
    return state


def genesis_header(genesis: Genesis, state_root: bytes) -> Header:
    p = genesis.params
    return Header(
        version=BLOCK_VERSION,
        chain_id=p.chain_id,
        height=0,
        parent=genesis.object_id(),
        timestamp_ms=genesis.timestamp_ms,
        tx_root=merkle_root([]),
        state_root=state_root,
        base_fee=p.initial_base_fee,
        target=p.genesis_target,
        producer=ZERO_KEY,
        seal=b"",
        signature=ZERO_SIG,
    )


# ---------------------------------------------------------------- transactions


def check_transaction_static(tx: Transaction, chain_id: int) -> None:
    """Rules that need no state: chain id, non-zero amounts."""
    body = tx.body
    if body.chain_id != chain_id:
        raise InvalidTransaction("tx-wrong-chain", f"chain id {body.chain_id}, expected {chain_id}")
    if body.payload.amount == 0:
        raise InvalidTransaction("tx-zero-amount", "amount must be positive")
    if body.tip > body.max_fee:
        raise InvalidTransaction("tx-tip-above-max-fee", f"tip {body.tip} > max fee {body.max_fee}")
    if isinstance(body.payload, MatMulPost):
        check_job_shape(body.payload)


def check_job_shape(post: MatMulPost) -> None:
    sides = (post.n, post.k, post.m)
    if any(s == 0 or s % JOB_SIDE_MULTIPLE for s in sides) or max(post.n, post.m) > JOB_MAX_SIDE:
        raise InvalidTransaction(
            "tx-job-shape",
            f"{post.n}×{post.k}·{post.k}×{post.m}: sides must be multiples of "
            f"{JOB_SIDE_MULTIPLE}, n and m at most {JOB_MAX_SIDE}",
        )
    if post.k > JOB_MAX_K:
        raise InvalidTransaction(
            "tx-job-overflow", f"k={post.k} > {JOB_MAX_K}: int32 sums could overflow"
        )
    if max(post.n * post.k, post.k * post.m, 4 * post.n * post.m) > JOB_MAX_BLOB:
        raise InvalidTransaction(
            "tx-job-shape", f"a matrix of this job would pass the {JOB_MAX_BLOB}-byte blob limit"
        )


def check_transaction_signature(tx: Transaction) -> None:
    if not verify(tx.body.sender, tx.signing_message(), tx.signature):
        raise InvalidTransaction("tx-bad-signature", "the signature does not verify")


def credit(overlay: Overlay, addr: bytes, amount: int) -> None:
    acct = overlay.account(addr)
    if acct.balance + amount > U64_MAX:
        raise InvalidTransaction("tx-balance-overflow", f"balance of {addr.hex()} would overflow")
    overlay.write(("account", addr, 0), Account(balance=acct.balance + amount, nonce=acct.nonce))


def add_burned(overlay: Overlay, amount: int) -> None:
    s = overlay.supply()
    overlay.write(SUPPLY_KEY, Supply(genesis=s.genesis, minted=s.minted, burned=s.burned + amount))


def apply_transaction(
    overlay: Overlay,
    tx: Transaction,
    *,
    chain_id: int,
    base_fee: int,
    height: int,
    unbonding_blocks: int,
    producer: bytes,
) -> int:
    """Applies one (signature-checked) transaction; returns the fee it paid."""
    check_transaction_static(tx, chain_id)
    body = tx.body
    sender = address(body.sender)
    acct = overlay.account(sender)
    if body.nonce < acct.nonce:
        raise InvalidTransaction("tx-nonce-too-low", f"nonce {body.nonce} < {acct.nonce}")
    if body.nonce > acct.nonce:
        raise InvalidTransaction("tx-nonce-too-high", f"nonce {body.nonce} > {acct.nonce}")
    if body.max_fee < base_fee:
        raise InvalidTransaction(
            "tx-fee-below-base", f"max fee {body.max_fee} < base fee {base_fee}"
        )
    weight = tx.weight()
    tip = effective_tip(body.max_fee, body.tip, base_fee)
    fee = weight * (base_fee + tip)
    payload = body.payload
    spend = fee if isinstance(payload, Unstake) else fee + payload.amount
    if acct.balance < spend:
        raise InvalidTransaction(
            "tx-insufficient-funds", f"balance {acct.balance} < {spend} (amount + fee)"
        )
    if isinstance(payload, Unstake) and overlay.stake(sender) < payload.amount:
        raise InvalidTransaction(
            "tx-insufficient-stake", f"stake {overlay.stake(sender)} < {payload.amount}"
        )
    paid = Account(balance=acct.balance - spend, nonce=acct.nonce + 1)
    overlay.write(("account", sender, 0), paid)
    add_burned(overlay, weight * base_fee)
    if tip:
        credit(overlay, producer, weight * tip)
    if isinstance(payload, Transfer):
        credit(overlay, payload.to, payload.amount)
    elif isinstance(payload, Stake):
        overlay.write(("stake", sender, 0), overlay.stake(sender) + payload.amount)
    elif isinstance(payload, Unstake):
        overlay.write(("stake", sender, 0), overlay.stake(sender) - payload.amount)
        release = height + unbonding_blocks
        queued = overlay.read(("unbond", sender, release))
        overlay.write(("unbond", sender, release), (queued or 0) + payload.amount)  # type: ignore[operator]
    elif isinstance(payload, Burn):
        add_burned(overlay, payload.amount)
    elif isinstance(payload, MatMulPost):
        if payload.deadline <= height:
            raise InvalidTransaction(
                "tx-job-deadline", f"deadline {payload.deadline} is not after height {height}"
            )
        job = Job(
            poster=sender, post=payload, status=JOB_PENDING, solver=bytes(20), product=bytes(32)
        )
        overlay.write(("job", tx.tx_id(), 0), job)
    return fee


def refund_expired_jobs(overlay: Overlay, height: int) -> None:
    """Pending jobs whose deadline passed return their escrow to the poster."""
    for job_id in overlay.expired_jobs(height):
        job = overlay.job(job_id)
        assert job is not None
        credit(overlay, job.poster, job.amount)
        overlay.write(("job", job_id, 0), replace_job(job, status=JOB_REFUNDED))


def claim_job(overlay: Overlay, header: Header, sealed: tuple[bytes, bytes] | None) -> Job | None:
    """The pending job a block's seal names, read before the block's own
    transactions (a job must be posted in an earlier block) and after this
    height's refunds; ``block-job-not-pending`` otherwise."""
    if sealed is None:
        return None
    job = overlay.job(sealed[0])
    if job is None or job.status != JOB_PENDING or job.deadline < header.height:
        raise InvalidBlock("block-job-not-pending", f"job {sealed[0].hex()} is not pending")
    return job


def pay_job(
    overlay: Overlay, header: Header, sealed: tuple[bytes, bytes] | None, job: Job | None
) -> None:
    """The sealed job's escrow goes to the producer; the job records C's id."""
    if sealed is None or job is None:
        return
    job_id, product = sealed
    producer = address(header.producer)
    try:
        credit(overlay, producer, job.amount)
    except InvalidTransaction as err:
        raise InvalidBlock(err.code, err.message) from err
    overlay.write(
        ("job", job_id, 0), replace_job(job, status=JOB_SEALED, solver=producer, product=product)
    )


def verify_job_seal(seal: SealVerifier, header: Header, job: Job | None) -> None:
    """The seal checks that need the job's record (its matrices and the
    posted product), when the verifier has them (`verify_job`)."""
    method = getattr(seal, "verify_job", None)
    if job is not None and method is not None:
        method(header, job)


def replace_job(job: Job, **changes: Any) -> Job:
    return dataclasses.replace(job, **changes)


# ---------------------------------------------------------------- blocks


@dataclass(frozen=True, slots=True)
class ParentContext:
    """What validating a block needs to know about its ancestors."""

    parent: Header
    parent_tx_bytes: int
    recent_timestamps_ms: tuple[int, ...]  # up to 11, ending with the parent's
    genesis: Header


@dataclass
class BlockResult:
    overlay: Overlay
    state_root: bytes
    fees: int
    tx_bytes: int

    def commit(self) -> Undo:
        return self.overlay.commit(self.state_root)


def expected_target(genesis: Genesis, ctx: ParentContext) -> int:
    p = genesis.params
    return asert_target(
        anchor_target=ctx.genesis.target,
        anchor_time_ms=ctx.genesis.timestamp_ms,
        anchor_height=ctx.genesis.height,
        parent_time_ms=ctx.parent.timestamp_ms,
        parent_height=ctx.parent.height,
        spacing_ms=p.target_spacing_ms,
        half_life_ms=p.asert_half_life_ms,
        max_target=p.max_target,
    )


def tx_bytes(block: Block) -> int:
    return sum(tx.weight() for tx in block.txs)


def check_size(block: Block, genesis: Genesis) -> int:
    p = genesis.params
    if len(block.txs) > p.max_block_txs:
        raise InvalidBlock("block-too-many-txs", f"{len(block.txs)} > {p.max_block_txs}")
    size = tx_bytes(block)
    if size > p.max_block_bytes:
        raise InvalidBlock("block-too-large", f"{size} transaction bytes > {p.max_block_bytes}")
    return size


def check_links(header: Header, genesis: Genesis, ctx: ParentContext) -> None:
    if header.version != BLOCK_VERSION:
        raise InvalidBlock("block-bad-version", f"version {header.version}")
    if header.chain_id != genesis.params.chain_id:
        raise InvalidBlock("block-wrong-chain", f"chain id {header.chain_id}")
    if header.parent != ctx.parent.block_hash():
        raise InvalidBlock("block-unknown-parent", "parent hash does not match the parent given")
    if header.height != ctx.parent.height + 1:
        raise InvalidBlock("block-bad-height", f"height {header.height} after {ctx.parent.height}")


def median_time_past(timestamps_ms: tuple[int, ...]) -> int:
    """Bitcoin's median time past: sorted(last 11)[count // 2] (the upper
    median while fewer than 11 ancestors exist)."""
    recent = sorted(timestamps_ms[-MEDIAN_TIME_SPAN:])
    return recent[len(recent) // 2]


def check_timestamp(header: Header, genesis: Genesis, ctx: ParentContext, now_ms: int) -> None:
    median = median_time_past(ctx.recent_timestamps_ms)
    if header.timestamp_ms <= median:
        raise InvalidBlock("block-time-too-old", f"{header.timestamp_ms} <= median {median}")
    if header.timestamp_ms > now_ms + genesis.params.max_future_ms:
        raise InvalidBlock("block-time-too-new", f"{header.timestamp_ms - now_ms} ms in the future")


def check_target(header: Header, genesis: Genesis, ctx: ParentContext) -> None:
    want = expected_target(genesis, ctx)
    if header.target != want:
        raise InvalidBlock("block-bad-target", f"target {header.target:#x}, expected {want:#x}")


def check_base_fee(header: Header, genesis: Genesis, ctx: ParentContext) -> None:
    want = next_base_fee(genesis.params, ctx.parent.base_fee, ctx.parent_tx_bytes)
    if header.base_fee != want:
        raise InvalidBlock("block-bad-base-fee", f"base fee {header.base_fee}, expected {want}")


def check_producer_signature(header: Header) -> None:
    if not verify(header.producer, header.signing_message(), header.signature):
        raise InvalidBlock("block-bad-signature", "the producer's signature does not verify")


def check_tx_root(block: Block) -> None:
    if block.header.tx_root != merkle_root([tx.encode() for tx in block.txs]):
        raise InvalidBlock("block-bad-tx-root", "tx root does not match the transactions")


def check_tx_signatures(block: Block) -> None:
    """Every signature of the block in one batch."""
    flags = verify_batch([(tx.body.sender, tx.signing_message(), tx.signature) for tx in block.txs])
    for i, ok in enumerate(flags):
        if not ok:
            raise InvalidBlock("tx-bad-signature", f"transaction {i}: bad signature")


def check_no_duplicates(block: Block) -> None:
    seen: set[bytes] = set()
    for i, tx in enumerate(block.txs):
        tid = tx.tx_id()
        if tid in seen:
            raise InvalidBlock("block-duplicate-tx", f"transaction {i} appears twice")
        seen.add(tid)


def release_unbonding(overlay: Overlay, height: int) -> None:
    for addr, amount in sorted(overlay.unbonding_at(height).items()):
        overlay.write(("unbond", addr, height), None)
        acct = overlay.account(addr)
        released = Account(balance=acct.balance + amount, nonce=acct.nonce)
        overlay.write(("account", addr, 0), released)


def apply_transactions(overlay: Overlay, block: Block, genesis: Genesis) -> int:
    header, fees = block.header, 0
    for i, tx in enumerate(block.txs):
        try:
            fees += apply_transaction(
                overlay,
                tx,
                chain_id=genesis.params.chain_id,
                base_fee=header.base_fee,
                height=header.height,
                unbonding_blocks=genesis.params.unbonding_blocks,
                producer=address(header.producer),
            )
        except InvalidTransaction as err:
            raise InvalidBlock(err.code, f"transaction {i}: {err.message}") from err
    return fees


def mint_reward(overlay: Overlay, producer: bytes, genesis: Genesis) -> None:
    reward = genesis.params.block_reward
    acct = overlay.account(address(producer))
    overlay.write(
        ("account", address(producer), 0), Account(balance=acct.balance + reward, nonce=acct.nonce)
    )
    s = overlay.supply()
    overlay.write(SUPPLY_KEY, Supply(genesis=s.genesis, minted=s.minted + reward, burned=s.burned))


def check_state_root(header: Header, root: bytes) -> None:
    if header.state_root != root:
        raise InvalidBlock("block-bad-state-root", "state root does not match the transactions")


def check_header(header: Header, genesis: Genesis, ctx: ParentContext, seal: SealVerifier) -> None:
    """The rules a header alone can be checked against (headers-first sync):
    its links, its ASERT target, its seal and its producer's signature."""
    check_links(header, genesis, ctx)
    median = median_time_past(ctx.recent_timestamps_ms)
    if header.timestamp_ms <= median:
        raise InvalidBlock("block-time-too-old", f"{header.timestamp_ms} <= median {median}")
    check_target(header, genesis, ctx)
    seal.verify_seal(header)
    check_producer_signature(header)


def check_block_without_state(
    block: Block, genesis: Genesis, ctx: ParentContext, now_ms: int, seal: SealVerifier
) -> int:
    """Every rule that needs no state (a side-chain block is checked with
    these before it is stored); returns the block's transaction bytes."""
    header = block.header
    size = check_size(block, genesis)
    check_links(header, genesis, ctx)
    check_timestamp(header, genesis, ctx, now_ms)
    check_target(header, genesis, ctx)
    check_base_fee(header, genesis, ctx)
    check_producer_signature(header)  # the cheap check before the seal's work
    seal.verify_seal(header)
    check_tx_root(block)
    check_no_duplicates(block)
    check_tx_signatures(block)
    return size


def process_block(
    state: State,
    block: Block,
    genesis: Genesis,
    ctx: ParentContext,
    now_ms: int,
    seal: SealVerifier,
) -> BlockResult:
    """Validates `block` on top of `state`; the state is untouched until the
    caller commits the result."""
    header = block.header
    size = check_block_without_state(block, genesis, ctx, now_ms, seal)
    overlay = Overlay(state)
    release_unbonding(overlay, header.height)
    refund_expired_jobs(overlay, header.height)
    sealed = sealed_job(seal, header)
    job = claim_job(overlay, header, sealed)
    fees = apply_transactions(overlay, block, genesis)
    verify_job_seal(seal, header, job)
    pay_job(overlay, header, sealed, job)
    mint_reward(overlay, header.producer, genesis)
    root = overlay.compute_root()
    check_state_root(header, root)
    return BlockResult(overlay=overlay, state_root=root, fees=fees, tx_bytes=size)
