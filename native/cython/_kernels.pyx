# cython: language_level=3
"""bcai._kernels: CPU tensor kernels (Cython + OpenMP).

The int8 product is exact: it splits the inner dimension into chunks of at
most 1024, so that every partial sum of a chunk (|a·b| <= 128² = 2^14, at most
2^10 terms) is an integer of magnitude <= 2^24 and therefore exact in float32
whatever order BLAS adds in; the chunk results are summed in int32. One BLAS
sgemm per chunk does the heavy work (a hand-written int8 kernel was slower
than the BLAS route on this machine, see docs/benchmarks.md); the conversions
and the int32 accumulation are cheap serial loops here, so no OpenMP team
competes with BLAS's threads. im2col is parallel (OpenMP).
"""

import threading

import numpy as np

cimport cython
cimport numpy as cnp
from cython.parallel cimport prange
from libc.math cimport expf, tanhf
from libc.stdint cimport int8_t, int32_t

cnp.import_array()

# Largest inner chunk whose float32 partial sums stay exact (128² · 1024 = 2^24).
CHUNK_K = 1024
# Largest k for which any int8 product fits int32 exactly (128² · k < 2^31).
MAX_K = (2**31 - 1) // (128 * 128)


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _accumulate_rows(const float[:, ::1] src, int32_t[:, ::1] dst, bint first) noexcept nogil:
    # Serial on purpose: memory-bound and cheap, and an OpenMP team left
    # spinning here would steal the cores that BLAS is about to use.
    cdef Py_ssize_t i, j
    for i in range(src.shape[0]):
        if first:
            for j in range(src.shape[1]):
                dst[i, j] = <int32_t>src[i, j]
        else:
            for j in range(src.shape[1]):
                dst[i, j] += <int32_t>src[i, j]


cdef _accumulate(pf, out, bint first):
    cdef const float[:, ::1] src = pf
    cdef int32_t[:, ::1] dst = out
    with nogil:
        _accumulate_rows(src, dst, first)


_workspace = threading.local()


def _scratch(name, size):
    """A float32 buffer of `size` items, reused per thread: fresh pages for
    every product (page faults) cost as much as a third of the BLAS call."""
    buf = getattr(_workspace, name, None)
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype=np.float32)
        setattr(_workspace, name, buf)
    return buf[:size]


def clear_workspace():
    """Frees this thread's scratch buffers (they are kept between products)."""
    _workspace.__dict__.clear()


def matmul_i8(a, b, out=None):
    """Exact C = A·B for int8 A (n×k) and B (k×m), returned as int32 (n×m).

    Raises:
        TypeError: an operand is not an int8 numpy array (or out not int32).
        ValueError: shapes do not chain, or k > MAX_K (int32 could overflow).
    """
    if not isinstance(a, np.ndarray) or not isinstance(b, np.ndarray):
        raise TypeError("matmul_i8: a and b must be numpy arrays")
    if a.dtype != np.int8 or b.dtype != np.int8:
        raise TypeError(f"matmul_i8: a and b must be int8, got {a.dtype} and {b.dtype}")
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"matmul_i8: a and b must be 2-D, got {a.ndim}-D and {b.ndim}-D")
    cdef Py_ssize_t n = a.shape[0], k = a.shape[1], m = b.shape[1]
    if b.shape[0] != k:
        raise ValueError(f"matmul_i8: shapes {a.shape} and {b.shape} do not chain")
    if k > MAX_K:
        raise ValueError(f"matmul_i8: k={k} exceeds {MAX_K}; the int32 result could overflow")
    if out is None:
        out = np.empty((n, m), dtype=np.int32)
    elif (not isinstance(out, np.ndarray) or out.dtype != np.int32 or out.shape != (n, m)
          or not out.flags.c_contiguous):
        raise TypeError(f"matmul_i8: out must be a C-contiguous int32 array of shape {(n, m)}")
    if k == 0:
        out[...] = 0
        return out
    cdef Py_ssize_t k0, k1
    pf = _scratch("p", n * m).reshape(n, m)
    for k0 in range(0, k, CHUNK_K):
        k1 = min(k0 + CHUNK_K, k)
        af = _scratch("a", n * (k1 - k0)).reshape(n, k1 - k0)
        bf = _scratch("b", (k1 - k0) * m).reshape(k1 - k0, m)
        np.copyto(af, a[:, k0:k1], casting="unsafe")
        np.copyto(bf, b[k0:k1, :], casting="unsafe")
        np.matmul(af, bf, out=pf)
        _accumulate(pf, out, k0 == 0)
    return out


# Activations of the fused linear epilogue (the VM's Activation codes).
ACT_NONE, ACT_RELU, ACT_TANH, ACT_SIGMOID = 0, 1, 3, 4


@cython.boundscheck(False)
@cython.wraparound(False)
cdef inline float _act(float v, int act) noexcept nogil:
    if act == 1:
        return v if v > 0 else 0.0
    if act == 3:
        return tanhf(v)
    if act == 4:
        return 1.0 / (1.0 + expf(-v))
    return v


cdef inline void _row(float* row, const float* b, Py_ssize_t cols, int act) noexcept nogil:
    # one loop per activation, so the compiler vectorises the common ones
    cdef Py_ssize_t j
    cdef float v
    if act == 1:
        for j in range(cols):
            v = row[j] + b[j]
            row[j] = v if v > 0 else 0.0
    elif act == 0:
        for j in range(cols):
            row[j] = row[j] + b[j]
    else:
        for j in range(cols):
            row[j] = _act(row[j] + b[j], act)


