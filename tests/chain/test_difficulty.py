"""ASERT (aserti3-2d): on schedule the target stays; each half-life ahead of
schedule halves it, behind doubles it; integer-only and monotonic; clamped."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from bcai.chain import MAX_TARGET, asert_target, work_of

T0 = MAX_TARGET >> 20
SPACING, HALF = 1_000, 60_000


def target(time_ms: int, height: int) -> int:
    return asert_target(T0, 0, 0, time_ms, height, SPACING, HALF, MAX_TARGET >> 1)


def test_on_schedule_keeps_the_target() -> None:
    for h in (0, 1, 100, 10_000):
        assert target(h * SPACING, h) == T0


def test_half_lives_halve_and_double_exactly() -> None:
    assert target(100 * SPACING - HALF, 100) == T0 // 2  # a half-life ahead: harder
    assert target(100 * SPACING + HALF, 100) == T0 * 2  # a half-life behind: easier
    assert target(100 * SPACING - 3 * HALF, 100) == T0 // 8


@given(st.integers(-15 * HALF, 15 * HALF))
def test_matches_the_exponential_within_the_cubic_error(offset_ms: int) -> None:
    got = target(50 * SPACING + offset_ms, 50)
    want = T0 * 2 ** (offset_ms / HALF)
    assert math.isclose(got, want, rel_tol=2e-4)


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(0, 10**5))
def test_monotonic_in_time(t1: int, t2: int, h: int) -> None:
    lo, hi = sorted((t1, t2))
    assert target(lo, h) <= target(hi, h)


def test_clamped_to_max_and_at_least_one() -> None:
    assert target(10**12, 1) == MAX_TARGET >> 1
    assert target(0, 10**7) == 1


def test_work_grows_as_target_falls() -> None:
    assert work_of(MAX_TARGET) == 1
    assert work_of(T0 // 2) > work_of(T0) * 1.99
