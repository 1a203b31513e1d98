"""Device time of a callable: the median of 50 runs between CUDA events,
after one warm-up run; and sustained, with the SM clock and board power
sampled meanwhile (shared by the timing tools)."""

import statistics
import threading
import time
from typing import Any

import numpy as np
import torch


def median_ms(fn: Any, runs: int = 50) -> float:
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(runs):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return float(np.median(times))


def sustained(fn: Any, seconds: float = 2.0) -> tuple[float, int, float]:
    """ms per call over `seconds` of back-to-back calls; median SM clock
    (MHz) and board power (W) sampled every 10 ms meanwhile (NVML)."""
    import pynvml  # noqa: PLC0415 - on the GPU machine

    pynvml.nvmlInit()
    gpu = pynvml.nvmlDeviceGetHandleByIndex(0)
    samples: list[tuple[int, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.01):
            clock = pynvml.nvmlDeviceGetClockInfo(gpu, pynvml.NVML_CLOCK_SM)
            samples.append((clock, pynvml.nvmlDeviceGetPowerUsage(gpu) / 1000))

    fn()
    torch.cuda.synchronize()
    sampler = threading.Thread(target=sample)
    sampler.start()
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        for _ in range(20):
            fn()
        torch.cuda.synchronize()
        calls += 20
    elapsed = time.perf_counter() - start
    stop.set()
    sampler.join()
    clocks, watts = zip(*samples[len(samples) // 4 :], strict=True)  # after the ramp
    return elapsed / calls * 1e3, int(statistics.median(clocks)), round(statistics.median(watts))


def compare(kernels: dict[str, Any], out: dict[str, Any], rounds: int = 3) -> None:
    """Each kernel's median of 200 (CUDA events) `rounds` times, alternated,
    then each sustained for two seconds; into `out` by name."""
    for _ in range(rounds):
        for name, fn in kernels.items():
            out.setdefault(name, []).append(round(median_ms(fn, runs=200), 4))
    for name, fn in kernels.items():
        ms, mhz, watts = sustained(fn)
        out[name + ", sustained (ms, MHz, W)"] = (round(ms, 4), mhz, watts)
