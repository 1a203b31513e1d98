"""A small CNN trained on MNIST by VM programs (an end-to-end check of the
VM): an init program creates the parameters, a step program runs once per
batch (the batch arrives as blobs), an eval program scores the test set.

    python -m bcai.ml.mnist [--epochs 5] [--train-size 60000] [--backend cpu|torch|...]

Architecture: conv 3×3 (1→8) + ReLU + max-pool 2 → conv 3×3 (8→16) + ReLU +
max-pool 2 → linear 784→64 + ReLU → linear 64→10; Adam, lr 1e-3, batch 64.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bcai.crypto import blake3
from bcai.ml.datasets import Split, load_mnist
from bcai.vm import BACKENDS, Builder, Program, new_machine
from bcai.vm._machine import Machine

X_BLOB = blake3(b"bcai/mnist/batch-x")
Y_BLOB = blake3(b"bcai/mnist/batch-y")
PARAMS = 8  # registers 0..7 hold the parameters


def init_program(seed: int) -> Program:
    b = Builder()
    for shape, fan_in in (
        ((8, 1, 3, 3), 9),
        ((8,), 0),
        ((16, 8, 3, 3), 72),
        ((16,), 0),
        ((16 * 7 * 7, 64), 784),
        ((64,), 0),
        ((64, 10), 64),
        ((10,), 0),
    ):
        std = float(np.sqrt(2.0 / fan_in)) if fan_in else 0.0
        b.param(shape, std=std, seed=seed + len(b.instructions))
    return b.build(registers=PARAMS)


def _forward(b: Builder, batch: int) -> int:
    x = b.blob((batch, 1, 28, 28), "f32", X_BLOB)
    h = b.maxpool2d(b.op("relu", b.conv2d(x, 0, 1, padding=1)), 2)
    h = b.maxpool2d(b.op("relu", b.conv2d(h, 2, 3, padding=1)), 2)
    h = b.linear(b.op("reshape", h, ints=(batch, -1)), 4, 5, activation="relu")
    return b.linear(h, 6, 7)


def step_program(batch: int, lr: float = 1e-3) -> tuple[Program, int]:
    b = Builder(first_register=PARAMS)
    logits = _forward(b, batch)
    loss = b.loss("cross_entropy", logits, b.blob((batch,), "i64", Y_BLOB))
    b.backward(loss)
    b.optimize("adam", list(range(PARAMS)), lr=lr)
    return b.build(), loss


def eval_program(batch: int) -> tuple[Program, int]:
    b = Builder(first_register=PARAMS)
    logits = _forward(b, batch)
    return b.build(), logits


@dataclass
class Curve:
    losses: list[float] = field(default_factory=list)  # mean loss per logged interval
    accuracy: list[float] = field(default_factory=list)  # test accuracy after each epoch
    seconds: float = 0.0


def accuracy(machine: Machine, data: Split, batch: int = 1000) -> float:
    program, logits = eval_program(batch)
    correct = 0
    usable = len(data) - len(data) % batch
    for start in range(0, usable, batch):
        x = data.x[start : start + batch]
        machine.run(program, {X_BLOB: x.tobytes()})
        scores = machine.registers[logits]
        host = scores.get() if hasattr(scores, "get") else scores  # a CuPy register
        correct += int((host.argmax(axis=1) == data.y[start : start + batch]).sum())
    return correct / usable


def train(
    *,
    epochs: int = 3,
    train_size: int = 60_000,
    batch: int = 64,
    seed: int = 0,
    backend: str = "cpu",
    trace: str = "full",
    log: Callable[[str], None] | None = None,
) -> Curve:
    """`trace="checkpoints"` runs each step as one captured program (a CUDA
    graph on the CuPy backend, `Machine.capture`)."""
    data = load_mnist()
    train_set, test_set = data.train.take(train_size), data.test
    machine = new_machine(backend, trace=trace)
    machine.run(init_program(seed))
    program, loss = step_program(batch)
    step = None
    rng = np.random.Generator(np.random.PCG64(seed))
    curve = Curve()
    start = time.monotonic()
    for epoch in range(epochs):
        order = rng.permutation(len(train_set))
        running: list[float] = []
        for i in range(len(order) // batch):
            idx = order[i * batch : (i + 1) * batch]
            blobs = {X_BLOB: train_set.x[idx].tobytes(), Y_BLOB: train_set.y[idx].tobytes()}
            if trace == "full":
                machine.run(program, blobs)
            elif step is None:
                step = machine.capture(program, blobs)  # runs this batch too
            else:
                step.run(blobs)
            running.append(float(machine.registers[loss][0]))
            if len(running) == 100:
                curve.losses.append(float(np.mean(running)))
                running = []
                if log is not None:
                    log(f"epoch {epoch + 1} step {i + 1}: loss {curve.losses[-1]:.4f}")
        curve.accuracy.append(accuracy(machine, test_set))
        if log is not None:
            log(
                f"epoch {epoch + 1}: test accuracy {curve.accuracy[-1]:.4f} "
                f"({time.monotonic() - start:.0f} s)"
            )
    curve.seconds = time.monotonic() - start
    return curve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-size", type=int, default=60_000)
    parser.add_argument("--backend", default="cpu", choices=BACKENDS)
    parser.add_argument(
        "--trace",
        default="full",
        choices=("full", "checkpoints"),
        help="checkpoints: each step one captured program (a CUDA graph on cupy)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    curve = train(
        epochs=args.epochs,
        train_size=args.train_size,
        backend=args.backend,
        trace=args.trace,
        log=None if args.json else lambda line: print(line, flush=True),
    )
    if args.json:
        print(json.dumps(vars(curve)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
