"""The interpreter (CPU backend, NumPy): runs a checked program with gas and
memory limits, reverse-mode autograd, optimizers and an execution trace.

A `Machine` keeps its registers, gradients and optimizer state between runs,
so a training step written once runs once per batch (new data arrives as
blobs). Gas for every instruction is computed from the static check's shapes
before the program starts (`gas_schedule`), charged before each instruction
runs; `OutOfGas` / `OutOfMemory` name the instruction.

Trace: after each instruction, BLAKE3 over (index, the instruction's
encoding, each register it wrote: dtype, shape, bytes). `first_divergence`
finds the first index where two traces differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bcai.crypto import blake3
from bcai.vm import _cpu_ops as ops
from bcai.vm import _optim as optim
from bcai.vm._check import TensorType, check
from bcai.vm._errors import VmError
from bcai.vm._isa import (
    LSTM,
    Attention,
    Backward,
    Checkpoint,
    Conv2D,
    Dropout,
    DType,
    Embedding,
    Halt,
    Init,
    Linear,
    Loss,
    LossKind,
    MaxPool2D,
    OpKind,
    Optimizer,
    OptimizerStep,
    Program,
    TensorCreate,
    TensorOp,
    ToCPU,
    ToGPU,
)

NP_DTYPES = {
    DType.F32: np.float32,
    DType.F64: np.float64,
    DType.I8: np.int8,
    DType.I32: np.int32,
    DType.I64: np.int64,
}
BASE_GAS = 10
FLOPS_PER_GAS = 1000
BYTES_PER_GAS = 4096


class OutOfGas(VmError):
    """``vm-out-of-gas``: the next instruction would pass the gas limit."""


class OutOfMemory(VmError):
    """``vm-out-of-memory``: the registers passed the memory limit."""


def instruction_cost(
    ins: object, before: Mapping[int, TensorType], after: Mapping[int, TensorType]
) -> int:
    """FLOPs of one instruction's forward pass, from the checked shapes."""

    def size(r: int | None) -> int:
        return 0 if r is None else after.get(r, before.get(r, TensorType((0,), DType.F32))).size

    if isinstance(ins, TensorOp):
        out = after[ins.dst]
        if ins.kind == OpKind.MATMUL:
            return 2 * out.size * before[ins.srcs[0]].shape[-1]
        return out.size * (
            8
            if ins.kind in (OpKind.GELU, OpKind.SOFTMAX, OpKind.LOG_SOFTMAX, OpKind.LAYERNORM)
            else 1
        )
    if isinstance(ins, Linear):
        return 2 * after[ins.dst].size * before[ins.w].shape[0]
    if isinstance(ins, Conv2D):
        w = before[ins.w].shape
        return 2 * after[ins.dst].size * w[1] * w[2] * w[3]
    if isinstance(ins, MaxPool2D):
        return after[ins.dst].size * ins.kernel * ins.kernel
    if isinstance(ins, Loss):
        return 8 * size(ins.pred)
    if isinstance(ins, TensorCreate | Dropout | Embedding):
        return after[ins.dst].size
    if isinstance(ins, OptimizerStep):
        return 12 * sum(size(r) for r in ins.params)
    return 0


def gas_schedule(
    program: Program,
    inputs: dict[int, TensorType] | None = None,
    trainable: frozenset[int] = frozenset(),
) -> list[int]:
    """Gas of each instruction: BASE + FLOPs/1000 + bytes written/4096; a
    Backward costs twice the forward FLOPs recorded since the last one."""
    states = check(program, inputs, trainable=trainable)
    gas = []
    before: Mapping[int, TensorType] = dict(inputs or {})
    tape_flops = 0
    for ins, after in zip(program.instructions, states, strict=False):
        flops = instruction_cost(ins, before, after)
        written = sum(t.nbytes for r, t in after.items() if before.get(r) is not t)
        if isinstance(ins, Backward):
            flops, tape_flops = 2 * tape_flops, 0
        else:
            tape_flops += flops
        gas.append(BASE_GAS + math.ceil(flops / FLOPS_PER_GAS) + math.ceil(written / BYTES_PER_GAS))
        before = after
    return gas


@dataclass
class RunResult:
    trace: list[bytes]
    gas_used: int
    checkpoints: list[bytes] = field(default_factory=list)


def register_hash(value: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(value)
    header = f"{arr.dtype.str}|{arr.shape}|".encode()
    return blake3(header + arr.tobytes())


def first_divergence(a: list[bytes], b: list[bytes]) -> int | None:
    """The first instruction index where two traces differ (None if equal);
    a binary search, as a dispute bisects (traces are prefix-consistent)."""
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return None if len(a) == len(b) else n
    lo, hi = 0, n - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] == b[mid]:
            lo = mid + 1
        else:
            hi = mid
    return lo


