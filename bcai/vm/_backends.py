"""Choosing a backend: `auto` takes PyTorch on CUDA when a GPU is there, else
the CPU backend (NumPy + Cython kernels); `cpu`, `torch` (PyTorch on the
host) and `torch-cuda` force one (`vm-backend-missing` if it cannot run)."""

from __future__ import annotations

from typing import Any

from bcai.vm._errors import VmError
from bcai.vm._machine import Machine

BACKENDS = ("auto", "cpu", "torch", "torch-cuda")


def new_machine(backend: str = "auto", **limits: Any) -> Machine:
    if backend not in BACKENDS:
        raise VmError("vm-backend-unknown", f"{backend!r}: one of {', '.join(BACKENDS)}")
    if backend == "cpu":
        return Machine(**limits)
    from bcai.vm import _torch_machine  # noqa: PLC0415 - torch is an optional extra

    cuda = _torch_machine.cuda_available()
    if backend == "auto":
        return _torch_machine.TorchMachine(device="cuda", **limits) if cuda else Machine(**limits)
    if backend == "torch-cuda" and not cuda:
        raise VmError("vm-backend-missing", "torch-cuda needs PyTorch with a CUDA device")
    return _torch_machine.TorchMachine(
        device="cuda" if backend == "torch-cuda" else "cpu", **limits
    )
