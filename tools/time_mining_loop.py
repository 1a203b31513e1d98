"""The mining loop (`mine`, 200 attempts, all in flight on the miner's
streams) with each transcript kernel, alternated three times in one run:
the hand-written sm_90 kernel on 128 blocks (8 tiles each at n = 4096,
leaving 4 SMs to the next attempt's noisy operands) and on one block per
SM, and the Triton kernel. Wall time per attempt (docs/benchmarks.md)."""

import json
import sys
import time
from typing import Any

import cupy

from bcai import pouw
from bcai.mining import _sm90, mine
from bcai.mining._gpu import GpuMiner
from bcai.pouw import PouwParams

N = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
params = PouwParams(tile=128, n=N, k=N, m=N)
work = pouw.derived_work(b"\x05" * 32, params)
spread = _sm90._grid


def every_sm(n: int, m: int) -> int:
    return min((n // 128) * (m // 128), cupy.cuda.Device().attributes["MultiProcessorCount"])


def miner(sm90: bool) -> GpuMiner:
    return GpuMiner(sm90=sm90)


variants: dict[str, tuple[GpuMiner, Any]] = {
    "sm90, 128 blocks": (miner(True), spread),
    "sm90, a block per SM": (miner(True), every_sm),
    "triton": (miner(False), spread),
}
out: dict[str, Any] = {"device": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode(), "n": N}
for _ in range(3):
    for name, (held, grid) in variants.items():
        _sm90._grid = grid
        mine(b"rate", 0, work, params, miner=held, attempts=6)  # graphs recorded
        cupy.cuda.Device().synchronize()
        start = time.perf_counter()
        mine(b"rate", 0, work, params, miner=held, attempts=200)
        per = (time.perf_counter() - start) / 200
        out.setdefault(name, []).append((round(per * 1e3, 4), round(2 * N**3 / per / 1e12, 1)))
print(json.dumps(out))
