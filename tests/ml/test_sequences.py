"""An LSTM and a small attention model, written as VM programs, learn to
classify MNIST digits read as sequences of 28 rows: their loss falls."""

from __future__ import annotations

import numpy as np
import pytest

from bcai.crypto import blake3
from bcai.ml.datasets import load_mnist
from bcai.vm import Builder
from bcai.vm._machine import Machine

X, Y = blake3(b"seq-x"), blake3(b"seq-y")
BATCH = 32


def train(build_model: object, steps: int = 60) -> list[float]:
    data = load_mnist().train.take(BATCH * steps)
    rows = data.x.reshape(-1, 28, 28)
    init = Builder()
    params = build_model(init, None)  # type: ignore[operator]
    step = Builder(first_register=init.next)
    x = step.blob((BATCH, 28, 28), "f32", X)
    logits = build_model(step, (x, params))  # type: ignore[operator]
    loss = step.loss("cross_entropy", logits, step.blob((BATCH,), "i64", Y))
    step.backward(loss)
    step.optimize("adam", params, lr=3e-3)
    machine = Machine()
    machine.run(init.build())
    program = step.build()
    losses = []
    for i in range(steps):
        s = slice(i * BATCH, (i + 1) * BATCH)
        machine.run(program, {X: rows[s].tobytes(), Y: data.y[s].tobytes()})
        losses.append(float(machine.registers[loss][0]))
    return losses


def lstm_model(b: Builder, wiring: tuple[int, list[int]] | None) -> object:
    if wiring is None:  # parameters: one layer of 32, then a 32 → 10 head
        return [
            b.param((28, 128), std=0.15, seed=1),
            b.param((32, 128), std=0.15, seed=2),
            b.param((128,)),
            b.param((32, 10), std=0.2, seed=3),
            b.param((10,)),
        ]
    x, (w_ih, w_hh, bias, w_out, b_out) = wiring
    h = b.lstm(x, [w_ih, w_hh, bias], hidden=32)
    last = b.op("reshape", b.op("slice", h, ints=(1, 27, 28)), ints=(BATCH, 32))
    return b.linear(last, w_out, b_out)


def attention_model(b: Builder, wiring: tuple[int, list[int]] | None) -> object:
    d = 32
    if wiring is None:
        return [
            b.param((28, d), std=0.2, seed=1),
            *[b.param((d, d), std=0.18, seed=s) for s in (2, 3, 4, 5)],
            b.param((d,), std=0.0),
            b.param((d, 10), std=0.2, seed=6),
            b.param((10,)),
        ]
    x, (w_in, wq, wk, wv, wo, b_in, w_out, b_out) = wiring
    h = b.linear(x, w_in, b_in, activation="relu")
    h = b.op("add", h, b.attention(h, wq, wk, wv, wo, heads=4, causal=False))
    pooled = b.op("mean", h, ints=(1, 0))
    return b.linear(pooled, w_out, b_out)


@pytest.mark.parametrize("model", [lstm_model, attention_model], ids=["lstm", "attention"])
def test_sequence_models_learn(model: object) -> None:
    losses = train(model, steps=100)
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.75 * first, (first, last)
