"""The PyTorch backend against the CPU backend: the same programs give the
same registers and gradients within the tolerances of docs/vm.md, training
follows the same path, and a torch run repeated is bit-identical. CUDA runs
of the same tests happen on the GPU machine (skipped here without CUDA)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bcai.vm import Builder, VmError, new_machine
from bcai.vm._machine import Machine
from tests.vm.test_cpu_backend import BLOBS, CASES, blob, mlp_programs

torch = pytest.importorskip("torch")
from bcai.vm._cupy_machine import CupyMachine  # noqa: E402
from bcai.vm._cupy_machine import available as cupy_available  # noqa: E402
from bcai.vm._torch_machine import TorchMachine  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CUPY = cupy_available()


def to_np(a: Any) -> np.ndarray:
    """Host values of a NumPy or CuPy array."""
    return a.get() if hasattr(a, "get") else np.asarray(a)


def machines() -> list[Any]:
    """(name, factory) of every accelerated or alternative backend here."""
    out = [pytest.param(lambda d=d: TorchMachine(device=d), id=f"torch-{d}") for d in DEVICES]
    out.append(
        pytest.param(
            CupyMachine,
            id="cupy",
            marks=pytest.mark.skipif(not CUPY, reason="no CuPy with a CUDA device here"),
        )
    )
    return out


def run_on(
    machine: Machine, inputs: list[np.ndarray], vm_fn: Any
) -> tuple[np.ndarray, list[np.ndarray]]:
    params = list(range(len(inputs)))
    for p, a in zip(params, inputs, strict=True):
        machine.put(p, a, trainable=True)  # on the machine's own device
    step = Builder(first_register=len(inputs))
    out = vm_fn(step, params)
    total = step.op("sum", step.op("mul", out, out))  # a scalar that uses every output
    step.backward(total)
    machine.run(step.build(registers=64), BLOBS)
    return to_np(machine.registers[out]), [to_np(machine.grads[p]) for p in params]


@pytest.mark.parametrize("make", machines())
@pytest.mark.parametrize(("name", "inputs", "vm_fn", "torch_fn"), CASES, ids=[c[0] for c in CASES])
def test_backends_agree_with_cpu(
    make: Any, name: str, inputs: list[np.ndarray], vm_fn: Any, torch_fn: Any
) -> None:
    rtol = 1e-4 if name.startswith("conv2d") else 1e-9
    out_cpu, grads_cpu = run_on(Machine(), inputs, vm_fn)
    out_t, grads_t = run_on(make(), inputs, vm_fn)
    np.testing.assert_allclose(out_t, out_cpu, rtol=rtol, atol=rtol)
    for a, b in zip(grads_t, grads_cpu, strict=True):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * 10)


@pytest.mark.parametrize("other", machines())
def test_training_follows_the_same_path_and_repeats_bit_for_bit(other: Any) -> None:
    init, step, loss = mlp_programs()
    paths = []
    traces = []
    for make in (Machine, other, other):
        m = make()
        m.run(init.build(registers=16), BLOBS)
        losses, trace = [], []
        for _ in range(20):
            trace.append(m.run(step.build(registers=16), BLOBS).trace)
            losses.append(float(m.registers[loss][0]))
        paths.append(losses)
        traces.append(trace)
    np.testing.assert_allclose(paths[1], paths[0], rtol=1e-4)
    assert paths[1][-1] < paths[1][0]
    assert traces[1] == traces[2]  # deterministic on one backend


def test_data_is_read_the_same_on_both() -> None:
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = Builder()
    r = b.blob(x.shape, "f32", blob(x))
    for m in (Machine(), TorchMachine()):
        m.run(b.build(), BLOBS)
        np.testing.assert_array_equal(m.registers[r], x)


def test_backend_choice() -> None:
    assert type(new_machine("cpu")) is Machine
    assert isinstance(new_machine("torch"), TorchMachine)
    auto = new_machine("auto")
    assert isinstance(auto, TorchMachine) == torch.cuda.is_available()
    with pytest.raises(VmError) as err:
        new_machine("tpu")
    assert err.value.code == "vm-backend-unknown"
    if not torch.cuda.is_available():
        with pytest.raises(VmError) as err:
            new_machine("torch-cuda")
        assert err.value.code == "vm-backend-missing"
