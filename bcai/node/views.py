"""Chain objects as JSON for the API (docs/api.md): bytes as lowercase hex,
amounts as integers in base units (1 BCAI = 10^9), 256-bit targets as hex
strings. The SDK reads these shapes back."""

from __future__ import annotations

from typing import Any

from bcai.chain import Block, Burn, Header, MatMulPost, Stake, Transaction, Transfer, Unstake

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
