"""Choosing a backend: `auto` takes PyTorch on CUDA when a GPU is there, else
CuPy on a GPU, else the CPU backend (NumPy + Cython kernels); `cpu`, `torch`
(PyTorch on the host), `torch-cuda` and `cupy` force one
(`vm-backend-missing` if it cannot run)."""

from __future__ import annotations

from typing import Any

from bcai.vm._errors import VmError
from bcai.vm._machine import Machine

BACKENDS = ("auto", "cpu", "torch", "torch-cuda", "cupy")


def new_machine(backend: str = "auto", **limits: Any) -> Machine:
    if backend not in BACKENDS:
        raise VmError("vm-backend-unknown", f"{backend!r}: one of {', '.join(BACKENDS)}")
    if backend == "cpu":
        return Machine(**limits)
    if backend == "cupy":
        from bcai.vm._cupy_machine import CupyMachine  # noqa: PLC0415 - optional extra

        return CupyMachine(**limits)
    from bcai.vm import _torch_machine  # noqa: PLC0415 - torch is an optional extra

    cuda = _torch_machine.cuda_available()
    if backend == "auto":
        if cuda:
            return _torch_machine.TorchMachine(device="cuda", **limits)
        from bcai.vm import _cupy_machine  # noqa: PLC0415

        return (
            _cupy_machine.CupyMachine(**limits) if _cupy_machine.available() else Machine(**limits)
        )
    if backend == "torch-cuda" and not cuda:
        raise VmError("vm-backend-missing", "torch-cuda needs PyTorch with a CUDA device")
    return _torch_machine.TorchMachine(
        device="cuda" if backend == "torch-cuda" else "cpu", **limits
    )
