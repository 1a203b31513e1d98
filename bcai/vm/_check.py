"""The static check: before anything runs, every instruction's registers,
shapes and dtypes are inferred and checked, so a program that would fail on
a shape fails here instead, naming the instruction (`vm-check-*`).

`check(program, inputs)` returns the shape and dtype of every register after
each instruction; `inputs` gives registers that exist before the program
starts (parameters kept between runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bcai.vm._errors import VmError
from bcai.vm._isa import (
    LSTM,
    VERSION,
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

Shape = tuple[int, ...]


@dataclass(frozen=True)
class TensorType:
    shape: Shape
    dtype: DType

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize


class _Ctx:
    def __init__(self, program: Program, inputs: dict[int, TensorType]) -> None:
        self.program = program
        self.regs: dict[int, TensorType] = dict(inputs)
        self.trainable: set[int] = set()
        self.index = 0

    def fail(self, code: str, message: str) -> VmError:
        name = type(self.program.instructions[self.index]).__name__
        return VmError(f"vm-check-{code}", f"instruction {self.index} ({name}): {message}")

    def reg(self, r: int) -> TensorType:
        if r >= self.program.registers:
            raise self.fail("bad-register", f"r{r} >= {self.program.registers} registers")
        t = self.regs.get(r)
        if t is None:
            raise self.fail("undefined-register", f"r{r} is read before it is written")
        return t

    def write(self, r: int, t: TensorType) -> None:
        if r >= self.program.registers:
            raise self.fail("bad-register", f"r{r} >= {self.program.registers} registers")
        if any(d <= 0 for d in t.shape):
            raise self.fail("bad-shape", f"r{r} would have shape {t.shape}")
        self.regs[r] = t

    def float_(self, t: TensorType, what: str) -> None:
        if not t.dtype.is_float:
            raise self.fail("dtype", f"{what} must be floating point, is {t.dtype.name}")

    def same(self, a: TensorType, b: TensorType, what: str) -> None:
        if a.dtype != b.dtype:
            raise self.fail("dtype", f"{what}: {a.dtype.name} vs {b.dtype.name}")


def broadcast(a: Shape, b: Shape) -> Shape | None:
    out = []
    for x, y in zip(
        reversed((1,) * (len(b) - len(a)) + a), reversed((1,) * (len(a) - len(b)) + b), strict=True
    ):
        if x != y and 1 not in (x, y):
            return None
        out.append(max(x, y))
    return tuple(reversed(out))


def _axis(ctx: _Ctx, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise ctx.fail("bad-axis", f"axis {axis} for rank {rank}")
    return axis % rank


def _op(ctx: _Ctx, ins: TensorOp) -> TensorType:  # noqa: PLR0915 - one case per kind
    try:
        kind = OpKind(ins.kind)
    except ValueError as err:
        raise ctx.fail("unknown-op", f"op kind {ins.kind}") from err
    srcs = [ctx.reg(r) for r in ins.srcs]
    arity = {OpKind.CONCAT: None, OpKind.LAYERNORM: None}
    binary = {OpKind.ADD, OpKind.SUB, OpKind.MUL, OpKind.DIV, OpKind.MATMUL}
    want = 2 if kind in binary else arity.get(kind, 1)
    if want is not None and len(srcs) != want:
        raise ctx.fail("arity", f"{kind.name.lower()} takes {want} sources, got {len(srcs)}")
    x = srcs[0] if srcs else None
    if x is None:
        raise ctx.fail("arity", f"{kind.name.lower()} needs sources")
    ints = list(ins.ints)
    if kind in (OpKind.ADD, OpKind.SUB, OpKind.MUL, OpKind.DIV):
        ctx.same(srcs[0], srcs[1], kind.name.lower())
        shape = broadcast(srcs[0].shape, srcs[1].shape)
        if shape is None:
            raise ctx.fail("shape", f"{srcs[0].shape} and {srcs[1].shape} do not broadcast")
        return TensorType(shape, x.dtype)
    if kind == OpKind.MATMUL:
        a, b = srcs
        ctx.same(a, b, "matmul")
        if len(a.shape) < 2 or len(b.shape) != 2 or a.shape[-1] != b.shape[0]:
            raise ctx.fail("shape", f"matmul {a.shape} @ {b.shape}")
        return TensorType((*a.shape[:-1], b.shape[1]), a.dtype)
    if kind in (OpKind.RELU, OpKind.GELU, OpKind.TANH, OpKind.SIGMOID):
        ctx.float_(x, kind.name.lower())
        return x
    if kind in (OpKind.SOFTMAX, OpKind.LOG_SOFTMAX):
        ctx.float_(x, kind.name.lower())
        _axis(ctx, ints[0] if ints else -1, len(x.shape))
        return x
    if kind == OpKind.LAYERNORM:
        ctx.float_(x, "layernorm")
        for extra in srcs[1:3]:
            if extra.shape != x.shape[-1:]:
                raise ctx.fail("shape", f"layernorm gain/bias {extra.shape} vs {x.shape[-1:]}")
        if len(srcs) not in (1, 3):
            raise ctx.fail("arity", "layernorm takes x, or x, gamma and beta")
        return x
    if kind == OpKind.RESHAPE:
        if ints.count(-1) > 1 or any(d == 0 or d < -1 for d in ints):
            raise ctx.fail("shape", f"reshape to {ints}")
        known = math.prod(d for d in ints if d != -1)
        if -1 in ints:
            if known == 0 or x.size % known:
                raise ctx.fail("shape", f"reshape {x.shape} to {ints}")
            ints[ints.index(-1)] = x.size // known
        if math.prod(ints) != x.size:
            raise ctx.fail("shape", f"reshape {x.shape} ({x.size}) to {tuple(ints)}")
        return TensorType(tuple(ints), x.dtype)
    if kind == OpKind.TRANSPOSE:
        if sorted(ints) != list(range(len(x.shape))):
            raise ctx.fail("shape", f"permutation {ints} for rank {len(x.shape)}")
        return TensorType(tuple(x.shape[i] for i in ints), x.dtype)
    if kind == OpKind.CONCAT:
        axis = _axis(ctx, ints[0] if ints else 0, len(x.shape))
        for s in srcs[1:]:
            ctx.same(x, s, "concat")
            if len(s.shape) != len(x.shape) or any(
                a != b for i, (a, b) in enumerate(zip(s.shape, x.shape, strict=True)) if i != axis
            ):
                raise ctx.fail("shape", f"concat {x.shape} with {s.shape} on axis {axis}")
        total = sum(s.shape[axis] for s in srcs)
        return TensorType((*x.shape[:axis], total, *x.shape[axis + 1 :]), x.dtype)
    if kind == OpKind.SLICE:
        if len(ints) != 3:
            raise ctx.fail("attrs", "slice takes ints [axis, start, stop]")
        axis = _axis(ctx, ints[0], len(x.shape))
        start, stop = ints[1], ints[2]
        if not 0 <= start < stop <= x.shape[axis]:
            raise ctx.fail("shape", f"slice {start}:{stop} of {x.shape[axis]}")
        return TensorType((*x.shape[:axis], stop - start, *x.shape[axis + 1 :]), x.dtype)
    # SUM, MEAN, MAX
    if kind == OpKind.MEAN:
        ctx.float_(x, "mean")
    if not ints:
        return TensorType((1,), x.dtype)
    axis = _axis(ctx, ints[0], len(x.shape))
    keep = len(ints) > 1 and ints[1] != 0
    shape = tuple(1 if i == axis else d for i, d in enumerate(x.shape) if keep or i != axis)
    return TensorType(shape or (1,), x.dtype)


def _instruction(ctx: _Ctx, ins: object) -> None:  # noqa: PLR0915 - a dispatch
    if isinstance(ins, TensorCreate):
        try:
            dtype, init = DType(ins.dtype), Init(ins.init)
        except ValueError as err:
            raise ctx.fail("unknown-dtype", f"dtype {ins.dtype} / init {ins.init}") from err
        if init in (Init.NORMAL, Init.UNIFORM) and not dtype.is_float:
            raise ctx.fail("dtype", f"{init.name.lower()} init needs a float dtype")
        if (init == Init.BLOB) != (len(ins.blob) == 32):
            raise ctx.fail("blob", "init=blob needs a 32-byte blob id, and only then")
        if not ins.shape:
            raise ctx.fail("bad-shape", "a tensor needs at least one dimension")
        ctx.write(ins.dst, TensorType(tuple(ins.shape), dtype))
        if ins.trainable:
            if not dtype.is_float:
                raise ctx.fail("dtype", "only float tensors can be trained")
            ctx.trainable.add(ins.dst)
    elif isinstance(ins, TensorOp):
        ctx.write(ins.dst, _op(ctx, ins))
    elif isinstance(ins, Linear):
        x, w = ctx.reg(ins.x), ctx.reg(ins.w)
        ctx.float_(x, "linear input")
        ctx.same(x, w, "linear")
        if len(w.shape) != 2 or x.shape[-1] != w.shape[0]:
            raise ctx.fail("shape", f"linear {x.shape} @ {w.shape}")
        if ins.b is not None and ctx.reg(ins.b).shape != (w.shape[1],):
            raise ctx.fail("shape", f"bias {ctx.reg(ins.b).shape} for {w.shape[1]} outputs")
        ctx.write(ins.dst, TensorType((*x.shape[:-1], w.shape[1]), x.dtype))
    elif isinstance(ins, Conv2D):
        x, w = ctx.reg(ins.x), ctx.reg(ins.w)
        ctx.float_(x, "conv2d input")
        if len(x.shape) != 4 or len(w.shape) != 4 or x.shape[1] != w.shape[1]:
            raise ctx.fail("shape", f"conv2d x {x.shape} w {w.shape}")
        if ins.stride < 1:
            raise ctx.fail("attrs", "stride >= 1")
        h = (x.shape[2] + 2 * ins.padding - w.shape[2]) // ins.stride + 1
        wd = (x.shape[3] + 2 * ins.padding - w.shape[3]) // ins.stride + 1
        if ins.b is not None and ctx.reg(ins.b).shape != (w.shape[0],):
            raise ctx.fail("shape", f"bias {ctx.reg(ins.b).shape} for {w.shape[0]} channels")
        ctx.write(ins.dst, TensorType((x.shape[0], w.shape[0], h, wd), x.dtype))
    elif isinstance(ins, MaxPool2D):
        x = ctx.reg(ins.x)
        if len(x.shape) != 4 or ins.kernel < 1 or ins.stride < 1:
            raise ctx.fail("shape", f"maxpool2d of {x.shape} k={ins.kernel} s={ins.stride}")
        h = (x.shape[2] - ins.kernel) // ins.stride + 1
        wd = (x.shape[3] - ins.kernel) // ins.stride + 1
        ctx.write(ins.dst, TensorType((*x.shape[:2], h, wd), x.dtype))
    elif isinstance(ins, LSTM):
        x = ctx.reg(ins.x)
        ctx.float_(x, "lstm input")
        if len(x.shape) != 3 or not ins.params or len(ins.params) % 3:
            raise ctx.fail("shape", "lstm takes x (N, T, in) and 3 parameters per layer")
        width, hid = x.shape[2], ins.hidden
        for layer in range(len(ins.params) // 3):
            w_ih, w_hh, b = (ctx.reg(r) for r in ins.params[3 * layer : 3 * layer + 3])
            if (w_ih.shape, w_hh.shape, b.shape) != ((width, 4 * hid), (hid, 4 * hid), (4 * hid,)):
                raise ctx.fail("shape", f"lstm layer {layer} parameters")
            width = hid
        ctx.write(ins.dst, TensorType((x.shape[0], x.shape[1], hid), x.dtype))
    elif isinstance(ins, Attention):
        x = ctx.reg(ins.x)
        ctx.float_(x, "attention input")
        d = x.shape[-1]
        if len(x.shape) != 3 or ins.heads < 1 or d % ins.heads:
            raise ctx.fail("shape", f"attention x {x.shape} with {ins.heads} heads")
        for r in (ins.wq, ins.wk, ins.wv, ins.wo):
            if ctx.reg(r).shape != (d, d):
                raise ctx.fail("shape", f"attention weight r{r} must be ({d}, {d})")
        ctx.write(ins.dst, x)
    elif isinstance(ins, Embedding):
        table, ids = ctx.reg(ins.table), ctx.reg(ins.ids)
        if len(table.shape) != 2 or ids.dtype.is_float:
            raise ctx.fail("shape", "embedding takes a (V, D) table and integer ids")
        ctx.write(ins.dst, TensorType((*ids.shape, table.shape[1]), table.dtype))
    elif isinstance(ins, Dropout):
        x = ctx.reg(ins.x)
        ctx.float_(x, "dropout input")
        if not 0.0 <= ins.p < 1.0:
            raise ctx.fail("attrs", f"dropout p={ins.p}")
        ctx.write(ins.dst, x)
    elif isinstance(ins, Loss):
        pred, target = ctx.reg(ins.pred), ctx.reg(ins.target)
        ctx.float_(pred, "loss prediction")
        if ins.kind == LossKind.CROSS_ENTROPY:
            if len(pred.shape) != 2 or target.shape != pred.shape[:1] or target.dtype.is_float:
                raise ctx.fail("shape", f"cross-entropy of {pred.shape} vs ids {target.shape}")
        elif ins.kind == LossKind.MSE:
            if target.shape != pred.shape:
                raise ctx.fail("shape", f"mse of {pred.shape} vs {target.shape}")
        else:
            raise ctx.fail("unknown-op", f"loss kind {ins.kind}")
        ctx.write(ins.dst, TensorType((1,), pred.dtype))
    elif isinstance(ins, Backward):
        if ctx.reg(ins.loss).shape != (1,):
            raise ctx.fail("shape", "backward starts from a one-element loss")
    elif isinstance(ins, OptimizerStep):
        try:
            Optimizer(ins.kind)
        except ValueError as err:
            raise ctx.fail("unknown-op", f"optimizer {ins.kind}") from err
        for r in ins.params:
            ctx.reg(r)
            if r not in ctx.trainable:
                raise ctx.fail("not-trainable", f"r{r} is not a trainable tensor")
        if not ins.floats or ins.floats[0] <= 0:
            raise ctx.fail("attrs", "the learning rate (floats[0]) must be > 0")
    elif isinstance(ins, ToGPU | ToCPU):
        ctx.reg(ins.reg)
    elif isinstance(ins, Checkpoint):
        for r in ins.regs:
            ctx.reg(r)
    elif not isinstance(ins, Halt):
        raise ctx.fail("unknown-instruction", type(ins).__name__)


def check(
    program: Program,
    inputs: dict[int, TensorType] | None = None,
    *,
    trainable: frozenset[int] = frozenset(),
) -> list[dict[int, TensorType]]:
    """The register types after each instruction, or VmError(vm-check-*).
    `trainable` names input registers that optimizer steps may update."""
    if program.version != VERSION:
        raise VmError("vm-check-version", f"program version {program.version}, VM speaks {VERSION}")
    ctx = _Ctx(program, inputs or {})
    ctx.trainable |= trainable
    states = []
    for index, ins in enumerate(program.instructions):
        ctx.index = index
        _instruction(ctx, ins)
        states.append(dict(ctx.regs))
        if isinstance(ins, Halt):
            break
    return states
