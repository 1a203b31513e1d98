"""A training step captured as one CUDA graph (CuPy backend).

A small model's step on a GPU is bound by launches: the interpreter's
Python and CuPy's per-kernel overhead cost more than the kernels. A
`GraphStep` runs the step once eagerly (compiling every kernel and creating
the optimizer's state), then runs it again under CUDA stream capture, so
that later steps are one `cudaGraphLaunch`:

- Blob-fed tensors (the batch) read fixed device buffers; `run(blobs)`
  copies each batch into them before the launch.
- Registers the step reads before it writes them (parameters, anything it
  accumulates) and the optimizer's moments are copied back into their own
  buffers at the end of the graph, so each launch reads what the last one
  wrote; a value set between launches (an eager run, `put`) is copied in
  before the next. The other registers (activations, loss) and gradients
  point at what the graph writes after each launch.
- Adam's bias correction 1 − βᵗ comes from a device vector written before
  each launch (a float baked into the graph would freeze t).
- Everything allocated while capturing comes from a private memory pool
  kept with the graph, so no other allocation can reuse it.

The registers after each launch are bit-identical to those of an eager run
of the same steps (the same kernels in the same order; tests check it).
Gas is the program's static schedule, charged (and checked against the
limit) before the launch. A graph keeps no per-instruction trace: steps are
run with ``trace="checkpoints"``, a Checkpoint is allowed only at the end,
and a disputed step is replayed eagerly with the full trace. Refused with
``vm-not-capturable`` (instruction named): host-generated tensors (random
init, Dropout's mask), a Checkpoint before the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bcai.crypto import blake3
from bcai.vm._errors import VmError
from bcai.vm._isa import (
    Checkpoint,
    Dropout,
    DType,
    Halt,
    Init,
    Optimizer,
    OptimizerStep,
    Program,
    TensorCreate,
)
from bcai.vm._machine import NP_DTYPES, OutOfGas, OutOfMemory, RunResult, Step

try:
    import cupy
except ImportError:  # pragma: no cover - cupy is the `gpu` extra
    cupy = None


def capturable(program: Program) -> None:
    """Raises ``vm-not-capturable`` naming the first instruction a graph
    cannot hold."""
    tail = False
    for index, ins in enumerate(program.instructions):
        name = type(ins).__name__
        if isinstance(ins, Checkpoint):
            tail = True
            continue
        if isinstance(ins, Halt):
            break
        if tail:
            raise VmError(
                "vm-not-capturable",
                f"instruction {index} ({name}) follows a Checkpoint: checkpoints end a graph",
            )
        if isinstance(ins, Dropout) or (
            isinstance(ins, TensorCreate) and Init(ins.init) in (Init.NORMAL, Init.UNIFORM)
        ):
            raise VmError(
                "vm-not-capturable",
                f"instruction {index} ({name}) draws random numbers on the host",
            )


class GraphStep(Step):
    def __init__(self, machine: Any, program: Program, blobs: Mapping[bytes, bytes]) -> None:
        super().__init__(machine, program)
        capturable(program)
        m = machine
        if m.trace_mode != "checkpoints":
            raise VmError(
                "vm-not-capturable",
                "a graph keeps no per-instruction trace: use trace='checkpoints'",
            )
        m.run(program, blobs)  # compiles the kernels, creates optimizer state
        self.schedule = m.schedule(program)
        self.stream = cupy.cuda.Stream()  # blocking: ordered with the default stream
        self.pool = cupy.cuda.MemoryPool()
        # the batch: one fixed device buffer per blob-fed tensor
        self.inputs: dict[tuple[bytes, int, tuple[int, ...]], Any] = {}
        for ins in program.instructions:
            if isinstance(ins, TensorCreate) and Init(ins.init) == Init.BLOB:
                key = (ins.blob, ins.dtype, tuple(ins.shape))
                self.inputs[key] = cupy.empty(key[2], _np(key[1]))
        self.bias_slots: list[tuple[int, float]] = []  # (register, beta)
        self.bias = cupy.empty(0, cupy.float32)
        self.launches = 0
        self._capture()
        self.nbytes = m._nbytes()
        if m.memory_limit is not None and self.nbytes > m.memory_limit:
            raise OutOfMemory(
                "vm-out-of-memory", f"captured step: {self.nbytes} bytes > {m.memory_limit}"
            )

    def _capture(self) -> None:
        m: Any = self.machine
        # a first pass records which bias slots exist, so the vector that
        # holds them is allocated before the capture
        self.bias_slots = []
        regs0, opt0, step0 = dict(m.registers), dict(m._opt), m._step
        grads0 = dict(m.grads)
        slots: list[Any] = []

        def record(reg: int, slot: int, beta: float, t: int) -> Any:
            self.bias_slots.append((reg, beta))
            return slots[len(self.bias_slots) - 1]

        count = _count_bias(m, self.program)
        self.bias = cupy.zeros(count, cupy.float32)
        slots.extend(self.bias[i] for i in range(count))
        m._bias = record
        m._blob_buffers = self.inputs
        try:
            with cupy.cuda.using_allocator(self.pool.malloc), self.stream:
                self.stream.begin_capture()
                try:
                    for ins in self.program.instructions:
                        if isinstance(ins, Checkpoint | Halt):
                            break
                        m._execute(ins, {})
                    # write back what the step replaced into its own buffers
                    for reg in carried_registers(self.program):
                        old, new = regs0.get(reg), m.registers.get(reg)
                        if old is not None and new is not None and new is not old:
                            cupy.copyto(old, new)
                    for key, old in opt0.items():
                        new = m._opt.get(key)
                        if isinstance(old, cupy.ndarray) and new is not old:
                            cupy.copyto(old, new)
                finally:
                    self.graph = self.stream.end_capture()
        finally:
            m._bias = None
            m._blob_buffers = None
        # registers carried between steps point at their own buffers again;
        # the others (activations, loss, gradients) at what the graph writes
        state = carried_registers(self.program)
        self.carried = {
            r: old for r, old in regs0.items() if r in state and m.registers.get(r) is not old
        }
        self.carried_opt = {
            key: old
            for key, old in opt0.items()
            if isinstance(old, cupy.ndarray) and m._opt.get(key) is not old
        }
        self.outputs = {r: a for r, a in m.registers.items() if r not in self.carried}
        self.grads = dict(m.grads)
        # until the first launch, everything reads as the eager run left it
        m.registers.update(self.carried)
        m.registers.update({r: regs0[r] for r in self.outputs if r in regs0})
        m.grads = grads0
        m._opt.clear()
        m._opt.update(opt0)
        m._step = step0
        self.graph.upload(self.stream)

    def run(self, blobs: Mapping[bytes, bytes] | None = None) -> RunResult:
        m: Any = self.machine
        used = 0
        for index, gas in enumerate(self.schedule):
            used += gas
            if m.gas_limit is not None and used > m.gas_limit:
                name = type(self.program.instructions[index]).__name__
                raise OutOfGas(
                    "vm-out-of-gas", f"instruction {index} ({name}): {used} > {m.gas_limit}"
                )
        blobs = blobs or {}
        for (blob, dtype, shape), buf in self.inputs.items():
            raw = blobs.get(blob)
            if raw is None:
                raise VmError("vm-missing-blob", f"blob {blob.hex()} was not given")
            host = np.frombuffer(raw, dtype=_np(dtype).newbyteorder("<"))
            if host.size != buf.size:
                raise VmError("vm-bad-blob", f"blob of {host.size} items for shape {shape}")
            buf.set(host.reshape(shape).astype(_np(dtype)), stream=self.stream)
        for reg, buf in self.carried.items():
            _refill(buf, m.registers[reg], f"register {reg}")
            m.registers[reg] = buf
        for key, buf in self.carried_opt.items():
            _refill(buf, m._opt[key], f"optimizer state {key}")
            m._opt[key] = buf
        self.launches += 1
        # Adam's t of each parameter at this launch (eager steps count too)
        values = [1 - beta ** (m._opt[(reg, 2)] + 1) for reg, beta in self.bias_slots]
        if values:
            self.bias.set(np.asarray(values, np.float32), stream=self.stream)
        self.graph.launch(self.stream)
        m.registers.update(self.outputs)
        m.grads = dict(self.grads)
        for key in list(m._opt):
            if key[1] == 2:  # Adam's step count, kept on the host
                m._opt[key] += 1
        m._step += 1
        checkpoints = []
        for ins in self.program.instructions:
            if isinstance(ins, Checkpoint):
                regs = ins.regs or tuple(sorted(m.registers))
                checkpoints.append(blake3(b"".join(m._hash(r) for r in regs)))
        return RunResult([], used, checkpoints)


REGISTER_FIELDS = frozenset(
    {"x", "w", "b", "srcs", "params", "table", "ids", "pred", "target", "loss"}
    | {"wq", "wk", "wv", "wo", "reg", "regs"}
)


def carried_registers(program: Program) -> set[int]:
    """Registers the program reads before it writes them: the state one
    step hands to the next (parameters, and whatever else it accumulates)."""
    written: set[int] = set()
    carried: set[int] = set()
    for ins in program.instructions:
        for name in REGISTER_FIELDS:
            value = getattr(ins, name, None)
            regs = value if isinstance(value, tuple) else (value,)
            carried.update(r for r in regs if isinstance(r, int) and r not in written)
        dst = getattr(ins, "dst", None)
        if dst is not None:
            written.add(dst)
    return carried


def _refill(buf: Any, current: Any, what: str) -> None:
    """Puts a value an eager run (or `put`) gave a carried register back
    into the buffer the graph reads."""
    if current is buf:
        return
    if getattr(current, "shape", None) != buf.shape or current.dtype != buf.dtype:
        raise VmError(
            "vm-graph-stale",
            f"{what} is now {current.dtype}{current.shape}, the graph holds "
            f"{buf.dtype}{buf.shape}: capture the step again",
        )
    cupy.copyto(buf, cupy.asarray(current))


def _np(dtype: int) -> np.dtype[Any]:
    return np.dtype(NP_DTYPES[DType(dtype)])


def _count_bias(m: Any, program: Program) -> int:
    """How many bias scalars the step's OptimizerSteps will ask for."""
    count = 0
    for ins in program.instructions:
        if isinstance(ins, OptimizerStep) and Optimizer(ins.kind) != Optimizer.SGD:
            count += 2 * sum(1 for r in ins.params if r in m.grads)
    return count
