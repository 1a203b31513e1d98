"""BLAKE3 on the GPU for the miner (native/cuda/blake3.cu through CuPy): an
attempt's noise factors from the XOF and the Merkle root of its leaves,
computed where the transcript is, so that an attempt sends the host only
its leaves and root (byte for byte the host's `Noise.derive` and
`merkle_root_packed`; tests/pouw/test_gpu.py)."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import numpy as np

from bcai.crypto import derive_key
from bcai.pouw._noise import CONTEXT, Seed
from bcai.pouw._params import MAX_NOISE_TERMS

try:
    import cupy
except ImportError:  # pragma: no cover - cupy is the `gpu` extra
    cupy = None

SPAN = 2048  # hashes one thread block of bcai_merkle_span reduces (SPAN / 2 threads)
THREADS = 256  # a block of the noise kernel


@functools.cache
def _module() -> Any:
    source = resources.files("bcai.mining").joinpath("cuda/blake3.cu").read_text()
    return cupy.RawModule(code=source, options=("-std=c++14",))


@functools.cache
def merkle_keys() -> Any:
    """K_leaf and K_node (16 uint32) on the device, uploaded at first use."""
    words = b"".join(derive_key(f"bcai 2026-11 merkle {kind}", b"") for kind in ("leaf", "node"))
    return cupy.asarray(np.frombuffer(words, "<u4"))


def noise_keys(seed: Seed) -> bytes:
    """The XOF inputs of E_L, E_R (derive_key(context, σ_E) each), F_R and
    F_L (from σ_F)."""
    return b"".join(
        derive_key(CONTEXT + name, side)
        for name, side in (("E_L", seed.e), ("E_R", seed.e), ("F_R", seed.f), ("F_L", seed.f))
    )


def noise_shapes(n: int, k: int, m: int, rank: int) -> tuple[list[int], int]:
    """The factors' shapes as the noise kernel generates them (rows, cols,
    sparse: 12 integers) and the number of XOF blocks of the largest."""
    sparse = rank > MAX_NOISE_TERMS
    if sparse and rank != 128:
        raise ValueError(f"the GPU noise kernel takes sparse rank 128 only, got {rank}")
    shapes = [
        (n, rank, int(sparse)),  # E_L
        (k, rank, 0),  # E_Rᵀ
        (m, rank, int(sparse)),  # F_Rᵀ
        (k, rank, 0),  # F_L
    ]
    blocks = max(rows if sp else (rows * cols + 255) // 256 for rows, cols, sp in shapes)
    return [x for shape in shapes for x in shape], blocks


def noise_spec(seed: Seed, n: int, k: int, m: int, rank: int) -> tuple[bytes, list[int], int]:
    """What the noise kernel needs for one attempt: the four XOF keys (128
    bytes, `noise_keys`), and `noise_shapes`."""
    shapes, blocks = noise_shapes(n, k, m, rank)
    return noise_keys(seed), shapes, blocks


def factor_buffers(n: int, k: int, m: int, rank: int) -> list[Any]:
    """Device int8 arrays for the factors as the noise kernel writes them,
    each with r columns: E_L (n×r), E_Rᵀ (k×r), F_Rᵀ (m×r), F_L (k×r)."""
    return [cupy.empty((rows, rank), cupy.int8) for rows in (n, k, m, k)]


def host_layout(factors: list[Any]) -> tuple[Any, Any, Any, Any]:
    """E_L, E_R, F_R, F_L (E_R and F_R transposed views) from
    `factor_buffers`, as `Noise` holds them."""
    return factors[0], factors[1].T, factors[2].T, factors[3]


BOTH, LEFT, RIGHT = (0, 4), (0, 2), (2, 2)  # the factors of both sides, of E, of F


def launch_noise(
    keys: Any,
    shapes: Any,
    out: list[Any],
    blocks: int,
    grid: int | None = None,
    factors: tuple[int, int] = BOTH,
) -> None:
    """The noise kernel on CuPy's current stream: `keys` (32 uint32) and
    `shapes` (12 int32) on the device, into the four `factor_buffers` — or
    only those of one side (`factors` LEFT: E_L and E_Rᵀ; RIGHT: F_Rᵀ and
    F_L); at most `grid` thread blocks a factor when given (so that it
    keeps to a few SMs beside another kernel)."""
    first, count = factors
    chosen = out[first : first + count]
    pointers = chosen + chosen[:1] * (4 - count)  # the kernel's unused pointers: any buffer
    grid_x = (blocks + THREADS - 1) // THREADS
    _module().get_function("bcai_noise")(
        (grid_x if grid is None else max(1, min(grid_x, grid)), count),
        (THREADS,),
        (keys[8 * first :], shapes[3 * first :], *pointers),
    )


def noise_factors(seed: Seed, n: int, k: int, m: int, rank: int) -> tuple[Any, Any, Any, Any]:
    """E_L (n×r), E_R (r×k), F_L (k×r) and F_R (r×m) of `Noise.derive` as
    int8 device arrays (E_R and F_R transposed views), on CuPy's current
    stream."""
    keys, shapes, blocks = noise_spec(seed, n, k, m, rank)
    out = factor_buffers(n, k, m, rank)
    words = cupy.asarray(np.frombuffer(keys, "<u4"))
    launch_noise(words, cupy.asarray(np.array(shapes, np.int32)), out, blocks)
    return host_layout(out)


def merkle_scratch(count: int) -> list[Any]:
    """The device buffers `merkle_root` uses for `count` leaves: a counter
    (zero; the kernel leaves it at zero), then one per pass, the last
    holding the root."""
    out = [cupy.zeros(1, cupy.uint32)]
    while True:
        count = (count + SPAN - 1) // SPAN
        out.append(cupy.empty(count * 8, cupy.uint32))
        if count == 1:
            return out


def merkle_root(
    leaves: Any,
    leaf_bytes: int,
    scratch: list[Any] | None = None,
    fuse: bool = True,
    grid: int | None = None,
) -> Any:
    """The Merkle root (8 uint32 words on the device) of the consecutive
    `leaf_bytes`-byte leaves of a device array, on CuPy's current stream
    (into `scratch` from `merkle_scratch` when given: nothing allocated).
    A pass per SPAN levels; the last pass runs in the launch before it (its
    last block to finish) unless `fuse` is off (a launch a pass, to time
    the difference: tools/time_device_hash.py). At most `grid` thread blocks
    a launch when given, each then taking several spans."""
    if not 0 < leaf_bytes <= 64 or leaves.nbytes % leaf_bytes or not leaves.nbytes:
        raise ValueError(f"{leaves.nbytes} bytes are not whole {leaf_bytes}-byte leaves (1..64)")
    span = _module().get_function("bcai_merkle_span")
    count = leaves.nbytes // leaf_bytes
    buffers = scratch if scratch is not None else merkle_scratch(count)
    counter, passes = buffers[0], buffers[1:]
    data, nodes, width = leaves.view(cupy.uint8).ravel(), passes[-1], leaf_bytes
    at = 0
    while at < len(passes):
        out = passes[at]
        groups = out.size // 8
        last = fuse and at + 2 == len(passes)  # the next pass, the last, is one block: fused here
        args = (data, np.int32(width), nodes, np.int64(count), merkle_keys(), out)
        blocks = groups if grid is None else max(1, min(groups, grid))
        span((blocks,), (SPAN // 2,), (*args, counter, passes[-1], np.int32(last)))
        nodes, count, width = out, groups, 0
        at += 2 if last else 1
    return passes[-1]
