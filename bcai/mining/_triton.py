"""The PoUW transcript on tensor cores through Triton (wgmma on Hopper).

One program per b×b output tile (b = 64 or 128): it walks the inner
dimension one b-wide slice at a time, `tl.dot` adding A'[tile rows, slice] ·
B'[slice, tile columns] into an int32 accumulator, and after every slice
writes the tile's leaf. The accumulator of entry e starts at κ + e·φ instead
of 0 (int32 accumulation wraps modulo 2^32), so after slice ℓ it holds
y_e = S_ℓ[e] + κ + e·φ — the digest's operand — and the leaf
d = Σ_e (y_e XOR λ)² mod 2^32 costs one XOR and one multiply-add per entry
(docs/pouw.md). Measured against the same kernel without the digest and
against cuBLAS in benches/bench_pouw_gpu.py.

Triton comes with PyTorch's CUDA wheels; this module imports it lazily.
"""

from __future__ import annotations

import functools
from typing import Any

PHI = 0x9E3779B9
CONFIG = {"num_stages": 3, "num_warps": 8}  # best of the configurations tried on H100/H200


def available() -> bool:
    try:
        import torch  # noqa: PLC0415 - the `torch` extra
        import triton  # noqa: F401, PLC0415
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@functools.cache
def _kernel() -> Any:
    import triton  # noqa: PLC0415
    import triton.language as tl  # noqa: PLC0415

    # key and mask stay run-time arguments (Triton would make a value of 1 a constant)
    @triton.jit(do_not_specialize=["key", "mask"])  # type: ignore[untyped-decorator]
    def program(  # type: ignore[no-untyped-def]
        a_ptr,
        bt_ptr,
        out_ptr,
        n,
        k,
        m,
        key,
        mask,
        tile: tl.constexpr,
        group: tl.constexpr,
        digest: tl.constexpr,  # False: the bare product, C written as int32
    ):
        pid = tl.program_id(0)
        num_i = n // tile
        num_j = m // tile
        # tiles in groups of group rows, so that programs running together share A' and B' in L2
        width = group * num_j
        first = (pid // width) * group
        size = min(num_i - first, group)
        pid_i = first + (pid % width) % size
        pid_j = (pid % width) // size
        rows = pid_i * tile + tl.arange(0, tile)
        cols = pid_j * tile + tl.arange(0, tile)
        kr = tl.arange(0, tile)
        if digest:
            e = tl.arange(0, tile)[:, None] * tile + tl.arange(0, tile)[None, :]
            start = (e.to(tl.int64) * 0x9E3779B9 + key) & 0xFFFFFFFF  # κ + e·φ mod 2^32
            acc = start.to(tl.uint32).to(tl.int32, bitcast=True)
        else:
            acc = tl.zeros((tile, tile), tl.int32)
        a_ptrs = a_ptr + rows[:, None].to(tl.int64) * k + kr[None, :]
        b_ptrs = bt_ptr + cols[None, :].to(tl.int64) * k + kr[:, None]
        for step in range(0, k // tile):
            acc = tl.dot(tl.load(a_ptrs), tl.load(b_ptrs), acc, out_dtype=tl.int32)
            a_ptrs += tile
            b_ptrs += tile
            if digest:
                y = acc.to(tl.uint32, bitcast=True) ^ mask.to(tl.uint32)
                tl.store(out_ptr + (step * num_i + pid_i) * num_j + pid_j, tl.sum(y * y))
        if not digest:
            tl.store(out_ptr + rows[:, None].to(tl.int64) * m + cols[None, :], acc)

    return program


def check(n: int, k: int, m: int, tile: int) -> None:
    if tile not in (64, 128) or n % tile or k % tile or m % tile:
        raise ValueError(f"the tensor-core kernel needs a tile of 64 or 128 dividing {n}×{k}×{m}")


def leaves(a2: Any, bt2: Any, tile: int, key: int, mask: int, out: Any = None) -> Any:
    """The transcript's leaves (uint32, (k/b)·(n/b)·(m/b), on the device) of
    int8 torch tensors A' (n×k) and B'ᵀ (m×k), on torch's current stream."""
    import torch  # noqa: PLC0415

    n, k = a2.shape
    m = bt2.shape[0]
    check(n, k, m, tile)
    count = (k // tile) * (n // tile) * (m // tile)
    if out is None:
        out = torch.empty(count, dtype=torch.uint32, device=a2.device)
    grid = ((n // tile) * (m // tile),)
    _kernel()[grid](a2, bt2, out, n, k, m, key, mask, tile=tile, group=8, digest=True, **CONFIG)
    return out


def product(a: Any, bt: Any, tile: int = 128, out: Any = None) -> Any:
    """A·B (int32) by the same kernel without the digest (for comparisons)."""
    import torch  # noqa: PLC0415

    n, k = a.shape
    m = bt.shape[0]
    check(n, k, m, tile)
    if out is None:
        out = torch.empty((n, m), dtype=torch.int32, device=a.device)
    grid = ((n // tile) * (m // tile),)
    _kernel()[grid](a, bt, out, n, k, m, 0, 0, tile=tile, group=8, digest=False, **CONFIG)
    return out
