"""ASERT difficulty (aserti3-2d, integer-only) anchored at genesis.

Spec: Bitcoin Cash "2020-NOV-15 ASERT Difficulty Adjustment Algorithm"
(aserti3-2d). The target of a block at height h with parent P is

    exponent = (P.time − anchor.time − spacing · (P.height − anchor.height)) · 2^16 / half_life
    target   = anchor.target · 2^(exponent / 2^16)

with 2^x for x in [0, 1) by the spec's cubic polynomial, all in integers, so
rounding never accumulates: the result depends only on the anchor and the
parent. Our anchor is genesis itself (time and height of genesis, its
target), which removes the spec's "+1" for the anchor's parent. Times are in
milliseconds.
"""

from __future__ import annotations

RADIX_BITS = 16


def asert_target(
    anchor_target: int,
    anchor_time_ms: int,
    anchor_height: int,
    parent_time_ms: int,
    parent_height: int,
    spacing_ms: int,
    half_life_ms: int,
    max_target: int,
) -> int:
    """The target of the block after `parent`, by aserti3-2d."""
    time_delta = parent_time_ms - anchor_time_ms
    height_delta = parent_height - anchor_height
    exponent = ((time_delta - spacing_ms * height_delta) << RADIX_BITS) // half_life_ms
    shifts = exponent >> RADIX_BITS  # floor, also for negatives
    frac = exponent - (shifts << RADIX_BITS)
    factor = 65536 + (
        (195766423245049 * frac + 971821376 * frac**2 + 5127 * frac**3 + (1 << 47)) >> 48
    )
    target = anchor_target * factor
    target = target << shifts if shifts >= 0 else target >> -shifts
    target >>= RADIX_BITS
    if target == 0:
        return 1
    return min(target, max_target)


def work_of(target: int) -> int:
    """Expected hashes to meet `target`: 2^256 // (target + 1)."""
    return (1 << 256) // (target + 1)
