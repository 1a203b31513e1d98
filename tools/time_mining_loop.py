"""The mining loop (`mine`, 200 attempts, all in flight on the miner's
streams) with each transcript kernel, alternated three times in one run:
the hand-written sm_90 kernel on 128 blocks (8 tiles each at n = 4096,
leaving 4 SMs to the next attempt's noisy operands) and on one block per
SM, the attempts on three streams; the hand-written kernels with every
attempt on one stream (one after the other on the GPU: the miner's mode
from SERIAL_WORK); and the Triton kernel on three streams. Wall time per
attempt (docs/benchmarks.md). The recorded attempts of sessions 4-8: the
Hopper pipeline (`PIPELINE_WORK`) is switched off here; tools/time_pipeline.py
times it."""

import json
import sys
import time
from typing import Any

import cupy

from bcai import pouw
from bcai.mining import _gpu, _sm90, mine
from bcai.mining._gpu import GpuMiner
from bcai.pouw import PouwParams

N = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
params = PouwParams(tile=128, n=N, k=N, m=N)
work = pouw.derived_work(b"\x05" * 32, params)
spread = _sm90._grid
_gpu.PIPELINE_WORK = (0, 0)


def every_sm(n: int, m: int, spare: int = 0) -> int:
    return min((n // 128) * (m // 128), cupy.cuda.Device().attributes["MultiProcessorCount"])


THREE, ONE = 2**80, 0  # SERIAL_WORK: attempts on three streams / on one


variants: dict[str, tuple[GpuMiner, Any, int]] = {
    "sm90, 128 blocks, three streams": (GpuMiner(sm90=True), spread, THREE),
    "sm90, a block per SM, three streams": (GpuMiner(sm90=True), every_sm, THREE),
    "sm90, one stream": (GpuMiner(sm90=True), spread, ONE),
    "triton, three streams": (GpuMiner(sm90=False), spread, THREE),
}
out: dict[str, Any] = {"device": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode(), "n": N}
for _ in range(3):
    for name, (held, grid, serial_work) in variants.items():
        _sm90._grid = grid
        _gpu.SERIAL_WORK = serial_work
        mine(b"rate", 0, work, params, miner=held, attempts=6)  # graphs recorded
        cupy.cuda.Device().synchronize()
        start = time.perf_counter()
        mine(b"rate", 0, work, params, miner=held, attempts=200)
        per = (time.perf_counter() - start) / 200
        out.setdefault(name, []).append((round(per * 1e3, 4), round(2 * N**3 / per / 1e12, 1)))
print(json.dumps(out))
