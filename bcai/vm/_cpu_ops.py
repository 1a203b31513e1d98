"""CPU kernels of the VM in NumPy (and `bcai._kernels` for im2col): each
returns the output and a function from the output's gradient to the inputs'
gradients (None where an input is not differentiable).

Reductions run in a fixed order (NumPy's pairwise summation over a
C-contiguous layout, on one thread for a given shape), so a program run twice
gives bit-identical results. GELU is the tanh approximation (PyTorch's
`approximate="tanh"`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from bcai import kernels

Array = npt.NDArray[Any]  # or a CuPy array: the same code runs on both


def xp_of(a: Any) -> Any:
    """The array module of `a`: NumPy, or CuPy for a device array."""
    module = type(a).__module__
    if module.startswith("cupy"):
        import cupy  # noqa: PLC0415 - only where CuPy arrays exist

        return cupy
    return np


def contig(a: Any) -> Any:
    """A C-contiguous copy of `a` (or `a`), on whichever device it lives."""
    return xp_of(a).ascontiguousarray(a)


def mm(a: Array, b: Array) -> Array:
    """`a @ b`; on CuPy through bcai's CUDA GEMM (capturable in a graph,
    fixed reduction order: `bcai.vm._cuda_gemm`)."""
    if xp_of(a) is np:
        return a @ b
    from bcai.vm import _cuda_gemm  # noqa: PLC0415 - only where CuPy arrays exist

    out: Array = _cuda_gemm.matmul(a, b)
    return out


def scatter_add(target: Array, index: Any, values: Array) -> None:
    if xp_of(target) is np:
        np.add.at(target, index, values)
    else:
        import cupyx  # noqa: PLC0415

        cupyx.scatter_add(target, index, values)


Grads = tuple[Array | None, ...]
Back = Callable[[Array], Grads]
SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)


def unbroadcast(g: Array, shape: tuple[int, ...]) -> Array:
    """Sums a broadcast gradient back to `shape`."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for i, d in enumerate(shape):
        if d == 1 and g.shape[i] != 1:
            g = g.sum(axis=i, keepdims=True)
    return g


def add(a: Array, b: Array) -> tuple[Array, Back]:
    return a + b, lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape))


def sub(a: Array, b: Array) -> tuple[Array, Back]:
    return a - b, lambda g: (unbroadcast(g, a.shape), unbroadcast(-g, b.shape))


def mul(a: Array, b: Array) -> tuple[Array, Back]:
    return a * b, lambda g: (unbroadcast(g * b, a.shape), unbroadcast(g * a, b.shape))


def div(a: Array, b: Array) -> tuple[Array, Back]:
    out = a / b
    return out, lambda g: (unbroadcast(g / b, a.shape), unbroadcast(-g * out / b, b.shape))


def matmul(a: Array, b: Array) -> tuple[Array, Back]:
    out = mm(a, b)

    def back(g: Array) -> Grads:
        ga = mm(g, b.T)
        flat_a = a.reshape(-1, a.shape[-1])
        gb = mm(flat_a.T, g.reshape(-1, g.shape[-1]))
        return ga, gb

    return out, back


def relu(x: Array) -> tuple[Array, Back]:
    mask = x > 0
    return x * mask, lambda g: (g * mask,)


def tanh(x: Array) -> tuple[Array, Back]:
    out = np.tanh(x)
    return out, lambda g: (g * (1 - out * out),)


def sigmoid(x: Array) -> tuple[Array, Back]:
    out = 1 / (1 + np.exp(-x))
    return out, lambda g: (g * out * (1 - out),)


def gelu(x: Array) -> tuple[Array, Back]:
    inner = SQRT_2_OVER_PI * (x + 0.044715 * x**3)
    t = np.tanh(inner)
    out = 0.5 * x * (1 + t)

    def back(g: Array) -> Grads:
        d_inner = SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
        return (g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner),)

    return out.astype(x.dtype), back


