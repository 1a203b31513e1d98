"""Chain parameters and the genesis configuration (consensus objects)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bcai import codec

MAX_TARGET = 2**256 - 1
COIN = 10**9  # base units per BCAI


@dataclass(frozen=True, slots=True)
class ChainParams(codec.Record):
    """Everything a node must agree on besides the rules in code."""

    DOMAIN: ClassVar[bytes] = b"bcai/params"
    chain_id: int = codec.field(codec.U32)
    target_spacing_ms: int = codec.field(codec.U64)
    asert_half_life_ms: int = codec.field(codec.U64)
    genesis_target: int = codec.field(codec.UInt(256))
    max_target: int = codec.field(codec.UInt(256))
    block_reward: int = codec.field(codec.U64)
    max_block_bytes: int = codec.field(codec.U32)
    max_block_txs: int = codec.field(codec.U32)
    unbonding_blocks: int = codec.field(codec.U32)
    initial_base_fee: int = codec.field(codec.U64)
    min_base_fee: int = codec.field(codec.U64)
    max_future_ms: int = codec.field(codec.U64)


@dataclass(frozen=True, slots=True)
class Allocation(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/alloc"
    address: bytes = codec.field(codec.FixedBytes(20))
    balance: int = codec.field(codec.U64)
    stake: int = codec.field(codec.U64)


@dataclass(frozen=True, slots=True)
class Genesis(codec.Record):
    """The genesis configuration; its object id names the chain."""

    DOMAIN: ClassVar[bytes] = b"bcai/genesis"
    params: ChainParams = codec.field(codec.RecordCodec(ChainParams))
    timestamp_ms: int = codec.field(codec.U64)
    allocations: tuple[Allocation, ...] = codec.field(
        codec.ListOf(codec.RecordCodec(Allocation), 100_000)
    )
    extra: bytes = codec.field(codec.Bytes(256))


def devnet_params(chain_id: int = 1337, **overrides: int) -> ChainParams:
    """Parameters for local networks: 1 s blocks, an easy target."""
    values = {
        "chain_id": chain_id,
        "target_spacing_ms": 1_000,
        "asert_half_life_ms": 60_000,
        "genesis_target": MAX_TARGET >> 8,
        "max_target": MAX_TARGET >> 1,
        "block_reward": 50 * COIN,
        "max_block_bytes": 2_000_000,
        "max_block_txs": 20_000,
        "unbonding_blocks": 10,
        "initial_base_fee": 1,
        "min_base_fee": 1,
        "max_future_ms": 15_000,
    }
    values.update(overrides)
    return ChainParams(**values)
