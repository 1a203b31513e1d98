"""The Hopper pipeline's steps (`bcai.mining._gpu_pipeline`): the recorded
step graphs replayed back to back (the device's time a step), the mining
loop that launches them (`mine`; the pipeline at any size here, and the
mode this size ships with), the host's share of an
attempt alone (seed, keys, noise keys, the leaves' bytes, ticket — no
device), the bare sm90 product (C stored), and the step with parts left
out, each three times in one run; wall time an attempt, ms.

With SUSTAINED (seconds), each again back to back for that long, as a
miner runs for hours, with the SM clock and board power sampled
meanwhile (`_cuda_timing.sustained`), and two more: the transcript alone
on every SM and one side's noisy operand alone (a graph of 16). A card
held at its power limit lowers its clock (H100 SXM, 700 W: the bare
product at ≈ 1,480 MHz, the mining loop at ≈ 1,700), so bursts at the
highest clock misplace the costs: (ms, MHz, W, mJ an attempt = W × ms).
Usage: time_pipeline.py [N] [SPARE (0: `spare_sms`)] [COUNT] [SUSTAINED]"""

import json
import sys
import time
from typing import Any

import cupy
import numpy as np

from bcai import pouw
from bcai.mining import _device_hash, _gpu, _gpu_pipeline, _sm90, mine
from bcai.mining._gpu import GpuMiner
from bcai.pouw import PouwParams
from bcai.pouw._noise import attempt_seed
from bcai.pouw._seal import ticket
from bcai.pouw._transcript import digest_key

N = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
if len(sys.argv) > 2 and int(sys.argv[2]) > 0:  # SMs left beside, whatever rounds that costs
    forced = int(sys.argv[2])
    _gpu_pipeline.spare_sms = lambda n, k, m, most=None: forced  # type: ignore[assignment]
COUNT = int(sys.argv[3]) if len(sys.argv) > 3 else 200  # steps (and products) a measurement
SUSTAINED = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0  # seconds each, 0: not measured
params = PouwParams(tile=128, n=N, k=N, m=N)
work = pouw.derived_work(b"\x05" * 32, params)
shipped = _gpu.PIPELINE_WORK
_gpu.PIPELINE_WORK = (0, 2**62)  # the pipeline at every size here; the shipped mode beside it
miner = GpuMiner(sm90=True)
mine(b"rate", 0, work, params, miner=miner, attempts=8)  # the step graphs recorded
_gpu.PIPELINE_WORK = shipped
serial = GpuMiner(sm90=True)  # the shipped mode for this size (the pipeline within PIPELINE_WORK)
mine(b"rate", 0, work, params, miner=serial, attempts=8)
pipeline = miner._pipeline
assert pipeline is not None
# the steady steps of nonces in order: one graph a host slot (each forming one side)
ordered = [graph for _, graph in sorted(pipeline.graphs.items(), key=lambda item: item[0][0])]
assert len(ordered) == _gpu_pipeline.HOST
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
        ordered[i % len(ordered)].launch(pipeline.main)


def host(count: int) -> None:
    for nonce in range(count):
        seed = attempt_seed(b"rate", nonce)
        key = digest_key(seed)
        _device_hash.noise_keys(seed)
        out = leaves[: pipeline.count].tobytes(), leaves[pipeline.count :].tobytes()
        ticket(b"rate", nonce, out[1])
        assert key >= 0


def loop(count: int) -> None:
    _gpu.PIPELINE_WORK = (0, 2**62)
    try:
        mine(b"rate", 0, work, params, miner=miner, attempts=count)
    finally:
        _gpu.PIPELINE_WORK = shipped


def shipped_loop(count: int) -> None:
    mine(b"rate", 0, work, params, miner=serial, attempts=count)


before = GpuMiner(sm90=True)  # session 8's loop: recorded attempts, three streams or one
before._pipelined = lambda work, tile: False  # type: ignore[method-assign]
mine(b"rate", 0, work, params, miner=before, attempts=8)


def before_loop(count: int) -> None:
    mine(b"rate", 0, work, params, miner=before, attempts=count)


spinning = pipeline.done


def blocking_loop(count: int) -> None:
    """The pipeline waiting for its steps' events by blocking, not spinning."""
    pipeline.done = [cupy.cuda.Event(block=True, disable_timing=True) for _ in spinning]
    try:
        loop(count)
    finally:
        pipeline.done = spinning


def record(transcript: bool = True, side: bool = True, noisy: bool = True) -> list[Any]:
    """The steady steps (i = 4, 5: each forming one side, the XOF the
    other) with parts left out: only their time is read."""
    held = []
    for i in (4, 5):
        sides = (True, False) if i % 2 == 0 else (False, True)  # nonce i − 1 odd: E changed
        with pipeline.main:
            pipeline.main.begin_capture()
            pipeline._step(
                i,
                sides if noisy else _gpu_pipeline.NEITHER,
                sides[::-1] if side else None,
                transcript=transcript,
                root=side,
            )
            held.append(pipeline.main.end_capture())
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


bare_operands = _sm90.Operands(pipeline.a2, pipeline.bt2)  # every SM: the best bare product


def bare(count: int) -> None:
    for _ in range(count):
        bare_operands.product(product)


out: dict[str, Any] = {"device": cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()}
out |= {"n": N, "spare": pipeline.spare}
for _ in range(3):
    for name, fn in (
        ("steps", steps),
        ("mine", loop),
        ("mine, shipped mode", shipped_loop),
        ("mine, blocking waits", blocking_loop),
        ("mine, session 8's recorded attempts", before_loop),
        ("host", host),
        ("bare product", bare),
    ):
        out.setdefault(name, []).append(timed(fn, COUNT))
    for name, fn in parts.items():
        out.setdefault(name, []).append(timed(fn, COUNT))
    for sides, name in (((True, False), "one"), ((True, True), "both")):
        form = pipeline.noisy[sides]
        noisy = timed(lambda count, form=form: [form.launch() for _ in range(count)], COUNT)
        out.setdefault(f"noisy operands alone, {name}", []).append(noisy)
if SUSTAINED:
    from _cuda_timing import sustained  # torch and pynvml: the sustained mode only

    every_sm = _sm90.Operands(pipeline.a2, pipeline.bt2)  # the transcript on every SM
    keys = cupy.zeros(2, cupy.uint32)
    alone = cupy.empty(pipeline.count, cupy.uint32)
    with pipeline.main:  # one side's noisy operand, E and F in turn, 16 a graph
        pipeline.main.begin_capture()
        for i in range(16):
            pipeline.noisy[(True, False) if i % 2 else (False, True)].launch()
        formed = pipeline.main.end_capture()
    batch = 50  # attempts (products, steps) a call; `mine` 250, its start and end in each
    runs = {
        "bare product": (lambda: bare(batch), batch),
        "mine": (lambda: loop(5 * batch), 5 * batch),
        "steps": (lambda: steps(batch), batch),
        **{name: (lambda fn=fn: fn(batch), batch) for name, fn in parts.items()},
        "transcript alone, every SM": (lambda: every_sm.leaves(keys, alone), 1),
        "noisy operand alone, one": (lambda: formed.launch(pipeline.main), 16),
    }
    for name, (fn, calls) in runs.items():
        ms, mhz, watts = sustained(fn, SUSTAINED)
        ms /= calls
        out[f"{name}, sustained (ms, MHz, W, mJ)"] = (
            round(ms, 4),
            mhz,
            watts,
            round(ms * watts, 1),
        )
print(json.dumps(out))
