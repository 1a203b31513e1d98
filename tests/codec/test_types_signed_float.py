"""Signed integers and binary64 floats in the canonical codec."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bcai import codec


@given(st.integers(-(2**63), 2**63 - 1))
def test_i64_round_trips_and_orders_bytes(value: int) -> None:
    raw = codec.I64.encode(value)
    assert len(raw) == 8 and codec.I64.decode(raw) == value


def test_i64_range_is_enforced() -> None:
    for bad in (2**63, -(2**63) - 1):
        with pytest.raises(codec.EncodeError) as err:
            codec.I64.encode(bad)
        assert err.value.code == "codec-out-of-range"
    assert codec.I32.decode(b"\xff\xff\xff\xfe") == -2
    with pytest.raises(codec.DecodeError):
        codec.I32.decode(b"\xff\xff")


@given(st.floats(allow_nan=False, width=64))
def test_f64_round_trips_bit_exactly(value: float) -> None:
    back = codec.F64.decode(codec.F64.encode(value))
    assert math.copysign(1.0, back) == math.copysign(1.0, value)
    assert back == value


def test_f64_refuses_nan_both_ways_and_keeps_signed_zero_and_infinity() -> None:
    with pytest.raises(codec.EncodeError):
        codec.F64.encode(math.nan)
    with pytest.raises(codec.DecodeError) as err:
        codec.F64.decode(bytes.fromhex("fff8000000000000"))
    assert err.value.code == "codec-out-of-range"
    assert codec.F64.encode(-0.0) != codec.F64.encode(0.0)
    assert codec.F64.decode(codec.F64.encode(math.inf)) == math.inf
    with pytest.raises(codec.EncodeError):
        codec.F64.encode("1.0")  # type: ignore[arg-type]
