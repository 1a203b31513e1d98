"""The GPU miner (the tensor-core Triton kernel for tiles 64 and 128, the
__dp4a kernel of native/cuda/pouw.cu for the others) gives the CPU miner's
transcript byte for byte, worst-case entries included, and its seals verify.
Runs on the GPU machine; skipped elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

from bcai import pouw
from bcai.mining import CpuMiner, mine, new_miner
from bcai.mining._gpu import GpuMiner, available
from bcai.pouw import PouwParams
from bcai.pouw._noise import Noise, attempt_seed, noisy

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not available(), reason="no CuPy with a CUDA device here"),
]


def gpu_miner(tensor_cores: bool) -> GpuMiner:
    miner = GpuMiner()
    if tensor_cores and not miner.tensor_cores:
        pytest.skip("no PyTorch with Triton here")
    miner.tensor_cores = tensor_cores
    return miner


@pytest.mark.parametrize("tensor_cores", [False, True])
@pytest.mark.parametrize(
    ("tile", "n", "k", "m"),
    [
        (16, 32, 48, 64),
        (32, 64, 128, 96),
        (64, 128, 256, 192),
        (64, 512, 512, 512),
        (128, 256, 512, 384),
        (128, 512, 1024, 512),
    ],
)
def test_gpu_transcript_equals_cpu(tile: int, n: int, k: int, m: int, tensor_cores: bool) -> None:
    if (tensor_cores and tile < 64) or (not tensor_cores and tile > 64):
        pytest.skip("the tensor-core kernel takes tiles 64 and 128, the __dp4a one up to 64")
    params = PouwParams(tile=tile, n=n, k=k, m=m)
    work = pouw.derived_work(bytes([tile]) * 32, params)
    seed = attempt_seed(b"gpu", n + k + m)
    a2, b2 = noisy(work.a, work.b, Noise.derive(seed, n, k, m, tile))
    key = pouw.digest_key(seed)
    assert key >> 32  # λ is in play
    assert gpu_miner(tensor_cores).leaves(a2, b2, tile, key) == CpuMiner().leaves(a2, b2, tile, key)


@pytest.mark.parametrize(("tile", "tensor_cores"), [(64, False), (64, True), (128, True)])
def test_gpu_worst_case_entries(tile: int, tensor_cores: bool) -> None:
    """|entries| = 127 everywhere, k large: the int32 sums on the card are
    exact (the same leaves as the CPU's, whose sums are checked exactly) —
    on the tensor cores too, whose accumulators start at the key's offsets
    and wrap."""
    k = 8192
    a2 = np.full((tile, k), -127, np.int8)
    b2 = np.full((k, tile), 127, np.int8)
    b2[::3] = -127
    key = 9 | 0xA5A5A5A5 << 32
    assert gpu_miner(tensor_cores).leaves(a2, b2, tile, key) == CpuMiner().leaves(a2, b2, tile, key)


@pytest.mark.parametrize("tile", [32, 128])
def test_gpu_mined_seal_verifies(tile: int) -> None:
    params = PouwParams(tile=tile, checks=8, n=256, k=256, m=256)
    work = pouw.derived_work(b"\x11" * 32, params)
    seal = mine(b"gpu-seal", (2**256 - 1) >> 3, work, params, miner=new_miner("gpu"))
    assert seal is not None
    pouw.verify(b"gpu-seal", (2**256 - 1) >> 3, seal, work, params)
    pouw.full_verify(b"gpu-seal", seal, work, params)


@pytest.mark.parametrize("tile", [64, 128])
def test_gpu_attempt_with_device_noise_equals_cpu(tile: int) -> None:
    params = PouwParams(tile=tile, n=256, k=512, m=384)
    work = pouw.derived_work(b"\x22" * 32, params)
    seed = attempt_seed(b"noise-on-device", 3)
    gpu = new_miner("gpu")
    assert gpu.attempt_leaves(work, seed, params) == CpuMiner().attempt_leaves(work, seed, params)
