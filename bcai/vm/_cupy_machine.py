"""The CuPy backend: the CPU backend's kernels and autograd (`_cpu_ops` is
written once for NumPy and CuPy arrays alike), with every register on the
GPU. Convolutions unfold by a strided view on the device; the trace copies
registers to the host only to hash them (or only at checkpoints with
`trace="checkpoints"`). Tensors are created on the host exactly as on the
CPU backend and then copied, so both start from the same bits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bcai.vm._errors import VmError
from bcai.vm._graph import GraphStep
from bcai.vm._isa import DType, Init, Program, TensorCreate
from bcai.vm._machine import NP_DTYPES, Machine, Step, register_hash

try:
    import cupy
except ImportError:  # pragma: no cover - cupy is the `gpu` extra
    cupy = None


def available() -> bool:
    if cupy is None:
        return False
    try:
        return bool(cupy.cuda.runtime.getDeviceCount() > 0)
    except Exception:  # no driver, no device
        return False


class CupyMachine(Machine):
    def __init__(self, **limits: Any) -> None:
        if not available():
            raise VmError("vm-backend-missing", "the cupy backend needs CuPy and a CUDA device")
        super().__init__(**limits)
        # while a graph is captured: the fixed buffers blob-fed tensors read
        self._blob_buffers: dict[tuple[bytes, int, tuple[int, ...]], Any] | None = None

    def capture(self, program: Program, blobs: Mapping[bytes, bytes] | None = None) -> Step:
        """The step as one CUDA graph (`bcai.vm._graph.GraphStep`): runs it
        once eagerly with `blobs`, then captures it."""
        return GraphStep(self, program, blobs or {})

    def _create(self, ins: TensorCreate, blobs: Mapping[bytes, bytes]) -> Any:
        init, shape = Init(ins.init), tuple(ins.shape)
        if init == Init.BLOB and self._blob_buffers is not None:
            return self._blob_buffers[(ins.blob, ins.dtype, shape)]
        if init in (Init.ZEROS, Init.ONES):  # made on the device (same bits)
            fill = cupy.zeros if init == Init.ZEROS else cupy.ones
            return fill(shape, NP_DTYPES[DType(ins.dtype)])
        return cupy.asarray(super()._create(ins, blobs))

    def _to_device(self, value: np.ndarray) -> Any:
        return cupy.asarray(value)

    def _hash(self, reg: int) -> bytes:
        return register_hash(cupy.asnumpy(self.registers[reg]))

    def host(self, reg: int) -> np.ndarray:
        """A register copied to the host."""
        return np.asarray(cupy.asnumpy(self.registers[reg]))
