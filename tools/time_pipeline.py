"""The Hopper pipeline's steps (`bcai.mining._gpu_pipeline`): the recorded
step graphs replayed back to back (the device's time a step), the mining
loop that launches them (`mine`, 1000 attempts), the host's share of an
attempt alone (seed, keys, noise keys, the leaves' bytes, ticket — no
device), the bare sm90 product (C stored), and the step with parts left
out, each three times in one run; wall time an attempt, ms.
Usage: time_pipeline.py [N] [SPARE]"""

import json
import sys
import time
from typing import Any

import cupy
import numpy as np

from bcai import pouw
from bcai.mining import _device_hash, _gpu_pipeline, mine
from bcai.mining._gpu import GpuMiner
from bcai.pouw import PouwParams
from bcai.pouw._noise import attempt_seed
from bcai.pouw._seal import ticket
from bcai.pouw._transcript import digest_key

N = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
if len(sys.argv) > 2:
    _gpu_pipeline.SPARE_SMS = int(sys.argv[2])
params = PouwParams(tile=128, n=N, k=N, m=N)
work = pouw.derived_work(b"\x05" * 32, params)
miner = GpuMiner(sm90=True)
mine(b"rate", 0, work, params, miner=miner, attempts=8)  # both step graphs recorded
pipeline = miner._pipeline
assert pipeline is not None and all(graph is not None for graph in pipeline.graphs)
product = cupy.empty((N, N), cupy.int32)
leaves = np.zeros(pipeline.count + 8, np.uint32)


def timed(fn: Any, count: int = 200) -> float:
    cupy.cuda.Device().synchronize()
    start = time.perf_counter()
    fn(count)
    cupy.cuda.Device().synchronize()
    return round((time.perf_counter() - start) / count * 1e3, 4)


def steps(count: int) -> None:
    for i in range(count):
        pipeline.graphs[i % 2].launch(pipeline.main)


def host(count: int) -> None:
    for nonce in range(count):
        seed = attempt_seed(b"rate", nonce)
        key = digest_key(seed)
        _device_hash.noise_keys(seed)
        out = leaves[: pipeline.count].tobytes(), leaves[pipeline.count :].tobytes()
        ticket(b"rate", nonce, out[1])
        assert key >= 0


def loop(count: int) -> None:
    mine(b"rate", 0, work, params, miner=miner, attempts=count)


def record(transcript: bool = True, side: bool = True, noisy: bool = True) -> list[Any]:
    """The steady step (i = 4, 5) with parts left out: only its time is read."""
    held, launch = [], pipeline.noisy.launch
    if not noisy:
        pipeline.noisy.launch = lambda: None  # type: ignore[method-assign]
    try:
        for i in (4, 5):
            with pipeline.main:
                pipeline.main.begin_capture()
                pipeline._step(i, transcript=transcript, root=side, xof=side)
                held.append(pipeline.main.end_capture())
    finally:
        pipeline.noisy.launch = launch  # type: ignore[method-assign]
    return held


def replaying(graphs: list[Any]) -> Any:
    def run(count: int) -> None:
        for i in range(count):
            graphs[i % 2].launch(pipeline.main)

    return run


parts = {
    "step without the noisy operands": replaying(record(noisy=False)),
    "step without the side branch": replaying(record(side=False)),
    "side branch alone": replaying(record(transcript=False)),
}


def bare(count: int) -> None:
    for _ in range(count):
        pipeline.operands.product(product)


out: dict[str, Any] = {"device": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()}
out |= {"n": N, "spare": _gpu_pipeline.SPARE_SMS}
for _ in range(3):
    for name, fn in (("steps", steps), ("mine", loop), ("host", host), ("bare product", bare)):
        out.setdefault(name, []).append(timed(fn, 1000 if fn is loop else 200))
    for name, fn in parts.items():
        out.setdefault(name, []).append(timed(fn))
    noisy = timed(lambda count: [pipeline.noisy.launch() for _ in range(count)])
    out.setdefault("noisy operands alone", []).append(noisy)
print(json.dumps(out))
