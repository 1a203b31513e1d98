"""The GPU miner (native/cuda/pouw.cu through CuPy) gives the CPU miner's
transcript byte for byte, worst-case entries included, and its seals verify.
Runs on the GPU machine; skipped elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

from bcai import pouw
from bcai.mining import CpuMiner, mine, new_miner
from bcai.mining._gpu import available
from bcai.pouw import PouwParams
from bcai.pouw._noise import Noise, attempt_seed, noisy

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not available(), reason="no CuPy with a CUDA device here"),
]


@pytest.mark.parametrize(
    ("tile", "n", "k", "m"),
    [(16, 32, 48, 64), (32, 64, 128, 96), (64, 128, 256, 192), (64, 512, 512, 512)],
)
def test_gpu_transcript_equals_cpu(tile: int, n: int, k: int, m: int) -> None:
    params = PouwParams(tile=tile, n=n, k=k, m=m)
    work = pouw.derived_work(bytes([tile]) * 32, params)
    seed = attempt_seed(b"gpu", n + k + m)
    a2, b2 = noisy(work.a, work.b, Noise.derive(seed, n, k, m, tile))
    key = pouw.digest_key(seed)
    assert new_miner("gpu").leaves(a2, b2, tile, key) == CpuMiner().leaves(a2, b2, tile, key)


def test_gpu_worst_case_entries() -> None:
    """|entries| = 127 everywhere, k large: the int32 sums on the card are
    exact (the same leaves as the CPU's, whose sums are checked exactly)."""
    k = 8192
    a2 = np.full((64, k), -127, np.int8)
    b2 = np.full((k, 64), 127, np.int8)
    b2[::3] = -127
    assert new_miner("gpu").leaves(a2, b2, 64, 9) == CpuMiner().leaves(a2, b2, 64, 9)


def test_gpu_mined_seal_verifies() -> None:
    params = PouwParams(tile=32, checks=8, n=256, k=256, m=256)
    work = pouw.derived_work(b"\x11" * 32, params)
    seal = mine(b"gpu-seal", (2**256 - 1) >> 3, work, params, miner=new_miner("gpu"))
    assert seal is not None
    pouw.verify(b"gpu-seal", (2**256 - 1) >> 3, seal, work, params)
    pouw.full_verify(b"gpu-seal", seal, work, params)


def test_gpu_attempt_with_device_noise_equals_cpu() -> None:
    params = PouwParams(tile=64, n=256, k=512, m=192)
    work = pouw.derived_work(b"\x22" * 32, params)
    seed = attempt_seed(b"noise-on-device", 3)
    gpu = new_miner("gpu")
    assert gpu.attempt_leaves(work, seed, params) == CpuMiner().attempt_leaves(work, seed, params)
