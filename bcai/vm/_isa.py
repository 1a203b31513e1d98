"""The tensor VM's instruction set and its canonical encoding (docs/vm.md).

A program is `Program(version, registers, instructions)`: a list of
instructions over numbered tensor registers (u16, below `registers`). Each
instruction is one record type behind a u8 tag (`codec.Variant`); integer
attributes are i64, real ones f64 (NaN refused), so every program has exactly
one encoding and its id is the BLAKE3 of it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from bcai import codec

VERSION = 1
MAX_REGISTERS = 4096
MAX_INSTRUCTIONS = 1 << 20
MAX_RANK = 8
MAX_SRCS = 16
MAX_ATTRS = 16
REG = codec.U16
REGS = codec.ListOf(REG, MAX_SRCS)
SHAPE = codec.ListOf(codec.U32, MAX_RANK)
INTS = codec.ListOf(codec.I64, MAX_ATTRS)
FLOATS = codec.ListOf(codec.F64, MAX_ATTRS)
OPT_REG = codec.Option(REG)


class DType(enum.IntEnum):
    F32 = 1
    F64 = 2
    I8 = 3
    I32 = 4
    I64 = 5

    @property
    def is_float(self) -> bool:
        return self in (DType.F32, DType.F64)

    @property
    def itemsize(self) -> int:
        return {DType.F32: 4, DType.F64: 8, DType.I8: 1, DType.I32: 4, DType.I64: 8}[self]


class Init(enum.IntEnum):
    ZEROS = 0
    ONES = 1
    NORMAL = 2  # mean floats[0] (0), std floats[1] (1), from `seed`
    UNIFORM = 3  # low floats[0] (0), high floats[1] (1), from `seed`
    BLOB = 4  # the bytes of a blob given at run time, by its BLAKE3 id


class OpKind(enum.IntEnum):
    """TensorOp kinds. Attributes per kind are in docs/vm.md."""

    ADD = 1
    SUB = 2
    MUL = 3
    DIV = 4
    MATMUL = 5
    RELU = 6
    GELU = 7
    TANH = 8
    SIGMOID = 9
    SOFTMAX = 10  # ints: [axis]
    LOG_SOFTMAX = 11  # ints: [axis]
    LAYERNORM = 12  # srcs: x[, gamma, beta]; floats: [eps]
    RESHAPE = 13  # ints: the new shape (one -1 allowed)
    TRANSPOSE = 14  # ints: the permutation
    CONCAT = 15  # ints: [axis]
    SLICE = 16  # ints: [axis, start, stop]
    SUM = 17  # ints: [axis, keepdims] or [] for all
    MEAN = 18  # ints: [axis, keepdims] or [] for all
    MAX = 19  # ints: [axis, keepdims] or [] for all


class Activation(enum.IntEnum):
    NONE = 0
    RELU = 1
    GELU = 2
    TANH = 3
    SIGMOID = 4


class LossKind(enum.IntEnum):
    CROSS_ENTROPY = 1  # pred: logits (N, C); target: class ids (N,) int
    MSE = 2


class Optimizer(enum.IntEnum):
    SGD = 1  # floats: [lr, momentum, weight_decay]
    ADAM = 2  # floats: [lr, beta1, beta2, eps, weight_decay] (L2 in the gradient)
    ADAMW = 3  # floats: [lr, beta1, beta2, eps, weight_decay] (decoupled)


@dataclass(frozen=True, slots=True)
class TensorCreate(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/vm/create"
    dst: int = codec.field(REG)
    shape: tuple[int, ...] = codec.field(SHAPE)
    dtype: int = codec.field(codec.U8)
    init: int = codec.field(codec.U8)
    seed: int = codec.field(codec.U64)
    floats: tuple[float, ...] = codec.field(FLOATS)
    blob: bytes = codec.field(codec.Bytes(32))  # empty unless init == BLOB
    trainable: bool = codec.field(codec.Bool)


@dataclass(frozen=True, slots=True)
class TensorOp(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/vm/op"
    dst: int = codec.field(REG)
    kind: int = codec.field(codec.U8)
    srcs: tuple[int, ...] = codec.field(REGS)
    ints: tuple[int, ...] = codec.field(INTS)
    floats: tuple[float, ...] = codec.field(FLOATS)


@dataclass(frozen=True, slots=True)
class Linear(codec.Record):
    """dst = activation(x @ w + b); x (…, in), w (in, out), b (out,)."""

    DOMAIN: ClassVar[bytes] = b"bcai/vm/linear"
    dst: int = codec.field(REG)
    x: int = codec.field(REG)
    w: int = codec.field(REG)
    b: int | None = codec.field(OPT_REG)
    activation: int = codec.field(codec.U8)


@dataclass(frozen=True, slots=True)
class Conv2D(codec.Record):
    """x (N, C, H, W), w (O, C, kh, kw), b (O,) → (N, O, H', W')."""

    DOMAIN: ClassVar[bytes] = b"bcai/vm/conv2d"
    dst: int = codec.field(REG)
    x: int = codec.field(REG)
    w: int = codec.field(REG)
    b: int | None = codec.field(OPT_REG)
    stride: int = codec.field(codec.U8)
    padding: int = codec.field(codec.U8)


@dataclass(frozen=True, slots=True)
class MaxPool2D(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/vm/maxpool2d"
    dst: int = codec.field(REG)
    x: int = codec.field(REG)
    kernel: int = codec.field(codec.U8)
    stride: int = codec.field(codec.U8)


@dataclass(frozen=True, slots=True)
class LSTM(codec.Record):
    """x (N, T, in); per layer l: w_ih (in_l, 4H), w_hh (H, 4H), b (4H,),
    listed in `params` as 3 registers per layer; dst (N, T, H)."""

    DOMAIN: ClassVar[bytes] = b"bcai/vm/lstm"
    dst: int = codec.field(REG)
    x: int = codec.field(REG)
    params: tuple[int, ...] = codec.field(codec.ListOf(REG, 3 * MAX_RANK))
    hidden: int = codec.field(codec.U32)


@dataclass(frozen=True, slots=True)
class Attention(codec.Record):
    """Multi-head self-attention: x (N, T, D); wq, wk, wv, wo (D, D)."""

    DOMAIN: ClassVar[bytes] = b"bcai/vm/attention"
    dst: int = codec.field(REG)
    x: int = codec.field(REG)
    wq: int = codec.field(REG)
    wk: int = codec.field(REG)
    wv: int = codec.field(REG)
    wo: int = codec.field(REG)
    heads: int = codec.field(codec.U16)
    causal: bool = codec.field(codec.Bool)


@dataclass(frozen=True, slots=True)
class Embedding(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/vm/embedding"
    dst: int = codec.field(REG)
    table: int = codec.field(REG)
    ids: int = codec.field(REG)


@dataclass(frozen=True, slots=True)
class Dropout(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/vm/dropout"
    dst: int = codec.field(REG)
    x: int = codec.field(REG)
    p: float = codec.field(codec.F64)
    seed: int = codec.field(codec.U64)


@dataclass(frozen=True, slots=True)
class Loss(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/vm/loss"
    dst: int = codec.field(REG)
    kind: int = codec.field(codec.U8)
    pred: int = codec.field(REG)
    target: int = codec.field(REG)


@dataclass(frozen=True, slots=True)
class Backward(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/vm/backward"
    loss: int = codec.field(REG)


@dataclass(frozen=True, slots=True)
class OptimizerStep(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/vm/optimizer"
    kind: int = codec.field(codec.U8)
    params: tuple[int, ...] = codec.field(codec.ListOf(REG, 256))
    floats: tuple[float, ...] = codec.field(FLOATS)


@dataclass(frozen=True, slots=True)
class ToGPU(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/vm/to-gpu"
    reg: int = codec.field(REG)


@dataclass(frozen=True, slots=True)
class ToCPU(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/vm/to-cpu"
    reg: int = codec.field(REG)


@dataclass(frozen=True, slots=True)
class Checkpoint(codec.Record):
    """Records the hash of the listed registers (all, if empty) in the trace."""

    DOMAIN: ClassVar[bytes] = b"bcai/vm/checkpoint"
    regs: tuple[int, ...] = codec.field(codec.ListOf(REG, 256))


@dataclass(frozen=True, slots=True)
class Halt(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/vm/halt"


INSTRUCTION_TYPES: dict[int, type[codec.Record]] = {
    1: TensorCreate,
    2: TensorOp,
    3: Linear,
    4: Conv2D,
    5: MaxPool2D,
    6: LSTM,
    7: Attention,
    8: Embedding,
    9: Dropout,
    10: Loss,
    11: Backward,
    12: OptimizerStep,
    13: ToGPU,
    14: ToCPU,
    15: Checkpoint,
    16: Halt,
}
INSTRUCTION = codec.Variant(INSTRUCTION_TYPES)
Instruction = Any  # one of the record types above


@dataclass(frozen=True, slots=True)
class Program(codec.Record):
    DOMAIN: ClassVar[bytes] = b"bcai/vm/program"
    version: int = codec.field(codec.U16)
    registers: int = codec.field(codec.U16)
    instructions: tuple[Instruction, ...] = codec.field(codec.ListOf(INSTRUCTION, MAX_INSTRUCTIONS))

    def program_id(self) -> bytes:
        return self.object_id()
