"""The PoUW transcript on Hopper (sm_90) by a hand-written kernel
(native/cuda/transcript_sm90.cu): TMA loads by a producer warp, wgmma by two
consumer warpgroups that take turns at the tensor cores, each digesting its
tile's running sum while the other's slice is multiplied ("ping-pong").
Tile b = r = 128 only; other tiles and other GPUs use the Triton kernel
(`bcai.mining._triton`). Compiled at first use by NVRTC for sm_90a (CuPy's
binding of it); the operands' tensor maps are encoded through the CUDA
driver (`cuTensorMapEncodeTiled`) and kept in device memory, so a recorded
CUDA graph replays with them."""

from __future__ import annotations

import ctypes
import functools
from importlib import resources
from typing import Any

import numpy as np

try:
    import cupy
except ImportError:  # pragma: no cover - cupy is the `gpu` extra
    cupy = None

TILE = 128
STAGE = 2 * TILE * TILE  # a slice of A' and of B'ᵀ in shared memory
MAX_K = 256 * TILE  # a tile's leaves wait in shared memory: k/128 ≤ 256


def layout(consumers: int) -> tuple[int, int]:
    """Threads and dynamic shared memory of the transcript kernel built with
    `consumers` consumer warpgroups (CONSUMERS in the source): theirs and the
    producer's; RING stages a consumer, a full and an empty barrier a stage,
    two tiles' leaves a consumer, and 1024 bytes to align."""
    ring = 3 if consumers == 2 else 2
    stages = consumers * ring
    return 128 * (consumers + 1), stages * STAGE + 2 * 8 * stages + 2 * 4 * consumers * (
        MAX_K // TILE
    ) + 1024


# Consumer warpgroups a block: the transcript's digest is hidden best with three taking turns
# (each digests under the other two's products), the bare product is fastest with two (deeper
# rings of stages); docs/benchmarks.md, tools/time_consumers.py
TRANSCRIPT_CONSUMERS, PRODUCT_CONSUMERS = 3, 2
NOISY_SHARED = 2 * 3 * TILE * TILE + 16 + 1024  # two stages: the factors' rows, the base tile


def available() -> bool:
    """CuPy, a compute-capability 9.0 device, and the kernel compiles."""
    if cupy is None:
        return False
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return False
        if cupy.cuda.Device().compute_capability != "90":
            return False
        _functions()
    except Exception:  # no driver, no NVRTC, or a compile failure: not available
        return False
    return True


def fits(n: int, k: int, m: int, tile: int) -> bool:
    """Whether the kernel takes this shape: b = 128 dividing every side, k ≤ MAX_K."""
    return tile == TILE and not (n % TILE or k % TILE or m % TILE) and k <= MAX_K


def check(n: int, k: int, m: int, tile: int) -> None:
    if not fits(n, k, m, tile):
        raise ValueError(
            f"the sm_90 kernel needs b = 128 dividing {n}×{k}×{m} and k <= {MAX_K}, got b = {tile}"
        )


def _compile(source: str, consumers: int) -> bytes:
    from cupy_backends.cuda.libs import nvrtc  # noqa: PLC0415 - CuPy's NVRTC binding

    program = nvrtc.createProgram(source, "transcript_sm90.cu", (), ())
    try:
        options = ("--gpu-architecture=sm_90a", "-std=c++17", f"-DCONSUMERS={consumers}")
        try:
            nvrtc.compileProgram(program, options)
        except nvrtc.NVRTCError as error:
            raise RuntimeError(f"NVRTC: {nvrtc.getProgramLog(program)}") from error
        return bytes(nvrtc.getCUBIN(program))
    finally:
        nvrtc.destroyProgram(program)