def softmax(x: Array, axis: int) -> tuple[Array, Back]:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    out = e / e.sum(axis=axis, keepdims=True)
    return out, lambda g: (out * (g - (g * out).sum(axis=axis, keepdims=True)),)


def log_softmax(x: Array, axis: int) -> tuple[Array, Back]:
    shifted = x - x.max(axis=axis, keepdims=True)
    out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    soft = np.exp(out)
    return out, lambda g: (g - soft * g.sum(axis=axis, keepdims=True),)


def layernorm(x: Array, gamma: Array | None, beta: Array | None, eps: float) -> tuple[Array, Back]:
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=-1, keepdims=True)
    inv = 1 / np.sqrt(var + eps)
    norm = centered * inv
    out = norm * gamma + beta if gamma is not None and beta is not None else norm
    n = x.shape[-1]

    def back(g: Array) -> Grads:
        gn = g * gamma if gamma is not None else g
        gx = (
            inv
            / n
            * (n * gn - gn.sum(-1, keepdims=True) - norm * (gn * norm).sum(-1, keepdims=True))
        )
        if gamma is None:
            return (gx,)
        axes = tuple(range(g.ndim - 1))
        return gx, (g * norm).sum(axis=axes), g.sum(axis=axes)

    return out.astype(x.dtype), back


def reshape(x: Array, shape: Sequence[int]) -> tuple[Array, Back]:
    return x.reshape(shape), lambda g: (g.reshape(x.shape),)


def transpose(x: Array, perm: Sequence[int]) -> tuple[Array, Back]:
    inverse = np.argsort(perm)
    return contig(x.transpose(perm)), lambda g: (g.transpose(inverse),)


def concat(xs: Sequence[Array], axis: int) -> tuple[Array, Back]:
    cuts = np.cumsum([x.shape[axis] for x in xs])[:-1]
    return np.concatenate(xs, axis=axis), lambda g: tuple(np.split(g, cuts, axis=axis))


def slice_(x: Array, axis: int, start: int, stop: int) -> tuple[Array, Back]:
    index = [slice(None)] * x.ndim
    index[axis] = slice(start, stop)

    def back(g: Array) -> Grads:
        full = np.zeros_like(x)
        full[tuple(index)] = g
        return (full,)

    return contig(x[tuple(index)]), back


def reduce(kind: str, x: Array, axis: int | None, keep: bool) -> tuple[Array, Back]:
    out: Array
    if kind == "sum":
        out = x.sum(axis=axis, keepdims=True)
    elif kind == "mean":
        out = x.mean(axis=axis, keepdims=True)
    else:
        out = x.max(axis=axis, keepdims=True)
    count = x.size if axis is None else x.shape[axis]
    first: Array | None = None
    if kind == "max":  # the gradient goes to the first maximum only, as PyTorch's
        if axis is None:
            flat = xp_of(x).zeros(x.size, dtype=bool)
            flat[int(x.argmax())] = True
            first = flat.reshape(x.shape)
        else:
            hit = x == out
            first = hit & (np.cumsum(hit, axis=axis) == 1)
    shape = out.shape

    def back(g: Array) -> Grads:
        g = g.reshape(shape)
        if first is not None:
            return (np.where(first, g, 0).astype(x.dtype),)
        scale = 1.0 / count if kind == "mean" else 1.0
        return (np.broadcast_to(g * scale, x.shape).astype(x.dtype),)

    if axis is None:
        result = out.reshape(1)
    elif keep:
        result = out
    else:
        result = out.reshape(tuple(d for i, d in enumerate(shape) if i != axis) or (1,))
    return result.astype(x.dtype), back


FUSED_ACTIVATIONS = (kernels.ACT_NONE, kernels.ACT_RELU, kernels.ACT_TANH, kernels.ACT_SIGMOID)


