"""The optimizer update rules, shared by every backend (they work on NumPy
arrays and torch tensors alike: only +, −, ×, ÷ and a square root).

SGD: floats [lr, momentum, weight_decay] (PyTorch's: decay added to the
gradient, momentum buffer b ← μ·b + g, starting at g). Adam: [lr, β1, β2, ε,
weight_decay] with decay added to the gradient; AdamW: the same with decay
applied to the weights (p ← p·(1 − lr·wd)); bias-corrected moments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bcai.vm._isa import Optimizer

State = dict[tuple[int, int], Any]  # (register, slot) -> moment or step count


def update(
    opt: Optimizer,
    floats: list[float],
    reg: int,
    p: Any,
    g: Any,
    state: State,
    sqrt: Callable[[Any], Any],
    bias: Callable[[int, int, float, int], Any] | None = None,
) -> Any:
    """The new value of parameter `p` given its gradient `g`.

    `bias(reg, slot, beta, t)`, when given, supplies Adam's bias correction
    1 − βᵗ (a device scalar a captured graph refreshes before each replay);
    it must equal the float it replaces once rounded to `p`'s dtype."""
    lr = floats[0]
    if opt == Optimizer.SGD:
        momentum, wd = [*floats, 0.0, 0.0][1:3]
        if wd:
            g = g + wd * p
        if momentum:
            buf = state.get((reg, 0))
            buf = g + 0 if buf is None else momentum * buf + g
            state[(reg, 0)] = buf
            g = buf
        return p - lr * g
    defaults = [0.9, 0.999, 1e-8, 0.0]  # β1, β2, ε, weight decay
    b1, b2, eps, wd = [*floats[1:], *defaults[len(floats) - 1 :]][:4]
    if opt == Optimizer.ADAM and wd:
        g = g + wd * p
    t = state.get((reg, 2), 0) + 1
    m = b1 * state.get((reg, 0), 0.0) + (1 - b1) * g
    v = b2 * state.get((reg, 1), 0.0) + (1 - b2) * g * g
    state[(reg, 0)], state[(reg, 1)], state[(reg, 2)] = m, v, t
    c1, c2 = (1 - b1**t, 1 - b2**t) if bias is None else (bias(reg, 0, b1, t), bias(reg, 1, b2, t))
    m_hat = m / c1
    v_hat = v / c2
    if opt == Optimizer.ADAMW and wd:
        p = p * (1 - lr * wd)
    return p - lr * m_hat / (sqrt(v_hat) + eps)
