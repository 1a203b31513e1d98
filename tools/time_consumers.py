"""The hand-written transcript kernel with two and with three consumer
warpgroups a block (CONSUMERS in native/cuda/transcript_sm90.cu): leaves
checked equal to Triton's and products to torch's on shapes that give a
block's warpgroups unequal tile counts, then at n = k = m = N CUDA events
(median of 200, three rounds) and two seconds sustained with the SM clock
and board power (NVML), transcript and bare product. Usage:
time_consumers.py [N]"""

import json
import sys
from typing import Any

import cupy
import numpy as np
import torch
from _cuda_timing import compare

from bcai.mining import _sm90, _triton

N = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
keys = torch.tensor([0x12345678, 0xA5A5A5A5], dtype=torch.int64).to(torch.uint32).cuda()
ck = cupy.from_dlpack(keys)
out: dict[str, Any] = {"device": torch.cuda.get_device_name(), "n": N}


def build(consumers: int) -> tuple[Any, int, int]:
    threads, shared = _sm90.layout(consumers)
    return _sm90._kernels(consumers), threads, shared


def runner(kernels: Any, threads: int, shared: int, a: Any, bt: Any) -> tuple[Any, Any]:
    """Launchers of the transcript (into a fresh leaves array) and product."""
    (n, k), m = a.shape, bt.shape[0]
    maps = _sm90.tensor_map(cupy.from_dlpack(a)), _sm90.tensor_map(cupy.from_dlpack(bt))
    leaves = torch.empty((k // 128) * (n // 128) * (m // 128), dtype=torch.uint32, device="cuda")
    c = torch.empty((n, m), dtype=torch.int32, device="cuda")
    cl, cc = cupy.from_dlpack(leaves), cupy.from_dlpack(c)
    dims = np.int32(n), np.int32(k), np.int32(m)
    grid = (_sm90._grid(n, m),)

    def transcript() -> Any:
        kernels[0](grid, (threads,), (*maps, cl, ck, *dims), shared_mem=shared)
        return leaves

    def product() -> Any:
        kernels[1](grid, (threads,), (*maps, cc, *dims), shared_mem=shared)
        return c

    return transcript, product


builds = {c: build(c) for c in (2, 3)}
for n, k, m in ((128, 128, 128), (256, 384, 640), (1280, 256, 3840), (4224, 512, 4352), (N, N, N)):
    a = torch.randint(-128, 128, (n, k), dtype=torch.int8, device="cuda")
    bt = torch.randint(-128, 128, (m, k), dtype=torch.int8, device="cuda")
    want = _triton.leaves(a, bt, 128, keys)
    exact = torch._int_mm(a, bt.t())
    for consumers, built in builds.items():
        transcript, product = runner(*built, a, bt)
        if not torch.equal(transcript(), want) or not torch.equal(product(), exact):
            sys.exit(f"{consumers} consumers differ at {n}×{k}×{m}")
kernels = {}
for consumers, built in builds.items():
    transcript, product = runner(*built, a, bt)
    kernels[f"{consumers} consumers, transcript"] = transcript
    kernels[f"{consumers} consumers, bare"] = product
compare(kernels, out)
print(json.dumps(out))
