"""Typed results of the API (docs/api.md): each keeps the JSON it came
from in `raw`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bcai.chain import (
    JOB_PENDING,
    JOB_REFUNDED,
    JOB_SEALED,
    Account,
    Job,
    MatMulPost,
    StateProof,
    verify_account,
    verify_job,
)


@dataclass(frozen=True)
class Head:
    height: int
    hash: str
    parent: str
    timestamp_ms: int
    base_fee: int
    next_base_fee: int
    state_root: str
    producer: str
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Head:
        return cls(
            d["height"],
            d["hash"],
            d["parent"],
            d["timestamp_ms"],
            d["base_fee"],
            d.get("next_base_fee", d["base_fee"]),
            d["state_root"],
            d["producer"],
            d,
        )


@dataclass(frozen=True)
class BlockInfo:
    height: int
    hash: str
    parent: str
    timestamp_ms: int
    tx_count: int
    txs: list[Any]  # ids, or transaction objects with ?txs=full
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> BlockInfo:
        return cls(
            d["height"], d["hash"], d["parent"], d["timestamp_ms"], d["tx_count"], d["txs"], d
        )


@dataclass(frozen=True)
class TxStatus:
    status: str  # pending | included
    id: str
    block: str | None
    height: int | None
    confirmations: int
    tx: dict[str, Any]
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TxStatus:
        return cls(
            d["status"],
            d["tx"]["id"],
            d.get("block"),
            d.get("height"),
            d.get("confirmations", 0),
            d["tx"],
            d,
        )


def _proof(p: dict[str, Any]) -> StateProof:
    terminal = p["terminal"]
    return StateProof(
        tuple(bytes.fromhex(s) for s in p["siblings"]),
        (bytes.fromhex(terminal[0]), bytes.fromhex(terminal[1])) if terminal else None,
    )


JOB_STATUS_CODES = {"pending": JOB_PENDING, "sealed": JOB_SEALED, "refunded": JOB_REFUNDED}


@dataclass(frozen=True)
class JobInfo:
    """A MatMul job (`GET /v1/jobs/{id}`): "unconfirmed" (its post still in
    the node's mempool), "pending" (escrow held, waiting for a seal),
    "sealed" (paid to `solver`; `product` is C's content id) or "refunded"
    (the deadline passed). Ids and hashes are hex; `height`, `state_root`
    and `proof` are None while unconfirmed."""

    id: str
    status: str
    poster: str
    a: str
    b: str
    n: int
    k: int
    m: int
    amount: int
    deadline: int
    solver: str | None
    product: str | None
    height: int | None
    state_root: str | None
    proof: StateProof | None
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> JobInfo:
        return cls(
            d["id"],
            d["status"],
            d["poster"],
            d["a"],
            d["b"],
            d["n"],
            d["k"],
            d["m"],
            d["amount"],
            d["deadline"],
            d.get("solver"),
            d.get("product"),
            d.get("height"),
            d.get("state_root"),
            _proof(d["proof"]) if "proof" in d else None,
            d,
        )

    @property
    def done(self) -> bool:
        """Sealed or refunded: its status no longer changes (short of a reorg)."""
        return self.status in ("sealed", "refunded")

    def verify(self) -> bool:
        """Whether the proof binds this record — post, status, solver and
        product id — to `state_root` (a light client checks the root
        against a header it trusts: `height` and the block hash are the
        node's word until then). False while unconfirmed, or for a
        malformed answer."""
        if self.proof is None or self.state_root is None or self.status not in JOB_STATUS_CODES:
            return False
        try:
            return self._verify(self.proof, self.state_root)
        except (ValueError, TypeError, OverflowError):  # a malformed answer proves nothing
            return False

    def _verify(self, proof: StateProof, state_root: str) -> bool:
        post = MatMulPost(
            a=bytes.fromhex(self.a),
            b=bytes.fromhex(self.b),
            n=self.n,
            k=self.k,
            m=self.m,
            amount=self.amount,
            deadline=self.deadline,
        )
        job = Job(
            poster=bytes.fromhex(self.poster),
            post=post,
            status=JOB_STATUS_CODES[self.status],
            solver=bytes.fromhex(self.solver) if self.solver else bytes(20),
            product=bytes.fromhex(self.product) if self.product else bytes(32),
        )
        return verify_job(bytes.fromhex(state_root), bytes.fromhex(self.id), job, proof)


@dataclass(frozen=True)
class AccountInfo:
    address: str
    balance: int
    nonce: int
    next_nonce: int  # after this sender's pending transactions in the node's mempool
    stake: int
    height: int
    state_root: str
    proof: StateProof
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> AccountInfo:
        proof = _proof(d["proof"])
        return cls(
            d["address"],
            d["balance"],
            d["nonce"],
            d.get("next_nonce", d["nonce"]),
            d["stake"],
            d["height"],
            d["state_root"],
            proof,
            d,
        )

    def verify(self) -> bool:
        """Whether the proof binds this balance and nonce to `state_root`
        (a light client checks the root against a header it trusts)."""
        return verify_account(
            bytes.fromhex(self.state_root),
            bytes.fromhex(self.address),
            Account(balance=self.balance, nonce=self.nonce),
            self.proof,
        )


@dataclass(frozen=True)
class Submitted:
    id: str
    status: str


@dataclass(frozen=True)
class MempoolInfo:
    count: int
    bytes: int
    txs: list[dict[str, Any]]


@dataclass(frozen=True)
class PeerInfo:
    peer: str
    address: str | None
    inbound: bool
    ping_ms: float | None


@dataclass(frozen=True)
class NodeInfo:
    version: str
    chain_id: int
    genesis: str
    peer_id: str
    p2p_port: int
    head_height: int
    head_hash: str
    peers: int
    mempool_count: int
    mining: dict[str, Any]
    raw: dict[str, Any]

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> NodeInfo:
        return cls(
            d["version"],
            d["chain_id"],
            d["genesis"],
            d["peer_id"],
            d["p2p_port"],
            d["head"]["height"],
            d["head"]["hash"],
            d["peers"],
            d["mempool"]["count"],
            d["mining"],
            d,
        )
