"""The noise: every factor generated as a matrix with r columns (E_L, E_Rᵀ,
F_L, F_Rᵀ); dense 2-bit ternary factors up to rank 64, and above it E_L
rows and F_R columns of exactly 64 non-zeros, so that |E|, |F| <= 64 and
the noisy operands stay int8. Each rule is checked against a plain loop
written from docs/pouw.md."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bcai.crypto import blake3_xof, derive_key
from bcai.pouw._noise import Noise, attempt_seed, noisy, sparse_ternary, ternary

CONTEXT = "bcai 2026-11 pouw noise "
TERNARY = (0, 1, -1, 0)


def dense_by_hand(seed: bytes, context: str, rows: int, cols: int) -> np.ndarray:
    """Two bits per entry, low bits first within each byte."""
    data = blake3_xof(derive_key(context, seed), (rows * cols + 3) // 4)
    flat = [TERNARY[(data[i // 4] >> (2 * (i % 4))) & 3] for i in range(rows * cols)]
    return np.array(flat, np.int8).reshape(rows, cols)


def sparse_by_hand(seed: bytes, context: str, rows: int, rank: int) -> np.ndarray:
    """Row i from XOF bytes [64·i, 64·i + 64); byte j sets column
    j·g + ((byte >> 1) & (g − 1)) to +1 (byte even) or −1 (byte odd)."""
    g = rank // 64
    data = blake3_xof(derive_key(context, seed), 64 * rows)
    out = np.zeros((rows, rank), np.int8)
    for i in range(rows):
        for j in range(64):
            byte = data[64 * i + j]
            out[i, j * g + ((byte >> 1) & (g - 1))] = -1 if byte & 1 else 1
    return out


@pytest.mark.parametrize("rank", [1, 4, 32, 64])
def test_dense_noise_is_generated_with_r_columns(rank: int) -> None:
    seed = attempt_seed(b"dense", rank)
    n, k, m = 24, 40, 16
    noise = Noise.derive(seed, n, k, m, rank)
    assert np.array_equal(noise.e_l, dense_by_hand(seed, CONTEXT + "E_L", n, rank))
    assert np.array_equal(noise.e_r, dense_by_hand(seed, CONTEXT + "E_R", k, rank).T)
    assert np.array_equal(noise.f_l, dense_by_hand(seed, CONTEXT + "F_L", k, rank))
    assert np.array_equal(noise.f_r, dense_by_hand(seed, CONTEXT + "F_R", m, rank).T)
    # held as generated: E_Rᵀ and F_Rᵀ contiguous, the rank index fastest
    assert noise.e_r.T.flags.c_contiguous and noise.f_r.T.flags.c_contiguous
    assert noise.e_r.shape == (rank, k) and noise.f_r.shape == (rank, m)


def test_sparse_noise_follows_the_rule() -> None:
    seed = attempt_seed(b"sparse", 7)
    n, k, m = 40, 256, 24
    noise = Noise.derive(seed, n, k, m, 128)
    assert np.array_equal(noise.e_l, sparse_by_hand(seed, CONTEXT + "E_L", n, 128))
    assert np.array_equal(noise.f_r, sparse_by_hand(seed, CONTEXT + "F_R", m, 128).T)
    # E_R and F_L stay dense 2-bit ternary
    assert np.array_equal(noise.e_r, dense_by_hand(seed, CONTEXT + "E_R", k, 128).T)
    assert np.array_equal(noise.f_l, dense_by_hand(seed, CONTEXT + "F_L", k, 128))
    # the rule for a larger power of two (not a consensus tile)
    assert np.array_equal(sparse_ternary(seed, "x", 8, 512), sparse_by_hand(seed, "x", 8, 512))
    with pytest.raises(ValueError, match="power of two"):
        sparse_ternary(seed, "x", 8, 192)


def test_rank_128_noise_has_64_terms_and_keeps_int8() -> None:
    seed = attempt_seed(b"h", 1)
    n, k, m = 512, 256, 384
    noise = Noise.derive(seed, n, k, m, 128)
    for f in (noise.e_l, noise.e_r, noise.f_l, noise.f_r):
        assert f.dtype == np.int8 and set(np.unique(f)) <= {-1, 0, 1}
    assert noise.e_l.shape == (n, 128) and noise.f_r.shape == (128, m)
    # exactly 64 non-zeros ±1: a cheater skipping zeros saves nothing
    assert ((noise.e_l != 0).sum(axis=1) == 64).all()
    assert ((noise.f_r != 0).sum(axis=0) == 64).all()
    # every column group of g = 2 holds one byte's entry: both halves used
    assert (noise.e_l[:, 0::2] != 0).any() and (noise.e_l[:, 1::2] != 0).any()
    # E_R and F_L dense: about half their entries non-zero
    for f in (noise.e_r, noise.f_l):
        assert abs((f != 0).mean() - 0.5) < 0.05
    e = noise.e_l.astype(np.int64) @ noise.e_r
    f = noise.f_l.astype(np.int64) @ noise.f_r
    assert np.abs(e).max() <= 64 and np.abs(f).max() <= 64
    # rank r = b = 128: the sparsity bounds the terms, not the rank
    assert np.linalg.matrix_rank(e.astype(float)) == 128
    assert np.linalg.matrix_rank(f.astype(float)) == 128
    # worst-case operands: A = ±63, B = ∓63
    for sign in (1, -1):
        a = np.full((n, k), 63 * sign, np.int8)
        b = np.full((k, m), -63 * sign, np.int8)
        a2, b2 = noisy(a, b, noise)
        assert a2.dtype == np.int8 and b2.dtype == np.int8
        assert np.array_equal(a2.astype(np.int64), a.astype(np.int64) + e)
        assert np.array_equal(b2.astype(np.int64), b.astype(np.int64) + f)
    # deterministic per seed, different per seed
    again = Noise.derive(seed, n, k, m, 128)
    other = Noise.derive(attempt_seed(b"h", 2), n, k, m, 128)
    for name in ("e_l", "e_r", "f_l", "f_r"):
        assert np.array_equal(getattr(again, name), getattr(noise, name))
        assert not np.array_equal(getattr(other, name), getattr(noise, name))


def test_noise_is_ternary_low_rank_and_keeps_int8() -> None:
    seed = attempt_seed(b"h", 1)
    noise = Noise.derive(seed, 128, 64, 96, 64)
    for f in (noise.e_l, noise.e_r, noise.f_l, noise.f_r):
        assert set(np.unique(f)) <= {-1, 0, 1}
    e = noise.e_l.astype(np.int64) @ noise.e_r
    f = noise.f_l.astype(np.int64) @ noise.f_r
    assert np.abs(e).max() <= 64 and np.linalg.matrix_rank(e.astype(float)) == 64  # r = b
    assert np.abs(f).max() <= 64 and np.linalg.matrix_rank(f.astype(float)) == 64
    a = np.full((128, 64), 63, np.int8)
    b = np.full((64, 96), -63, np.int8)
    a2, b2 = noisy(a, b, noise)
    assert a2.dtype == np.int8 and np.array_equal(a2.astype(np.int64), a.astype(np.int64) + e)
    assert np.abs(b2.astype(np.int64)).max() <= 127
    # distinct per attempt, identical when rederived
    other = Noise.derive(attempt_seed(b"h", 2), 128, 64, 96, 64)
    assert not np.array_equal(other.e_l, noise.e_l)
    assert np.array_equal(Noise.derive(seed, 128, 64, 96, 64).f_r, noise.f_r)
    counts = np.bincount((ternary(seed, "x", 256, 256) + 1).ravel(), minlength=3) / 65536
    assert abs(counts[1] - 0.5) < 0.02 and abs(counts[0] - 0.25) < 0.02


def test_gpu_network_noise_takes_milliseconds() -> None:
    """The noise of one attempt at n = k = m = 4096, r = 128 (done per nonce
    on the host while the GPU runs the previous one)."""
    seed = attempt_seed(b"speed", 0)
    Noise.derive(seed, 4096, 4096, 4096, 128)
    start = time.perf_counter()
    noise = Noise.derive(seed, 4096, 4096, 4096, 128)
    assert time.perf_counter() - start < 0.25
    assert (noise.e_l != 0).sum(axis=1).max() <= 64
