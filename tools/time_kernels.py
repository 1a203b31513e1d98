"""Device time (CUDA events, medians of 50) of the transcript kernel, its bare
form and cuBLASLt's int8 product at n = k = m = 4096 (docs/benchmarks.md)."""

import json
import os
from typing import Any

import torch
from _cuda_timing import median_ms

from bcai.mining import _triton

N = 4096
OPS = 2 * N**3


a = torch.randint(-127, 128, (N, N), dtype=torch.int8, device="cuda")
bt = torch.randint(-127, 128, (N, N), dtype=torch.int8, device="cuda")
keys = torch.tensor([5, 0xA5A5A5A5], dtype=torch.int64).to(torch.uint32).cuda()
leaves = _triton.leaves(a, bt, 128, keys)
c = _triton.product(a, bt)
assert torch.equal(c, torch._int_mm(a, bt.t()))
out: dict[str, Any] = {
    "device": torch.cuda.get_device_name(),
    # a limited cuBLAS workspace slows torch._int_mm (docs/benchmarks.md)
    "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
}
for _ in range(2):
    for name, fn in (
        ("transcript kernel (b=128)", lambda: _triton.leaves(a, bt, 128, keys, leaves)),
        ("same kernel, no digest", lambda: _triton.product(a, bt, out=c)),
        ("torch._int_mm (cuBLASLt)", lambda: torch._int_mm(a, bt.t())),
    ):
        ms = median_ms(fn)
        out.setdefault(name, []).append((round(ms, 4), round(OPS / ms / 1e9, 1)))
print(json.dumps(out))
