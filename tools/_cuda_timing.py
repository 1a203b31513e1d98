"""Device time of a callable: the median of 50 runs between CUDA events,
after one warm-up run (shared by the timing tools)."""

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
