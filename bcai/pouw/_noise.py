"""Per-attempt randomness: the attempt's seed σ = BLAKE3(header's seal
prefix ‖ nonce) (its digest keys), the seeds of its two noise sides, the
low-rank ternary noise they fix, and the noisy operands.

E (the left side) comes from σ_E = BLAKE3("bcai/pouw/noise E" ‖ prefix ‖
⌈nonce/2⌉) and F (the right side) from σ_F = BLAKE3("bcai/pouw/noise F" ‖
prefix ‖ ⌊nonce/2⌋): neighbouring nonces share one side (nonce 2j − 1 and
2j share E, 2j and 2j + 1 share F), so a miner taking nonces in order forms
one noisy operand an attempt, not two. Every attempt still has one side
fresh against its neighbours and its own digest keys; docs/pouw.md
("Neighbouring nonces share one noise side") counts what reusing the other
side offers a cheater: additions in place of multiply-adds, a loss on a GPU.

E = E_L·E_R (n×k) and F = F_L·F_R (k×m) with E_L (n×r), E_R (r×k), F_L
(k×r), F_R (r×m) in {−1, 0, 1}, each factor read from BLAKE3's XOF under its
own derive-key context, always as a matrix with r columns, row by row: E_L
(n×r), E_Rᵀ (k×r), F_L (k×r) and F_Rᵀ (m×r) — the rank index fastest, the
layout tensor cores take (K-major) for both noise products. E_R and F_L
are dense: two bits per entry (00, 11 → 0; 01 → 1; 10 → −1). So are E_L and
F_R while r <= 64. For r > 64 (g = r/64, a power of two) a row of E_L — and
a column of F_R, a row of F_Rᵀ — has exactly 64 non-zeros ±1: 64 XOF bytes
per row, byte j placing SIGN[byte & 1] (+1, −1) at column
j·g + ((byte >> 1) & (g − 1)).
Either way every entry of E and F is a sum of at most 64 terms ±1, so |E|, |F| <= 64
and A' = A + E, B' = B + F stay within int8 when |A|, |B| <= 63.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bcai import kernels
from bcai.crypto import blake3, blake3_xof, derive_key
from bcai.pouw._params import MAX_NOISE_TERMS

I8 = npt.NDArray[np.int8]
TERNARY = np.array([0, 1, -1, 0], dtype=np.int8)
SIGN = np.array([1, -1], dtype=np.int8)
# each XOF byte gives four entries, low bits first: a lookup table of the
# four int8 entries of every byte, packed in one uint32 (a fast gather)
BYTE_TO_4 = np.ascontiguousarray(
    TERNARY[(np.arange(256)[:, None] >> np.array([0, 2, 4, 6])) & 3]
).view(np.uint32)[:, 0]


MAX_NONCE = 2**64 - 1


@dataclass(frozen=True)
class Seed:
    """One attempt's randomness: σ (`attempt`, its digest keys) and the
    seeds of its noise sides, σ_E (`e`: E_L, E_R) and σ_F (`f`: F_L, F_R)."""

    attempt: bytes
    e: bytes
    f: bytes


def side_seed(side: str, prefix: bytes, index: int) -> bytes:
    """σ_E (`side` "E", index ⌈nonce/2⌉) or σ_F ("F", ⌊nonce/2⌋)."""
    return blake3(b"bcai/pouw/noise " + side.encode() + prefix + index.to_bytes(8, "big"))


def attempt_seed(prefix: bytes, nonce: int) -> Seed:
    """The seeds of one attempt: from the header up to its seal, and the nonce."""
    if not 0 <= nonce <= MAX_NONCE:
        raise ValueError(f"a nonce is a 64-bit unsigned integer, got {nonce}")
    return Seed(
        blake3(b"bcai/pouw/seed" + prefix + nonce.to_bytes(8, "big")),
        side_seed("E", prefix, (nonce + 1) // 2),
        side_seed("F", prefix, nonce // 2),
    )


def ternary(seed: bytes, context: str, rows: int, cols: int) -> I8:
    """A rows×cols matrix in {−1, 0, 1} from the XOF of `seed` under `context`."""
    key = derive_key(context, seed)
    raw = np.frombuffer(blake3_xof(key, (rows * cols + 3) // 4), dtype=np.uint8)
    return np.take(BYTE_TO_4, raw).view(np.int8)[: rows * cols].reshape(rows, cols)


@functools.cache
def _byte_groups(g: int) -> I8:
    """The g entries (one group of columns) that each XOF byte of a sparse
    factor writes: SIGN[byte & 1] at offset (byte >> 1) & (g − 1)."""
    groups = np.zeros((256, g), np.int8)
    byte = np.arange(256)
    groups[byte, (byte >> 1) & (g - 1)] = SIGN[byte & 1]
    return groups


def sparse_ternary(seed: bytes, context: str, rows: int, rank: int) -> I8:
    """A rows×rank matrix in {−1, 0, 1} with exactly 64 non-zeros per row
    (±1, so that skipping zeros saves a cheater nothing): row i from XOF
    bytes [64·i, 64·i + 64); byte j puts SIGN[byte & 1] (+1 for 0, −1 for 1)
    in column j·g + ((byte >> 1) & (g − 1)), g = rank / 64 (a power of two),
    and zeros in the rest of its group of g columns."""
    g = rank // MAX_NOISE_TERMS
    if g < 1 or g & (g - 1) or rank % MAX_NOISE_TERMS:
        raise ValueError(f"sparse noise needs a rank of 64 times a power of two, got {rank}")
    key = derive_key(context, seed)
    raw = np.frombuffer(blake3_xof(key, rows * MAX_NOISE_TERMS), dtype=np.uint8)
    return np.take(_byte_groups(g), raw, axis=0).reshape(rows, rank)


CONTEXT = "bcai 2026-11 pouw noise "


def _outer(seed: bytes, name: str, rows: int, rank: int) -> I8:
    """E_L or F_Rᵀ: dense while r <= 64, else 64 non-zeros ±1 a row."""
    if rank <= MAX_NOISE_TERMS:
        return ternary(seed, CONTEXT + name, rows, rank)
    return sparse_ternary(seed, CONTEXT + name, rows, rank)


def _frozen(*factors: I8) -> tuple[I8, ...]:
    for factor in factors:
        factor.setflags(write=False)  # cached: shared by the attempts of one side seed
    return factors


# a side's factors serve two neighbouring nonces: kept for the next attempt (a miner taking
# nonces in order derives one side an attempt, not two)
@functools.lru_cache(maxsize=4)
def left_factors(seed_e: bytes, n: int, k: int, rank: int) -> tuple[I8, ...]:
    """E_L (n×r) and E_Rᵀ (k×r) from σ_E (read-only)."""
    return _frozen(_outer(seed_e, "E_L", n, rank), ternary(seed_e, CONTEXT + "E_R", k, rank))


@functools.lru_cache(maxsize=4)
def right_factors(seed_f: bytes, k: int, m: int, rank: int) -> tuple[I8, ...]:
    """F_Rᵀ (m×r) and F_L (k×r) from σ_F (read-only)."""
    return _frozen(_outer(seed_f, "F_R", m, rank), ternary(seed_f, CONTEXT + "F_L", k, rank))


@dataclass(frozen=True)
class Noise:
    e_l: I8  # n×r
    e_r: I8  # r×k (a transposed view: E_Rᵀ is what the XOF fills)
    f_l: I8  # k×r
    f_r: I8  # r×m (a transposed view, likewise)

    @classmethod
    def derive(cls, seed: Seed, n: int, k: int, m: int, rank: int) -> Noise:
        # every factor generated with r columns: E_R and F_R as their
        # transposes (held as transposed views)
        e_l, e_rt = left_factors(seed.e, n, k, rank)
        f_rt, f_l = right_factors(seed.f, k, m, rank)
        return cls(e_l, e_rt.T, f_l, f_rt.T)

    def e_rows(self, rows: slice, upto: int | None = None) -> npt.NDArray[np.int32]:
        """E[rows, :upto]."""
        e_r = np.ascontiguousarray(self.e_r[:, :upto]) if upto is not None else self.e_r
        return kernels.matmul_i8(np.ascontiguousarray(self.e_l[rows]), e_r)

    def f_cols(self, cols: slice, upto: int | None = None) -> npt.NDArray[np.int32]:
        """F[:upto, cols]."""
        f_l = self.f_l[:upto] if upto is not None else self.f_l
        return kernels.matmul_i8(f_l, np.ascontiguousarray(self.f_r[:, cols]))


def noisy(a: I8, b: I8, noise: Noise) -> tuple[I8, I8]:
    """A' = A + E and B' = B + F (int8: every entry within ±127)."""
    e = kernels.matmul_i8(noise.e_l, noise.e_r)
    f = kernels.matmul_i8(noise.f_l, noise.f_r)
    return (a + e).astype(np.int8), (b + f).astype(np.int8)


def noisy_rows(a_rows: I8, noise: Noise, rows: slice, upto: int | None = None) -> I8:
    """Rows of A' (for a spot check), their first `upto` columns (all by
    default; `a_rows` has that many), in O(rows·r·upto)."""
    return (a_rows + noise.e_rows(rows, upto)).astype(np.int8)


def noisy_cols(b_cols: I8, noise: Noise, cols: slice, upto: int | None = None) -> I8:
    """Columns of B', their first `upto` rows (all by default; `b_cols` has
    that many), in O(upto·r·cols)."""
    return (b_cols + noise.f_cols(cols, upto)).astype(np.int8)
