"""The PoUW seal: its encoding, the ticket, the positions it opens, and its
verification (docs/pouw.md is the specification).

Ticket = BLAKE3("bcai/pouw/ticket" ‖ seal prefix ‖ nonce ‖ root ‖ product id),
read as a big-endian integer, must be at most the header's target (the
product is fixed before the ticket, hence before the Freivalds vectors and
the opened tiles the ticket picks). The ticket's XOF
picks `checks` intermediate leaves (slices 0 … K−2) and `checks` final
leaves (slice K−1), with replacement; the seal carries their leaves and
Merkle paths, in that order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

import bcai_native
from bcai import codec, kernels
from bcai.crypto import blake3, blake3_xof, merkle_root_packed, merkle_verify
from bcai.pouw._errors import InvalidSeal
from bcai.pouw._noise import Noise, Seed, attempt_seed, noisy, noisy_cols, noisy_rows
from bcai.pouw._params import PouwParams
from bcai.pouw._transcript import (
    LEAF_BYTES,
    digest_key,
    leaf_count,
    leaf_position,
    partial_tile,
    tile_digests,
    transcript,
)
from bcai.pouw._work import Work, check_work, work_digest

MAX_CHECKS = 64
MAX_DEPTH = 48
HASH = codec.FixedBytes(32)


@dataclass(frozen=True)
class Opening(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/pouw/opening"
    leaf: bytes = codec.field(codec.FixedBytes(LEAF_BYTES))
    path: tuple[bytes, ...] = codec.field(codec.ListOf(HASH, MAX_DEPTH))


@dataclass(frozen=True)
class PouwSeal(codec.Record):
    """What a block's `seal` field holds. `job`: the MatMul job sealed (zero:
    matrices derived from the parent); `product`: content id of C = A·B for a
    job (zero otherwise)."""

    DOMAIN: ClassVar[bytes] = b"bcai/pouw/seal"
    nonce: int = codec.field(codec.U64)
    job: bytes = codec.field(HASH)
    product: bytes = codec.field(HASH)
    root: bytes = codec.field(HASH)
    openings: tuple[Opening, ...] = codec.field(
        codec.ListOf(codec.RecordCodec(Opening), 2 * MAX_CHECKS)
    )


def ticket(prefix: bytes, nonce: int, root: bytes, product: bytes = bytes(32)) -> bytes:
    return blake3(b"bcai/pouw/ticket" + prefix + nonce.to_bytes(8, "big") + root + product)


def challenges(ticket_: bytes, n: int, k: int, m: int, params: PouwParams) -> list[int]:
    """Leaf indices to open: `checks` intermediate, then `checks` final."""
    b, s = params.tile, params.checks
    tiles = (n // b) * (m // b)
    slices = k // b
    raw = blake3_xof(b"bcai/pouw/challenge" + ticket_, 16 * s)
    draws = [int.from_bytes(raw[8 * i : 8 * i + 8], "big") for i in range(2 * s)]
    intermediate = [d % ((slices - 1) * tiles) for d in draws[:s]] if slices > 1 else []
    final = [(slices - 1) * tiles + d % tiles for d in draws[s:]]
    return intermediate + final


@dataclass(frozen=True)
class Attempt:
    """One attempt's transcript (a miner's result before it knows the ticket)."""

    nonce: int
    leaves: bytes
    root: bytes
    ticket: bytes


def attempt(
    prefix: bytes, nonce: int, work: Work, params: PouwParams, product: bytes = bytes(32)
) -> Attempt:
    """One attempt with the reference transcript (NumPy)."""
    n, k, m = work.shape
    seed = attempt_seed(prefix, nonce)
    a2, b2 = noisy(work.a, work.b, Noise.derive(seed, n, k, m, params.tile))
    leaves = transcript(a2, b2, params.tile, digest_key(seed))
    root = merkle_root_packed(leaves, LEAF_BYTES)
    return Attempt(nonce, leaves, root, ticket(prefix, nonce, root, product))


def make_seal(
    prefix: bytes, found: Attempt, work: Work, params: PouwParams, product: bytes = bytes(32)
) -> PouwSeal:
    """The seal of an attempt whose ticket met the target: the openings."""
    n, k, m = work.shape
    leaves = [found.leaves[i : i + LEAF_BYTES] for i in range(0, len(found.leaves), LEAF_BYTES)]
    openings = tuple(
        Opening(leaves[i], tuple(bcai_native.merkle_proof(leaves, i)))
        for i in challenges(found.ticket, n, k, m, params)
    )
    return PouwSeal(found.nonce, work.job, product, found.root, openings)


def verify(
    prefix: bytes,
    target: int,
    seal: PouwSeal,
    work: Work,
    params: PouwParams,
    product: npt.NDArray[np.int32] | None = None,
) -> None:
    """Raises InvalidSeal unless the seal is valid for the header whose seal
    prefix is `prefix`. `product`: C for a job (Freivalds + final tiles)."""
    check_work(work, params)
    n, k, m = work.shape
    b = params.tile
    if seal.job != work.job:
        raise InvalidSeal("pouw-job", "the seal names another job")
    if (seal.product == bytes(32)) != (work.job == bytes(32)):
        raise InvalidSeal("pouw-product", "a job's seal names its product, a derived one none")
    t = ticket(prefix, seal.nonce, seal.root, seal.product)
    if int.from_bytes(t, "big") > target:
        raise InvalidSeal("pouw-ticket", "the ticket is above the target")
    indices = challenges(t, n, k, m, params)
    if len(seal.openings) != len(indices):
        raise InvalidSeal(
            "pouw-openings", f"{len(seal.openings)} openings, expected {len(indices)}"
        )
    if (product is None) != (work.job == bytes(32)):
        raise InvalidSeal("pouw-product", "a job's seal needs its product, a derived one none")
    if product is not None:
        if product.shape != (n, m) or product.dtype != np.int32:
            raise InvalidSeal("pouw-product", f"product is {product.shape}, expected {(n, m)}")
        if not bcai_native.freivalds_check(work.a, work.b, product, rounds=params.rounds, seed=t):
            raise InvalidSeal("pouw-freivalds", "the posted product is not A·B")
    seed = attempt_seed(prefix, seal.nonce)
    noise = Noise.derive(seed, n, k, m, b)
    key = digest_key(seed)
    size = leaf_count(n, k, m, b)
    final_step = k // b - 1
    for index, opening in zip(indices, seal.openings, strict=True):
        step, i, j = leaf_position(index, n, m, b)
        rows, cols = slice(i * b, (i + 1) * b), slice(j * b, (j + 1) * b)
        if step == final_step and product is not None:
            b_cols = noisy_cols(np.ascontiguousarray(work.b[:, cols]), noise, cols)
            leaf = _final_from_product(product, work, noise, b_cols, rows, cols, key, b)
        else:  # S_step needs only the first (step + 1)·b columns of A' and rows of B'
            upto = (step + 1) * b
            b_cols = noisy_cols(np.ascontiguousarray(work.b[:upto, cols]), noise, cols, upto)
            a_rows = noisy_rows(work.a[rows, :upto], noise, rows, upto)
            leaf = partial_tile(a_rows, b_cols, step, b, key)
        if leaf != opening.leaf:
            code = "pouw-final-tile" if step == final_step else "pouw-spot-check"
            raise InvalidSeal(code, f"leaf {index} (slice {step}, tile {i},{j}) does not match")
        if not merkle_verify(seal.root, opening.leaf, index, size, opening.path):
            raise InvalidSeal("pouw-merkle-path", f"leaf {index} is not under the root")


def _final_from_product(
    c: npt.NDArray[np.int32],
    work: Work,
    noise: Noise,
    b_cols: npt.NDArray[np.int8],
    rows: slice,
    cols: slice,
    key: int,
    tile: int,
) -> bytes:
    """Final leaf of a tile from the posted product: C' = C + A·F + E·B'
    restricted to the tile (float64 products: every sum is exact)."""
    a_rows = work.a[rows].astype(np.float64)
    af = a_rows @ noise.f_cols(cols).astype(np.float64)
    eb = noise.e_rows(rows).astype(np.float64) @ b_cols.astype(np.float64)
    tile_c = c[rows, cols].astype(np.int64) + af.astype(np.int64) + eb.astype(np.int64)
    if np.abs(tile_c).max() >= 2**31:
        return b""  # impossible for a true product: the leaf will not match
    return tile_digests(tile_c.astype(np.int32), tile, key).astype("<u4").tobytes()


def side_tokens(work: Work, seed: Seed, tile: int) -> tuple[bytes, bytes]:
    """What each noisy operand is formed from — the matrices, the side's
    noise seed (σ_E for A', σ_F for B') and the rank — as the tokens under
    which the native attempt keeps a side that repeats: with nonces in
    order one side a nonce is formed, not two."""
    name = work_digest(work) + tile.to_bytes(4, "big")
    return name + b"E" + seed.e, name + b"F" + seed.f


def fused_attempt_leaves(
    work: Work, noise: Noise, tile: int, key: int, held: tuple[bytes, bytes] | None = None
) -> bytes | None:
    """The leaves from one native call (noise products, noisy operands,
    AVX2 transcript); None where that kernel does not apply. With `held`
    (`side_tokens` of the noise's seed) a side formed under the same token
    by the call before is kept."""
    leaves = bcai_native.pouw_attempt_leaves(
        work.a,
        work.b,
        noise.e_l,
        np.ascontiguousarray(noise.e_r.T),  # E_Rᵀ as generated: no copy
        noise.f_l,
        np.ascontiguousarray(noise.f_r.T),
        tile=tile,
        key=key,
        held=held,
    )
    return None if leaves is None else bytes(leaves)


def host_attempt_leaves(work: Work, seed: Seed, params: PouwParams) -> bytes:
    """An attempt's leaves on the host, all cores (Rust, byte-identical to
    the reference): with AVX2 and b a multiple of 16 the noise products,
    noisy operands and transcript are one native call on the `vpmaddwd`
    kernel, which keeps the noisy operand whose side seed repeats from the
    call before (`side_tokens`); otherwise NumPy builds A', B' and the
    portable kernel runs.
    The CPU miner's attempt and full re-verification."""
    n, k, m = work.shape
    noise = Noise.derive(seed, n, k, m, params.tile)
    key = digest_key(seed)
    held = side_tokens(work, seed, params.tile)
    fused = fused_attempt_leaves(work, noise, params.tile, key, held)
    if fused is not None:
        return fused
    a2, b2 = noisy(work.a, work.b, noise)
    return bytes(
        bcai_native.pouw_transcript(a2, np.ascontiguousarray(b2.T), tile=params.tile, key=key)
    )


