"""Typed results of the API (docs/api.md): each keeps the JSON it came
from in `raw`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bcai.chain import Account, StateProof, verify_account


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
        p = d["proof"]
        terminal = p["terminal"]
        proof = StateProof(
            tuple(bytes.fromhex(s) for s in p["siblings"]),
            (bytes.fromhex(terminal[0]), bytes.fromhex(terminal[1])) if terminal else None,
        )
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
