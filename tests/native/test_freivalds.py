"""Freivalds' check of int8 products: true products pass, any wrong entry is
caught, inputs are checked, and views with strides are read in place."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bcai_native


def operands(n: int, k: int, m: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (n, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, m), dtype=np.int8)
    c = (a.astype(np.int64) @ b.astype(np.int64)).astype(np.int32)
    return a, b, c


@pytest.mark.parametrize("shape", [(1, 1, 1), (7, 13, 5), (64, 300, 17), (128, 1025, 96)])
def test_true_product_passes(shape: tuple[int, int, int]) -> None:
    a, b, c = operands(*shape)
    assert bcai_native.freivalds_check(a, b, c, rounds=3, seed=b"s")


@settings(max_examples=50, deadline=None)
@given(
    st.integers(0, 47), st.integers(0, 31), st.integers(-(2**31), 2**31 - 1), st.binary(max_size=16)
)
def test_one_wrong_entry_is_caught(i: int, j: int, value: int, seed: bytes) -> None:
    a, b, c = operands(48, 70, 32, seed=5)
    if c[i, j] == value:
        value = value + 1 if value < 2**31 - 1 else value - 1
    c = c.copy()
    c[i, j] = value
    assert not bcai_native.freivalds_check(a, b, c, rounds=1, seed=seed)


def test_strided_views_are_read_correctly() -> None:
    a, b, c = operands(40, 60, 50)
    big_a = np.zeros((80, 60), dtype=np.int8)
    big_a[::2] = a
    assert bcai_native.freivalds_check(big_a[::2], b, c, seed=b"v")
    assert bcai_native.freivalds_check(
        np.asfortranarray(a), np.asfortranarray(b), np.asfortranarray(c), seed=b"v"
    )
    assert bcai_native.freivalds_check(b.T, a.T, c.T, seed=b"v")


def test_overflowing_product_is_not_equal() -> None:
    # 128·127·k exceeds int32: the wrapped int32 "product" is not A·B.
    k = 140_000
    a = np.full((1, k), 127, dtype=np.int8)
    b = np.full((k, 1), 127, dtype=np.int8)
    wrapped = np.array([[np.int64(127 * 127 * k)]], dtype=np.int64).astype(np.int32)
    assert not bcai_native.freivalds_check(a, b, wrapped, seed=b"o")


def test_bad_arguments() -> None:
    a, b, c = operands(4, 5, 6)
    with pytest.raises(ValueError, match="shapes do not chain"):
        bcai_native.freivalds_check(a, b[:4], c, seed=b"")
    with pytest.raises(ValueError, match="shapes do not chain"):
        bcai_native.freivalds_check(a, b, c[:, :5], seed=b"")
    with pytest.raises(TypeError):
        bcai_native.freivalds_check(a.astype(np.int16), b, c, seed=b"")
    with pytest.raises(TypeError):
        bcai_native.freivalds_check(a, b, c.astype(np.int64), seed=b"")
    with pytest.raises(TypeError):
        bcai_native.freivalds_check(a[0], b, c, seed=b"")
    with pytest.raises(ValueError, match="rounds must be"):
        bcai_native.freivalds_check(a, b, c, rounds=0, seed=b"")
    with pytest.raises(TypeError):
        bcai_native.freivalds_check(a, b, c)  # type: ignore[call-arg]
