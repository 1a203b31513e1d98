"""What each step of the attempt costs inside the mining loop (`mine`, 200
attempts in flight on the miner's streams, hand-written sm_90 kernels): the
loop as shipped, then with one step left out of the recorded graph at a
time (noise XOF, noisy operands, transcript, Merkle root) — the difference
is that step's share of the pipelined loop, not its time alone. Results of
the ablated loops are wrong by design; only their time is read. Alternated
three times in one run; wall time per attempt. The recorded attempts of
session 8 (the Hopper pipeline switched off; tools/time_pipeline.py leaves
parts out of its steps). Usage: time_loop_steps.py [N]"""

import json
import sys
import time
from typing import Any

import cupy

from bcai import pouw
from bcai.mining import _device_hash, _gpu, _sm90, mine
from bcai.mining._gpu import GpuMiner
from bcai.pouw import PouwParams

N = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
_gpu.PIPELINE_WORK = (0, 0)
params = PouwParams(tile=128, n=N, k=N, m=N)
work = pouw.derived_work(b"\x05" * 32, params)
shipped = {
    "xof": _device_hash.launch_noise,
    "noisy": _sm90.Noisy.launch,
    "transcript": _sm90.Operands.leaves,
    "merkle": _device_hash.merkle_root,
}


def skip(step: str | None) -> None:
    """Restores every step, then replaces `step` by nothing (before a
    miner records its graphs)."""
    _device_hash.launch_noise = shipped["xof"]  # type: ignore[assignment]
    _sm90.Noisy.launch = shipped["noisy"]  # type: ignore[method-assign]
    _sm90.Operands.leaves = shipped["transcript"]  # type: ignore[method-assign]
    _device_hash.merkle_root = shipped["merkle"]  # type: ignore[assignment]
    if step == "xof":
        _device_hash.launch_noise = lambda *a: None  # type: ignore[assignment]
    elif step == "noisy":
        _sm90.Noisy.launch = lambda self: None  # type: ignore[method-assign]
    elif step == "transcript":
        _sm90.Operands.leaves = lambda self, keys, out: None  # type: ignore[method-assign]
    elif step == "merkle":
        _device_hash.merkle_root = lambda leaves, size, scratch, **_: scratch[-1]  # type: ignore[assignment]


variants: dict[str, Any] = {}
for step in (None, "xof", "noisy", "transcript", "merkle"):
    skip(step)
    held = GpuMiner(sm90=True)
    mine(b"rate", 0, work, params, miner=held, attempts=6)  # graphs recorded without the step
    variants["shipped" if step is None else f"without {step}"] = held
skip(None)
out: dict[str, Any] = {"device": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode(), "n": N}
for _ in range(3):
    for name, held in variants.items():
        mine(b"rate", 0, work, params, miner=held, attempts=6)
        cupy.cuda.Device().synchronize()
        start = time.perf_counter()
        mine(b"rate", 0, work, params, miner=held, attempts=200)
        per = (time.perf_counter() - start) / 200
        out.setdefault(name, []).append(round(per * 1e3, 4))
print(json.dumps(out))