cdef void _bias_act(float[:, ::1] out, const float[::1] b, int act, bint threads) noexcept nogil:
    cdef Py_ssize_t i, rows = out.shape[0], cols = out.shape[1]
    if threads:
        for i in prange(rows, schedule="static"):
            _row(&out[i, 0], &b[0], cols, act)
    else:
        for i in range(rows):
            _row(&out[i, 0], &b[0], cols, act)


# Below this many entries one thread is faster than waking an OpenMP team.
PARALLEL_MIN = 1 << 18


def bias_act(out, b, act):
    """The linear layer's epilogue, fused and in place: out ← act(out + b)
    row by row in one pass (OpenMP over rows from PARALLEL_MIN entries), for a C-contiguous float32
    (n, m) product `out`, a float32 bias (m,) or None, and act one of
    ACT_NONE, ACT_RELU, ACT_TANH, ACT_SIGMOID.

    Raises:
        TypeError: wrong dtypes or layout.
        ValueError: shapes disagree or act is unknown.
    """
    if (not isinstance(out, np.ndarray) or out.dtype != np.float32 or out.ndim != 2
            or not out.flags.c_contiguous or not out.flags.writeable):
        raise TypeError("bias_act: out must be a writeable C-contiguous 2-D float32 array")
    if act not in (ACT_NONE, ACT_RELU, ACT_TANH, ACT_SIGMOID):
        raise ValueError(f"bias_act: unknown activation {act!r}")
    if b is not None:
        if not isinstance(b, np.ndarray) or b.dtype != np.float32 or b.ndim != 1:
            raise TypeError("bias_act: b must be a 1-D float32 array or None")
        if b.shape[0] != out.shape[1]:
            raise ValueError(f"bias_act: bias of {b.shape[0]} for {out.shape[1]} columns")
        b = np.ascontiguousarray(b)
    else:
        b = np.zeros(out.shape[1], np.float32)
    if out.shape[0] == 0 or out.shape[1] == 0:
        return out
    cdef float[:, ::1] ov = out
    cdef const float[::1] bv = b
    cdef int a = act
    cdef bint threads = out.size >= PARALLEL_MIN
    with nogil:
        _bias_act(ov, bv, a, threads)
    return out


@cython.boundscheck(False)
@cython.wraparound(False)
cdef void _im2col(const float[:, :, :, :] x, float[:, :, ::1] col,
                  int kh, int kw, int sh, int sw, int ph, int pw, int dh, int dw,
                  int oh, int ow) noexcept nogil:
    cdef Py_ssize_t n, c, i, j, y, xo, row, iy, ix, task
    cdef Py_ssize_t channels = x.shape[1], height = x.shape[2], width = x.shape[3]
    cdef Py_ssize_t tasks = x.shape[0] * channels
    for task in prange(tasks, schedule="static"):
        n = task // channels
        c = task % channels
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                for y in range(oh):
                    iy = y * sh - ph + i * dh
                    for xo in range(ow):
                        ix = xo * sw - pw + j * dw
                        if 0 <= iy < height and 0 <= ix < width:
                            col[n, row, y * ow + xo] = x[n, c, iy, ix]
                        else:
                            col[n, row, y * ow + xo] = 0.0


def im2col(x, kernel_size, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
    """Unfolds float32 images (N, C, H, W) into columns (N, C·kh·kw, oh·ow).

    The layout is PyTorch's `torch.nn.functional.unfold`: row
    (c·kh + i)·kw + j holds input channel c at kernel offset (i, j).

    Raises:
        TypeError: x is not a float32 numpy array.
        ValueError: x is not 4-D, or the parameters give no output.
    """
    if not isinstance(x, np.ndarray) or x.dtype != np.float32:
        raise TypeError(f"im2col: x must be a float32 numpy array, got {getattr(x, 'dtype', type(x))}")
    if x.ndim != 4:
        raise ValueError(f"im2col: x must be 4-D (N, C, H, W), got {x.ndim}-D")
    cdef int kh, kw, sh, sw, ph, pw, dh, dw
    kh, kw = _pair(kernel_size, "kernel_size", 1)
    sh, sw = _pair(stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    dh, dw = _pair(dilation, "dilation", 1)
    cdef int oh = (x.shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    cdef int ow = (x.shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if oh <= 0 or ow <= 0:
        raise ValueError(f"im2col: input {x.shape[2:]} too small for kernel {(kh, kw)} with padding {(ph, pw)}")
    col = np.empty((x.shape[0], x.shape[1] * kh * kw, oh * ow), dtype=np.float32)
    cdef const float[:, :, :, :] xv = x
    cdef float[:, :, ::1] cv = col
    with nogil:
        _im2col(xv, cv, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
    return col


def _pair(value, name, minimum):
    if isinstance(value, int):
        value = (value, value)
    if (not isinstance(value, tuple) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"im2col: {name} must be an int or a pair of ints, got {value!r}")
    if value[0] < minimum or value[1] < minimum:
        raise ValueError(f"im2col: {name} must be >= {minimum}, got {value!r}")
    return value
