"""CPU tensor kernels: a thin, typed wrapper over the Cython module `bcai._kernels`.

- `matmul_i8(a, b)`: exact int8 × int8 → int32 product (any k up to `MAX_K`).
- `im2col(x, kernel_size, ...)`: float32 image unfolding for convolution,
  in the layout of `torch.nn.functional.unfold`.
"""

from __future__ import annotations

import os

# OpenMP threads that spin after a parallel region steal the cores that BLAS
# (OpenBLAS's own threads) runs on next; a passive wait costs microseconds.
# Read by libgomp when it loads, i.e. when `_kernels` is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import numpy.typing as npt

from bcai import _kernels

CHUNK_K: int = _kernels.CHUNK_K
MAX_K: int = _kernels.MAX_K

Pair = int | tuple[int, int]


def matmul_i8(
    a: npt.NDArray[np.int8],
    b: npt.NDArray[np.int8],
    out: npt.NDArray[np.int32] | None = None,
) -> npt.NDArray[np.int32]:
    """Exact C = A·B of int8 matrices, as int32.

    Args:
        a: (n, k) int8 array (any strides).
        b: (k, m) int8 array (any strides).
        out: optional C-contiguous (n, m) int32 array to write into.

    Returns:
        The (n, m) int32 product, equal to the int64 product entry by entry.

    Raises:
        TypeError: wrong dtypes or `out` unusable.
        ValueError: shapes do not chain or k > MAX_K.
    """
    return _kernels.matmul_i8(a, b, out)


def clear_workspace() -> None:
    """Frees the calling thread's scratch buffers, which `matmul_i8` keeps
    between calls (fresh pages would cost about a third of a 1024³ product)."""
    _kernels.clear_workspace()


def im2col(
    x: npt.NDArray[np.float32],
    kernel_size: Pair,
    stride: Pair = 1,
    padding: Pair = 0,
    dilation: Pair = 1,
) -> npt.NDArray[np.float32]:
    """Unfolds (N, C, H, W) float32 images into (N, C·kh·kw, oh·ow) columns.

    Raises:
        TypeError: x is not float32, or a parameter is not an int / int pair.
        ValueError: x is not 4-D, a parameter is out of range, or no output.
    """
    return _kernels.im2col(x, kernel_size, stride, padding, dilation)


ACT_NONE: int = _kernels.ACT_NONE
ACT_RELU: int = _kernels.ACT_RELU
ACT_TANH: int = _kernels.ACT_TANH
ACT_SIGMOID: int = _kernels.ACT_SIGMOID


def bias_act(
    out: npt.NDArray[np.float32], b: npt.NDArray[np.float32] | None, act: int
) -> npt.NDArray[np.float32]:
    """The fused epilogue of a linear layer, in place: out ← act(out + b),
    one threaded pass over a C-contiguous float32 product (act: ACT_*)."""
    result: npt.NDArray[np.float32] = _kernels.bias_act(out, b, act)
    return result
