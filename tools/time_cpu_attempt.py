"""Wall-clock medians of one CPU mining attempt against the bare products of
the same shape, in one run (docs/benchmarks.md): the Rust miner's attempt
(noise factors, noisy operands, transcript, Merkle root, ticket; nonces in
order, so one noisy operand is formed an attempt), the same with both
formed every attempt (as before session 13), the same AVX2 kernel without
the digest, and BLAS through `kernels.matmul_i8`.

    python tools/time_cpu_attempt.py 512:64 1024:64 2048:128
"""

import json
import os
import sys
import time
from typing import Any

import numpy as np

import bcai_native
from bcai import kernels, pouw
from bcai.mining import CpuMiner
from bcai.mining._miner import run_attempt
from bcai.pouw import PouwParams, _seal


def median_ms(fn: Any, seconds: float = 2.0) -> float:
    fn()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < 5 or (time.perf_counter() < deadline and len(times) < 200):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return float(np.median(times)) * 1e3


def row(n: int, tile: int) -> dict[str, Any]:
    params = PouwParams(tile=tile, n=n, k=n, m=n)
    work = pouw.derived_work(b"\x01" * 32, params)
    if n <= 1024:  # the NumPy reference is slow beyond
        reference = pouw.attempt(b"time", 0, work, params)
        assert run_attempt(b"time", 0, work, params, CpuMiner()).root == reference.root
    bt = np.ascontiguousarray(work.b.T)
    out = np.empty((n, n), np.int32)
    assert np.array_equal(
        bcai_native.pouw_product(work.a, bt, tile=tile, out=out),
        kernels.matmul_i8(work.a, work.b),
    )
    nonces = iter(range(1, 10**9))
    median_ms(lambda: run_attempt(b"time", next(nonces), work, params, CpuMiner()), 1.0)  # warm-up
    attempt = median_ms(lambda: run_attempt(b"time", next(nonces), work, params, CpuMiner()))
    kept = _seal.side_tokens
    _seal.side_tokens = lambda work, seed, tile: (b"", b"")  # an empty token: never kept
    try:
        both = median_ms(lambda: run_attempt(b"time", next(nonces), work, params, CpuMiner()))
    finally:
        _seal.side_tokens = kept
    bare = median_ms(lambda: bcai_native.pouw_product(work.a, bt, tile=tile, out=out))
    blas = median_ms(lambda: kernels.matmul_i8(work.a, work.b, out))
    ops = 2 * n**3
    return {
        "n": n,
        "tile": tile,
        "attempt_ms": round(attempt, 3),
        "attempt_both_sides_ms": round(both, 3),
        "bare_avx2_ms": round(bare, 3),
        "blas_ms": round(blas, 3),
        "attempt_g_ops": round(ops / attempt / 1e6, 1),
        "over_bare": round(attempt / bare, 3),
        "over_blas": round(attempt / blas, 3),
    }


if __name__ == "__main__":
    shapes = sys.argv[1:] or ["512:64", "1024:64"]
    rows = [row(*(int(x) for x in s.split(":"))) for s in shapes]
    print(json.dumps({"cpus": os.cpu_count(), "rows": rows}))