def _fused_linear(x: Array, w: Array, b: Array | None, activation: int) -> tuple[Array, Back]:
    """BLAS product, then bias and activation in one threaded pass
    (`bcai.kernels.bias_act`); gradients from the activated output."""
    flat = x.reshape(-1, x.shape[-1])
    out = np.ascontiguousarray(flat @ w)
    kernels.bias_act(out, b, activation)

    def back(g: Array) -> Grads:
        g = g.reshape(out.shape)
        if activation == kernels.ACT_RELU:
            g = g * (out > 0)
        elif activation == kernels.ACT_TANH:
            g = g * (1 - out * out)
        elif activation == kernels.ACT_SIGMOID:
            g = g * out * (1 - out)
        gx = (g @ w.T).reshape(x.shape)
        return gx, flat.T @ g, None if b is None else g.sum(axis=0)

    return out.reshape(*x.shape[:-1], w.shape[1]), back


def linear(x: Array, w: Array, b: Array | None, activation: int) -> tuple[Array, Back]:
    if (
        isinstance(x, np.ndarray)
        and x.dtype == w.dtype == np.float32
        and w.ndim == 2
        and (b is None or (b.dtype == np.float32 and b.ndim == 1))
        and activation in FUSED_ACTIVATIONS
    ):
        return _fused_linear(x, w, b, activation)
    out, back_mm = matmul(x, w)
    back_b: Back | None = None
    if b is not None:
        out, back_b = add(out, b)
    act_back: Back | None = None
    if activation:
        out, act_back = ACTIVATIONS[activation](out)

    def back(g: Array) -> Grads:
        if act_back is not None:
            (g,) = act_back(g)  # type: ignore[assignment]
        gb = back_b(g)[1] if back_b is not None else None
        gx, gw = back_mm(g)
        return gx, gw, gb

    return out, back


ACTIVATIONS: dict[int, Callable[[Array], tuple[Array, Back]]] = {
    1: relu,
    2: gelu,
    3: tanh,
    4: sigmoid,
}


def conv2d(x: Array, w: Array, b: Array | None, stride: int, padding: int) -> tuple[Array, Back]:
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (wd + 2 * padding - kw) // stride + 1
    if xp_of(x) is np:
        cols = kernels.im2col(
            np.ascontiguousarray(x, dtype=np.float32),
            (kh, kw),
            (stride, stride),
            (padding, padding),
        ).astype(x.dtype, copy=False)  # (N, C·kh·kw, oh·ow)
    else:
        cols = _im2col_strided(x, kh, kw, stride, padding, oh, ow)
    wmat = w.reshape(o, -1)
    p = oh * ow
    # one large product instead of N small ones: columns as (K, N·P)
    flat = contig(cols.transpose(1, 0, 2)).reshape(cols.shape[1], n * p)
    out = mm(wmat, flat).reshape(o, n, oh, ow).transpose(1, 0, 2, 3)
    if b is not None:
        out = out + b.reshape(1, o, 1, 1)
    out = contig(out)

    def back(g: Array) -> Grads:
        g2 = contig(g.reshape(n, o, p).transpose(1, 0, 2)).reshape(o, n * p)
        gw = mm(g2, flat.T).reshape(w.shape)
        gcols = mm(wmat.T, g2).reshape(-1, n, p).transpose(1, 0, 2)
        gx = _col2im(gcols, x.shape, kh, kw, stride, padding, oh, ow)
        gb = g2.sum(axis=1) if b is not None else None
        return gx, gw, gb

    return out.astype(x.dtype), back


def _im2col_strided(x: Array, kh: int, kw: int, stride: int, pad: int, oh: int, ow: int) -> Array:
    """im2col by a strided view of the padded input (for device arrays)."""
    xp = xp_of(x)
    n, c = x.shape[:2]
    padded = xp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) if pad else x
    padded = xp.ascontiguousarray(padded)
    s0, s1, s2, s3 = padded.strides
    windows = xp.lib.stride_tricks.as_strided(
        padded, shape=(n, c, kh, kw, oh, ow), strides=(s0, s1, s2, s3, s2 * stride, s3 * stride)
    )
    cols: Array = windows.reshape(n, c * kh * kw, oh * ow)
    return cols


