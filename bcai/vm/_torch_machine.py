"""The PyTorch backend (CPU or CUDA): the same programs, gas, limits and
trace as the CPU backend, with registers as torch tensors and PyTorch's own
autograd. Tensors are created exactly as on the CPU backend (NumPy PCG64,
then copied), so the two backends start from the same bits and agree within
the stated tolerances. Deterministic mode (`torch.use_deterministic_algorithms`)
is switched on for the run.

ToGPU / ToCPU move a register between the host and the CUDA device; an
instruction whose inputs sit on different devices moves them to the device
of its first input.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from bcai.vm import _optim as optim
from bcai.vm._check import TensorType
from bcai.vm._errors import VmError
from bcai.vm._isa import (
    LSTM,
    Attention,
    Backward,
    Checkpoint,
    Conv2D,
    Dropout,
    Embedding,
    Halt,
    Linear,
    Loss,
    LossKind,
    MaxPool2D,
    OpKind,
    Optimizer,
    OptimizerStep,
    TensorCreate,
    TensorOp,
    ToCPU,
    ToGPU,
)
from bcai.vm._machine import NP_DTYPES, Machine, register_hash

try:
    import torch
    import torch.nn.functional as F  # noqa: N812
except ImportError:  # pragma: no cover - torch is an extra
    torch = None  # type: ignore[assignment]


def available() -> bool:
    return torch is not None


def cuda_available() -> bool:
    return torch is not None and bool(torch.cuda.is_available())


class TorchMachine(Machine):
    def __init__(self, *, device: str = "cpu", **limits: Any) -> None:
        if torch is None:
            raise VmError("vm-backend-missing", "the torch backend needs PyTorch (extra `torch`)")
        super().__init__(**limits)
        self.device = torch.device(device)
        self.tregs: dict[int, Any] = {}

    # registers: `self.registers` (NumPy views, for callers) is rebuilt lazily
    @property
    def registers(self) -> dict[int, np.ndarray]:
        return {r: t.detach().cpu().numpy() for r, t in getattr(self, "tregs", {}).items()}

    @registers.setter
    def registers(self, value: dict[int, np.ndarray]) -> None:
        self.tregs = {r: self._tensor(a) for r, a in value.items()}

    def _tensor(self, a: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def put(self, reg: int, value: np.ndarray, *, trainable: bool = False) -> None:
        self.tregs[reg] = self._tensor(value)
        if trainable:
            self.trainable.add(reg)

    def _hash(self, reg: int) -> bytes:
        return register_hash(self.tregs[reg].detach().cpu().numpy())

    def _nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tregs.values())

    def types(self) -> dict[int, TensorType]:
        inv = {np.dtype(v): k for k, v in NP_DTYPES.items()}
        return {
            r: TensorType(tuple(t.shape), inv[np.dtype(str(t.dtype).removeprefix("torch."))])
            for r, t in self.tregs.items()
        }

    def run(self, program: Any, blobs: Mapping[bytes, bytes] | None = None) -> Any:
        previous = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            return super().run(program, blobs)
        finally:
            torch.use_deterministic_algorithms(previous)

    # ------------------------------------------------------------ execution

    def _leaf(self, reg: int) -> Any:
        t = self.tregs[reg]
        if reg in self.trainable and not t.requires_grad and t.grad_fn is None:
            t.requires_grad_(True)
        return t

    def _same_device(self, *ts: Any) -> list[Any]:
        first = ts[0].device
        return [t if t.device == first else t.to(first) for t in ts]

    def _set(self, reg: int, t: Any) -> list[int]:
        self.tregs[reg] = t
        return [reg]

    def _execute(self, ins: object, blobs: Mapping[bytes, bytes]) -> list[int]:
        if isinstance(ins, TensorCreate):
            t = self._tensor(self._create(ins, blobs))
            if ins.trainable:
                self.trainable.add(ins.dst)
            else:
                self.trainable.discard(ins.dst)
            return self._set(ins.dst, t)
        g = self._leaf
        if isinstance(ins, TensorOp):
            return self._set(ins.dst, self._op(ins))
        if isinstance(ins, Linear):
            x, w = self._same_device(g(ins.x), g(ins.w))
            out = x @ w
            if ins.b is not None:
                out = out + g(ins.b).to(out.device)
            act = {
                0: None,
                1: F.relu,
                2: lambda v: F.gelu(v, approximate="tanh"),
                3: torch.tanh,
                4: torch.sigmoid,
            }[ins.activation]
            return self._set(ins.dst, out if act is None else act(out))
        if isinstance(ins, Conv2D):
            b = g(ins.b) if ins.b is not None else None
            out = F.conv2d(g(ins.x), g(ins.w), b, ins.stride, ins.padding)
            return self._set(ins.dst, out)
        if isinstance(ins, MaxPool2D):
            return self._set(ins.dst, F.max_pool2d(g(ins.x), ins.kernel, ins.stride))
        if isinstance(ins, LSTM):
            return self._set(ins.dst, self._lstm(ins))
        if isinstance(ins, Attention):
            return self._set(ins.dst, self._attention(ins))
        if isinstance(ins, Embedding):
            return self._set(ins.dst, F.embedding(self.tregs[ins.ids], g(ins.table)))
        if isinstance(ins, Dropout):
            shape = tuple(self.tregs[ins.x].shape)
            keep = np.random.Generator(np.random.PCG64(ins.seed)).random(shape) >= ins.p
            x = g(ins.x)
            mask = torch.from_numpy(keep).to(x.device).to(x.dtype) / (1.0 - ins.p)
            return self._set(ins.dst, x * mask)
        if isinstance(ins, Loss):
            pred = g(ins.pred)
            target = self.tregs[ins.target].to(pred.device)
            if ins.kind == LossKind.CROSS_ENTROPY:
                out = F.cross_entropy(pred, target).reshape(1)
            else:
                out = F.mse_loss(pred, g(ins.target).to(pred.device)).reshape(1)
            return self._set(ins.dst, out)
        if isinstance(ins, Backward):
            self._backward(ins.loss)
            return []
        if isinstance(ins, OptimizerStep):
            self._optimize(ins)
            return list(ins.params)
        if isinstance(ins, ToGPU):
            if not torch.cuda.is_available():
                raise VmError("vm-no-gpu", "ToGPU on a machine without CUDA")
            return self._set(ins.reg, self.tregs[ins.reg].to("cuda"))
        if isinstance(ins, ToCPU):
            return self._set(ins.reg, self.tregs[ins.reg].to("cpu"))
        if isinstance(ins, Checkpoint | Halt):
            return []
        raise VmError("vm-unsupported", f"{type(ins).__name__} on the torch backend")

    def _op(self, ins: TensorOp) -> Any:
        kind = OpKind(ins.kind)
        xs = self._same_device(*(self._leaf(s) for s in ins.srcs))
        ints = list(ins.ints)
        x = xs[0]
        simple: dict[OpKind, Callable[[], Any]] = {
            OpKind.ADD: lambda: xs[0] + xs[1],
            OpKind.SUB: lambda: xs[0] - xs[1],
            OpKind.MUL: lambda: xs[0] * xs[1],
            OpKind.DIV: lambda: xs[0] / xs[1],
            OpKind.MATMUL: lambda: xs[0] @ xs[1],
            OpKind.RELU: lambda: F.relu(x),
            OpKind.GELU: lambda: F.gelu(x, approximate="tanh"),
            OpKind.TANH: lambda: torch.tanh(x),
            OpKind.SIGMOID: lambda: torch.sigmoid(x),
        }
        if kind in simple:
            return simple[kind]()
        if kind == OpKind.SOFTMAX:
            return F.softmax(x, ints[0] if ints else -1)
        if kind == OpKind.LOG_SOFTMAX:
            return F.log_softmax(x, ints[0] if ints else -1)
        if kind == OpKind.LAYERNORM:
            eps = ins.floats[0] if ins.floats else 1e-5
            w, b = (xs[1], xs[2]) if len(xs) == 3 else (None, None)
            return F.layer_norm(x, x.shape[-1:], w, b, eps)
        if kind == OpKind.RESHAPE:
            return x.reshape(ints)
        if kind == OpKind.TRANSPOSE:
            return x.permute(ints).contiguous()
        if kind == OpKind.CONCAT:
            return torch.cat(xs, ints[0] if ints else 0)
        if kind == OpKind.SLICE:
            return x.narrow(ints[0], ints[1], ints[2] - ints[1]).contiguous()
        keep = len(ints) > 1 and ints[1] != 0
        if kind == OpKind.MAX:
            if not ints:
                return x.max().reshape(1)
            return x.max(ints[0], keepdim=keep).values
        fn = torch.sum if kind == OpKind.SUM else torch.mean
        if not ints:
            return fn(x).reshape(1)
        out = fn(x, ints[0], keepdim=keep)
        return out.reshape(1) if out.dim() == 0 else out

    def _lstm(self, ins: LSTM) -> Any:
        x = self._leaf(ins.x)
        for layer in range(len(ins.params) // 3):
            w_ih, w_hh, b = (self._leaf(r) for r in ins.params[3 * layer : 3 * layer + 3])
            n, t_len, _ = x.shape
            hid = w_hh.shape[0]
            h = x.new_zeros((n, hid))
            c = x.new_zeros((n, hid))
            outs = []
            for t in range(t_len):
                z = x[:, t] @ w_ih + h @ w_hh + b
                i, f, gg, o = z.split(hid, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
                h = torch.sigmoid(o) * torch.tanh(c)
                outs.append(h)
            x = torch.stack(outs, dim=1)
        return x

    def _attention(self, ins: Attention) -> Any:
        x, wq, wk, wv, wo = (self._leaf(r) for r in (ins.x, ins.wq, ins.wk, ins.wv, ins.wo))
        n, t_len, d = x.shape
        dh = d // ins.heads
        q, k, v = ((x @ w).reshape(n, t_len, ins.heads, dh).transpose(1, 2) for w in (wq, wk, wv))
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
        if ins.causal:
            mask = torch.triu(torch.ones(t_len, t_len, dtype=torch.bool, device=x.device), 1)
            scores = scores.masked_fill(mask, float("-inf"))
        ctx = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(n, t_len, d)
        return ctx @ wo

    # ------------------------------------------------------------ autograd

    def _backward(self, loss: int) -> None:
        self.grads = {}
        t = self.tregs[loss]
        if not t.requires_grad:
            return
        t.backward()
        for reg in self.trainable:
            p = self.tregs.get(reg)
            if p is not None and p.grad is not None:
                self.grads[reg] = p.grad.detach().cpu().numpy()
                p.grad = None
        # the graph is spent: later reads see plain values
        self.tregs = {r: v.detach() for r, v in self.tregs.items()}

    def _optimize(self, ins: OptimizerStep) -> None:
        """The CPU backend's update rules (`_optim`), in torch, without autograd."""
        opt, floats = Optimizer(ins.kind), list(ins.floats)
        with torch.no_grad():
            for reg in ins.params:
                grad = self.grads.get(reg)
                if grad is None:
                    continue
                p = self.tregs[reg].detach()
                g = torch.from_numpy(grad).to(p.device)
                self.tregs[reg] = optim.update(opt, floats, reg, p, g, self._opt, torch.sqrt)
