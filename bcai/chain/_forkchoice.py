"""Fork choice: the chain with the most cumulative work wins; equal work is
broken by the lower tip hash; a finalized checkpoint is never reverted (the
finality rules arrive with staking votes)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Tip:
    block_hash: bytes
    height: int
    cumulative_work: int


def is_better(candidate: Tip, current: Tip) -> bool:
    """Whether `candidate` should replace `current` as the head."""
    if candidate.cumulative_work != current.cumulative_work:
        return candidate.cumulative_work > current.cumulative_work
    return candidate.block_hash < current.block_hash


def best_tip(tips: list[Tip]) -> Tip:
    best = tips[0]
    for t in tips[1:]:
        if is_better(t, best):
            best = t
    return best
