"""The PoUW transcript on tensor cores through Triton (wgmma on Hopper).

One program per b×b output tile (b = 64 or 128): it walks the inner
dimension one b-wide slice at a time, `tl.dot` adding A'[tile rows, slice] ·
B'[slice, tile columns] into an int32 accumulator, and after every slice
writes the tile's leaf. The accumulator of entry e starts at κ + e·φ instead
of 0 (int32 accumulation wraps modulo 2^32), so after slice ℓ it holds
y_e = S_ℓ[e] + κ + e·φ — the digest's operand — and the leaf
d = Σ_i (y_{2i} XOR λ)·y_{2i+1} mod 2^32 costs one XOR and one multiply-add
per pair of neighbouring entries (docs/pouw.md). The sum over the tile is
the costly part (a reduction across warps through shared memory, a
barrier): per slice the kernel only sums each row, and the rows' sums of
`CHUNK` slices are summed across the tile together. Measured against the
same kernel without the digest and against cuBLAS in benches/bench_pouw.py.

Triton comes with PyTorch's CUDA wheels; this module imports it lazily.
"""

from __future__ import annotations

import functools
from typing import Any

PHI = 0x9E3779B9
CONFIG = {"num_stages": 3, "num_warps": 8}  # best of the configurations tried on H100/H200
# slices per cross-tile sum of the digest: H100, n = 4096, b = 128, events:
# 0.1723 ms at 2, 0.1700 at 4, 0.1672–0.1679 at 8, 0.1700 at 16, 0.2036 at
# 32, against 0.1724–0.1732 summing every slice (docs/benchmarks.md)
CHUNK = 8