@functools.cache
def _kernels(consumers: int) -> tuple[Any, Any, Any]:
    """The transcript, product and noisy-operand kernels of the source built
    with `consumers` consumer warpgroups a block."""
    source = resources.files("bcai.mining").joinpath("cuda/transcript_sm90.cu").read_text()
    module = cupy.cuda.function.Module()
    module.load(_compile(source, consumers))
    names = "bcai_transcript_sm90", "bcai_product_sm90", "bcai_noisy_sm90"
    kernels = tuple(module.get_function(name) for name in names)
    attribute = getattr(cupy.cuda.driver, "CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES", 8)
    _, shared = layout(consumers)
    for kernel, size in zip(kernels, (shared, shared, NOISY_SHARED), strict=True):
        cupy.cuda.driver.funcSetAttribute(kernel.ptr, attribute, size)  # more than 48 KiB
    _modules.append(module)  # the functions live as long as it does
    return kernels


def _functions() -> tuple[Any, Any, Any]:
    """The transcript kernel (TRANSCRIPT_CONSUMERS), the bare product and
    the noisy operands (PRODUCT_CONSUMERS)."""
    _, product, noisy = _kernels(PRODUCT_CONSUMERS)
    return _kernels(TRANSCRIPT_CONSUMERS)[0], product, noisy


_modules: list[Any] = []


@functools.cache
def _encode() -> Any:
    driver = ctypes.CDLL("libcuda.so.1")
    encode = driver.cuTensorMapEncodeTiled
    encode.restype = ctypes.c_int
    encode.argtypes = [
        ctypes.c_void_p,  # CUtensorMap* (128 bytes, 64-byte aligned)
        ctypes.c_int,  # data type
        ctypes.c_uint32,  # rank
        ctypes.c_void_p,  # global address
        ctypes.POINTER(ctypes.c_uint64),  # sizes, innermost first
        ctypes.POINTER(ctypes.c_uint64),  # strides in bytes of the outer dimensions
        ctypes.POINTER(ctypes.c_uint32),  # box
        ctypes.POINTER(ctypes.c_uint32),  # element strides
        ctypes.c_int,  # interleave
        ctypes.c_int,  # swizzle
        ctypes.c_int,  # L2 promotion
        ctypes.c_int,  # out-of-bounds fill
    ]
    return encode


UINT8, INTERLEAVE_NONE, SWIZZLE_NONE, SWIZZLE_128B, L2_128B, OOB_NONE = 0, 0, 0, 3, 2, 0


def tensor_map(matrix: Any, swizzle: bool = True) -> Any:
    """The TMA descriptor of an int8 row-major CuPy matrix (rows × k, k
    innermost) in 128×128 boxes — with the 128-byte swizzle wgmma reads, or
    none (plain row-major tiles) — as 128 bytes in device memory."""
    rows, k = matrix.shape
    if matrix.dtype != cupy.int8 or not matrix.flags.c_contiguous or matrix.data.ptr % 16:
        raise ValueError("a tensor map needs a contiguous int8 matrix on a 16-byte boundary")
    host = np.zeros(256, np.uint8)
    at = host.ctypes.data + (-host.ctypes.data) % 64
    sizes = (ctypes.c_uint64 * 2)(k, rows)
    strides = (ctypes.c_uint64 * 1)(k)
    box = (ctypes.c_uint32 * 2)(TILE, TILE)
    steps = (ctypes.c_uint32 * 2)(1, 1)
    status = _encode()(
        at,
        UINT8,
        2,
        matrix.data.ptr,
        sizes,
        strides,
        box,
        steps,
        INTERLEAVE_NONE,
        SWIZZLE_128B if swizzle else SWIZZLE_NONE,
        L2_128B,
        OOB_NONE,
    )
    if status:
        raise RuntimeError(f"cuTensorMapEncodeTiled failed with CUresult {status}")
    offset = at - host.ctypes.data
    return cupy.asarray(host[offset : offset + 128])


