"""Tensor VM benchmarks (issue 6): one training step of the MNIST CNN and of
an MLP as VM programs, against the same model in plain PyTorch in the same
run (target: the VM at most 1.5x PyTorch's time, i.e. ratio >= 0.67); and
the interpreter's overhead per instruction on tiny tensors against the same
NumPy calls made directly.

With CUDA (the GPU machine) the PyTorch-CUDA backend runs the same steps
against plain PyTorch on CUDA (target <= 1.3x, ratio >= 0.77).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bcai.crypto import blake3
from bcai.ml import mnist
from bcai.vm import Builder, Machine, new_machine
from bcai.vm._cupy_machine import available as cupy_available

torch = pytest.importorskip("torch")
F = torch.nn.functional
CUDA = torch.cuda.is_available()
BATCH = 64
RNG = np.random.default_rng(0)
X = RNG.random((BATCH, 1, 28, 28), dtype=np.float32)
Y = RNG.integers(0, 10, BATCH).astype(np.int64)
CNN_BLOBS = {mnist.X_BLOB: X.tobytes(), mnist.Y_BLOB: Y.tobytes()}


def vm_cnn(backend: str, trace: str = "full") -> tuple[Machine, Any, int]:
    m = new_machine(backend, trace=trace)
    m.run(mnist.init_program(0))
    program, loss = mnist.step_program(BATCH)
    for _ in range(3):
        m.run(program, CNN_BLOBS)
    return m, program, loss


def torch_trainer(model: Any, x_np: np.ndarray, device: str) -> Any:
    """One Adam step of `model` on (x, Y) per call; returns the loss."""
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x, y = torch.tensor(x_np, device=device), torch.tensor(Y, device=device)

    def step() -> float:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return float(loss.detach())

    return step


def torch_cnn(device: str) -> Any:
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(784, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )
    return torch_trainer(model, X, device)


MLP_X = RNG.random((BATCH, 784), dtype=np.float32)
MLP_BLOBS = {blake3(b"mlp-x"): MLP_X.tobytes(), blake3(b"mlp-y"): Y.tobytes()}


def vm_mlp(backend: str, trace: str = "full") -> tuple[Machine, Any, int]:
    init = Builder()
    w1, b1 = init.param((784, 256), std=0.05, seed=1), init.param((256,))
    w2, b2 = init.param((256, 10), std=0.05, seed=2), init.param((10,))
    step = Builder(first_register=init.next)
    x = step.blob((BATCH, 784), "f32", blake3(b"mlp-x"))
    h = step.linear(x, w1, b1, activation="relu")
    loss = step.loss(
        "cross_entropy", step.linear(h, w2, b2), step.blob((BATCH,), "i64", blake3(b"mlp-y"))
    )
    step.backward(loss)
    step.optimize("adam", [w1, b1, w2, b2], lr=1e-3)
    m = new_machine(backend, trace=trace)
    m.run(init.build())
    program = step.build()
    m.run(program, MLP_BLOBS)
    return m, program, loss


def torch_mlp(device: str) -> Any:
    nn = torch.nn
    return torch_trainer(
        nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)), MLP_X, device
    )


def _vm_step(m: Machine, program: Any, loss: int, blobs: dict[bytes, bytes]) -> float:
    m.run(program, blobs)
    return float(m.registers[loss][0])


def time_vm(benchmark: Any, built: tuple[Machine, Any, int], blobs: dict[bytes, bytes]) -> None:
    """Times one VM training step, checking first and after that it learns."""
    m, program, loss = built
    first = _vm_step(m, program, loss, blobs)
    benchmark(_vm_step, m, program, loss, blobs)
    assert _vm_step(m, program, loss, blobs) < first


def time_torch(benchmark: Any, step: Any) -> None:
    """Times a step function returning the loss; checks that it learns."""
    first = step()
    benchmark(step)
    assert step() < first


@pytest.mark.benchmark(group="vm-cnn-step-cpu")
def test_vm_cnn_step_cpu(benchmark: Any, role: Any) -> None:
    role("bcai", target=0.67)
    m, program, loss = vm_cnn("cpu")
    first = _vm_step(m, program, loss, CNN_BLOBS)
    benchmark(_vm_step, m, program, loss, CNN_BLOBS)
    assert _vm_step(m, program, loss, CNN_BLOBS) < first  # it is learning


@pytest.mark.benchmark(group="vm-cnn-step-cpu")
def test_torch_cnn_step_cpu(benchmark: Any, role: Any) -> None:
    role("baseline")
    time_torch(benchmark, torch_cnn("cpu"))


@pytest.mark.benchmark(group="vm-mlp-step-cpu")
def test_vm_mlp_step_cpu(benchmark: Any, role: Any) -> None:
    role("bcai", target=0.67)
    time_vm(benchmark, vm_mlp("cpu"), MLP_BLOBS)


@pytest.mark.benchmark(group="vm-mlp-step-cpu")
def test_torch_mlp_step_cpu(benchmark: Any, role: Any) -> None:
    role("baseline")
    time_torch(benchmark, torch_mlp("cpu"))


needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device here (run on the GPU machine)")


@needs_cuda
@pytest.mark.benchmark(group="vm-cnn-step-cuda")
def test_vm_cnn_step_torch_cuda(benchmark: Any, role: Any) -> None:
    role("bcai", target=0.77)
    time_vm(benchmark, vm_cnn("torch-cuda"), CNN_BLOBS)


@needs_cuda
@pytest.mark.benchmark(group="vm-cnn-step-cuda")
def test_vm_cnn_step_torch_cuda_checkpoint_trace(benchmark: Any, role: Any) -> None:
    """The same, hashing registers only at checkpoints (a training run whose
    segments are replayed with full traces only when disputed)."""
    role("bcai-checkpoint-trace")
    time_vm(benchmark, vm_cnn("torch-cuda", trace="checkpoints"), CNN_BLOBS)


@needs_cuda
@pytest.mark.benchmark(group="vm-cnn-step-cuda")
def test_torch_cnn_step_cuda(benchmark: Any, role: Any) -> None:
    role("baseline")
    time_torch(benchmark, torch_cnn("cuda"))


needs_cupy = pytest.mark.skipif(
    not cupy_available(), reason="no CuPy with a CUDA device here (run on the GPU machine)"
)


def graph_step(built: tuple[Machine, Any, int], blobs: dict[bytes, bytes]) -> Any:
    """The step captured as one CUDA graph; a call runs it and reads the loss."""
    m, program, loss = built
    step = m.capture(program, blobs)

    def run() -> float:
        step.run(blobs)
        return float(m.registers[loss][0])

    return run


@needs_cupy
@pytest.mark.benchmark(group="vm-cnn-step-cupy")
def test_vm_cnn_step_cupy_graph(benchmark: Any, role: Any) -> None:
    """The CNN step as one CUDA graph (checkpoint traces; eager below)."""
    role("bcai", target=0.77)
    time_torch(benchmark, graph_step(vm_cnn("cupy", trace="checkpoints"), CNN_BLOBS))


@needs_cupy
@pytest.mark.benchmark(group="vm-cnn-step-cupy")
def test_vm_cnn_step_cupy_eager(benchmark: Any, role: Any) -> None:
    role("bcai-eager-full-trace")
    time_vm(benchmark, vm_cnn("cupy"), CNN_BLOBS)


@needs_cupy
@pytest.mark.benchmark(group="vm-mlp-step-cupy")
def test_vm_mlp_step_cupy_graph(benchmark: Any, role: Any) -> None:
    role("bcai", target=0.77)
    time_torch(benchmark, graph_step(vm_mlp("cupy", trace="checkpoints"), MLP_BLOBS))


@needs_cupy
@pytest.mark.benchmark(group="vm-mlp-step-cupy")
def test_torch_mlp_step_cuda_for_cupy(benchmark: Any, role: Any) -> None:
    role("baseline")
    time_torch(benchmark, torch_mlp("cuda"))


@needs_cupy
@pytest.mark.benchmark(group="vm-cnn-step-cupy")
def test_torch_cnn_step_cuda_for_cupy(benchmark: Any, role: Any) -> None:
    role("baseline")
    time_torch(benchmark, torch_cnn("cuda"))


OPS = 200
TINY = np.ones((4, 4), np.float32)


def tiny_program() -> Any:
    b = Builder()
    r = b.create((4, 4), "f32", "ones")
    for _ in range(OPS):
        r = b.op("add", r, 0)
    return b.build(registers=OPS + 2), r


@pytest.mark.benchmark(group="vm-overhead-200-tiny-adds")
def test_vm_interpreter_overhead(benchmark: Any, role: Any) -> None:
    role("bcai")
    program, out = tiny_program()
    m = Machine()
    m.run(program)
    assert float(m.registers[out][0, 0]) == OPS + 1
    benchmark(m.run, program)
    benchmark.extra_info["us_per_instruction"] = round(
        benchmark.stats.stats.median / (OPS + 1) * 1e6, 2
    )


@pytest.mark.benchmark(group="vm-overhead-200-tiny-adds")
def test_numpy_direct_adds(benchmark: Any, role: Any) -> None:
    role("baseline")

    def direct() -> np.ndarray:
        r = TINY.copy()
        for _ in range(OPS):
            r = r + TINY
        return r

    assert float(direct()[0, 0]) == OPS + 1
    benchmark(direct)