def _col2im(
    cols: Array, shape: tuple[int, ...], kh: int, kw: int, stride: int, pad: int, oh: int, ow: int
) -> Array:
    n, c, h, w = shape
    padded: Array = xp_of(cols).zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=cols.dtype)
    cols = cols.reshape(n, c, kh, kw, oh, ow)
    for i in range(kh):
        for j in range(kw):
            padded[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += cols[
                :, :, i, j
            ]
    return padded[:, :, pad : pad + h, pad : pad + w]


def maxpool2d(x: Array, k: int, stride: int) -> tuple[Array, Back]:
    """The first maximum of each window wins (as PyTorch's), also on ties
    such as all-zero windows after a ReLU."""
    h, w = x.shape[2:]
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1

    def view(i: int, j: int) -> Array:  # element (i, j) of every window
        return x[
            :, :, i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride
        ]

    best = contig(view(0, 0))
    arg = xp_of(x).zeros(best.shape, dtype=np.int8 if k * k < 128 else np.int32)
    for pos in range(1, k * k):
        v = contig(view(*divmod(pos, k)))
        better = v > best
        best = np.maximum(best, v)
        arg = np.where(better, np.int8(pos) if k * k < 128 else pos, arg)

    def back(g: Array) -> Grads:
        gx = np.zeros_like(x)
        for pos in range(k * k):
            i, j = divmod(pos, k)
            target = gx[
                :, :, i : i + stride * (oh - 1) + 1 : stride, j : j + stride * (ow - 1) + 1 : stride
            ]
            if stride >= k:  # windows do not overlap: each element is written once
                np.multiply(g, arg == pos, out=target)
            else:
                target += np.where(arg == pos, g, 0)
        return (gx,)

    return best, back


def cross_entropy(logits: Array, target: Array) -> tuple[Array, Back]:
    logp, _ = log_softmax(logits, -1)
    xp = xp_of(logits)
    n = logits.shape[0]
    rows = xp.arange(n)
    picked = logp[rows, target]
    out = (-picked.mean()).reshape(1).astype(logits.dtype)

    def back(g: Array) -> Grads:
        grad = np.exp(logp)
        grad[rows, target] -= 1
        return grad * (g[0] / n), None

    return out, back


def mse(pred: Array, target: Array) -> tuple[Array, Back]:
    diff = pred - target
    out = (diff * diff).mean().reshape(1).astype(pred.dtype)
    return out, lambda g: (2 * diff * (g[0] / diff.size), -2 * diff * (g[0] / diff.size))


def embedding(table: Array, ids: Array) -> tuple[Array, Back]:
    def back(g: Array) -> Grads:
        gt = np.zeros_like(table)
        scatter_add(gt, ids.reshape(-1), g.reshape(-1, table.shape[1]))
        return gt, None

    return table[ids], back


def dropout(x: Array, p: float, seed: int) -> tuple[Array, Back]:
    keep = np.random.Generator(np.random.PCG64(seed)).random(x.shape) >= p
    mask = xp_of(x).asarray(keep.astype(x.dtype) / np.asarray(1.0 - p, dtype=x.dtype))
    return (x * mask).astype(x.dtype), lambda g: (g * mask,)


def _sig(z: Array) -> Array:
    return 1 / (1 + np.exp(-z))


def lstm_layer(x: Array, w_ih: Array, w_hh: Array, b: Array) -> tuple[Array, Back]:
    """One LSTM layer over (N, T, in) from zero state; gates i, f, g, o (as
    PyTorch's, with w_ih (in, 4H) = PyTorch's weight_ih transposed)."""
    n, t_len, _ = x.shape
    hid = w_hh.shape[0]
    xp = xp_of(x)
    h = xp.zeros((n, hid), x.dtype)
    c = xp.zeros((n, hid), x.dtype)
    hs, cache = [], []
    for t in range(t_len):
        z = mm(x[:, t], w_ih) + mm(h, w_hh) + b
        i, f = _sig(z[:, :hid]), _sig(z[:, hid : 2 * hid])
        g, o = np.tanh(z[:, 2 * hid : 3 * hid]), _sig(z[:, 3 * hid :])
        c_prev, h_prev = c, h
        c = f * c + i * g
        tc = np.tanh(c)
        h = o * tc
        hs.append(h)
        cache.append((i, f, g, o, c_prev, h_prev, tc))
    out = np.stack(hs, axis=1)

    def back(gout: Array) -> Grads:
        gx = np.zeros_like(x)
        gw_ih, gw_hh, gb = np.zeros_like(w_ih), np.zeros_like(w_hh), np.zeros_like(b)
        gh_next = xp.zeros((n, hid), x.dtype)
        gc_next = xp.zeros((n, hid), x.dtype)
        for t in reversed(range(t_len)):
            i, f, g, o, c_prev, h_prev, tc = cache[t]
            gh = gout[:, t] + gh_next
            go = gh * tc
            gc = gh * o * (1 - tc * tc) + gc_next
            gi, gf, gg = gc * g, gc * c_prev, gc * i
            gz = np.concatenate(
                [gi * i * (1 - i), gf * f * (1 - f), gg * (1 - g * g), go * o * (1 - o)], axis=1
            )
            gx[:, t] = mm(gz, w_ih.T)
            gw_ih += mm(x[:, t].T, gz)
            gw_hh += mm(h_prev.T, gz)
            gb += gz.sum(axis=0)
            gh_next = mm(gz, w_hh.T)
            gc_next = gc * f
        return gx, gw_ih, gw_hh, gb

    return out, back


def attention(
    x: Array, wq: Array, wk: Array, wv: Array, wo: Array, heads: int, causal: bool
) -> tuple[Array, Back]:
    """Multi-head self-attention, softmax(q kᵀ / √d_h [+ causal mask]) v, then wo."""
    n, t_len, d = x.shape
    dh = d // heads
    scale = 1.0 / np.sqrt(dh)

    def split(a: Array) -> Array:
        return a.reshape(n, t_len, heads, dh).transpose(0, 2, 1, 3)

    q, k, v = split(mm(x, wq)), split(mm(x, wk)), split(mm(x, wv))
    scores = mm(q, k.transpose(0, 1, 3, 2)) * scale
    if causal:
        xp = xp_of(x)
        mask = xp.triu(xp.ones((t_len, t_len), dtype=bool), 1)
        scores = np.where(mask, -np.inf, scores)
    p, p_back = softmax(scores, -1)
    ctx = mm(p, v).transpose(0, 2, 1, 3).reshape(n, t_len, d)
    out = mm(ctx, wo)

    def merge(a: Array) -> Array:
        return a.transpose(0, 2, 1, 3).reshape(n, t_len, d)

    def back(g: Array) -> Grads:
        flat = x.reshape(-1, d)
        gwo = mm(ctx.reshape(-1, d).T, g.reshape(-1, d))
        gctx = split(mm(g, wo.T))
        gp = mm(gctx, v.transpose(0, 1, 3, 2))
        gv = mm(p.transpose(0, 1, 3, 2), gctx)
        (gs,) = p_back(gp)
        gs = gs * scale
        gq = mm(gs, k)
        gk = mm(gs.transpose(0, 1, 3, 2), q)
        gq, gk, gv = merge(gq), merge(gk), merge(gv)
        gx = mm(gq, wq.T) + mm(gk, wk.T) + mm(gv, wv.T)
        return (
            gx.astype(x.dtype),
            mm(flat.T, gq.reshape(-1, d)),
            mm(flat.T, gk.reshape(-1, d)),
            mm(flat.T, gv.reshape(-1, d)),
            gwo,
        )

    return out.astype(x.dtype), back
