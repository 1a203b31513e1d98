"""Training steps captured as CUDA graphs (CuPy backend): the registers after
each launch are bit-identical to an eager run of the same batches, gas is
charged and limited before the launch, and programs a graph cannot hold are
refused with `vm-not-capturable`. The GPU tests run on the GPU machine; the
refusal rules and the eager `Step` of other backends are checked here too."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bcai.ml import mnist
from bcai.vm import Builder, Machine, VmError
from bcai.vm._cupy_machine import CupyMachine
from bcai.vm._cupy_machine import available as cupy_available
from bcai.vm._graph import capturable, carried_registers
from bcai.vm._machine import OutOfGas

CUPY = cupy_available()
needs_cupy = pytest.mark.skipif(not CUPY, reason="no CuPy with a CUDA device here")
BATCH = 32
RNG = np.random.default_rng(7)


def batches(count: int) -> list[dict[bytes, bytes]]:
    out = []
    for _ in range(count):
        x = RNG.random((BATCH, 1, 28, 28), dtype=np.float32)
        y = RNG.integers(0, 10, BATCH).astype(np.int64)
        out.append({mnist.X_BLOB: x.tobytes(), mnist.Y_BLOB: y.tobytes()})
    return out


def host(a: Any) -> np.ndarray:
    return a.get() if hasattr(a, "get") else np.asarray(a)


def test_capturable_refuses_host_randomness_and_early_checkpoints() -> None:
    b = Builder()
    x = b.create((4, 4), "f32", "ones")
    b.dropout(x, 0.5, seed=1)
    with pytest.raises(VmError) as err:
        capturable(b.build())
    assert err.value.code == "vm-not-capturable" and "instruction 1 (Dropout)" in str(err.value)

    b = Builder()
    b.create((4, 4), "f32", "normal", seed=3)
    with pytest.raises(VmError, match="instruction 0"):
        capturable(b.build())

    b = Builder()
    x = b.create((4, 4), "f32", "ones")
    b.checkpoint()
    b.op("relu", x)
    with pytest.raises(VmError, match="follows a Checkpoint"):
        capturable(b.build())

    program, _ = mnist.step_program(BATCH)
    capturable(program)  # a training step is fine


def test_carried_registers_are_the_state_a_step_reads_first() -> None:
    init = mnist.init_program(0)
    params = {ins.dst for ins in init.instructions}
    program, _ = mnist.step_program(BATCH)
    assert carried_registers(program) == params  # not the batch, not activations
    b = Builder()
    acc = b.create((2,), "f32", "zeros")
    step = Builder(first_register=b.next)
    one = step.create((2,), "f32", "ones")
    step.op("add", acc, one)
    assert carried_registers(step.build()) == {acc}


def test_eager_step_on_other_backends_is_run() -> None:
    data = batches(3)
    program, loss = mnist.step_program(BATCH)
    a, b = Machine(trace="checkpoints"), Machine(trace="checkpoints")
    for m in (a, b):
        m.run(mnist.init_program(0))
    step = b.capture(program, data[0])
    for blobs in data:
        a.run(program, blobs)
        step.run(blobs)
    assert a.registers[loss].tobytes() == b.registers[loss].tobytes()


@needs_cupy
@pytest.mark.gpu
def test_graph_steps_equal_eager_steps_bit_for_bit() -> None:
    data = batches(6)
    program, loss = mnist.step_program(BATCH)
    eager, graphed = CupyMachine(trace="checkpoints"), CupyMachine(trace="checkpoints")
    for m in (eager, graphed):
        m.run(mnist.init_program(0))
    losses = []
    for blobs in data:
        eager.run(program, blobs)
        losses.append(float(host(eager.registers[loss])[0]))
    step = graphed.capture(program, data[0])  # runs data[0] eagerly, then captures
    for blobs in data[1:]:
        step.run(blobs)
    assert step.launches == len(data) - 1
    assert sorted(eager.registers) == sorted(graphed.registers)
    for reg in eager.registers:
        assert host(eager.registers[reg]).tobytes() == host(graphed.registers[reg]).tobytes(), reg
    for key, value in eager._opt.items():
        assert host(value).tobytes() == host(graphed._opt[key]).tobytes(), key
    # an eager step after graph steps, then a graph step again, go on from
    # the same state as eager steps alone
    for blobs in data[:2]:
        eager.run(program, blobs)
    graphed.run(program, data[0])
    step.run(data[1])
    for reg in eager.registers:
        assert host(eager.registers[reg]).tobytes() == host(graphed.registers[reg]).tobytes(), reg
    assert len(set(losses)) == len(losses)  # every launch saw its own batch


@needs_cupy
@pytest.mark.gpu
def test_graph_step_learns_with_sgd_momentum() -> None:
    init = Builder()
    x = RNG.random((64, 8), dtype=np.float32) - 0.5
    y = (x.sum(axis=1) > 0).astype(np.int64)
    w = init.param((8, 2), std=0.1, seed=1)
    step = Builder(first_register=init.next)
    xr = step.blob(x.shape, "f32", b"x" * 32)
    loss = step.loss("cross_entropy", step.linear(xr, w), step.blob(y.shape, "i64", b"y" * 32))
    step.backward(loss)
    step.optimize("sgd", [w], lr=0.5, momentum=0.9)
    step.checkpoint([w])
    blobs = {b"x" * 32: x.tobytes(), b"y" * 32: y.tobytes()}
    m = CupyMachine(trace="checkpoints")
    m.run(init.build())
    graph = m.capture(step.build(), blobs)
    first = float(host(m.registers[loss])[0])
    results = [graph.run(blobs) for _ in range(50)]
    assert float(host(m.registers[loss])[0]) < 0.7 * first
    assert results[0].checkpoints != results[-1].checkpoints  # w moved
    assert results[-1].gas_used == sum(graph.schedule)


@needs_cupy
@pytest.mark.gpu
def test_graph_refusals_and_limits() -> None:
    data = batches(1)
    program, _ = mnist.step_program(BATCH)
    full = CupyMachine()  # full traces: a graph cannot give them
    full.run(mnist.init_program(0))
    with pytest.raises(VmError) as err:
        full.capture(program, data[0])
    assert err.value.code == "vm-not-capturable"

    m = CupyMachine(trace="checkpoints")
    m.run(mnist.init_program(0))
    step = m.capture(program, data[0])
    with pytest.raises(VmError) as err:
        step.run({mnist.X_BLOB: data[0][mnist.X_BLOB]})
    assert err.value.code == "vm-missing-blob"
    with pytest.raises(VmError) as err:
        step.run({mnist.X_BLOB: b"\0" * 8, mnist.Y_BLOB: data[0][mnist.Y_BLOB]})
    assert err.value.code == "vm-bad-blob"
    m.gas_limit = sum(step.schedule) - 1
    launches = step.launches
    with pytest.raises(OutOfGas, match=f"instruction {len(step.schedule) - 1}"):
        step.run(data[0])
    assert step.launches == launches  # refused before the launch
