"""Fork choice (most work, then lower hash) and the base fee rule."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bcai.chain import Tip, best_tip, devnet_params, is_better, next_base_fee

P = devnet_params()
HALF = P.max_block_bytes // 2


def test_more_work_wins_then_lower_hash() -> None:
    a = Tip(b"\x02" * 32, 10, 500)
    b = Tip(b"\x01" * 32, 9, 501)
    c = Tip(b"\x01" * 32, 10, 500)
    assert is_better(b, a) and not is_better(a, b)
    assert is_better(c, a) and not is_better(a, c)
    assert not is_better(a, a)
    assert best_tip([a, c, b]) == b


@given(st.lists(st.tuples(st.binary(min_size=32, max_size=32), st.integers(0, 100)), min_size=1))
def test_best_tip_is_order_independent(tips: list[tuple[bytes, int]]) -> None:
    ts = [Tip(h, 0, w) for h, w in tips]
    assert best_tip(ts) == best_tip(ts[::-1])


def test_base_fee_moves_with_fullness() -> None:
    assert next_base_fee(P, 1000, HALF) == 1000
    assert next_base_fee(P, 1000, 2 * HALF) == 1125  # full: +1/8
    assert next_base_fee(P, 1000, 0) == 875  # empty: -1/8
    assert next_base_fee(P, 1, HALF + 1) == 2  # always rises when above target
    assert next_base_fee(P, 1, 0) == P.min_base_fee
