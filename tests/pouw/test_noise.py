"""The noise: E from σ_E, F from σ_F (neighbouring nonces share one side);
every factor generated as a matrix with r columns (E_L, E_Rᵀ, F_L, F_Rᵀ);
dense 2-bit ternary factors up to rank 64, and above it E_L rows and F_R
columns of exactly 64 non-zeros, so that |E|, |F| <= 64 and the noisy
operands stay int8. Each rule is checked against a plain loop written from
docs/pouw.md."""

from __future__ import annotations

import numpy as np
import pytest

from bcai.crypto import blake3, blake3_xof, derive_key
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
    assert np.array_equal(noise.e_l, dense_by_hand(seed.e, CONTEXT + "E_L", n, rank))
    assert np.array_equal(noise.e_r, dense_by_hand(seed.e, CONTEXT + "E_R", k, rank).T)
    assert np.array_equal(noise.f_l, dense_by_hand(seed.f, CONTEXT + "F_L", k, rank))
    assert np.array_equal(noise.f_r, dense_by_hand(seed.f, CONTEXT + "F_R", m, rank).T)
    # held as generated: E_Rᵀ and F_Rᵀ contiguous, the rank index fastest
    assert noise.e_r.T.flags.c_contiguous and noise.f_r.T.flags.c_contiguous
    assert noise.e_r.shape == (rank, k) and noise.f_r.shape == (rank, m)


def test_sparse_noise_follows_the_rule() -> None:
    seed = attempt_seed(b"sparse", 7)
    n, k, m = 40, 256, 24
    noise = Noise.derive(seed, n, k, m, 128)
    assert np.array_equal(noise.e_l, sparse_by_hand(seed.e, CONTEXT + "E_L", n, 128))
    assert np.array_equal(noise.f_r, sparse_by_hand(seed.f, CONTEXT + "F_R", m, 128).T)
    # E_R and F_L stay dense 2-bit ternary
    assert np.array_equal(noise.e_r, dense_by_hand(seed.e, CONTEXT + "E_R", k, 128).T)
    assert np.array_equal(noise.f_l, dense_by_hand(seed.f, CONTEXT + "F_L", k, 128))
    # the rule for a larger power of two (not a consensus tile)
    x = seed.e
    assert np.array_equal(sparse_ternary(x, "x", 8, 512), sparse_by_hand(x, "x", 8, 512))
    with pytest.raises(ValueError, match="power of two"):
        sparse_ternary(x, "x", 8, 192)


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
    # deterministic per seed; nonces 1 and 3 share no side (1 and 2 share E)
    again = Noise.derive(seed, n, k, m, 128)
    other = Noise.derive(attempt_seed(b"h", 3), n, k, m, 128)
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
    other = Noise.derive(attempt_seed(b"h", 0), 128, 64, 96, 64)  # shares F with nonce 1
    assert not np.array_equal(other.e_l, noise.e_l)
    assert np.array_equal(other.f_r, noise.f_r)
    assert np.array_equal(Noise.derive(seed, 128, 64, 96, 64).f_r, noise.f_r)
    counts = np.bincount((ternary(seed.e, "x", 256, 256) + 1).ravel(), minlength=3) / 65536
    assert abs(counts[1] - 0.5) < 0.02 and abs(counts[0] - 0.25) < 0.02


def test_gpu_network_noise_keeps_its_bounds() -> None:
    """The noise of one attempt at n = k = m = 4096, r = 128."""
    noise = Noise.derive(attempt_seed(b"speed", 0), 4096, 4096, 4096, 128)
    assert ((noise.e_l != 0).sum(axis=1) == 64).all()
    assert ((noise.f_r != 0).sum(axis=0) == 64).all()


def test_the_seeds_follow_the_rule() -> None:
    """σ, σ_E and σ_F as docs/pouw.md writes them, by hand."""
    prefix = bytes(range(40))
    for nonce in (0, 1, 2, 3, 2**63 - 1, 2**64 - 2, 2**64 - 1):
        seed = attempt_seed(prefix, nonce)
        assert seed.attempt == blake3(b"bcai/pouw/seed" + prefix + nonce.to_bytes(8, "big"))
        e, f = (nonce + 1) // 2, nonce // 2
        assert seed.e == blake3(b"bcai/pouw/noise E" + prefix + e.to_bytes(8, "big"))
        assert seed.f == blake3(b"bcai/pouw/noise F" + prefix + f.to_bytes(8, "big"))
    for bad in (-1, 2**64):
        with pytest.raises(ValueError, match="64-bit"):
            attempt_seed(prefix, bad)


def test_neighbouring_nonces_share_exactly_one_side() -> None:
    """Nonces t and t + 1 share E when t is odd, F when it is even; nonces
    further apart share nothing; no two nonces share σ; another header
    shares nothing."""
    seeds = [attempt_seed(b"p", t) for t in range(64)]
    for t in range(63):
        now, following = seeds[t], seeds[t + 1]
        assert (now.e == following.e, now.f == following.f) == (t % 2 == 1, t % 2 == 0)
    for t in range(62):
        for u in range(t + 2, 64):
            assert seeds[t].e != seeds[u].e and seeds[t].f != seeds[u].f
    assert len({s.attempt for s in seeds}) == 64
    other = attempt_seed(b"q", 5)
    assert other.e != seeds[5].e and other.f != seeds[5].f and other.attempt != seeds[5].attempt
    # E and F differ even where their indices agree (the sides are domain-separated)
    assert seeds[0].e != seeds[0].f


def test_a_sides_factors_are_derived_once_and_read_only() -> None:
    """Nonces 1 and 2 share E: its factors are derived once (the same
    arrays) and cannot be written through (a cached side serves both)."""
    first = Noise.derive(attempt_seed(b"cache", 1), 64, 96, 32, 32)
    second = Noise.derive(attempt_seed(b"cache", 2), 64, 96, 32, 32)
    assert first.e_l is second.e_l and first.e_r.base is second.e_r.base
    assert not np.array_equal(first.f_l, second.f_l)
    for factor in (first.e_l, first.e_r, first.f_l, first.f_r):
        with pytest.raises(ValueError, match="read-only"):
            factor[0, 0] = 1
