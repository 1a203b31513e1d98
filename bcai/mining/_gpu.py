"""The GPU miner: the transcript kernel (native/cuda/pouw.cu) through CuPy,
the noise and noisy operands formed on the device."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

from bcai.pouw._errors import InvalidSeal

try:
    import cupy
except ImportError:  # pragma: no cover - cupy is the `gpu` extra
    cupy = None

I8 = npt.NDArray[np.int8]


def available() -> bool:
    if cupy is None:
        return False
    try:
        return bool(cupy.cuda.runtime.getDeviceCount() > 0)
    except Exception:  # no driver, no device
        return False


@functools.cache
def _kernel() -> Any:
    source = resources.files("bcai.mining").joinpath("cuda/pouw.cu").read_text()
    return cupy.RawModule(code=source, options=("-std=c++14",)).get_function("bcai_pouw_transcript")


class GpuMiner:
    name = "gpu"

    def __init__(self) -> None:
        if not available():
            raise InvalidSeal("pouw-miner-missing", "the GPU miner needs CuPy and a CUDA device")

    def leaves_device(self, a2: Any, bt: Any, tile: int, key: int) -> Any:
        """Leaves (uint64, on the device) of device operands A' and B'ᵀ."""
        n, k = a2.shape
        m = bt.shape[0]
        if tile % 4 or tile > 64:
            raise InvalidSeal("pouw-shape", f"the GPU miner needs a tile of 4..64 by 4, got {tile}")
        out = cupy.empty((k // tile) * (n // tile) * (m // tile), cupy.uint64)
        q = tile // 4
        words = tile * (q + 1)
        shared = 4 * (2 * words + (2 * words) % 2) + 8 * q * q
        _kernel()(
            (m // tile, n // tile),
            (q, q),
            (a2, bt, out, np.int32(n), np.int32(k), np.int32(m), np.int32(tile), np.uint32(key)),
            shared_mem=shared,
        )
        return out

    def leaves(self, a2: I8, b2: I8, tile: int, key: int) -> bytes:
        a = cupy.asarray(np.ascontiguousarray(a2))
        bt = cupy.asarray(np.ascontiguousarray(b2.T))
        return bytes(self.leaves_device(a, bt, tile, key).get().astype("<u8").tobytes())