def _grid(n: int, m: int, spare: int = 0) -> int:
    """Blocks: one per SM but `spare`, or fewer when that gives every block
    as many tiles (8 tiles each on 128 SMs instead of 7 or 8 on 132): the
    SMs left over run other streams' work."""
    tiles = (n // TILE) * (m // TILE)
    sms = int(cupy.cuda.Device().attributes["MultiProcessorCount"]) - spare
    rounds = -(-tiles // sms)
    return -(-tiles // rounds)


class Operands:
    """A' (n×k) and B'ᵀ (m×k), int8 CuPy matrices, with their tensor maps
    (encoded once: the buffers stay, their contents change per attempt)."""

    def __init__(self, a2: Any, bt2: Any) -> None:
        n, k = a2.shape
        m, k2 = bt2.shape
        if k != k2:
            raise ValueError(f"inner dimensions differ: {k} and {k2}")
        check(n, k, m, TILE)
        self.a2, self.bt2 = a2, bt2
        self.maps = tensor_map(a2), tensor_map(bt2)
        self.shape = n, k, m
        self.spare = 0  # SMs the transcript leaves to a kernel beside it (`_grid`)

    def leaves(self, keys: Any, out: Any) -> None:
        """The transcript's leaves into `out` (uint32, (k/b)·(n/b)·(m/b)) under
        the digest keys κ, λ (a uint32 device array of two), on CuPy's
        current stream."""
        n, k, m = self.shape
        count = (k // TILE) * (n // TILE) * (m // TILE)
        if (out.dtype, out.size, keys.dtype, keys.size) != (cupy.uint32, count, cupy.uint32, 2):
            raise ValueError(f"the leaves need {count} uint32 and the keys two uint32")
        self._launch(_functions()[0], TRANSCRIPT_CONSUMERS, out, keys)

    def product(self, out: Any) -> None:
        """A'·B' (int32 n×m, row-major) by the same kernel without the digest."""
        n, _, m = self.shape
        if out.dtype != cupy.int32 or out.shape != (n, m) or not out.flags.c_contiguous:
            raise ValueError(f"the product needs a contiguous {n}×{m} int32 matrix")
        self._launch(_functions()[1], PRODUCT_CONSUMERS, out)

    def _launch(self, kernel: Any, consumers: int, *args: Any) -> None:
        """`kernel` of the source built with `consumers` consumer warpgroups,
        one block an SM (or fewer, `_grid`): (maps, *args, n, k, m)."""
        n, k, m = self.shape
        threads, shared = layout(consumers)
        dims = np.int32(n), np.int32(k), np.int32(m)
        grid = _grid(n, m, self.spare)
        kernel((grid,), (threads,), (*self.maps, *args, *dims), shared_mem=shared)


class Noisy:
    """Noisy operands, out = base + left·rightᵀ as int8 (wrapping like the
    host's), r = 128, one launch for up to two: A' = A + E_L·E_R from E_L
    (n×r) and E_Rᵀ (k×r), and B'ᵀ = Bᵀ + F_Rᵀ·F_L from F_Rᵀ (m×r) and F_L
    (k×r) — the factors as `bcai.mining._device_hash.factor_buffers` holds
    them. Each operand is (base, left, right, out); tensor maps encoded once
    for these buffers."""

    def __init__(self, *operands: tuple[Any, Any, Any, Any]) -> None:
        if not 1 <= len(operands) <= 2:
            raise ValueError("one or two noisy operands a launch")
        args: list[Any] = []
        tiles = 0
        for base, left, right, out in operands:
            rows, cols = base.shape
            if left.shape != (rows, TILE) or right.shape != (cols, TILE) or out.shape != base.shape:
                raise ValueError(
                    f"a noisy operand needs {rows}×{TILE} and {cols}×{TILE} factors for a "
                    f"{rows}×{cols} base, got {left.shape}, {right.shape} and out {out.shape}"
                )
            check(rows, TILE, cols, TILE)
            count = (rows // TILE) * (cols // TILE)
            maps = (tensor_map(left), tensor_map(right), tensor_map(base), tensor_map(out))
            args += [*maps, np.int32(cols), np.int32(count)]
            tiles += count
        if len(operands) == 1:
            args += [*args[:5], np.int32(0)]  # no second operand
        self.args = tuple(args)
        sms = int(cupy.cuda.Device().attributes["MultiProcessorCount"])
        self.grid = min(tiles, 2 * sms)  # two blocks an SM (two stages of 48 KiB each)

    def launch(self) -> None:
        """On CuPy's current stream."""
        _, _, noisy = _functions()
        noisy((self.grid,), (128,), self.args, shared_mem=NOISY_SHARED)
