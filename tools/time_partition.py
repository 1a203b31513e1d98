"""The attempt split over two streams and two sets of SMs (n = 4096): the
transcript of attempt i on all SMs but `spare`, beside it on the spare SMs
the Merkle root of attempt i − 1 and the noise XOF and noisy operands of
attempt i + 1 (every one of those kernels launched with a grid of at most
`spare` SMs' worth of blocks). One CUDA graph a step, two of them (even and
odd attempts: the operand sets, leaves and keys alternate), replayed in
turn; wall time a step, against the shipped mining loop and the bare
product in the same run. Timing only: the keys are fixed.
Usage: time_partition.py [N] [SPARE ...]"""

import json
import sys
import time
from typing import Any

import cupy
import numpy as np
from _cuda_timing import sustained

from bcai import pouw
from bcai.mining import _device_hash, _sm90, mine
from bcai.mining._gpu import GpuMiner
from bcai.mining._gpu_graph import KEY_WORDS
from bcai.pouw import PouwParams

N = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
SPARES = [int(x) for x in sys.argv[2:]] or [8, 12, 16, 18]
TILE = 128
rng = np.random.default_rng(5)
a8 = cupy.asarray(rng.integers(-63, 64, (N, N), dtype=np.int8))
bt8 = cupy.asarray(rng.integers(-63, 64, (N, N), dtype=np.int8))
count = (N // TILE) ** 3
_, shapes, blocks = _device_hash.noise_spec(b"", N, N, N, TILE)
factors = _device_hash.factor_buffers(N, N, N, TILE)
e_l, e_rt, f_rt, f_l = factors
sets = [(cupy.empty((N, N), cupy.int8), cupy.empty((N, N), cupy.int8)) for _ in range(2)]
ops = [_sm90.Operands(a2, bt2) for a2, bt2 in sets]
noisy = [_sm90.Noisy((a8, e_l, e_rt, a2), (bt8, f_rt, f_l, bt2)) for a2, bt2 in sets]
specs = []
for _ in range(2):
    spec = cupy.zeros(KEY_WORDS + len(shapes), cupy.uint32)
    spec[:KEY_WORDS] = cupy.asarray(rng.integers(0, 2**32, KEY_WORDS, dtype=np.uint32))
    spec[KEY_WORDS:] = cupy.asarray(np.array(shapes, np.uint32))
    specs.append(spec)
leaves = [cupy.zeros(count, cupy.uint32) for _ in range(2)]
scratch = _device_hash.merkle_scratch(count)
keys_memory = [cupy.cuda.alloc_pinned_memory(4 * KEY_WORDS) for _ in range(2)]
out_memory = [cupy.cuda.alloc_pinned_memory(4 * (count + 8)) for _ in range(2)]
side, main = cupy.cuda.Stream(non_blocking=True), cupy.cuda.Stream(non_blocking=True)
copy = cupy.cuda.runtime.memcpyAsync
to_host, to_device = cupy.cuda.runtime.memcpyDeviceToHost, cupy.cuda.runtime.memcpyHostToDevice


def step(p: int, spare: int, side_steps: str = "merkle xof noisy") -> None:
    """Attempt i = p's step: transcript i on `main`; on `side` the root of
    i − 1, then the XOF and noisy operands of i + 1."""
    q = 1 - p
    fork, join = cupy.cuda.Event(disable_timing=True), cupy.cuda.Event(disable_timing=True)
    copy(specs[q].data.ptr, keys_memory[q].ptr, 4 * KEY_WORDS, to_device, side.ptr)
    fork.record(side)
    main.wait_event(fork)
    with main:
        ops[p].spare = spare
        ops[p].leaves(specs[p][32:KEY_WORDS], leaves[p])
    join.record(main)
    with side:
        if "merkle" in side_steps:
            root = _device_hash.merkle_root(leaves[q], 4, scratch, grid=spare or None)
            copy(out_memory[q].ptr, leaves[q].data.ptr, 4 * count, to_host, side.ptr)
            copy(out_memory[q].ptr + 4 * count, root.data.ptr, 32, to_host, side.ptr)
        if "xof" in side_steps:
            grid = max(1, spare // 4) if spare else None
            _device_hash.launch_noise(specs[q][:32], specs[q][KEY_WORDS:], factors, blocks, grid)
        if "noisy" in side_steps:
            noisy[q].grid = 2 * spare if spare else noisy[p].grid
            noisy[q].launch()
    side.wait_event(join)


def graphs(spare: int, side_steps: str = "merkle xof noisy") -> list[Any]:
    out = []
    for p in range(2):
        step(p, spare, side_steps)  # eagerly first (compiles, loads)
        side.synchronize()
        side.begin_capture()
        step(p, spare, side_steps)
        out.append(side.end_capture())
    return out


def loop(held: list[Any], steps: int) -> float:
    side.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        held[i % 2].launch(side)
    side.synchronize()
    return (time.perf_counter() - start) / steps


params = PouwParams(tile=TILE, n=N, k=N, m=N)
work = pouw.derived_work(b"\x05" * 32, params)
miner = GpuMiner(sm90=True)
mine(b"rate", 0, work, params, miner=miner, attempts=6)
recorded = {f"spare {spare}": graphs(spare) for spare in SPARES}
for spare in SPARES:
    for steps in ("", "merkle", "merkle xof"):
        recorded[f"spare {spare}, beside: {steps or 'nothing'}"] = graphs(spare, steps)
product = cupy.empty((N, N), cupy.int32)
out: dict[str, Any] = {"device": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode(), "n": N}
for _ in range(3):
    cupy.cuda.Device().synchronize()
    start = time.perf_counter()
    mine(b"rate", 0, work, params, miner=miner, attempts=200)
    out.setdefault("shipped loop", []).append(round((time.perf_counter() - start) / 0.2, 4))
    for name, held in recorded.items():
        loop(held, 20)
        out.setdefault(name, []).append(round(loop(held, 200) * 1e3, 4))
    ms, clock, watts = sustained(lambda: ops[0].product(product), 1.0)
    out.setdefault("bare product (sustained ms, MHz, W)", []).append((round(ms, 4), clock, watts))
print(json.dumps(out))
