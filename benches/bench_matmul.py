"""Exact int8 matrix product 1024^3: bcai.kernels against numpy's float32
BLAS product (target >= 0.8x) and numpy's integer matmul (target >= 50x)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bcai import kernels

N = 1024
RNG = np.random.default_rng(0)
A = RNG.integers(-128, 128, (N, N), dtype=np.int8)
B = RNG.integers(-128, 128, (N, N), dtype=np.int8)
A32, B32 = A.astype(np.int32), B.astype(np.int32)
AF, BF = A.astype(np.float32), B.astype(np.float32)
WANT = A.astype(np.int64) @ B.astype(np.int64)


@pytest.mark.benchmark(group="int8-matmul-1024^3")
def test_bcai_matmul_i8(benchmark: Any, role: Any) -> None:
    role("bcai", 0.8)
    assert (kernels.matmul_i8(A, B) == WANT).all()
    out = np.empty((N, N), dtype=np.int32)
    benchmark(kernels.matmul_i8, A, B, out)


@pytest.mark.benchmark(group="int8-matmul-1024^3")
def test_numpy_float32_blas(benchmark: Any, role: Any) -> None:
    role("baseline")
    assert ((AF @ BF) == WANT).all()  # float32 is itself exact at this size
    out = np.empty((N, N), dtype=np.float32)
    benchmark(np.matmul, AF, BF, out=out)


@pytest.mark.benchmark(group="int8-matmul-1024^3")
def test_numpy_int32_matmul(benchmark: Any, role: Any) -> None:
    role("baseline-int")
    assert ((A32 @ B32) == WANT).all()
    benchmark.pedantic(np.matmul, args=(A32, B32), rounds=2, iterations=1)
