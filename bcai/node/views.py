"""Chain objects as JSON for the API (docs/api.md): bytes as lowercase hex,
amounts as integers in base units (1 BCAI = 10^9), 256-bit targets as hex
strings. The SDK reads these shapes back."""

from __future__ import annotations

from typing import Any

from bcai.chain import (
    JOB_PENDING,
    JOB_REFUNDED,
    JOB_SEALED,
    Block,
    Burn,
    Header,
    Job,
    MatMulPost,
    Stake,
    Transaction,
    Transfer,
    Unstake,
)

PAYLOAD_KINDS: dict[type, str] = {
    Transfer: "transfer",
    Stake: "stake",
    Unstake: "unstake",
    Burn: "burn",
    MatMulPost: "matmul_post",
}


def header_view(header: Header) -> dict[str, Any]:
    return {
        "hash": header.block_hash().hex(),
        "height": header.height,
        "parent": header.parent.hex(),
        "timestamp_ms": header.timestamp_ms,
        "chain_id": header.chain_id,
        "version": header.version,
        "tx_root": header.tx_root.hex(),
        "state_root": header.state_root.hex(),
        "base_fee": header.base_fee,
        "target": hex(header.target),
        "producer": header.producer.hex(),
        "seal": header.seal.hex(),
        "signature": header.signature.hex(),
    }


JOB_STATUS = {JOB_PENDING: "pending", JOB_SEALED: "sealed", JOB_REFUNDED: "refunded"}


def post_view(job_id: bytes, poster: bytes, post: MatMulPost) -> dict[str, Any]:
    """A MatMul job's post: what was asked for and what it pays."""
    return {
        "id": job_id.hex(),
        "poster": poster.hex(),
        "a": post.a.hex(),
        "b": post.b.hex(),
        "n": post.n,
        "k": post.k,
        "m": post.m,
        "amount": post.amount,
        "deadline": post.deadline,
    }


def job_view(job_id: bytes, job: Job) -> dict[str, Any]:
    """A job's record in the state: its post, its status, and once sealed
    the sealing block's producer (`solver`) and C's content id (`product`)."""
    doc = post_view(job_id, job.poster, job.post)
    doc["status"] = JOB_STATUS[job.status]
    if job.status == JOB_SEALED:
        doc.update(solver=job.solver.hex(), product=job.product.hex())
    return doc


def tx_view(tx: Transaction) -> dict[str, Any]:
    body = tx.body
    payload: dict[str, Any] = {"kind": PAYLOAD_KINDS[type(body.payload)]}
    payload["amount"] = body.payload.amount
    if isinstance(body.payload, Transfer):
        payload["to"] = body.payload.to.hex()
    elif isinstance(body.payload, MatMulPost):
        post = body.payload
        payload.update(a=post.a.hex(), b=post.b.hex(), n=post.n, k=post.k, m=post.m)
        payload["deadline"] = post.deadline
    return {
        "id": tx.tx_id().hex(),
        "sender": tx.sender_address.hex(),
        "sender_key": body.sender.hex(),
        "nonce": body.nonce,
        "max_fee": body.max_fee,
        "tip": body.tip,
        "chain_id": body.chain_id,
        "payload": payload,
        "weight": tx.weight(),
        "signature": tx.signature.hex(),
        "raw": tx.encode().hex(),
    }


def block_view(block: Block, *, full_txs: bool) -> dict[str, Any]:
    out = header_view(block.header)
    out["tx_count"] = len(block.txs)
    out["txs"] = [tx_view(t) if full_txs else t.tx_id().hex() for t in block.txs]
    return out
