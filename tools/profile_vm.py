"""Where a VM training step spends its device time: runs the MNIST CNN step
on a backend instruction by instruction, synchronising after each, and
prints the milliseconds per instruction kind (GPU machine: `--backend cupy`).

    python tools/profile_vm.py --backend cupy --batch 64
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np

from bcai.ml import mnist
from bcai.vm import new_machine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.batch, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, args.batch).astype(np.int64)
    blobs = {mnist.X_BLOB: x.tobytes(), mnist.Y_BLOB: y.tobytes()}
    m = new_machine(args.backend, trace="checkpoints")
    m.run(mnist.init_program(0))
    program, _ = mnist.step_program(args.batch)
    m.run(program, blobs)
    sync = _sync(args.backend)
    totals: dict[str, float] = collections.defaultdict(float)
    for _ in range(args.steps):
        for index, ins in enumerate(program.instructions):
            sync()
            start = time.perf_counter()
            m._execute(ins, blobs)
            sync()
            name = f"{index:02d} {type(ins).__name__}"
            totals[name] += (time.perf_counter() - start) * 1e3 / args.steps
    for name, ms in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"{ms:8.3f} ms  {name}")
    print(f"{sum(totals.values()):8.3f} ms  total (synchronised per instruction)")


def _sync(backend: str) -> object:
    if backend == "cupy":
        import cupy  # noqa: PLC0415

        return cupy.cuda.Device().synchronize
    if backend == "torch-cuda":
        import torch  # noqa: PLC0415

        return torch.cuda.synchronize
    return lambda: None


if __name__ == "__main__":
    main()
