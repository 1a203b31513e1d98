"""Matrix products on the CuPy backend through bcai's own CUDA kernel
(`cuda/gemm.cu`, compiled once by CuPy's NVRTC): capturable in a CUDA graph
(CuPy refuses cuBLAS calls during capture) and with a fixed reduction order
(one fma chain over k per element), so results repeat bit for bit.

`matmul(a, b)` follows NumPy's `@` for the shapes the VM produces: 2-D·2-D,
N-D·2-D (leading dimensions folded into rows) and N-D·N-D with equal batch
dimensions; float32 and float64. Anything else is CuPy's `matmul`.
"""

from __future__ import annotations

import functools
import math
from importlib import resources
from typing import Any

try:
    import cupy
except ImportError:  # pragma: no cover - cupy is the `gpu` extra
    cupy = None

TILE = 64
MAX_BATCH = 65535  # grid z


@functools.cache
def _kernels() -> dict[str, Any]:
    source = resources.files("bcai.vm").joinpath("cuda/gemm.cu").read_text()
    module = cupy.RawModule(code=source, options=("-std=c++14",))
    return {
        "float32": module.get_function("bcai_sgemm"),
        "float64": module.get_function("bcai_dgemm"),
        "sum-float32": module.get_function("bcai_ssum_splits"),
        "sum-float64": module.get_function("bcai_dsum_splits"),
    }


def splits_for(batch: int, m: int, n: int, k: int) -> int:
    """How many slices of k the product is cut into: a function of the shape
    only (the reduction order must not depend on the card). Enough blocks to
    fill a GPU when C has few tiles, slices of at least 256."""
    tiles = batch * math.ceil(m / TILE) * math.ceil(n / TILE)
    if tiles >= 256 or k <= 512:
        return 1
    return max(1, min(math.ceil(256 / tiles), k // 256, MAX_BATCH // batch))


def _gemm(a3: Any, b3: Any, batch_a: bool, batch_b: bool) -> Any:
    """(B, M, K) · (B, K, N) → (B, M, N), operands as strided views."""
    batch, m, k = a3.shape
    n = b3.shape[2]
    out = cupy.empty((batch, m, n), a3.dtype)
    if m == 0 or n == 0 or batch == 0:
        return out
    if k == 0:
        out.fill(0)
        return out
    size = a3.itemsize
    sa = [s // size for s in a3.strides]
    sb = [s // size for s in b3.strides]
    kernels = _kernels()
    splits = splits_for(batch, m, n, k)
    kps = math.ceil(math.ceil(k / splits) / 16) * 16
    splits = math.ceil(k / kps)
    partial = out if splits == 1 else cupy.empty((splits, batch, m, n), a3.dtype)
    grid = (math.ceil(n / TILE), math.ceil(m / TILE), batch * splits)
    args = (
        a3,
        b3,
        partial,
        cupy.int32(m),
        cupy.int32(n),
        cupy.int32(k),
        cupy.int64(sa[0] if batch_a else 0),
        cupy.int64(sa[1]),
        cupy.int64(sa[2]),
        cupy.int64(sb[0] if batch_b else 0),
        cupy.int64(sb[1]),
        cupy.int64(sb[2]),
        cupy.int32(batch),
        cupy.int32(splits),
        cupy.int32(kps),
    )
    kernels[a3.dtype.name](grid, (16, 16), args)
    if splits > 1:
        size = batch * m * n
        kernels["sum-" + a3.dtype.name](
            (math.ceil(size / 256),), (256,), (partial, out, cupy.int64(size), cupy.int32(splits))
        )
    return out


def matmul(a: Any, b: Any) -> Any:
    if (
        a.dtype != b.dtype
        or a.dtype.name not in ("float32", "float64")
        or a.ndim < 2
        or b.ndim < 2
        or a.shape[-1] != b.shape[-2]
    ):
        return cupy.matmul(a, b)
    if b.ndim == 2:
        lead = a.shape[:-1]
        a2 = a.reshape(-1, a.shape[-1])
        out = _gemm(a2[None], b[None], False, False)
        return out.reshape(*lead, b.shape[1])
    if a.ndim != b.ndim or a.shape[:-2] != b.shape[:-2]:
        return cupy.matmul(a, b)
    lead = a.shape[:-2]
    batch = math.prod(lead)
    if batch > MAX_BATCH:
        return cupy.matmul(a, b)
    a3 = a.reshape(batch, *a.shape[-2:])
    b3 = b.reshape(batch, *b.shape[-2:])
    return _gemm(a3, b3, True, True).reshape(*lead, a.shape[-2], b.shape[-1])
