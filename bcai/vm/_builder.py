"""A small Python API that writes programs: each method appends one
instruction and returns the register it writes (registers are allocated in
order).

    b = Builder()
    x = b.blob((64, 784), "f32", blob_id)
    w = b.param((784, 10), std=0.05, seed=1)
    logits = b.linear(x, w)
    loss = b.loss("cross_entropy", logits, b.blob((64,), "i64", labels_id))
    b.backward(loss)
    b.optimize("adamw", [w], lr=1e-3)
    program = b.build()
"""

from __future__ import annotations

from collections.abc import Sequence

from bcai.vm._isa import (
    LSTM,
    VERSION,
    Activation,
    Attention,
    Backward,
    Checkpoint,
    Conv2D,
    Dropout,
    DType,
    Embedding,
    Halt,
    Init,
    Instruction,
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

OPTIMIZER_DEFAULTS = {
    Optimizer.SGD: (0.0, 0.0),  # momentum, weight decay
    Optimizer.ADAM: (0.9, 0.999, 1e-8, 0.0),
    Optimizer.ADAMW: (0.9, 0.999, 1e-8, 0.01),
}


class Builder:
    def __init__(self, first_register: int = 0) -> None:
        self.next = first_register
        self.instructions: list[Instruction] = []
        self.params: list[int] = []

    def _reg(self) -> int:
        r = self.next
        self.next += 1
        return r

    def _emit(self, ins: Instruction) -> None:
        self.instructions.append(ins)

    def create(
        self,
        shape: Sequence[int],
        dtype: str = "f32",
        init: str = "zeros",
        *,
        seed: int = 0,
        floats: Sequence[float] = (),
        blob: bytes = b"",
        trainable: bool = False,
    ) -> int:
        r = self._reg()
        self._emit(
            TensorCreate(
                dst=r,
                shape=tuple(shape),
                dtype=int(DType[dtype.upper()]),
                init=int(Init[init.upper()]),
                seed=seed,
                floats=tuple(float(f) for f in floats),
                blob=blob,
                trainable=trainable,
            )
        )
        if trainable:
            self.params.append(r)
        return r

    def blob(self, shape: Sequence[int], dtype: str, blob_id: bytes) -> int:
        return self.create(shape, dtype, "blob", blob=blob_id)

    def param(
        self, shape: Sequence[int], *, std: float = 0.0, seed: int = 0, init: str = "normal"
    ) -> int:
        """A trainable float32 tensor: normal(0, std), or zeros when std == 0."""
        if std == 0.0:
            return self.create(shape, "f32", "zeros", trainable=True)
        bounds = (0.0, std) if init == "normal" else (-std, std)
        return self.create(shape, "f32", init, seed=seed, floats=bounds, trainable=True)

    def op(
        self, kind: str, *srcs: int, ints: Sequence[int] = (), floats: Sequence[float] = ()
    ) -> int:
        r = self._reg()
        self._emit(
            TensorOp(
                dst=r,
                kind=int(OpKind[kind.upper()]),
                srcs=tuple(srcs),
                ints=tuple(ints),
                floats=tuple(float(f) for f in floats),
            )
        )
        return r

    def linear(self, x: int, w: int, b: int | None = None, activation: str = "none") -> int:
        r = self._reg()
        act = int(Activation[activation.upper()])
        self._emit(Linear(dst=r, x=x, w=w, b=b, activation=act))
        return r

    def conv2d(
        self, x: int, w: int, b: int | None = None, *, stride: int = 1, padding: int = 0
    ) -> int:
        r = self._reg()
        self._emit(Conv2D(dst=r, x=x, w=w, b=b, stride=stride, padding=padding))
        return r

    def maxpool2d(self, x: int, kernel: int = 2, stride: int | None = None) -> int:
        r = self._reg()
        self._emit(MaxPool2D(dst=r, x=x, kernel=kernel, stride=stride or kernel))
        return r

    def lstm(self, x: int, params: Sequence[int], hidden: int) -> int:
        r = self._reg()
        self._emit(LSTM(dst=r, x=x, params=tuple(params), hidden=hidden))
        return r

    def attention(
        self, x: int, wq: int, wk: int, wv: int, wo: int, *, heads: int, causal: bool = False
    ) -> int:
        r = self._reg()
        self._emit(Attention(dst=r, x=x, wq=wq, wk=wk, wv=wv, wo=wo, heads=heads, causal=causal))
        return r

    def embedding(self, table: int, ids: int) -> int:
        r = self._reg()
        self._emit(Embedding(dst=r, table=table, ids=ids))
        return r

    def dropout(self, x: int, p: float, seed: int) -> int:
        r = self._reg()
        self._emit(Dropout(dst=r, x=x, p=float(p), seed=seed))
        return r

    def loss(self, kind: str, pred: int, target: int) -> int:
        r = self._reg()
        self._emit(Loss(dst=r, kind=int(LossKind[kind.upper()]), pred=pred, target=target))
        return r

    def backward(self, loss: int) -> None:
        self._emit(Backward(loss=loss))

    def optimize(
        self, kind: str, params: Sequence[int] | None = None, *, lr: float, **extra: float
    ) -> None:
        """`extra`: momentum, weight_decay (SGD); beta1, beta2, eps,
        weight_decay (Adam, AdamW); defaults as PyTorch's."""
        opt = Optimizer[kind.upper()]
        if opt == Optimizer.SGD:
            values = [lr, extra.get("momentum", 0.0), extra.get("weight_decay", 0.0)]
        else:
            b1, b2, eps, wd = OPTIMIZER_DEFAULTS[opt]
            values = [
                lr,
                extra.get("beta1", b1),
                extra.get("beta2", b2),
                extra.get("eps", eps),
                extra.get("weight_decay", wd),
            ]
        chosen = tuple(self.params if params is None else params)
        self._emit(OptimizerStep(kind=int(opt), params=chosen, floats=tuple(values)))

    def to_gpu(self, reg: int) -> None:
        self._emit(ToGPU(reg=reg))

    def to_cpu(self, reg: int) -> None:
        self._emit(ToCPU(reg=reg))

    def checkpoint(self, regs: Sequence[int] = ()) -> None:
        self._emit(Checkpoint(regs=tuple(regs)))

    def halt(self) -> None:
        self._emit(Halt())

    def build(self, registers: int | None = None) -> Program:
        return Program(
            version=VERSION,
            registers=registers if registers is not None else max(self.next, 1),
            instructions=tuple(self.instructions),
        )
