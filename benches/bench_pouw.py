"""PoUW benchmarks (issue 7): one mining attempt (noise, transcript, Merkle
root, ticket) against the best bare product of the same shape on the same
backend in the same run, verification of a seal against an attempt, and
attempts per second.

CPU (here): the Rust miner vs the same AVX2 kernel without the digest
(the best bare int8 product we have on the CPU) and vs
`bcai.kernels.matmul_i8` (exact int8 product through BLAS). GPU (the GPU
machine, b = 128): the miner (on Hopper the hand-written kernel of
native/cuda/transcript_sm90.cu) vs that kernel without the digest (the
fastest bare int8 product we have there), the Triton kernel without the
digest, PyTorch's `torch._int_mm` (cuBLASLt) and cuBLAS bf16 (exact for
these entries in chunks of k <= 1024). Ops = 2 per useful int8 multiply-add
(2·n·k·m per attempt).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pytest

import bcai_native
from bcai import kernels, pouw
from bcai.mining import CpuMiner, new_miner
from bcai.mining._gpu import available as gpu_available
from bcai.mining._miner import run_attempt
from bcai.pouw import PouwParams

N_CPU = int(os.environ.get("BCAI_BENCH_POUW_N", "512"))
N_GPU = int(os.environ.get("BCAI_BENCH_POUW_GPU_N", "4096"))
# attempts (or products) a round of the sustained GPU benchmarks: ≈ 0.6 s of work at any n
SUSTAINED = max(20, round(5000 * (4096 / N_GPU) ** 3))
CPU_PARAMS = PouwParams(tile=64, n=N_CPU, k=N_CPU, m=N_CPU)
GPU_PARAMS = PouwParams(tile=128, n=N_GPU, k=N_GPU, m=N_GPU)
MAX_TARGET = 2**256 - 1


def ops_info(benchmark: Any, n: int) -> None:
    median = benchmark.stats.stats.median
    benchmark.extra_info["median_s"] = median
    benchmark.extra_info["tera_ops_per_s"] = round(2 * n**3 / median / 1e12, 3)


def time_cpu_attempts(benchmark: Any) -> None:
    """CPU attempts at nonces in order, the first checked against the
    NumPy reference."""
    work = pouw.derived_work(b"\x01" * 32, CPU_PARAMS)
    reference = pouw.attempt(b"bench", 0, work, CPU_PARAMS)
    assert run_attempt(b"bench", 0, work, CPU_PARAMS, CpuMiner()).root == reference.root
    nonce = iter(range(1, 10**9))
    benchmark(lambda: run_attempt(b"bench", next(nonce), work, CPU_PARAMS, CpuMiner()))
    ops_info(benchmark, N_CPU)
    benchmark.extra_info["attempts_per_s"] = round(1 / benchmark.stats.stats.median, 1)


@pytest.mark.benchmark(group="pouw-attempt-cpu")
def test_pouw_attempt_cpu(benchmark: Any, role: Any) -> None:
    role("bcai", target=1 / 1.10)
    time_cpu_attempts(benchmark)


@pytest.mark.benchmark(group="pouw-attempt-cpu")
def test_pouw_attempt_both_sides_cpu(benchmark: Any, role: Any, monkeypatch: Any) -> None:
    """The same attempts with both noisy operands formed every time (empty
    tokens: nothing kept), as before session 13 — what keeping the operand
    whose side seed repeats saves."""
    role("reference")
    from bcai.pouw import _seal  # noqa: PLC0415

    monkeypatch.setattr(_seal, "side_tokens", lambda work, seed, tile: (b"", b""))
    time_cpu_attempts(benchmark)


@pytest.mark.benchmark(group="pouw-attempt-cpu")
def test_bare_int8_product_cpu(benchmark: Any, role: Any) -> None:
    """BLAS (float32 in exact chunks) through `kernels.matmul_i8`."""
    role("baseline")
    work = pouw.derived_work(b"\x01" * 32, CPU_PARAMS)
    c = kernels.matmul_i8(work.a, work.b)
    exact = work.a.astype(np.float64) @ work.b.astype(np.float64)  # every sum < 2⁵³: exact
    assert np.array_equal(c, exact.astype(np.int64))
    out = np.empty_like(c)
    benchmark(kernels.matmul_i8, work.a, work.b, out)
    ops_info(benchmark, N_CPU)


@pytest.mark.benchmark(group="pouw-attempt-cpu")
def test_bare_avx2_product_cpu(benchmark: Any, role: Any) -> None:
    """The transcript's own AVX2 kernel without the digest (Bᵀ given, the
    output preallocated): the best bare int8 product on this CPU."""
    role("baseline")
    work = pouw.derived_work(b"\x01" * 32, CPU_PARAMS)
    bt = np.ascontiguousarray(work.b.T)
    out = np.empty((N_CPU, N_CPU), np.int32)
    c = bcai_native.pouw_product(work.a, bt, tile=CPU_PARAMS.tile, out=out)
    assert np.array_equal(c, kernels.matmul_i8(work.a, work.b))
    benchmark(bcai_native.pouw_product, work.a, bt, tile=CPU_PARAMS.tile, out=out)
    ops_info(benchmark, N_CPU)


@pytest.mark.benchmark(group="pouw-verify-cpu")
def test_pouw_verify_cpu(benchmark: Any, role: Any) -> None:
    """Verifying a seal (spot checks + Merkle paths), against one attempt."""
    role("bcai")
    work = pouw.derived_work(b"\x02" * 32, CPU_PARAMS)
    found = run_attempt(b"verify", 0, work, CPU_PARAMS, CpuMiner())
    seal = pouw.make_seal(b"verify", found, work, CPU_PARAMS)
    pouw.verify(b"verify", MAX_TARGET, seal, work, CPU_PARAMS)
    began = time.perf_counter()
    run_attempt(b"verify", 1, work, CPU_PARAMS, CpuMiner())
    attempt_s = time.perf_counter() - began
    benchmark(pouw.verify, b"verify", MAX_TARGET, seal, work, CPU_PARAMS)
    benchmark.extra_info["attempt_s"] = attempt_s
    benchmark.extra_info["verify_over_attempt"] = benchmark.stats.stats.median / attempt_s


needs_gpu = pytest.mark.skipif(not gpu_available(), reason="no CuPy with a CUDA device here")


@needs_gpu
@pytest.mark.benchmark(group="pouw-attempt-gpu")
def test_pouw_attempt_gpu(benchmark: Any, role: Any) -> None:
    """One attempt alone, launched and waited for (the host's latency in it)."""
    role("bcai-single-attempt")
    import cupy  # noqa: PLC0415

    work = pouw.derived_work(b"\x03" * 32, GPU_PARAMS)
    miner = new_miner("gpu")
    # checked first at this shape and on this path: the CPU miner's root (Rust, all cores)
    assert run_attempt(b"b", 0, work, GPU_PARAMS, miner).root == (
        run_attempt(b"b", 0, work, GPU_PARAMS, CpuMiner()).root
    )
    nonce = iter(range(1, 10**9))

    def attempt() -> None:
        run_attempt(b"bench", next(nonce), work, GPU_PARAMS, miner)
        cupy.cuda.Device().synchronize()

    benchmark(attempt)
    ops_info(benchmark, N_GPU)


@needs_gpu
@pytest.mark.benchmark(group="pouw-attempt-gpu")
def test_pouw_mining_rate_gpu(benchmark: Any, role: Any) -> None:
    """Mining as the miner runs it: SUSTAINED attempts in a row (5000 at
    n = 4096, where a 10 s block interval is ≈ 70,000), the next ones
    launched while the GPU runs the current one; the figure is per attempt,
    `mine`'s own start and end included (its first attempts launched and
    its last ones finished before the GPU is busy or after it is idle).
    The mining overhead: its target (1.10x) holds against every bare product."""
    role("bcai", target=1 / 1.10)
    from bcai.mining import MiningStats, mine  # noqa: PLC0415

    work = pouw.derived_work(b"\x05" * 32, GPU_PARAMS)
    miner = new_miner("gpu")
    # checked first at this shape, through the loop timed below (the pipeline's recorded
    # steps from the fifth attempt): it finds the seal the CPU miner finds among ten
    cpu = [run_attempt(b"rate", nonce, work, GPU_PARAMS, CpuMiner()) for nonce in range(10)]
    best = min(cpu, key=lambda found: found.ticket)
    stats = MiningStats()
    target = int.from_bytes(best.ticket, "big")
    seal = mine(b"rate", target, work, GPU_PARAMS, miner=miner, attempts=10, stats=stats)
    assert seal is not None and (seal.nonce, seal.root) == (best.nonce, best.root)
    assert stats.attempts == best.nonce + 1

    def many() -> None:
        mine(b"rate", 0, work, GPU_PARAMS, miner=miner, attempts=SUSTAINED)

    benchmark.pedantic(many, rounds=7, warmup_rounds=1)
    per_attempt = benchmark.stats.stats.median / SUSTAINED
    benchmark.extra_info["median_s"] = per_attempt
    benchmark.extra_info["attempts_per_s"] = round(1 / per_attempt, 1)
    benchmark.extra_info["tera_ops_per_s"] = round(2 * N_GPU**3 / per_attempt / 1e12, 3)


@needs_gpu
@pytest.mark.benchmark(group="pouw-attempt-gpu")
def test_pouw_transcript_kernel_gpu(benchmark: Any, role: Any) -> None:
    """The transcript kernel alone (operands already noisy on the device):
    every leaf of every slice, b = 128."""
    role("bcai-kernel-only")
    import cupy  # noqa: PLC0415

    miner = new_miner("gpu")
    small = PouwParams(tile=128, n=256, k=512, m=256)
    sw = pouw.derived_work(b"\x06" * 32, small)
    key = pouw.digest_key(pouw.attempt_seed(b"k", 0))
    assert miner.leaves(sw.a, sw.b, 128, key) == CpuMiner().leaves(sw.a, sw.b, 128, key)
    rng = np.random.default_rng(0)
    a2 = cupy.asarray(rng.integers(-127, 128, (N_GPU, N_GPU)).astype(np.int8))
    bt = cupy.asarray(rng.integers(-127, 128, (N_GPU, N_GPU)).astype(np.int8))

    def run() -> None:
        miner.leaves_device(a2, bt, 128, key)  # type: ignore[attr-defined]
        cupy.cuda.Device().synchronize()

    benchmark(run)
    ops_info(benchmark, N_GPU)


@needs_gpu
@pytest.mark.benchmark(group="pouw-attempt-gpu")
def test_bare_tensor_core_product_gpu(benchmark: Any, role: Any) -> None:
    """The transcript kernel's loop without the digest, C written as int32:
    the best bare int8 product of this shape we have on the card."""
    role("baseline")
    torch = torch_cuda()
    from bcai.mining import _triton  # noqa: PLC0415

    if not _triton.available():
        pytest.skip("no Triton here")
    a = torch.randint(-127, 128, (N_GPU, N_GPU), dtype=torch.int8, device="cuda")
    bt = torch.randint(-127, 128, (N_GPU, N_GPU), dtype=torch.int8, device="cuda")
    c = _triton.product(a, bt)
    assert torch.equal(c[:3, :3].cpu(), (a[:3].cpu().long() @ bt[:3].cpu().long().T).int())

    def run() -> None:
        _triton.product(a, bt, out=c)
        torch.cuda.synchronize()

    benchmark(run)
    ops_info(benchmark, N_GPU)


def sm90_operands() -> Any:
    """Random int8 A' and B'ᵀ (N_GPU square) for the hand-written Hopper
    kernel, its product checked against NumPy on three rows."""
    import cupy  # noqa: PLC0415

    from bcai.mining import _sm90  # noqa: PLC0415

    if not _sm90.available():
        pytest.skip("no Hopper (sm_90) GPU here")
    rng = np.random.default_rng(1)
    a = rng.integers(-127, 128, (N_GPU, N_GPU)).astype(np.int8)
    bt = rng.integers(-127, 128, (N_GPU, N_GPU)).astype(np.int8)
    operands = _sm90.Operands(cupy.asarray(a), cupy.asarray(bt))
    c = cupy.empty((N_GPU, N_GPU), cupy.int32)
    operands.product(c)
    want = a[:3].astype(np.int64) @ bt.T.astype(np.int64)
    assert np.array_equal(c[:3].get(), want.astype(np.int32))
    return operands, c


@needs_gpu
@pytest.mark.benchmark(group="pouw-attempt-gpu")
def test_bare_sm90_product_gpu(benchmark: Any, role: Any) -> None:
    """The hand-written Hopper kernel without the digest, C written as int32,
    as a loop of products runs it: SUSTAINED back to back a round, like the
    mining rate's attempts (so both run at the clock the card sustains
    under load, and neither waits for the host between calls); the figure
    is per product."""
    role("baseline")
    import cupy  # noqa: PLC0415

    operands, c = sm90_operands()

    def many() -> None:
        for _ in range(SUSTAINED):
            operands.product(c)
        cupy.cuda.Device().synchronize()

    benchmark.pedantic(many, rounds=7, warmup_rounds=1)
    per_product = benchmark.stats.stats.median / SUSTAINED
    benchmark.extra_info["median_s"] = per_product
    benchmark.extra_info["tera_ops_per_s"] = round(2 * N_GPU**3 / per_product / 1e12, 3)


@needs_gpu
@pytest.mark.benchmark(group="pouw-attempt-gpu")
def test_bare_sm90_product_one_call_gpu(benchmark: Any, role: Any) -> None:
    """The same product one call at a time, each waited for: with the
    host's wait between calls the card runs cooler and clocks higher than
    under a sustained load (the reference the mining rate was compared with
    before session 9; docs/benchmarks.md gives the ratio to both)."""
    role("reference")
    import cupy  # noqa: PLC0415

    operands, c = sm90_operands()

    def run() -> None:
        operands.product(c)
        cupy.cuda.Device().synchronize()

    benchmark(run)
    ops_info(benchmark, N_GPU)


def torch_cuda() -> Any:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here")
    return torch


@needs_gpu
@pytest.mark.benchmark(group="pouw-attempt-gpu")
def test_bare_int_mm_gpu(benchmark: Any, role: Any) -> None:
    """cuBLASLt's int8 product. Run without CUBLAS_WORKSPACE_CONFIG: a
    limited workspace (as the deterministic VM tests set) rules out its
    fastest algorithms (0.214 ms instead of 0.178 on an H100); the value in
    force is recorded with the figure."""
    role("baseline")
    torch = torch_cuda()
    benchmark.extra_info["cublas_workspace_config"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    a = torch.randint(-127, 128, (N_GPU, N_GPU), dtype=torch.int8, device="cuda")
    # B column-major (Bᵀ contiguous): the layout cuBLASLt's int8 kernels are fast in
    b = torch.randint(-127, 128, (N_GPU, N_GPU), dtype=torch.int8, device="cuda").t()
    c = torch._int_mm(a, b)
    assert torch.equal(c[:2, :2].cpu(), (a[:2].cpu().long() @ b[:, :2].cpu().long()).int())

    def run() -> None:
        torch._int_mm(a, b)
        torch.cuda.synchronize()

    benchmark(run)
    ops_info(benchmark, N_GPU)


@needs_gpu
@pytest.mark.benchmark(group="pouw-attempt-gpu")
def test_bare_bf16_product_gpu(benchmark: Any, role: Any) -> None:
    """cuBLAS bf16 with fp32 accumulation, k in chunks of 1024 (exact for
    |entries| <= 127), chunk results summed in int32: the fastest exact
    product of these matrices here."""
    role("baseline")
    torch = torch_cuda()
    a = torch.randint(-127, 128, (N_GPU, N_GPU), device="cuda").to(torch.bfloat16)
    b = torch.randint(-127, 128, (N_GPU, N_GPU), device="cuda").to(torch.bfloat16)

    def product() -> Any:
        out = torch.zeros((N_GPU, N_GPU), dtype=torch.int32, device="cuda")
        for k0 in range(0, N_GPU, 1024):
            chunk = torch.mm(a[:, k0 : k0 + 1024], b[k0 : k0 + 1024], out_dtype=torch.float32)
            out += chunk.to(torch.int32)
        return out

    exact = (a[:3].cpu().double() @ b[:, :3].cpu().double()).round().int().cuda()
    assert torch.equal(product()[:3, :3], exact)

    def run() -> None:
        product()
        torch.cuda.synchronize()

    benchmark(run)
    ops_info(benchmark, N_GPU)


@needs_gpu
@pytest.mark.benchmark(group="pouw-verify-gpu-n")
def test_pouw_verify_at_gpu_size(benchmark: Any, role: Any) -> None:
    """A seal of the GPU network's size, mined on the GPU, verified (host
    spot checks + Merkle paths): the ratio to one GPU attempt."""
    role("bcai")
    import cupy  # noqa: PLC0415

    work = pouw.derived_work(b"\x04" * 32, GPU_PARAMS)
    miner = new_miner("gpu")
    found = run_attempt(b"verify", 0, work, GPU_PARAMS, miner)
    seal = pouw.make_seal(b"verify", found, work, GPU_PARAMS)
    pouw.verify(b"verify", MAX_TARGET, seal, work, GPU_PARAMS)
    times = []
    for nonce in range(1, 6):
        began = time.perf_counter()
        run_attempt(b"verify", nonce, work, GPU_PARAMS, miner)
        cupy.cuda.Device().synchronize()
        times.append(time.perf_counter() - began)
    benchmark(pouw.verify, b"verify", MAX_TARGET, seal, work, GPU_PARAMS)
    attempt_s = sorted(times)[len(times) // 2]
    benchmark.extra_info["attempt_s"] = attempt_s
    benchmark.extra_info["verify_over_attempt"] = benchmark.stats.stats.median / attempt_s
