"""Where a GPU mining attempt's time goes (n = 4096, b = 128): device time of
each step of the recorded attempt (CUDA events), then host time per call.
The recorded attempt of sessions 4-8 (the Hopper pipeline switched off;
tools/time_pipeline.py times its steps)."""

import time
from typing import Any

import cupy
import torch

from bcai import pouw
from bcai.mining import _device_hash, _gpu, _triton, new_miner
from bcai.mining._gpu_graph import DeviceAttempt
from bcai.pouw import PouwParams
from bcai.pouw._noise import attempt_seed
from bcai.pouw._transcript import LEAF_BYTES

_gpu.PIPELINE_WORK = (0, 0)
p = PouwParams(tile=128, n=4096, k=4096, m=4096)
work = pouw.derived_work(b"\x03" * 32, p)
miner = new_miner("gpu")
seed = attempt_seed(b"x", 0)
for _ in range(3):
    miner.finish(miner.launch(work, seed, p))
att: DeviceAttempt = miner.launch(work, seed, p)
att.finish()
stream = att.stream


def device_ms(label: str, fn: Any, reps: int = 20) -> None:
    with stream:
        fn()
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record(stream)
        for _ in range(reps):
            fn()
        end.record(stream)
        end.synchronize()
    print(f"{label:34s} {cupy.cuda.get_elapsed_time(start, end) / reps:8.3f} ms", flush=True)


t = att.t
ext = att.external
device_ms(
    "noise factors (XOF on the GPU)",
    lambda: _device_hash.launch_noise(att.spec[:32], att.spec[34:], att.factors, att.blocks),
)


def noisy() -> None:
    if att.noisy is not None:  # the hand-written kernel (Hopper)
        att.noisy.launch()
        return
    with torch.cuda.stream(ext):
        _triton.noisy(t["a8"], t["e_l"], t["e_r"], t["a2"])
        _triton.noisy(t["bt8"], t["f_rt"], t["f_lt"], t["bt2"])


device_ms("noisy operands (noise products fused)", noisy)


def transcript() -> None:
    if att.sm90 is not None:  # the hand-written kernel (Hopper)
        att.sm90.leaves(att.spec[32:34], att.leaves)
        return
    with torch.cuda.stream(ext):
        _triton.leaves(t["a2"], t["bt2"], 128, t["keys"], out=t["leaves"])


device_ms("transcript kernel", transcript)
device_ms(
    "Merkle root (device)", lambda: _device_hash.merkle_root(att.leaves, LEAF_BYTES, att.scratch)
)
device_ms("whole recorded attempt (graph)", lambda: att.graph.launch(stream))

for label, fn in (
    ("host: launch", lambda: miner.launch(work, seed, p)),
    ("host: launch + finish", lambda: miner.finish(miner.launch(work, seed, p))),
):
    began = time.perf_counter()
    for _ in range(20):
        fn()
    cupy.cuda.Device().synchronize()
    print(f"{label:34s} {(time.perf_counter() - began) / 20 * 1e3:8.3f} ms", flush=True)
