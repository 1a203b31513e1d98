"""bcai._kernels: CPU tensor kernels (Cython + OpenMP). See bcai.kernels."""

from typing import Any

import numpy as np
import numpy.typing as npt

CHUNK_K: int
MAX_K: int

def matmul_i8(
    a: npt.NDArray[np.int8], b: npt.NDArray[np.int8], out: npt.NDArray[np.int32] | None = None
) -> npt.NDArray[np.int32]:
    """Exact C = A·B for int8 A (n×k) and B (k×m), returned as int32 (n×m)."""

def im2col(
    x: npt.NDArray[np.float32],
    kernel_size: Any,
    stride: Any = (1, 1),
    padding: Any = (0, 0),
    dilation: Any = (1, 1),
) -> npt.NDArray[np.float32]:
    """Unfolds float32 images (N, C, H, W) into columns (N, C·kh·kw, oh·ow)."""

def clear_workspace() -> None:
    """Frees this thread's scratch buffers (they are kept between products)."""

ACT_NONE: int
ACT_RELU: int
ACT_TANH: int
ACT_SIGMOID: int

def bias_act(
    out: npt.NDArray[np.float32], b: npt.NDArray[np.float32] | None, act: int
) -> npt.NDArray[np.float32]:
    """out ← act(out + b) in place, one threaded pass (the linear epilogue)."""

PARALLEL_MIN: int