@dataclass
class Step:
    """A program run once per batch (`Machine.capture`); eager here."""

    machine: Machine
    program: Program

    def run(self, blobs: Mapping[bytes, bytes] | None = None) -> RunResult:
        return self.machine.run(self.program, blobs)


@dataclass
class _Node:
    back: Callable[[np.ndarray], tuple[np.ndarray | None, ...]]
    inputs: tuple[int | None, ...]  # node ids of the inputs (None: constant)


class Machine:
    def __init__(
        self,
        *,
        gas_limit: int | None = None,
        memory_limit: int | None = None,
        trace: str = "full",
    ) -> None:
        """`trace`: "full" hashes every instruction (what a dispute bisects);
        "checkpoints" hashes only at Checkpoint instructions (training runs
        whose segments are replayed in full only when disputed)."""
        if trace not in ("full", "checkpoints"):
            raise VmError("vm-bad-trace-mode", f"trace={trace!r}: full or checkpoints")
        self.trace_mode = trace
        self.gas_limit = gas_limit
        self.memory_limit = memory_limit
        self.registers: dict[int, np.ndarray] = {}
        self.trainable: set[int] = set()
        self.grads: dict[int, np.ndarray] = {}
        self._opt: dict[tuple[int, int], Any] = {}  # (register, slot) -> state
        self._step = 0
        self._nodes: dict[int, _Node] = {}
        self._reg_node: dict[int, int] = {}
        self._next_node = 0
        self._schedules: dict[object, list[int]] = {}
        # Adam's bias correction as device scalars while a graph is captured
        self._bias: Callable[[int, int, float, int], Any] | None = None

    def types(self) -> dict[int, TensorType]:
        inv = {v: k for k, v in NP_DTYPES.items()}
        return {r: TensorType(a.shape, inv[a.dtype.type]) for r, a in self.registers.items()}

    # ------------------------------------------------------------ running

    def run(self, program: Program, blobs: Mapping[bytes, bytes] | None = None) -> RunResult:
        blobs = blobs or {}
        schedule = self.schedule(program)
        trace: list[bytes] = []
        checkpoints: list[bytes] = []
        used = 0
        for index, ins in enumerate(program.instructions):
            name = type(ins).__name__
            used += schedule[index]
            if self.gas_limit is not None and used > self.gas_limit:
                raise OutOfGas(
                    "vm-out-of-gas", f"instruction {index} ({name}): {used} > {self.gas_limit}"
                )
            written = self._execute(ins, blobs)
            if self.memory_limit is not None:
                total = self._nbytes()
                if total > self.memory_limit:
                    raise OutOfMemory(
                        "vm-out-of-memory",
                        f"instruction {index} ({name}): {total} bytes > {self.memory_limit}",
                    )
            if self.trace_mode == "full":
                body = b"".join(self._hash(r) for r in written)
                trace.append(blake3(index.to_bytes(4, "big") + ins.encode() + body))
            if isinstance(ins, Checkpoint):
                regs = ins.regs or tuple(sorted(self.registers))
                checkpoints.append(blake3(b"".join(self._hash(r) for r in regs)))
            if isinstance(ins, Halt):
                break
        return RunResult(trace, used, checkpoints)

    def schedule(self, program: Program) -> list[int]:
        """Gas of each instruction for the registers as they are now."""
        key = (program.program_id(), tuple(sorted(self.types().items())), frozenset(self.trainable))
        schedule = self._schedules.get(key)
        if schedule is None:  # checked once per program and input types
            schedule = gas_schedule(program, self.types(), frozenset(self.trainable))
            self._schedules[key] = schedule
        return schedule

    def capture(self, program: Program, blobs: Mapping[bytes, bytes] | None = None) -> Step:
        """A training step to run many times with new blobs. Here it runs
        the program as `run` does; the CuPy backend captures it as one CUDA
        graph (see `bcai.vm._graph`)."""
        return Step(self, program)

    def put(self, reg: int, value: np.ndarray, *, trainable: bool = False) -> None:
        """Sets a register from host values (kept between runs), on this
        backend's device."""
        self.registers[reg] = self._to_device(np.ascontiguousarray(value))
        if trainable:
            self.trainable.add(reg)

    def _to_device(self, value: np.ndarray) -> Any:
        return value

    def _hash(self, reg: int) -> bytes:
        return register_hash(self.registers[reg])

    def _nbytes(self) -> int:
        return sum(a.nbytes for a in self.registers.values())

    def _write(self, reg: int, value: np.ndarray, node: _Node | None) -> None:
        self.registers[reg] = value
        if node is None:
            self._reg_node.pop(reg, None)
            return
        self._next_node += 1
        self._nodes[self._next_node] = node
        self._reg_node[reg] = self._next_node

    def _leaf(self, reg: int) -> int | None:
        """The node of a register for autograd: trainable tensors are leaves."""
        node = self._reg_node.get(reg)
        if node is None and reg in self.trainable:
            self._next_node += 1
            node = self._next_node
            self._nodes[node] = _Node(lambda g: (), ())
            self._reg_node[reg] = node
        return node

    def _apply(
        self, dst: int, srcs: tuple[int | None, ...], result: tuple[np.ndarray, Any]
    ) -> list[int]:
        out, back = result
        inputs = tuple(None if r is None else self._leaf(r) for r in srcs)
        node = _Node(back, inputs) if any(i is not None for i in inputs) else None
        self._write(dst, out, node)
        return [dst]

    def _execute(self, ins: object, blobs: Mapping[bytes, bytes]) -> list[int]:
        r = self.registers
        if isinstance(ins, TensorCreate):
            self._write(ins.dst, self._create(ins, blobs), None)
            if ins.trainable:
                self.trainable.add(ins.dst)
            else:
                self.trainable.discard(ins.dst)
            return [ins.dst]
        if isinstance(ins, TensorOp):
            return self._op(ins)
        if isinstance(ins, Linear):
            b = r[ins.b] if ins.b is not None else None
            return self._apply(
                ins.dst, (ins.x, ins.w, ins.b), ops.linear(r[ins.x], r[ins.w], b, ins.activation)
            )
        if isinstance(ins, Conv2D):
            b = r[ins.b] if ins.b is not None else None
            return self._apply(
                ins.dst,
                (ins.x, ins.w, ins.b),
                ops.conv2d(r[ins.x], r[ins.w], b, ins.stride, ins.padding),
            )
        if isinstance(ins, MaxPool2D):
            return self._apply(ins.dst, (ins.x,), ops.maxpool2d(r[ins.x], ins.kernel, ins.stride))
        if isinstance(ins, LSTM):
            return self._lstm(ins)
        if isinstance(ins, Attention):
            regs = (ins.x, ins.wq, ins.wk, ins.wv, ins.wo)
            out = ops.attention(
                r[ins.x], r[ins.wq], r[ins.wk], r[ins.wv], r[ins.wo], ins.heads, ins.causal
            )
            return self._apply(ins.dst, regs, out)
        if isinstance(ins, Embedding):
            return self._apply(ins.dst, (ins.table, None), ops.embedding(r[ins.table], r[ins.ids]))
        if isinstance(ins, Dropout):
            return self._apply(ins.dst, (ins.x,), ops.dropout(r[ins.x], ins.p, ins.seed))
        if isinstance(ins, Loss):
            fn = ops.cross_entropy if ins.kind == LossKind.CROSS_ENTROPY else ops.mse
            target = None if ins.kind == LossKind.CROSS_ENTROPY else ins.target
            return self._apply(ins.dst, (ins.pred, target), fn(r[ins.pred], r[ins.target]))
        if isinstance(ins, Backward):
            self._backward(ins.loss)
            return []
        if isinstance(ins, OptimizerStep):
            self._optimize(ins)
            return list(ins.params)
        if isinstance(ins, ToGPU | ToCPU | Checkpoint | Halt):
            return []  # the CPU backend keeps everything on the host
        raise VmError(
            "vm-unsupported", f"{type(ins).__name__} is not implemented on this backend yet"
        )

    def _lstm(self, ins: LSTM) -> list[int]:
        """Layers stacked through hidden scratch registers: each layer is
        one autograd node; the last writes `dst`."""
        src = ins.x
        layers = len(ins.params) // 3
        for layer in range(layers):
            w_ih, w_hh, b = ins.params[3 * layer : 3 * layer + 3]
            r = self.registers
            result = ops.lstm_layer(r[src], r[w_ih], r[w_hh], r[b])
            self._apply(ins.dst, (src, w_ih, w_hh, b), result)
            src = ins.dst
        return [ins.dst]

    def _create(self, ins: TensorCreate, blobs: Mapping[bytes, bytes]) -> np.ndarray:
        dtype = NP_DTYPES[DType(ins.dtype)]
        shape = tuple(ins.shape)
        init = Init(ins.init)
        if init == Init.ZEROS:
            return np.zeros(shape, dtype)
        if init == Init.ONES:
            return np.ones(shape, dtype)
        if init == Init.BLOB:
            raw = blobs.get(ins.blob)
            if raw is None:
                raise VmError("vm-missing-blob", f"blob {ins.blob.hex()} was not given")
            arr = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
            if arr.size != math.prod(shape):
                raise VmError("vm-bad-blob", f"blob of {arr.size} items for shape {shape}")
            return arr.reshape(shape).astype(dtype)
        rng = np.random.Generator(np.random.PCG64(ins.seed))
        a, b = (list(ins.floats) + [0.0, 1.0][len(ins.floats) :])[:2]
        if init == Init.NORMAL:
            return (rng.standard_normal(shape) * b + a).astype(dtype)
        return rng.uniform(a, b, shape).astype(dtype)

    def _op(self, ins: TensorOp) -> list[int]:
        r = self.registers
        kind = OpKind(ins.kind)
        xs = [r[s] for s in ins.srcs]
        srcs = tuple(ins.srcs)
        ints = list(ins.ints)
        binary = {
            OpKind.ADD: ops.add,
            OpKind.SUB: ops.sub,
            OpKind.MUL: ops.mul,
            OpKind.DIV: ops.div,
            OpKind.MATMUL: ops.matmul,
        }
        unary = {
            OpKind.RELU: ops.relu,
            OpKind.GELU: ops.gelu,
            OpKind.TANH: ops.tanh,
            OpKind.SIGMOID: ops.sigmoid,
        }
        if kind in binary:
            return self._apply(ins.dst, srcs, binary[kind](xs[0], xs[1]))
        if kind in unary:
            return self._apply(ins.dst, srcs, unary[kind](xs[0]))
        if kind == OpKind.SOFTMAX:
            return self._apply(ins.dst, srcs, ops.softmax(xs[0], ints[0] if ints else -1))
        if kind == OpKind.LOG_SOFTMAX:
            return self._apply(ins.dst, srcs, ops.log_softmax(xs[0], ints[0] if ints else -1))
        if kind == OpKind.LAYERNORM:
            eps = ins.floats[0] if ins.floats else 1e-5
            g, b = (xs[1], xs[2]) if len(xs) == 3 else (None, None)
            return self._apply(ins.dst, srcs, ops.layernorm(xs[0], g, b, eps))
        if kind == OpKind.RESHAPE:
            shape = list(ints)
            if -1 in shape:
                shape[shape.index(-1)] = xs[0].size // -math.prod(shape)
            return self._apply(ins.dst, srcs, ops.reshape(xs[0], shape))
        if kind == OpKind.TRANSPOSE:
            return self._apply(ins.dst, srcs, ops.transpose(xs[0], ints))
        if kind == OpKind.CONCAT:
            return self._apply(ins.dst, srcs, ops.concat(xs, ints[0] if ints else 0))
        if kind == OpKind.SLICE:
            return self._apply(ins.dst, srcs, ops.slice_(xs[0], ints[0], ints[1], ints[2]))
        name = {OpKind.SUM: "sum", OpKind.MEAN: "mean", OpKind.MAX: "max"}[kind]
        axis = (ints[0] % xs[0].ndim) if ints else None
        keep = len(ints) > 1 and ints[1] != 0
        return self._apply(ins.dst, srcs, ops.reduce(name, xs[0], axis, keep))

    # ------------------------------------------------------------ autograd

    def _backward(self, loss: int) -> None:
        start = self._reg_node.get(loss)
        self.grads = {}
        if start is None:
            return
        grads: dict[int, np.ndarray] = {start: np.ones_like(self.registers[loss])}
        for node_id in sorted(grads.keys() | self._nodes.keys(), reverse=True):
            g = grads.pop(node_id, None)
            node = self._nodes.get(node_id)
            if g is None or node is None:
                continue
            if not node.inputs:
                grads[node_id] = g  # a leaf: keep it
                continue
            for inp, gi in zip(node.inputs, node.back(g), strict=False):
                if inp is None or gi is None:
                    continue
                grads[inp] = grads[inp] + gi if inp in grads else gi
        for reg in self.trainable:
            leaf = self._reg_node.get(reg)
            if leaf is not None and leaf in grads:
                self.grads[reg] = grads[leaf].astype(self.registers[reg].dtype)
        # the graph is spent: parameters become fresh leaves
        self._nodes.clear()
        self._reg_node.clear()

    def _optimize(self, ins: OptimizerStep) -> None:
        opt, floats = Optimizer(ins.kind), list(ins.floats)
        self._step += 1
        for reg in ins.params:
            g = self.grads.get(reg)
            if g is None:
                continue
            p = self.registers[reg]
            new = optim.update(opt, floats, reg, p, g, self._opt, np.sqrt, self._bias)
            self.registers[reg] = new.astype(p.dtype)
