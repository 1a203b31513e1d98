"""bcai._kernels through bcai.kernels: the int8 product is exact against an
int64 reference on awkward shapes (1, odd, not multiples of the 1024 chunk)
and at the extremes of int8; im2col matches PyTorch's unfold."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bcai import kernels


def reference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return a.astype(np.int64) @ b.astype(np.int64)


SHAPES = [
    (1, 1, 1),
    (1, 7, 1),
    (3, 5, 7),
    (17, 1023, 9),
    (16, 1024, 16),
    (5, 1025, 3),
    (33, 2049, 31),
    (129, 3000, 65),
    (1, 4096, 1),
    (64, 0, 8),
]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_exact_on_awkward_shapes(shape: tuple[int, int, int]) -> None:
    n, k, m = shape
    rng = np.random.default_rng(k)
    a = rng.integers(-128, 128, (n, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, m), dtype=np.int8)
    c = kernels.matmul_i8(a, b)
    assert c.dtype == np.int32 and c.shape == (n, m)
    assert (c == reference(a, b)).all()


@pytest.mark.parametrize("k", [1024, 3072, 10_000])
@pytest.mark.parametrize("value", [-128, 127])
def test_exact_at_the_extremes(k: int, value: int) -> None:
    # Every partial sum is as large as int8 allows: 2^24 per 1024-chunk.
    a = np.full((3, k), value, dtype=np.int8)
    b = np.full((k, 2), -128, dtype=np.int8)
    assert (kernels.matmul_i8(a, b) == reference(a, b)).all()
    assert int(kernels.matmul_i8(a, b)[0, 0]) == value * -128 * k


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 40), st.integers(0, 2100), st.integers(1, 40), st.integers(0, 2**32 - 1))
def test_exact_random(n: int, k: int, m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (n, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, m), dtype=np.int8)
    assert (kernels.matmul_i8(a, b) == reference(a, b)).all()


def test_strided_inputs_and_out() -> None:
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (50, 80), dtype=np.int8)
    b = rng.integers(-128, 128, (60, 80), dtype=np.int8)
    out = np.empty((25, 60), dtype=np.int32)
    got = kernels.matmul_i8(a[::2], b.T, out=out)
    assert got is out
    assert (out == reference(a[::2], b.T)).all()


def test_matmul_bad_arguments() -> None:
    a = np.zeros((2, 3), dtype=np.int8)
    with pytest.raises(TypeError, match="must be int8"):
        kernels.matmul_i8(a.astype(np.int16), a.T)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="numpy arrays"):
        kernels.matmul_i8([[1]], a)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not chain"):
        kernels.matmul_i8(a, a)
    with pytest.raises(ValueError, match="2-D"):
        kernels.matmul_i8(a[0], a.T)
    with pytest.raises(ValueError, match="could overflow"):
        kernels.matmul_i8(
            np.zeros((1, kernels.MAX_K + 1), np.int8), np.zeros((kernels.MAX_K + 1, 1), np.int8)
        )
    with pytest.raises(TypeError, match="out must be"):
        kernels.matmul_i8(a, a.T, out=np.zeros((2, 2), dtype=np.int64))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("shape", "kernel", "stride", "padding", "dilation"),
    [
        ((1, 1, 5, 5), 3, 1, 0, 1),
        ((2, 3, 8, 7), (3, 2), (2, 1), (1, 0), (1, 2)),
        ((1, 4, 9, 9), 1, 1, 0, 1),
        ((3, 2, 6, 11), (2, 5), 3, 2, 1),
        ((1, 1, 1, 1), 1, 1, 0, 1),
    ],
)
def test_im2col_matches_torch_unfold(
    shape: tuple[int, int, int, int],
    kernel: object,
    stride: object,
    padding: object,
    dilation: object,
) -> None:
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    got = kernels.im2col(x, kernel, stride, padding, dilation)  # type: ignore[arg-type]
    want = torch.nn.functional.unfold(
        torch.from_numpy(x),
        kernel,
        dilation=dilation,
        padding=padding,
        stride=stride,  # type: ignore[arg-type]
    ).numpy()
    assert got.shape == want.shape
    assert np.array_equal(got, want)


def test_im2col_then_matmul_is_a_convolution() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 10, 10)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    cols = kernels.im2col(x, 3, padding=1)
    y = (w.reshape(4, -1) @ cols).reshape(2, 4, 10, 10)
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding=1).numpy()
    assert np.allclose(y, want, atol=1e-4)


def test_im2col_bad_arguments() -> None:
    x = np.zeros((1, 1, 4, 4), dtype=np.float32)
    with pytest.raises(TypeError, match="float32"):
        kernels.im2col(x.astype(np.float64), 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="4-D"):
        kernels.im2col(x[0], 3)
    with pytest.raises(ValueError, match="too small"):
        kernels.im2col(x, 5)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        kernels.im2col(x, 3, stride=0)
    with pytest.raises(TypeError, match="pair of ints"):
        kernels.im2col(x, (3, 3, 3))  # type: ignore[arg-type]


def test_workspace_reuse_and_clear_give_the_same_result() -> None:
    rng = np.random.default_rng(9)
    big_a = rng.integers(-128, 128, (64, 3000), dtype=np.int8)
    big_b = rng.integers(-128, 128, (3000, 64), dtype=np.int8)
    small_a, small_b = big_a[:5, :7], big_b[:7, :3]
    first = kernels.matmul_i8(big_a, big_b)
    assert (kernels.matmul_i8(small_a, small_b) == reference(small_a, small_b)).all()
    kernels.clear_workspace()
    assert (kernels.matmul_i8(big_a, big_b) == first).all()
    assert (first == reference(big_a, big_b)).all()


@pytest.mark.parametrize(
    ("act", "reference"),
    [
        (kernels.ACT_NONE, lambda v: v),
        (kernels.ACT_RELU, torch.relu),
        (kernels.ACT_TANH, torch.tanh),
        (kernels.ACT_SIGMOID, torch.sigmoid),
    ],
)
@pytest.mark.parametrize("bias", [True, False])
def test_fused_bias_activation_matches_torch(act: int, reference: object, bias: bool) -> None:
    rng = np.random.default_rng(act)
    x = rng.standard_normal((37, 19), dtype=np.float32)
    w = rng.standard_normal((19, 23), dtype=np.float32)
    b = rng.standard_normal(23, dtype=np.float32) if bias else None
    out = x @ w
    result = kernels.bias_act(out, b, act)
    assert result is out  # in place
    pre = torch.from_numpy(x) @ torch.from_numpy(w)
    if b is not None:
        pre = pre + torch.from_numpy(b)
    np.testing.assert_allclose(out, reference(pre).numpy(), rtol=1e-5, atol=1e-6)  # type: ignore[operator]


def test_fused_bias_activation_bad_arguments() -> None:
    out = np.zeros((3, 4), np.float32)
    with pytest.raises(TypeError, match="C-contiguous"):
        kernels.bias_act(out.T, None, kernels.ACT_RELU)
    with pytest.raises(TypeError, match="float32"):
        kernels.bias_act(out.astype(np.float64), None, kernels.ACT_RELU)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bias of 3"):
        kernels.bias_act(out, np.zeros(3, np.float32), kernels.ACT_RELU)
    with pytest.raises(ValueError, match="unknown activation"):
        kernels.bias_act(out, None, 2)  # GELU is not fused
