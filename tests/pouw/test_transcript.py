"""The transcript: the Rust miner gives the NumPy reference's bytes on any
shape, and the digest has the properties docs/pouw.md relies on."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bcai_native
from bcai import pouw
from bcai.mining import CpuMiner
from bcai.pouw import InvalidSeal, PouwParams
from bcai.pouw._noise import Noise, attempt_seed, noisy, ternary
from bcai.pouw._transcript import leaf_position, tile_digests


@settings(max_examples=25, deadline=None)
@given(
    tile=st.sampled_from([1, 2, 4, 8, 16]),
    dims=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
    nonce=st.integers(0, 2**64 - 1),
)
def test_rust_transcript_equals_the_reference(
    tile: int, dims: tuple[int, int, int], nonce: int
) -> None:
    n, k, m = (d * tile for d in dims)
    p = PouwParams(tile=tile, n=n, k=k, m=m)
    work = pouw.derived_work(nonce.to_bytes(8, "big") * 4, p)
    seed = attempt_seed(b"prefix", nonce)
    a2, b2 = noisy(work.a, work.b, Noise.derive(seed, n, k, m, tile))
    key = pouw.digest_key(seed)
    reference = pouw.transcript(a2, b2, tile, key)
    assert len(reference) == 8 * pouw.leaf_count(n, k, m, tile)
    assert CpuMiner().leaves(a2, b2, tile, key) == reference


def test_worst_case_entries_stay_exact() -> None:
    """|A'|, |B'| = 127 everywhere, the largest k a tile of 64 allows here:
    every partial sum is the int64 one."""
    tile, k = 64, 2048
    a2 = np.full((64, k), -127, np.int8)
    b2 = np.full((k, 64), 127, np.int8)
    leaves = CpuMiner().leaves(a2, b2, tile, 5)
    last = leaves[-8:]
    s = np.full((64, 64), -(127 * 127) * k, np.int64)
    assert s.min() > -(2**31)
    assert last == tile_digests(s.astype(np.int32), tile, 5).astype("<u8").tobytes()


def test_noise_is_ternary_low_rank_and_keeps_int8() -> None:
    seed = attempt_seed(b"h", 1)
    noise = Noise.derive(seed, 128, 64, 96, 64)
    for f in (noise.e_l, noise.e_r, noise.f_l, noise.f_r):
        assert set(np.unique(f)) <= {-1, 0, 1}
    e = noise.e_l.astype(np.int64) @ noise.e_r
    assert np.abs(e).max() <= 64 and np.linalg.matrix_rank(e.astype(float)) <= 64
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


def test_digest_is_non_linear_and_position_dependent() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(-(2**20), 2**20, (8, 8)).astype(np.int32)
    y = rng.integers(-(2**20), 2**20, (8, 8)).astype(np.int32)
    d = lambda s: int(tile_digests(s, 8, 99)[0])  # noqa: E731
    assert d(x + y) != (d(x) + d(y)) % 2**64
    assert d(x) != d(x.T)
    assert d(x) != int(tile_digests(x, 8, 100)[0])  # keyed


def test_leaf_positions_and_bad_native_arguments() -> None:
    assert leaf_position(0, 64, 32, 16) == (0, 0, 0)
    assert leaf_position(8 + 3, 64, 32, 16) == (1, 1, 1)  # 4×2 tiles per slice
    with pytest.raises(ValueError, match="inner dimensions"):
        bcai_native.pouw_transcript(
            np.zeros((4, 4), np.int8), np.zeros((4, 8), np.int8), tile=4, key=0
        )
    with pytest.raises(ValueError, match="does not divide"):
        bcai_native.pouw_transcript(
            np.zeros((6, 4), np.int8), np.zeros((4, 4), np.int8), tile=4, key=0
        )
    with pytest.raises(InvalidSeal) as err:
        PouwParams(tile=16, n=24, k=16, m=16)
    assert err.value.code == "pouw-shape"