def available() -> bool:
    try:
        import torch  # noqa: PLC0415 - the `torch` extra
        import triton  # noqa: F401, PLC0415
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@functools.cache
def _kernels() -> tuple[Any, Any]:
    import triton  # noqa: PLC0415
    import triton.language as tl  # noqa: PLC0415

    @triton.jit  # type: ignore[untyped-decorator]
    def program(  # type: ignore[no-untyped-def]
        a_ptr,  # n×k, element (i, t) at i·sa_i + t·sa_t
        b_ptr,  # k×m, element (t, j) at t·sb_t + j·sb_j
        out_ptr,
        keys_ptr,  # DIGEST: κ, λ (uint32 on the device: a CUDA graph replays with new keys)
        n,
        k,
        m,
        sa_i,
        sa_t,
        sb_t,
        sb_j,
        tile: tl.constexpr,
        group: tl.constexpr,
        mode: tl.constexpr,  # PRODUCT: C as int32; DIGEST: the leaves
        chunk: tl.constexpr,  # DIGEST: slices whose leaves are summed across the tile at once
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
        if mode == 1:
            key = tl.load(keys_ptr).to(tl.int64)
            mask = tl.load(keys_ptr + 1)
            e = tl.arange(0, tile)[:, None] * tile + tl.arange(0, tile)[None, :]
            start = (e.to(tl.int64) * 0x9E3779B9 + key) & 0xFFFFFFFF  # κ + e·φ mod 2^32
            acc = start.to(tl.uint32).to(tl.int32, bitcast=True)
        else:
            acc = tl.zeros((tile, tile), tl.int32)
        a_ptrs = a_ptr + rows[:, None].to(tl.int64) * sa_i + kr[None, :] * sa_t
        b_ptrs = b_ptr + kr[:, None] * sb_t + cols[None, :].to(tl.int64) * sb_j
        # DIGEST: per slice only the row sums of (y_2i XOR λ)·y_2i+1, summed within
        # the few threads that hold a row (no barrier); they wait in column
        # `slot` of `parts` and the sums across the tile — one reduction
        # through shared memory — are taken once every `chunk` slices
        slots = tl.arange(0, chunk)
        parts = tl.zeros((tile, chunk), tl.uint32)
        steps = k // tile
        for step in range(0, steps):
            acc = tl.dot(tl.load(a_ptrs), tl.load(b_ptrs), acc, out_dtype=tl.int32)
            a_ptrs += tile * sa_t
            b_ptrs += tile * sb_t
            if mode == 1:
                # a row's neighbouring entries in pairs
                lead, follow = tl.split(
                    tl.reshape(acc.to(tl.uint32, bitcast=True), (tile, tile // 2, 2))
                )
                slot = step % chunk
                parts = tl.where(
                    slots[None, :] == slot, tl.sum((lead ^ mask) * follow, axis=1)[:, None], parts
                )
                if (slot == chunk - 1) or (step == steps - 1):
                    leaf = step - slot + slots
                    at = out_ptr + (leaf * num_i + pid_i) * num_j + pid_j
                    tl.store(at, tl.sum(parts, axis=0), mask=slots <= slot)
        if mode == 0:
            tl.store(out_ptr + rows[:, None].to(tl.int64) * m + cols[None, :], acc)

    @triton.jit  # type: ignore[untyped-decorator]
    def noisy(  # type: ignore[no-untyped-def]
        left_ptr,  # n×r, element (i, t) at i·sl_i + t·sl_t
        right_ptr,  # r×m, element (t, j) at t·sr_t + j·sr_j
        base_ptr,  # n×m int8, row-major
        out_ptr,  # n×m int8, row-major: base + left·right
        m,
        sl_i,
        sl_t,
        sr_t,
        sr_j,
        tile: tl.constexpr,  # = r
        span: tl.constexpr,  # column tiles per program: the left rows are loaded once
    ):
        rows = tl.program_id(0) * tile + tl.arange(0, tile)
        kr = tl.arange(0, tile)
        left = tl.load(left_ptr + rows[:, None].to(tl.int64) * sl_i + kr[None, :] * sl_t)
        for jj in range(0, span):
            cols = (tl.program_id(1) * span + jj) * tile + tl.arange(0, tile)
            right = tl.load(right_ptr + kr[:, None] * sr_t + cols[None, :].to(tl.int64) * sr_j)
            acc = tl.dot(left, right, out_dtype=tl.int32)
            at = rows[:, None].to(tl.int64) * m + cols[None, :]
            tl.store(out_ptr + at, (tl.load(base_ptr + at).to(tl.int32) + acc).to(tl.int8))

    return program, noisy


def check(n: int, k: int, m: int, tile: int) -> None:
    if tile not in (64, 128) or n % tile or k % tile or m % tile:
        raise ValueError(f"the tensor-core kernel needs a tile of 64 or 128 dividing {n}×{k}×{m}")


PRODUCT, DIGEST = 0, 1
NOISY_SPAN = 1  # column tiles per program of `noisy` (1, 2, 4 measured alike on an H200)
NOISY_CONFIG = {"num_stages": 3, "num_warps": 8}


def _launch(mode: int, a: Any, b: Any, out: Any, keys: Any, tile: int) -> None:
    n, k = a.shape
    m = b.shape[1]
    check(n, k, m, tile)
    grid = ((n // tile) * (m // tile),)
    sa, sb = a.stride(), b.stride()
    _kernels()[0][grid](
        a, b, out, keys, n, k, m, *sa, *sb, tile=tile, group=8, mode=mode, chunk=CHUNK, **CONFIG
    )


def leaves(a2: Any, bt2: Any, tile: int, keys: Any, out: Any = None) -> Any:
    """The transcript's leaves (uint32, (k/b)·(n/b)·(m/b), on the device) of
    int8 torch tensors A' (n×k) and B'ᵀ (m×k) under the digest keys κ, λ (a
    uint32 device tensor of two), on torch's current stream."""
    import torch  # noqa: PLC0415

    n, k = a2.shape
    m = bt2.shape[0]
    count = (k // tile) * (n // tile) * (m // tile)
    if out is None:
        out = torch.empty(count, dtype=torch.uint32, device=a2.device)
    _launch(DIGEST, a2, bt2.t(), out, keys, tile)
    return out


def product(a: Any, bt: Any, tile: int = 128, out: Any = None) -> Any:
    """A·B (int32) by the same kernel without the digest (for comparisons):
    A n×k, Bᵀ m×k."""
    import torch  # noqa: PLC0415

    if out is None:
        out = torch.empty((a.shape[0], bt.shape[0]), dtype=torch.int32, device=a.device)
    _launch(PRODUCT, a, bt.t(), out, out, tile)
    return out


def noisy(base: Any, left: Any, right: Any, out: Any) -> None:
    """out = base + left·right as int8 (the noisy operand A' = A + E_L·E_R),
    the inner dimension r one tile (64 or 128); `left`, `right` of any
    strides, `base` and `out` contiguous."""
    n, r = left.shape
    m = right.shape[1]
    span = NOISY_SPAN if (m // r) % NOISY_SPAN == 0 else 1
    check(n, r, m, r)
    grid = (n // r, m // (r * span))
    _kernels()[1][grid](
        left,
        right,
        base,
        out,
        m,
        *left.stride(),
        *right.stride(),
        tile=r,
        span=span,
        **NOISY_CONFIG,
    )
