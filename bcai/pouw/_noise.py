"""Per-attempt randomness: the seed σ = BLAKE3(header's seal prefix ‖
nonce), the low-rank ternary noise it fixes, and the noisy operands.

E = E_L·E_R (n×k) and F = F_L·F_R (k×m) with E_L (n×r), E_R (r×k), F_L
(k×r), F_R (r×m) in {−1, 0, 1}: each factor is read from BLAKE3's XOF under
its own derive-key context, two bits per entry (00, 11 → 0; 01 → 1;
10 → −1). With r <= 64, |E|, |F| <= r <= 64, so A' = A + E and B' = B + F
stay within int8 when |A|, |B| <= 63.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from bcai import kernels
from bcai.crypto import blake3, blake3_xof, derive_key

I8 = npt.NDArray[np.int8]
TERNARY = np.array([0, 1, -1, 0], dtype=np.int8)
# each XOF byte gives four entries, low bits first: a lookup table of the
# four int8 entries of every byte, packed in one uint32 (a fast gather)
BYTE_TO_4 = np.ascontiguousarray(
    TERNARY[(np.arange(256)[:, None] >> np.array([0, 2, 4, 6])) & 3]
).view(np.uint32)[:, 0]


def attempt_seed(prefix: bytes, nonce: int) -> bytes:
    """σ of one attempt: the header up to its seal, and the nonce."""
    return blake3(b"bcai/pouw/seed" + prefix + nonce.to_bytes(8, "big"))


def ternary(seed: bytes, context: str, rows: int, cols: int) -> I8:
    """A rows×cols matrix in {−1, 0, 1} from the XOF of `seed` under `context`."""
    key = derive_key(context, seed)
    raw = np.frombuffer(blake3_xof(key, (rows * cols + 3) // 4), dtype=np.uint8)
    return np.take(BYTE_TO_4, raw).view(np.int8)[: rows * cols].reshape(rows, cols)


@dataclass(frozen=True)
class Noise:
    e_l: I8  # n×r
    e_r: I8  # r×k
    f_l: I8  # k×r
    f_r: I8  # r×m

    @classmethod
    def derive(cls, seed: bytes, n: int, k: int, m: int, rank: int) -> Noise:
        return cls(
            ternary(seed, "bcai 2026-11 pouw noise E_L", n, rank),
            ternary(seed, "bcai 2026-11 pouw noise E_R", rank, k),
            ternary(seed, "bcai 2026-11 pouw noise F_L", k, rank),
            ternary(seed, "bcai 2026-11 pouw noise F_R", rank, m),
        )

    def e_rows(self, rows: slice) -> npt.NDArray[np.int32]:
        return kernels.matmul_i8(np.ascontiguousarray(self.e_l[rows]), self.e_r)

    def f_cols(self, cols: slice) -> npt.NDArray[np.int32]:
        return kernels.matmul_i8(self.f_l, np.ascontiguousarray(self.f_r[:, cols]))


def noisy(a: I8, b: I8, noise: Noise) -> tuple[I8, I8]:
    """A' = A + E and B' = B + F (int8: every entry within ±127)."""
    e = kernels.matmul_i8(noise.e_l, noise.e_r)
    f = kernels.matmul_i8(noise.f_l, noise.f_r)
    return (a + e).astype(np.int8), (b + f).astype(np.int8)


def noisy_rows(a_rows: I8, noise: Noise, rows: slice) -> I8:
    """Rows of A' (for a spot check) in O(rows·r·k)."""
    return (a_rows + noise.e_rows(rows)).astype(np.int8)


def noisy_cols(b_cols: I8, noise: Noise, cols: slice) -> I8:
    """Columns of B' in O(k·r·cols)."""
    return (b_cols + noise.f_cols(cols)).astype(np.int8)