AttemptLeaves = Callable[[Work, Seed, PouwParams], bytes]


def full_verify(
    prefix: bytes,
    seal: PouwSeal,
    work: Work,
    params: PouwParams,
    leaves_of: AttemptLeaves | None = None,
) -> None:
    """Re-verification in full: recomputes the whole transcript and its
    root — one attempt, by `leaves_of(work, seed, params)` (a miner's
    `attempt_leaves`, every backend's byte-identical) or on the host
    (`host_attempt_leaves`; n = 4096 on the H100 machine's 16-core host:
    0.13–0.22 s, on its GPU 0.8–1.3 ms). Raises ``pouw-full-mismatch``."""
    seed = attempt_seed(prefix, seal.nonce)
    leaves = (leaves_of or host_attempt_leaves)(work, seed, params)
    if merkle_root_packed(leaves, LEAF_BYTES) != seal.root:
        raise InvalidSeal("pouw-full-mismatch", "the transcript's root differs")


def work_product(work: Work) -> npt.NDArray[np.int32]:
    """C = A·B, exact."""
    return kernels.matmul_i8(work.a, work.b)


def recover_product(
    noisy_product: npt.NDArray[np.int32], work: Work, noise: Noise
) -> npt.NDArray[np.int32]:
    """C = A·B from an attempt's noisy product A'B' (int32, n×m) and its
    noise: C = A'B' − A·F − E·B' with A·F = (A·F_L)·F_R and E·B' =
    E_L·(E_R·B'), O((n + m)·k·r + n·m·r) against n·k·m for the product.
    Float64 products, exact: every partial sum is below k·127·r < 2⁵³.
    Raises ``pouw-shape`` for a noisy product or noise of another shape,
    ``pouw-overflow`` when the result is no int32 product (A'B' was not
    the noisy product of this work)."""
    n, k, m = work.shape
    r = noise.e_l.shape[1]
    shapes = (noise.e_l.shape, noise.e_r.shape, noise.f_l.shape, noise.f_r.shape)
    if noisy_product.shape != (n, m) or shapes != ((n, r), (r, k), (k, r), (r, m)):
        raise InvalidSeal(
            "pouw-shape",
            f"a {noisy_product.shape} noisy product and noise {shapes} for {n}×{k}×{m}",
        )
    _, b2 = noisy(work.a, work.b, noise)
    af = (work.a.astype(np.float64) @ noise.f_l.astype(np.float64)) @ noise.f_r.astype(np.float64)
    eb = noise.e_l.astype(np.float64) @ (noise.e_r.astype(np.float64) @ b2.astype(np.float64))
    c = noisy_product.astype(np.int64) - af.astype(np.int64) - eb.astype(np.int64)
    if c.size and np.abs(c).max() >= 2**31:
        raise InvalidSeal("pouw-overflow", "the recovered product is out of int32: not this work's")
    return c.astype(np.int32)


def leaves_list(leaves: bytes) -> Sequence[bytes]:
    return [leaves[i : i + LEAF_BYTES] for i in range(0, len(leaves), LEAF_BYTES)]
