"""The transcript: a digest of every running partial sum of A'·B', per b×b
output tile and per b-wide slice of the inner dimension, as the leaves of a
Merkle tree.

Leaf (ℓ, I, J), at index (ℓ·(n/b) + I)·(m/b) + J, digests the tile (I, J)
of S_ℓ = A'[:, :(ℓ+1)b] · B'[:(ℓ+1)b, :] (int32, exact). The digest of a
tile with entries x_0 … x_{b²−1} (row-major, as uint32) under the
attempt's keys κ and λ (32 bits each) is

    y_e = (x_e + κ + e·0x9E3779B9) mod 2^32,
    d = Σ_i (y_{2i} XOR λ) · y_{2i+1}  mod 2^32     (i < b²/2)

— neighbouring entries of a row in pairs, the first of each XORed with λ:
non-linear in the entries (no polynomial over the integers mod 2^32 gives
it: the quadratic-form expansions of a product of (P + N) terms are not
available), every entry needed exactly (half of them through the XOR, the
other half as factors of a product with those), position-dependent, keyed
per nonce, independent of summation order (a GPU may add in any order), and
one 32-bit integer instruction per entry and slice on a GPU: an int32
accumulator that starts at κ + e·0x9E3779B9 instead of 0 already holds y_e
(int32 accumulation wraps mod 2^32); then one XOR and one multiply-add a
pair. A leaf is d as 4 little-endian bytes. (v2 was Σ_e (y_e XOR λ)²: two
instructions an entry, ≈ 1.10x the bare product on an H100 against 0.90x;
docs/pouw.md.)

This module is the reference (NumPy, `bcai.kernels.matmul_i8`); the miners
(`bcai.mining`, Rust threads and CUDA) must produce the same bytes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bcai import kernels
from bcai.crypto import derive_key
from bcai.pouw._noise import Seed

PHI = 0x9E3779B9
LEAF_BYTES = 4


def digest_key(seed: Seed) -> int:
    """κ + 2³²·λ of an attempt: the first 8 bytes of the digest key from
    its σ, little-endian (κ the low 32 bits, λ the high 32)."""
    return int.from_bytes(derive_key("bcai 2026-11 pouw digest key", seed.attempt, 8), "little")


def _offsets(tile: int, key: int) -> npt.NDArray[np.uint32]:
    e = np.arange(tile * tile, dtype=np.uint64)
    return (((key & 0xFFFFFFFF) + e * PHI) & 0xFFFFFFFF).astype(np.uint32)


def tile_digests(s: npt.NDArray[np.int32], tile: int, key: int) -> npt.NDArray[np.uint32]:
    """Digests of every b×b tile of `s` (n×m), in row-major tile order."""
    n, m = s.shape
    tiles = s.reshape(n // tile, tile, m // tile, tile).transpose(0, 2, 1, 3)
    flat = np.ascontiguousarray(tiles).reshape(-1, tile * tile).view(np.uint32)
    y = flat + _offsets(tile, key)  # uint32: wraps mod 2^32
    z = y[:, 0::2] ^ np.uint32(key >> 32)
    out: npt.NDArray[np.uint32] = (z * y[:, 1::2]).sum(axis=1, dtype=np.uint32)
    return out


def transcript(a2: npt.NDArray[np.int8], b2: npt.NDArray[np.int8], tile: int, key: int) -> bytes:
    """All leaves of the noisy operands' transcript, concatenated."""
    n, k = a2.shape
    s = np.zeros((n, b2.shape[1]), np.int32)
    out = []
    for start in range(0, k, tile):
        s += kernels.matmul_i8(
            np.ascontiguousarray(a2[:, start : start + tile]),
            np.ascontiguousarray(b2[start : start + tile]),
        )
        out.append(tile_digests(s, tile, key).astype("<u4").tobytes())
    return b"".join(out)


def leaf_count(n: int, k: int, m: int, tile: int) -> int:
    return (k // tile) * (n // tile) * (m // tile)


def leaf_position(index: int, n: int, m: int, tile: int) -> tuple[int, int, int]:
    """(ℓ, I, J) of a leaf index."""
    per_slice = (n // tile) * (m // tile)
    step, rest = divmod(index, per_slice)
    return step, rest // (m // tile), rest % (m // tile)


def partial_tile(
    a_rows: npt.NDArray[np.int8], b_cols: npt.NDArray[np.int8], step: int, tile: int, key: int
) -> bytes:
    """The leaf of one tile after slice `step`, from its rows of A' (b×k)
    and columns of B' (k×b): O(b²·(step+1)·b)."""
    upto = (step + 1) * tile
    s = kernels.matmul_i8(
        np.ascontiguousarray(a_rows[:, :upto]), np.ascontiguousarray(b_cols[:upto])
    )
    return tile_digests(s, tile, key).astype("<u4").tobytes()
