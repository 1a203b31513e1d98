"""`bcai demo`: a short, checked tour of what exists (hashing, Merkle proofs,
batch signatures, the canonical codec, exact int8 products and Freivalds'
check, and a small chain in a real store with a light-client proof). Each
step verifies its own result; any failure exits 1. Once the node lands,
`make demo` runs a local devnet instead."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

import bcai_native
from bcai import chain, codec, crypto, kernels
from bcai.store import ChainStore


@dataclass(frozen=True, slots=True)
class DemoTransfer(codec.Record):
    """A toy transfer, to show the codec (the real one lands with the chain)."""

    DOMAIN: ClassVar[bytes] = b"bcai/demo/transfer"
    to: bytes = codec.field(codec.FixedBytes(20))
    amount: int = codec.field(codec.U64)
    memo: str = codec.field(codec.Text(64))


def _step(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        out = fn()
        ok = bool(out.pop("ok"))
    except Exception as err:  # a demo step reports, never crashes the tour
        out, ok = {"error": f"{type(err).__name__}: {err}"}, False
    return {"step": name, "ok": ok, "ms": round(1000 * (time.perf_counter() - t0), 2), **out}


def _hashing() -> dict[str, Any]:
    data = b"hello, useful work"
    return {"ok": len(crypto.blake3(data)) == 32, "blake3": crypto.blake3(data).hex()}


def _merkle() -> dict[str, Any]:
    leaves = [i.to_bytes(32, "big") for i in range(100_000)]
    root = crypto.merkle_root(leaves)
    proof = crypto.merkle_proof(leaves, 4242)
    good = crypto.merkle_verify(root, leaves[4242], 4242, len(leaves), proof)
    forged = crypto.merkle_verify(root, b"\x01" * 32, 4242, len(leaves), proof)
    return {
        "ok": good and not forged,
        "leaves": len(leaves),
        "root": root.hex(),
        "proof_hashes": len(proof),
    }


def _signatures() -> dict[str, Any]:
    keys = [crypto.PrivateKey.generate() for _ in range(256)]
    items = [(k.public_key, b"tx %d" % i, k.sign(b"tx %d" % i)) for i, k in enumerate(keys)]
    items[77] = (items[77][0], b"tampered", items[77][2])
    flags = crypto.verify_batch(items)
    bad = [i for i, f in enumerate(flags) if not f]
    return {"ok": bad == [77], "signatures": len(items), "rejected": bad}


def _codec() -> dict[str, Any]:
    tx = DemoTransfer(to=bytes(20), amount=5 * 10**9, memo="coffee")
    blob = tx.encode()
    try:
        DemoTransfer.decode(blob + b"\x00")
        strict = False
    except codec.DecodeError as err:
        strict = err.code == "codec-trailing-bytes"
    return {
        "ok": DemoTransfer.decode(blob) == tx and strict,
        "bytes": len(blob),
        "id": tx.object_id().hex(),
    }


def _matmul() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    a = rng.integers(-63, 64, (256, 2048), dtype=np.int8)
    b = rng.integers(-63, 64, (2048, 256), dtype=np.int8)
    t0 = time.perf_counter()
    c = kernels.matmul_i8(a, b)
    seconds = time.perf_counter() - t0
    exact = bool((c == a.astype(np.int64) @ b.astype(np.int64)).all())
    accepted = bcai_native.freivalds_check(a, b, c, rounds=2, seed=b"demo")
    c[100, 100] += 1
    caught = not bcai_native.freivalds_check(a, b, c, rounds=2, seed=b"demo")
    return {
        "ok": exact and accepted and caught,
        "shape": "256x2048x256",
        "gops": round(2 * 256 * 2048 * 256 / seconds / 1e9, 1),
        "freivalds_accepts_true": accepted,
        "freivalds_catches_one_wrong_entry": caught,
    }


def _chain() -> dict[str, Any]:
    """A tiny chain: 5 sealed blocks of transfers into a real LMDB store, then
    a light-client proof of a balance against the head's state root."""
    keys = [crypto.PrivateKey(bytes([i + 1]) * 32) for i in range(4)]
    genesis = chain.Genesis(
        params=chain.devnet_params(),
        timestamp_ms=1_700_000_000_000,
        allocations=tuple(
            chain.Allocation(address=k.address, balance=100 * chain.COIN, stake=0) for k in keys[:3]
        ),
        extra=b"bcai demo",
    )
    with tempfile.TemporaryDirectory() as d, ChainStore(d, genesis) as store:
        headers, tx_bytes = [store.head], [0]
        for height in range(1, 6):
            sender, receiver = keys[height % 3], keys[(height + 1) % 3]
            body = chain.UnsignedTransaction(
                chain_id=genesis.params.chain_id,
                sender=sender.public_key,
                nonce=store.read_account(sender.address).nonce,
                max_fee=5,
                tip=1,
                payload=chain.Transfer(to=receiver.address, amount=height * chain.COIN),
            )
            ctx = chain.ParentContext(
                parent=headers[-1],
                parent_tx_bytes=tx_bytes[-1],
                recent_timestamps_ms=tuple(h.timestamp_ms for h in headers[-11:]),
                genesis=headers[0],
            )
            block = chain.assemble_block(
                store.state,
                genesis,
                ctx,
                [chain.sign_transaction(sender, body)],
                keys[3],
                headers[-1].timestamp_ms + genesis.params.target_spacing_ms,
            )
            store.import_block(block, block.header.timestamp_ms)
            headers.append(block.header)
            tx_bytes.append(sum(t.weight() for t in block.txs))
        store.verify_consistency()
        account, proof = chain.prove_account(store.state, keys[3].address)
        proven = chain.verify_account(store.head.state_root, keys[3].address, account, proof)
        return {
            "ok": store.head.height == 5 and proven and store.state.supply_invariant_holds(),
            "height": store.head.height,
            "producer_balance": account.balance if account else 0,
            "balance_proof_hashes": len(proof.siblings),
        }


def run_demo(as_json: bool) -> int:
    steps = [
        _step("BLAKE3", _hashing),
        _step("Merkle tree + inclusion proof", _merkle),
        _step("Ed25519 batch verify (ZIP-215)", _signatures),
        _step("canonical codec", _codec),
        _step("exact int8 matmul + Freivalds", _matmul),
        _step("chain: 5 blocks into LMDB + proof", _chain),
    ]
    ok = all(s["ok"] for s in steps)
    if as_json:
        print(json.dumps({"ok": ok, "steps": steps}, indent=2))
    else:
        print("bcai demo — what exists today, each step checked\n")
        for s in steps:
            mark = "ok  " if s["ok"] else "FAIL"
            extra = ", ".join(f"{k}={v}" for k, v in s.items() if k not in ("step", "ok", "ms"))
            print(f"  [{mark}] {s['step']:<34} {s['ms']:>8.1f} ms  {extra}")
        print("\nall checks passed" if ok else "\nsome checks FAILED")
    return 0 if ok else 1
