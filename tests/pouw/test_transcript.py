"""The transcript: the Rust miner gives the NumPy reference's bytes on any
shape, and the digest has the properties docs/pouw.md relies on."""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bcai_native
from bcai import pouw
from bcai.mining import CpuMiner
from bcai.pouw import InvalidSeal, PouwParams, _work
from bcai.pouw._noise import Noise, attempt_seed, noisy
from bcai.pouw._seal import fused_attempt_leaves, host_attempt_leaves, side_tokens
from bcai.pouw._transcript import LEAF_BYTES, leaf_position, tile_digests
from bcai.pouw._work import Work, work_digest


@settings(max_examples=25, deadline=None)
@given(
    tile=st.sampled_from([2, 4, 8, 16]),
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
    assert len(reference) == LEAF_BYTES * pouw.leaf_count(n, k, m, tile)
    assert CpuMiner().leaves(a2, b2, tile, key) == reference


@pytest.mark.parametrize(
    ("tile", "n", "k", "m"),
    [(32, 64, 96, 128), (64, 128, 192, 64), (128, 256, 256, 256), (128, 128, 384, 256)],
)
def test_rust_transcript_equals_the_reference_on_large_tiles(
    tile: int, n: int, k: int, m: int
) -> None:
    """Tiles 32 … 128 (r = 128: sparse noise) on small shapes."""
    p = PouwParams(tile=tile, n=n, k=k, m=m)
    work = pouw.derived_work(bytes([tile]) * 32, p)
    seed = attempt_seed(b"large", tile + n)
    a2, b2 = noisy(work.a, work.b, Noise.derive(seed, n, k, m, tile))
    key = pouw.digest_key(seed)
    reference = pouw.transcript(a2, b2, tile, key)
    assert len(reference) == LEAF_BYTES * pouw.leaf_count(n, k, m, tile)
    assert CpuMiner().leaves(a2, b2, tile, key) == reference


def digest_by_hand(entries: list[int], key: int) -> int:
    """docs/pouw.md: y_e = (x_e + κ + e·0x9E3779B9) mod 2^32 (x_e as uint32),
    d = Σ_i (y_2i XOR λ)·y_2i+1 mod 2^32 over the row-major entries."""
    kappa, lam = key % 2**32, key >> 32
    y = [(x % 2**32 + kappa + e * 0x9E3779B9) % 2**32 for e, x in enumerate(entries)]
    return sum((y[i] ^ lam) * y[i + 1] for i in range(0, len(y), 2)) % 2**32


def test_digest_is_the_keyed_sum_of_pair_products() -> None:
    # int32 extremes: the adds, the products and the sum wrap mod 2^32
    x = np.array([[0, -1, 2**31 - 1, -(2**31)], [7, -7, 123456789, -987654321]], np.int32)
    x = np.vstack([x, x[::-1] ^ 0x55]).astype(np.int32)  # 4×4
    for key in (0, 1, 0x9E3779B9, 0xFFFFFFFF, 0xFFFFFFFF << 32, 0x0123456789ABCDEF):
        assert int(tile_digests(x, 4, key)[0]) == digest_by_hand(x.ravel().tolist(), key)
    # an entry equal to −(κ + e·φ) is 0 in y: a second entry voids its pair, a first one
    # leaves λ·y of its neighbour
    key = 0x12345678
    zero = np.array([[-((key + e * 0x9E3779B9) % 2**32) for e in range(4)]], np.int64)
    zero = ((zero + 2**31) % 2**32 - 2**31).astype(np.int32).reshape(2, 2)
    assert int(tile_digests(zero, 2, key)[0]) == 0
    assert int(tile_digests(zero, 2, key | 3 << 32)[0]) == 0
    firsts = zero.copy()
    firsts[:, 1] += 5  # y_1 = y_3 = 5
    assert int(tile_digests(firsts, 2, key | 3 << 32)[0]) == 2 * 3 * 5
    # the pairs are a row's neighbours: swapping the two entries of a pair changes the digest
    assert int(tile_digests(x[:, [1, 0, 3, 2]], 4, 5 << 32)[0]) != int(
        tile_digests(x, 4, 5 << 32)[0]
    )
    key |= 0xCAFE0000 << 32
    # the miners agree: a tiny product through the Rust transcript
    rng = np.random.default_rng(3)
    a2 = rng.integers(-127, 128, (4, 8)).astype(np.int8)
    b2 = rng.integers(-127, 128, (8, 4)).astype(np.int8)
    leaves = CpuMiner().leaves(a2, b2, 4, key)
    s0 = a2[:, :4].astype(np.int64) @ b2[:4].astype(np.int64)
    s1 = a2.astype(np.int64) @ b2.astype(np.int64)
    for step, s in enumerate((s0, s1)):
        want = digest_by_hand(s.ravel().tolist(), key)
        leaf = leaves[LEAF_BYTES * step : LEAF_BYTES * (step + 1)]
        assert int.from_bytes(leaf, "little") == want


@pytest.mark.parametrize("tile", [64, 128])
def test_worst_case_entries_stay_exact(tile: int) -> None:
    """|A'|, |B'| = 127 everywhere, k = 2048: every partial sum is the int64
    one."""
    k = 2048
    a2 = np.full((tile, k), -127, np.int8)
    b2 = np.full((k, tile), 127, np.int8)
    leaves = CpuMiner().leaves(a2, b2, tile, 5 | 77 << 32)
    last = leaves[-LEAF_BYTES:]
    s = np.full((tile, tile), -(127 * 127) * k, np.int64)
    assert s.min() > -(2**31)
    assert last == tile_digests(s.astype(np.int32), tile, 5 | 77 << 32).astype("<u4").tobytes()


def test_digest_is_non_linear_and_position_dependent() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(-(2**20), 2**20, (8, 8)).astype(np.int32)
    y = rng.integers(-(2**20), 2**20, (8, 8)).astype(np.int32)
    d = lambda s: int(tile_digests(s, 8, 99)[0])  # noqa: E731
    assert d(x + y) != (d(x) + d(y)) % 2**32
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


def has_avx2() -> bool:
    with open("/proc/cpuinfo") as info:
        return " avx2" in info.read()


@pytest.mark.parametrize(
    ("tile", "n", "k", "m"),
    [
        (8, 16, 24, 32),
        (16, 48, 32, 64),
        (32, 64, 96, 32),
        (64, 128, 128, 192),
        (128, 128, 256, 128),
    ],
)
def test_cpu_attempt_equals_the_reference(tile: int, n: int, k: int, m: int) -> None:
    """The fused native attempt (noise products, noisy operands packed for
    the AVX2 kernel, transcript) gives the reference's leaves; tiles that
    are not multiples of 16 take the NumPy + portable route."""
    p = PouwParams(tile=tile, n=n, k=k, m=m)
    work = pouw.derived_work(bytes([tile, n % 256]) * 16, p)
    for nonce in (0, 1):
        seed = attempt_seed(b"fused", nonce)
        noise = Noise.derive(seed, n, k, m, tile)
        a2, b2 = noisy(work.a, work.b, noise)
        reference = pouw.transcript(a2, b2, tile, pouw.digest_key(seed))
        assert CpuMiner().attempt_leaves(work, seed, p) == reference
        fused = fused_attempt_leaves(work, noise, tile, pouw.digest_key(seed))
        if tile % 16 or not has_avx2():
            assert fused is None
        else:
            assert fused == reference


def reference_leaves(work: Work, seed: pouw.Seed, tile: int) -> bytes:
    n, k, m = work.shape
    a2, b2 = noisy(work.a, work.b, Noise.derive(seed, n, k, m, tile))
    return pouw.transcript(a2, b2, tile, pouw.digest_key(seed))


@pytest.mark.skipif(not has_avx2(), reason="the fused attempt needs AVX2")
def test_cpu_attempts_keep_a_repeated_side_in_any_order() -> None:
    """The native attempt keeps the noisy operand whose side seed repeats
    from the call before (nonces in order: one side a nonce); whatever the
    order of nonces, works and tiles, every attempt's leaves are the
    reference's."""
    p32 = PouwParams(tile=32, n=64, k=96, m=64)
    p16 = PouwParams(tile=16, n=64, k=96, m=64)
    one, other = pouw.derived_work(b"\x01" * 32, p32), pouw.derived_work(b"\x02" * 32, p32)
    calls = [(one, p32, nonce) for nonce in range(6)]  # in order: E, F, E, ... repeat
    calls += [(one, p32, nonce) for nonce in (9, 8, 8, 3, 4, 2**64 - 1, 2**64 - 2)]
    calls += [(other, p32, 4), (one, p32, 4), (other, p32, 5), (one, p32, 5)]  # works alternate
    calls += [(one, p16, 5), (one, p32, 5), (one, p16, 6)]  # the rank changes
    rng = np.random.default_rng(8)
    other_a, other_bt = (rng.integers(-9, 9, (rows, 96)).astype(np.int8) for rows in (32, 64))
    for at, (work, params, nonce) in enumerate(calls):
        seed = attempt_seed(b"kept", nonce)
        assert host_attempt_leaves(work, seed, params) == reference_leaves(work, seed, params.tile)
        # the shared workspace's operands overwritten in between (same k): nothing kept after
        if at % 3 == 1:
            bcai_native.pouw_transcript(other_a, other_bt, tile=16, key=1)
        elif at % 3 == 2:
            bcai_native.pouw_product(other_a, other_bt, tile=16)


@pytest.mark.skipif(not has_avx2(), reason="the fused attempt needs AVX2")
def test_cpu_attempts_on_two_threads_each_equal_the_reference() -> None:
    """Two threads mining two Works at once: one holds the shared workspace
    (and its kept sides), the other runs on a fresh one; every attempt's
    leaves are the reference's either way."""
    p = PouwParams(tile=16, n=64, k=64, m=64)
    works = [pouw.derived_work(bytes([i]) * 32, p) for i in (5, 6)]
    wrong: list[tuple[int, int]] = []

    def mine_some(which: int) -> None:
        for nonce in range(40):
            seed = attempt_seed(b"threads", nonce)
            if host_attempt_leaves(works[which], seed, p) != reference_leaves(
                works[which], seed, 16
            ):
                wrong.append((which, nonce))

    threads = [threading.Thread(target=mine_some, args=(which,)) for which in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert wrong == []


@pytest.mark.skipif(not has_avx2(), reason="the fused attempt needs AVX2")
def test_a_side_token_that_repeats_keeps_that_operand() -> None:
    """A token names what its side is formed from: the call keeps a side
    whose token repeats whatever factors it is given (so the kept side
    shows), forms a side whose token differs, and never keeps under an
    empty token or after a call without tokens."""
    p = PouwParams(tile=16, n=32, k=48, m=32)
    work = pouw.derived_work(b"\x03" * 32, p)
    s1, s2, s3, s4 = (attempt_seed(b"tokens", nonce) for nonce in (10, 20, 30, 40))
    noise = {s: Noise.derive(s, 32, 48, 32, 16) for s in (s1, s2, s3, s4)}

    def call(e: pouw.Seed, f: pouw.Seed, held: tuple[bytes, bytes] | None) -> bytes:
        ne, nf = noise[e], noise[f]
        out = bcai_native.pouw_attempt_leaves(
            work.a,
            work.b,
            ne.e_l,
            np.ascontiguousarray(ne.e_r.T),
            nf.f_l,
            np.ascontiguousarray(nf.f_r.T),
            tile=16,
            key=5,
            held=held,
        )
        assert out is not None
        return bytes(out)

    def want(e: pouw.Seed, f: pouw.Seed) -> bytes:
        a2, _ = noisy(work.a, work.b, noise[e])
        _, b2 = noisy(work.a, work.b, noise[f])
        return pouw.transcript(a2, b2, 16, 5)

    assert call(s1, s1, (b"E1", b"F1")) == want(s1, s1)
    assert call(s2, s2, (b"E1", b"F2")) == want(s1, s2)  # A' kept: E's token repeats
    assert call(s3, s3, (b"E3", b"F2")) == want(s3, s2)  # B' kept
    assert call(s4, s4, None) == want(s4, s4)
    assert call(s1, s1, (b"E3", b"F2")) == want(s1, s1)  # nothing held after a call without
    assert call(s2, s2, (b"", b"")) == want(s2, s2)
    assert call(s3, s3, (b"", b"")) == want(s3, s3)  # an empty token never matches


def test_side_tokens_name_the_matrices_the_seed_and_the_rank() -> None:
    p = PouwParams(tile=16, n=32, k=48, m=32)
    work = pouw.derived_work(b"\x04" * 32, p)
    twin = Work(work.a.copy(), work.b.copy())
    b = work.b.copy()
    b[0, 0] ^= 1
    changed = Work(work.a, b)
    with pytest.raises(ValueError, match="read-only"):
        changed.b[0, 0] = 0  # a value: what was hashed stays what it is
    assert work_digest(work) == work_digest(twin) != work_digest(changed)
    assert work_digest(work) is work_digest(work)  # computed once a Work
    s0, s1, s2 = (attempt_seed(b"names", nonce) for nonce in (0, 1, 2))
    e0, f0 = side_tokens(work, s0, 16)
    e1, f1 = side_tokens(work, s1, 16)
    e2, f2 = side_tokens(work, s2, 16)
    assert (e0 != e1, f0 == f1, e1 == e2, f1 != f2) == (True, True, True, True)
    assert side_tokens(work, s1, 16) != side_tokens(work, s1, 32)
    assert side_tokens(work, s1, 16) != side_tokens(changed, s1, 16)
    assert e0 != f0  # the two sides' tokens never meet
    gone = Work(work.a.copy(), work.b.copy())
    held = id(gone)
    work_digest(gone)
    assert held in _work._digests
    del gone
    gc.collect()
    assert held not in _work._digests  # forgotten with its Work


def test_fused_attempt_refuses_bad_shapes() -> None:
    z = lambda *shape: np.zeros(shape, np.int8)  # noqa: E731
    n, k, m, r = 32, 48, 64, 16
    good = [z(n, k), z(k, m), z(n, r), z(k, r), z(k, r), z(m, r)]
    for at, wrong, name in [
        (1, z(k + 1, m), "B is"),
        (3, z(k, r + 1), "E_Rᵀ is"),
        (5, z(r, m), "F_Rᵀ is"),
    ]:
        args = list(good)
        args[at] = wrong
        with pytest.raises(ValueError, match=name):
            bcai_native.pouw_attempt_leaves(*args, tile=16, key=0)
    with pytest.raises(ValueError, match="equal the rank"):
        bcai_native.pouw_attempt_leaves(*good, tile=32, key=0)


@pytest.mark.skipif(not has_avx2(), reason="the AVX2 kernel needs AVX2")
def test_bare_avx2_product_is_exact() -> None:
    rng = np.random.default_rng(5)
    a = rng.integers(-128, 128, (64, 200)).astype(np.int8)
    b = rng.integers(-128, 128, (200, 96)).astype(np.int8)
    want = a.astype(np.int64) @ b.astype(np.int64)
    bt = np.ascontiguousarray(b.T)
    assert np.array_equal(bcai_native.pouw_product(a, bt, tile=32), want)
    out = np.full((64, 96), 7, np.int32)
    assert bcai_native.pouw_product(a, bt, tile=32, out=out) is out
    assert np.array_equal(out, want)
    worst = np.full((16, 4096), 127, np.int8)
    assert (bcai_native.pouw_product(worst, -worst[:16], tile=16) == -(127**2) * 4096).all()
    with pytest.raises(ValueError, match="even inner"):
        bcai_native.pouw_product(a[:, :199], bt[:, :199], tile=32)
    with pytest.raises(ValueError, match="C-contiguous int32"):
        bcai_native.pouw_product(a, bt, tile=32, out=np.zeros((96, 64), np.int32))
    with pytest.raises(ValueError, match="multiple of 16"):
        bcai_native.pouw_product(a, bt, tile=8)
    with pytest.raises(ValueError, match="could overflow"):
        wide = np.zeros((16, 131_072 + 2), np.int8)
        bcai_native.pouw_product(wide, wide, tile=16)
