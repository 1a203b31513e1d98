"""The hand-written sm_90 kernel against the Triton one and cuBLASLt: leaves
identical on random operands of several shapes, the bare products equal to
torch's, then device time (CUDA events, medians of 200) at n = k = m = N
of both transcript kernels, their bare forms and `torch._int_mm`, then
each run back to back for two seconds with the SM clock and the board's
power sampled meanwhile (NVML): under the power limit, the clock is what
the digest's integer work costs (docs/benchmarks.md)."""

import json
import os
import sys
from typing import Any

import cupy
import pynvml
import torch
from _cuda_timing import median_ms, sustained

from bcai.mining import _sm90, _triton

N = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
OPS = 2 * N**3
out: dict[str, Any] = {"device": torch.cuda.get_device_name(), "n": N}
pynvml.nvmlInit()
gpu = pynvml.nvmlDeviceGetHandleByIndex(0)


def operands(n: int, k: int, m: int) -> tuple[Any, Any]:
    a = torch.randint(-128, 128, (n, k), dtype=torch.int8, device="cuda")
    bt = torch.randint(-128, 128, (m, k), dtype=torch.int8, device="cuda")
    return a, bt


keys = torch.tensor([0x12345678, 0xA5A5A5A5], dtype=torch.int64).to(torch.uint32).cuda()
ck = cupy.from_dlpack(keys)
for n, k, m in ((128, 128, 128), (256, 384, 640), (1280, 256, 3840), (N, N, N)):
    a, bt = operands(n, k, m)
    ops = _sm90.Operands(cupy.from_dlpack(a), cupy.from_dlpack(bt))
    want = _triton.leaves(a, bt, 128, keys)
    got = torch.empty_like(want)
    ops.leaves(ck, cupy.from_dlpack(got))
    c = torch.empty((n, m), dtype=torch.int32, device="cuda")
    ops.product(cupy.from_dlpack(c))
    exact = torch.equal(c, torch._int_mm(a, bt.t()))
    if not (torch.equal(got, want) and exact):
        sys.exit(f"sm90 kernel differs at {n}×{k}×{m}: leaves {torch.equal(got, want)}, C {exact}")

a, bt = operands(N, N, N)
ops = _sm90.Operands(cupy.from_dlpack(a), cupy.from_dlpack(bt))
leaves = _triton.leaves(a, bt, 128, keys)
c = torch.empty((N, N), dtype=torch.int32, device="cuda")
cl, cc = cupy.from_dlpack(leaves), cupy.from_dlpack(c)
out["CUBLAS_WORKSPACE_CONFIG"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
out["power limit W"] = pynvml.nvmlDeviceGetEnforcedPowerLimit(gpu) / 1000


kernels = (
    ("sm90 transcript", lambda: ops.leaves(ck, cl)),
    ("sm90 bare", lambda: ops.product(cc)),
    ("triton transcript", lambda: _triton.leaves(a, bt, 128, keys, leaves)),
    ("triton bare", lambda: _triton.product(a, bt, out=c)),
    ("torch._int_mm", lambda: torch._int_mm(a, bt.t())),
)
for _ in range(3):
    for name, fn in kernels:
        ms = median_ms(fn, runs=200)
        out.setdefault(name, []).append((round(ms, 4), round(OPS / ms / 1e9, 1)))
for name, fn in kernels:
    ms, mhz, watts = sustained(fn)
    out[name + ", sustained (ms, MHz, W)"] = (round(ms, 4), mhz, watts)
print(json.dumps(out))
