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
from bcai.pouw._params import MAX_NOISE_TERMS

try:
    import cupy
except ImportError:  # pragma: no cover - cupy is the `gpu` extra
    cupy = None

CONTEXT = "bcai 2026-11 pouw noise "
SPAN = 512  # hashes one thread block of bcai_merkle_span reduces
THREADS = 256


@functools.cache
def _module() -> Any:
    source = resources.files("bcai.mining").joinpath("cuda/blake3.cu").read_text()
    return cupy.RawModule(code=source, options=("-std=c++14",))


@functools.cache
def _merkle_keys() -> Any:
    words = b"".join(derive_key(f"bcai 2026-11 merkle {kind}", b"") for kind in ("leaf", "node"))
    return cupy.asarray(np.frombuffer(words, "<u4"))


def noise_factors(seed: bytes, n: int, k: int, m: int, rank: int) -> tuple[Any, Any, Any, Any]:
    """E_L (n×r), E_Rᵀ (k×r), F_Rᵀ (m×r) and F_L (k×r) as int8 device
    arrays on CuPy's current stream: the factors of `Noise.derive`, laid out
    as the tensor-core products take them."""
    sparse = rank > MAX_NOISE_TERMS
    keys = b"".join(derive_key(CONTEXT + name, seed) for name in ("E_L", "E_R", "F_R", "F_L"))
    shapes = [
        (n, rank, int(sparse), 0),  # E_L
        (rank, k, 0, 1),  # E_R, written transposed
        (m, rank, 1, 0) if sparse else (rank, m, 0, 1),  # F_Rᵀ: its rows, or F_R transposed
        (k, rank, 0, 0),  # F_L
    ]
    words = np.concatenate([np.frombuffer(keys, "<u4"), np.array(shapes, "<u4").ravel()])
    spec = cupy.asarray(words)
    out = [
        cupy.empty((n, rank), cupy.int8),
        cupy.empty((k, rank), cupy.int8),
        cupy.empty((m, rank), cupy.int8),
        cupy.empty((k, rank), cupy.int8),
    ]
    blocks = max(rows if sp else (rows * cols + 255) // 256 for rows, cols, sp, _ in shapes)
    _module().get_function("bcai_noise")(
        ((blocks + THREADS - 1) // THREADS, 4), (THREADS,), (spec[:32], spec[32:], *out)
    )
    return out[0], out[1], out[2], out[3]


def merkle_root(leaves: Any, leaf_bytes: int) -> Any:
    """The Merkle root (8 uint32 words on the device) of the consecutive
    `leaf_bytes`-byte leaves of a device array, on CuPy's current stream."""
    if not 0 < leaf_bytes <= 64 or leaves.nbytes % leaf_bytes or not leaves.nbytes:
        raise ValueError(f"{leaves.nbytes} bytes are not whole {leaf_bytes}-byte leaves (1..64)")
    span = _module().get_function("bcai_merkle_span")
    count = leaves.nbytes // leaf_bytes
    data = leaves.view(cupy.uint8).ravel()
    nodes = cupy.empty(8, cupy.uint32)  # unused on the first pass
    width = leaf_bytes
    while True:
        groups = (count + SPAN - 1) // SPAN
        out = cupy.empty(groups * 8, cupy.uint32)
        args = (data, np.int32(width), nodes, np.int64(count), _merkle_keys(), out)
        span((groups,), (THREADS,), args)
        if groups == 1:
            return out
        nodes, count, width = out, groups, 0
