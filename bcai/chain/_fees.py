"""The base fee, EIP-1559 style: it rises when blocks are more than half
full (by bytes) and falls when less, by at most 1/8 per block, never below
`min_base_fee`. It is burned; the tip goes to the producer."""

from __future__ import annotations

from bcai.chain._params import ChainParams

CHANGE_DENOMINATOR = 8


def next_base_fee(params: ChainParams, parent_base_fee: int, parent_tx_bytes: int) -> int:
    target = params.max_block_bytes // 2
    delta = parent_base_fee * (parent_tx_bytes - target) // target // CHANGE_DENOMINATOR
    if parent_tx_bytes > target:
        delta = max(delta, 1)
    return max(params.min_base_fee, parent_base_fee + delta)


def effective_tip(max_fee: int, tip: int, base_fee: int) -> int:
    """The tip per byte actually paid (max_fee must cover the base fee)."""
    return min(tip, max_fee - base_fee)
