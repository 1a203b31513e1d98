"""bcai.vm: the tensor VM (docs/vm.md) — the instruction set and its canonical
encoding, the text form, a builder, the static checker (shape and dtype
inference), and the interpreter with autograd, optimizers, gas and traces on
two backends (NumPy + Cython kernels; PyTorch on CPU or CUDA).

Layer: compute.
"""

from bcai.vm._backends import BACKENDS, new_machine
from bcai.vm._builder import Builder
from bcai.vm._check import TensorType, check
from bcai.vm._errors import VmError
from bcai.vm._isa import (
    LSTM,
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
from bcai.vm._machine import Machine, OutOfGas, OutOfMemory, RunResult, first_divergence
from bcai.vm._text import assemble, disassemble

__all__ = [
    "BACKENDS",
    "LSTM",
    "Activation",
    "Attention",
    "Backward",
    "Builder",
    "Checkpoint",
    "Conv2D",
    "DType",
    "Dropout",
    "Embedding",
    "Halt",
    "Init",
    "Linear",
    "Loss",
    "LossKind",
    "Machine",
    "MaxPool2D",
    "OpKind",
    "Optimizer",
    "OptimizerStep",
    "OutOfGas",
    "OutOfMemory",
    "Program",
    "RunResult",
    "TensorCreate",
    "TensorOp",
    "TensorType",
    "ToCPU",
    "ToGPU",
    "VmError",
    "assemble",
    "check",
    "disassemble",
    "first_divergence",
    "new_machine",
]
