"""The GPU miner (the hand-written Hopper kernel for b = 128, the
tensor-core Triton kernel for tiles 64 and 128, the __dp4a kernel of
native/cuda/pouw.cu for the others) gives the CPU miner's transcript byte
for byte, worst-case entries included, and its seals verify. Runs on the
GPU machine; skipped elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

from bcai import pouw
from bcai.mining import CpuMiner, _sm90, mine, new_miner
from bcai.mining._gpu import GpuMiner, available
from bcai.mining._gpu_pipeline import DEPTH as PIPELINE_DEPTH
from bcai.pouw import PouwParams
from bcai.pouw._noise import Noise, attempt_seed, noisy

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not available(), reason="no CuPy with a CUDA device here"),
]


KERNELS = ["dp4a", "triton", "sm90"]


def gpu_miner(kernel: str) -> GpuMiner:
    """The GPU miner held to one transcript kernel."""
    miner = GpuMiner(sm90=False)
    if kernel != "dp4a" and not miner.tensor_cores:
        pytest.skip("no PyTorch with Triton here")
    if kernel == "sm90" and not _sm90.available():
        pytest.skip("no Hopper (sm_90) GPU here")
    miner.tensor_cores = kernel != "dp4a"
    miner.sm90 = kernel == "sm90"
    return miner


def takes(kernel: str, tile: int) -> bool:
    return {"dp4a": tile <= 64, "triton": tile in (64, 128), "sm90": tile == 128}[kernel]


@pytest.mark.parametrize("kernel", KERNELS)
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
def test_gpu_transcript_equals_cpu(tile: int, n: int, k: int, m: int, kernel: str) -> None:
    if not takes(kernel, tile):
        pytest.skip(f"the {kernel} kernel does not take b = {tile}")
    params = PouwParams(tile=tile, n=n, k=k, m=m)
    work = pouw.derived_work(bytes([tile]) * 32, params)
    seed = attempt_seed(b"gpu", n + k + m)
    a2, b2 = noisy(work.a, work.b, Noise.derive(seed, n, k, m, tile))
    key = pouw.digest_key(seed)
    assert key >> 32  # λ is in play
    assert gpu_miner(kernel).leaves(a2, b2, tile, key) == CpuMiner().leaves(a2, b2, tile, key)


@pytest.mark.parametrize(
    ("tile", "kernel"), [(64, "dp4a"), (64, "triton"), (128, "triton"), (128, "sm90")]
)
def test_gpu_worst_case_entries(tile: int, kernel: str) -> None:
    """|entries| = 127 everywhere, k large: the int32 sums on the card are
    exact (the same leaves as the CPU's, whose sums are checked exactly) —
    on the tensor cores too, whose accumulators start at the key's offsets
    and wrap."""
    k = 8192
    a2 = np.full((tile, k), -127, np.int8)
    b2 = np.full((k, tile), 127, np.int8)
    b2[::3] = -127
    key = 9 | 0xA5A5A5A5 << 32
    assert gpu_miner(kernel).leaves(a2, b2, tile, key) == CpuMiner().leaves(a2, b2, tile, key)


@pytest.mark.parametrize(
    ("tile", "backend"), [(32, "gpu"), (128, "gpu"), (128, "gpu-sm90"), (128, "gpu-triton")]
)
def test_gpu_mined_seal_verifies(tile: int, backend: str) -> None:
    if backend == "gpu-sm90" and not _sm90.available():
        pytest.skip("no Hopper (sm_90) GPU here")
    params = PouwParams(tile=tile, checks=8, n=256, k=256, m=256)
    work = pouw.derived_work(b"\x11" * 32, params)
    miner = new_miner(backend)
    assert miner.name == backend
    seal = mine(b"gpu-seal", (2**256 - 1) >> 3, work, params, miner=miner)
    assert seal is not None
    pouw.verify(b"gpu-seal", (2**256 - 1) >> 3, seal, work, params)
    pouw.full_verify(b"gpu-seal", seal, work, params)


@pytest.mark.parametrize(("tile", "kernel"), [(64, "triton"), (128, "triton"), (128, "sm90")])
def test_gpu_attempt_with_device_noise_equals_cpu(tile: int, kernel: str) -> None:
    """The whole attempt recorded as a CUDA graph (noise, noisy operands,
    transcript by either tensor-core kernel, root) gives the CPU's leaves."""
    params = PouwParams(tile=tile, n=256, k=512, m=384)
    work = pouw.derived_work(b"\x22" * 32, params)
    seed = attempt_seed(b"noise-on-device", 3)
    gpu = gpu_miner(kernel)
    assert gpu.attempt_leaves(work, seed, params) == CpuMiner().attempt_leaves(work, seed, params)


@pytest.mark.parametrize(
    ("rank", "n", "k", "m"),
    [(32, 96, 64, 160), (64, 128, 192, 64), (128, 256, 384, 128), (16, 3, 5, 7)],
)
def test_device_noise_equals_host(rank: int, n: int, k: int, m: int) -> None:
    """The factors from BLAKE3's XOF on the GPU (dense 2-bit, and the sparse
    ±1 rule at r = 128) are the host's."""
    import cupy  # noqa: PLC0415

    from bcai.mining import _device_hash  # noqa: PLC0415

    seed = attempt_seed(b"device-noise", rank)
    host = Noise.derive(seed, n, k, m, rank)
    factors = _device_hash.noise_factors(seed, n, k, m, rank)
    e_l, e_r, f_r, f_l = (cupy.asnumpy(f) for f in factors)
    assert np.array_equal(e_l, host.e_l)
    assert np.array_equal(e_r, host.e_r)
    assert np.array_equal(f_r, host.f_r)
    assert np.array_equal(f_l, host.f_l)


@pytest.mark.parametrize("leaf_bytes", [1, 4, 5, 8, 32, 33, 64])
@pytest.mark.parametrize(
    "count", [1, 2, 3, 5, 511, 512, 513, 1025, 2047, 2048, 2049, 32768, 70001, 262145]
)
def test_device_merkle_root_equals_host(count: int, leaf_bytes: int) -> None:
    import cupy  # noqa: PLC0415

    from bcai.crypto import merkle_root_packed  # noqa: PLC0415
    from bcai.mining import _device_hash  # noqa: PLC0415

    data = np.random.default_rng(count * leaf_bytes).integers(0, 256, count * leaf_bytes, np.uint8)
    root = _device_hash.merkle_root(cupy.asarray(data), leaf_bytes)
    assert cupy.asnumpy(root).astype("<u4").tobytes() == merkle_root_packed(
        data.tobytes(), leaf_bytes
    )


@pytest.mark.parametrize("fuse", [True, False])
def test_device_merkle_root_reuses_its_scratch(fuse: bool) -> None:
    """The fused last pass leaves its counter at zero: the same buffers give
    the right root again (as a recorded graph replays them), three passes
    at 4,200,001 leaves (more than SPAN² = 2048²)."""
    import cupy  # noqa: PLC0415

    from bcai.crypto import merkle_root_packed  # noqa: PLC0415
    from bcai.mining import _device_hash  # noqa: PLC0415

    scratch = _device_hash.merkle_scratch(4_200_001)
    assert len(scratch) == 1 + 3
    for seed in range(3):
        data = np.random.default_rng(seed).integers(0, 2**32, 4_200_001, np.uint32)
        root = _device_hash.merkle_root(cupy.asarray(data), 4, scratch, fuse)
        assert cupy.asnumpy(root).tobytes() == merkle_root_packed(data.tobytes(), 4)
    assert int(scratch[0][0]) == 0


@pytest.mark.parametrize("grid", [1, 3, 16])
def test_device_hashes_on_a_small_grid_are_the_hosts(grid: int) -> None:
    """Capped at `grid` blocks (a few SMs beside the transcript), each block
    takes several XOF blocks and Merkle spans: the same factors and roots
    (two passes at 300,001 leaves, the second fused into the first's last
    block; one at 32,768)."""
    import cupy  # noqa: PLC0415

    from bcai.crypto import merkle_root_packed  # noqa: PLC0415
    from bcai.mining import _device_hash  # noqa: PLC0415

    seed = attempt_seed(b"small-grid", grid)
    n, k, m = 1024, 640, 384
    keys, shapes, blocks = _device_hash.noise_spec(seed, n, k, m, 128)
    out = _device_hash.factor_buffers(n, k, m, 128)
    words = cupy.asarray(np.frombuffer(keys, "<u4"))
    _device_hash.launch_noise(words, cupy.asarray(np.array(shapes, np.int32)), out, blocks, grid)
    host = Noise.derive(seed, n, k, m, 128)
    e_l, e_r, f_r, f_l = (cupy.asnumpy(f) for f in _device_hash.host_layout(out))
    assert np.array_equal(e_l, host.e_l) and np.array_equal(e_r, host.e_r)
    assert np.array_equal(f_r, host.f_r) and np.array_equal(f_l, host.f_l)
    scratch = _device_hash.merkle_scratch(300_001)
    for count in (300_001, 32768):
        data = np.random.default_rng(count + grid).integers(0, 2**32, count, np.uint32)
        buffers = scratch if count == 300_001 else None
        root = _device_hash.merkle_root(cupy.asarray(data), 4, buffers, grid=grid)
        assert cupy.asnumpy(root).tobytes() == merkle_root_packed(data.tobytes(), 4)
    assert int(scratch[0][0]) == 0


@pytest.mark.parametrize("side", ["left", "right"])
def test_device_noise_of_one_side(side: str) -> None:
    """`launch_noise(factors=LEFT|RIGHT)` fills that side's two factors —
    the host's for its seed — and leaves the other side's buffers as they
    were (the pipeline XOFs only the side a neighbouring nonce changed)."""
    if not available():
        pytest.skip("no CuPy with a CUDA device here")
    import cupy  # noqa: PLC0415

    from bcai.mining import _device_hash  # noqa: PLC0415

    n, k, m = 512, 384, 256
    seed = attempt_seed(b"one-side", 5)
    keys, shapes, blocks = _device_hash.noise_spec(seed, n, k, m, 128)
    out = _device_hash.factor_buffers(n, k, m, 128)
    for buffer in out:
        buffer.fill(7)  # no factor entry is 7
    factors = _device_hash.LEFT if side == "left" else _device_hash.RIGHT
    words = cupy.asarray(np.frombuffer(keys, "<u4"))
    spec = cupy.asarray(np.array(shapes, np.int32))
    _device_hash.launch_noise(words, spec, out, blocks, 2, factors)
    host = Noise.derive(seed, n, k, m, 128)
    e_l, e_r, f_r, f_l = (cupy.asnumpy(f) for f in _device_hash.host_layout(out))
    filled, untouched = ((e_l, e_r), (f_r, f_l)) if side == "left" else ((f_r, f_l), (e_l, e_r))
    want = (host.e_l, host.e_r) if side == "left" else (host.f_r, host.f_l)
    for got, expected in zip(filled, want, strict=True):
        assert np.array_equal(got, expected)
    for buffer in untouched:
        assert (buffer == 7).all()


def test_device_merkle_root_refuses_partial_leaves() -> None:
    import cupy  # noqa: PLC0415

    from bcai.mining import _device_hash  # noqa: PLC0415

    with pytest.raises(ValueError, match="whole 4-byte leaves"):
        _device_hash.merkle_root(cupy.zeros(10, cupy.uint8), 4)
    with pytest.raises(ValueError, match="whole 65-byte leaves"):
        _device_hash.merkle_root(cupy.zeros(130, cupy.uint8), 65)


def test_gpu_mining_loop_roots_are_the_hosts() -> None:
    """`mine` takes the device's Merkle roots on the tensor-core path: every
    attempt's root equals the host's over the same leaves (seen through
    the seal of a winning attempt and one finished by hand)."""
    miner = GpuMiner()
    if not miner.tensor_cores:
        pytest.skip("no PyTorch with Triton here")
    from bcai.crypto import merkle_root_packed  # noqa: PLC0415

    params = PouwParams(tile=128, n=256, k=512, m=384)
    work = pouw.derived_work(b"\x33" * 32, params)
    leaves, root = miner.finish(miner.launch(work, attempt_seed(b"roots", 1), params))
    assert root is not None and root == merkle_root_packed(leaves, 4)
    assert leaves == CpuMiner().attempt_leaves(work, attempt_seed(b"roots", 1), params)


def test_recorded_attempt_replays_with_each_nonces_keys() -> None:
    """The CUDA graph recorded on the first attempt, replayed for later
    nonces on both streams, gives each nonce's own transcript and root
    (Triton's kernels: on Hopper at b = 128 the pipeline below runs)."""
    miner = GpuMiner(sm90=False)
    if not miner.tensor_cores:
        pytest.skip("no PyTorch with Triton here")
    from bcai.crypto import merkle_root_packed  # noqa: PLC0415

    params = PouwParams(tile=128, n=256, k=384, m=256)
    work = pouw.derived_work(b"\x44" * 32, params)
    launched = [miner.launch(work, attempt_seed(b"replay", nonce), params) for nonce in range(2)]
    for nonce in range(2, 6):
        leaves, root = miner.finish(launched.pop(0))
        seed = attempt_seed(b"replay", nonce - 2)
        assert leaves == CpuMiner().attempt_leaves(work, seed, params)
        assert root == merkle_root_packed(leaves, 4)
        launched.append(miner.launch(work, attempt_seed(b"replay", nonce), params))
    assert all(held is not None and held.graph is not None for held in miner._attempts)


def test_pipeline_steps_give_each_attempts_leaves_and_root(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Hopper pipeline (`_gpu_pipeline`): attempts launched three ahead
    run as recorded steps (all four host slots) (the transcript of i − 1 beside
    the root of i − 2 and the XOF of i), the first and last ones eagerly;
    every attempt's leaves are the CPU miner's and its root the host's.
    An attempt alone (launched and finished at once) too, twice in a row;
    attempts left unfinished are dropped, finishing out of order or too
    late is refused."""
    if not _sm90.available():
        pytest.skip("no Hopper (sm_90) GPU here")
    from bcai.crypto import merkle_root_packed  # noqa: PLC0415
    from bcai.mining import _gpu  # noqa: PLC0415

    monkeypatch.setattr(_gpu, "PIPELINE_WORK", (0, 2**62))  # at this small size too
    params = PouwParams(tile=128, n=256, k=384, m=256)
    work = pouw.derived_work(b"\x66" * 32, params)
    miner, cpu = GpuMiner(sm90=True), CpuMiner()
    seeds = [attempt_seed(b"pipeline", nonce) for nonce in range(9)]
    launched = [miner.launch(work, seed, params) for seed in seeds[:3]]
    for i, seed in enumerate(seeds):
        leaves, root = miner.finish(launched.pop(0))
        assert leaves == cpu.attempt_leaves(work, seed, params)
        assert root == merkle_root_packed(leaves, 4)
        if i + 3 < len(seeds):
            launched.append(miner.launch(work, seeds[i + 3], params))
    pipeline = miner._pipeline
    assert pipeline is not None and all(graph is not None for graph in pipeline.graphs.values())
    # with nonces in order, each recorded step forms one noisy operand and one side's factors,
    # not the same side (neighbouring nonces share one side); all four host slots recorded
    assert {slot for slot, _, _ in pipeline.graphs} == set(range(4))
    for _, formed, xof in pipeline.graphs:
        assert sum(formed) == 1 and sum(xof) == 1 and formed != xof
    for seed in seeds[:2]:
        assert miner.attempt_leaves(work, seed, params) == cpu.attempt_leaves(work, seed, params)
    # skipped attempts are dropped (a loop that found its seal leaves its last ones); an
    # attempt finished after a later one, or after later roots took its buffer, is refused
    handles = [miner.launch(work, seed, params) for seed in seeds[:4]]
    assert miner.finish(handles[2])[0] == cpu.attempt_leaves(work, seeds[2], params)
    with pytest.raises(RuntimeError, match="out of order"):
        miner.finish(handles[1])
    late = handles[3]
    for seed in seeds[3:]:  # six more: the sixth step's root takes the late one's buffer
        miner.launch(work, seed, params)
    with pytest.raises(RuntimeError, match="overwritten"):
        miner.finish(late)


def test_pipeline_with_nonces_out_of_order_and_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline forms only the noisy operands (and XOF factors) whose
    side seed differs from what its buffers hold: nonces repeated (nothing
    formed), neighbours (one side), jumps (both), going back, attempts alone
    between them, on recorded steps and eagerly — every attempt's leaves are
    the CPU miner's and its root theirs."""
    if not _sm90.available():
        pytest.skip("no Hopper (sm_90) GPU here")
    from bcai.crypto import merkle_root_packed  # noqa: PLC0415
    from bcai.mining import _gpu, _gpu_pipeline  # noqa: PLC0415

    monkeypatch.setattr(_gpu, "PIPELINE_WORK", (0, 2**62))
    steps: list[tuple[tuple[bool, bool], tuple[bool, bool] | None]] = []
    real = _gpu_pipeline.DevicePipeline._step

    def logged(self, i, noisy, xof, transcript, root):  # type: ignore[no-untyped-def]
        steps.append((noisy, xof))
        real(self, i, noisy, xof, transcript, root)

    monkeypatch.setattr(_gpu_pipeline.DevicePipeline, "_step", logged)
    params = PouwParams(tile=128, n=256, k=256, m=384)
    work = pouw.derived_work(b"\x67" * 32, params)
    miner, cpu = GpuMiner(sm90=True), CpuMiner()
    nonces = [0, 1, 1, 5, 4, 4, 2, 3, 10, 11, 12, 13, 7, 6, 6, 9, 8, 20, 21, 22, 23, 24]
    seeds = [attempt_seed(b"order", nonce) for nonce in nonces]
    launched = [miner.launch(work, seed, params) for seed in seeds[:3]]
    for i, seed in enumerate(seeds):
        leaves, root = miner.finish(launched.pop(0))
        assert leaves == cpu.attempt_leaves(work, seed, params), nonces[i]
        assert root == merkle_root_packed(leaves, 4)
        if i + 3 < len(seeds):
            launched.append(miner.launch(work, seeds[i + 3], params))
        if i % 7 == 6:  # an attempt alone between them: run at once
            alone = attempt_seed(b"order", 100 + i)
            assert miner.attempt_leaves(work, alone, params) == cpu.attempt_leaves(
                work, alone, params
            )
            launched = [miner.launch(work, s, params) for s in seeds[i + 1 : i + 4]]
    neither, both = (False, False), (True, True)
    formed = {noisy for noisy, _ in steps}
    xofs = {xof for _, xof in steps if xof is not None}
    assert {neither, both, (True, False), (False, True)} <= formed  # repeats, jumps, neighbours
    assert {neither, both, (True, False), (False, True)} <= xofs
    pipeline = miner._pipeline
    assert pipeline is not None and len({(f, x) for _, f, x in pipeline.graphs}) > 2


def test_a_pipeline_that_fails_part_way_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A step that fails after some of its kernels ran leaves the operand
    and factor buffers unknown: the pipeline refuses further work
    (finishing an attempt that needs more steps included), and the miner's
    next launch starts a new pipeline whose attempts are the CPU's."""
    if not _sm90.available():
        pytest.skip("no Hopper (sm_90) GPU here")
    from bcai.mining import _device_hash, _gpu  # noqa: PLC0415

    monkeypatch.setattr(_gpu, "PIPELINE_WORK", (0, 2**62))
    params = PouwParams(tile=128, n=256, k=256, m=256)
    work = pouw.derived_work(b"\x68" * 32, params)
    miner, cpu = GpuMiner(sm90=True), CpuMiner()
    seeds = [attempt_seed(b"broken", nonce) for nonce in range(8)]
    handles = [miner.launch(work, seed, params) for seed in seeds[:3]]
    first = miner._pipeline
    real = _device_hash.launch_noise

    def failing(*args: object, **kwargs: object) -> None:
        real(*args, **kwargs)  # the XOF recorded or run: the factors may be overwritten
        raise RuntimeError("injected failure")

    monkeypatch.setattr(_device_hash, "launch_noise", failing)
    with pytest.raises(RuntimeError, match="injected"):
        miner.launch(work, seeds[3], params)
    monkeypatch.setattr(_device_hash, "launch_noise", real)
    assert first is not None and first.broken
    with pytest.raises(RuntimeError, match="failed part-way"):
        miner.finish(handles[2])  # needs steps the broken pipeline would run
    handles = [miner.launch(work, seed, params) for seed in seeds[3:6]]
    assert miner._pipeline is not first
    for seed, handle in zip(seeds[3:6], handles, strict=True):
        assert miner.finish(handle)[0] == cpu.attempt_leaves(work, seed, params)


def test_pipeline_takes_the_work_within_its_range() -> None:
    """By default the pipeline takes n·k·m from 4096³ below 16384³ on
    Hopper at b = 128 (smaller work runs faster as recorded attempts on
    three streams, larger on one); mine's depth follows."""
    if not _sm90.available():
        pytest.skip("no Hopper (sm_90) GPU here")
    miner = GpuMiner(sm90=True)
    for n, k, tile, pipelined in (
        (2048, 2048, 128, False),
        (4096, 2048, 128, False),
        (4096, 4096, 128, True),
        (8192, 8192, 128, True),
        (16384, 16384, 128, False),
        (4096, 4096, 64, False),
    ):
        work = pouw.Work(np.zeros((n, k), np.int8), np.zeros((k, n), np.int8))  # pages untouched
        params = PouwParams(tile=tile, n=n, k=k, m=n)
        assert miner.depth_for(work, params) == (5 if pipelined else 3), (n, k, tile)


def test_spare_sms_keep_the_transcripts_rounds() -> None:
    """The SMs the pipeline leaves beside the transcript: as many as keep
    its rounds of tiles a block (one more allowed from eight rounds), at
    most SPARE_SMS, at least one — and one for every LEAVES_PER_SM leaves
    (the Merkle root beside it)."""
    if not _sm90.available():
        pytest.skip("no Hopper (sm_90) GPU here")
    import cupy  # noqa: PLC0415

    from bcai.mining._gpu_pipeline import LEAVES_PER_SM, SPARE_SMS, spare_sms  # noqa: PLC0415

    sms = int(cupy.cuda.Device().attributes["MultiProcessorCount"])
    for n in (256, 1024, 2048, 4096, 8192, 16384):
        tiles, slices = (n // 128) ** 2, n // 128
        least = -(-tiles // sms)
        allowed = least + 1 if least >= 8 else least
        need = -(-tiles * slices // LEAVES_PER_SM)
        spare = spare_sms(n, n, n)
        assert max(1, need) <= spare <= max(SPARE_SMS, need)
        if spare > need:  # the most that keeps the rounds
            assert -(-tiles // (sms - spare)) <= allowed
            assert spare == SPARE_SMS or -(-tiles // (sms - spare - 1)) > allowed
    if sms == 132:  # the H100 SXM: 18 at n = 4096 (9 rounds), 7 at 8192 (33), 8 at 16384
        assert [spare_sms(n, n, n) for n in (4096, 8192, 16384)] == [18, 7, 8]


def test_mining_again_after_a_seal_on_the_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    """`mine` returns at its seal with later attempts still launched; the
    next `mine` on the same miner (the next block's, same work) drops them
    and finds the CPU's seal again — on the Hopper pipeline."""
    if not _sm90.available():
        pytest.skip("no Hopper (sm_90) GPU here")
    from bcai.mining import _gpu  # noqa: PLC0415
    from bcai.mining._miner import run_attempt  # noqa: PLC0415

    monkeypatch.setattr(_gpu, "PIPELINE_WORK", (0, 2**62))  # at this small size too
    params = PouwParams(tile=128, n=256, k=256, m=256)
    work = pouw.derived_work(b"\x77" * 32, params)
    cpu = [run_attempt(b"again", nonce, work, params, CpuMiner()) for nonce in range(12)]
    miner = GpuMiner(sm90=True)
    for start in (0, 6):
        best = min(cpu[start : start + 6], key=lambda found: found.ticket)
        target = int.from_bytes(best.ticket, "big")
        seal = mine(b"again", target, work, params, miner=miner, start=start, attempts=6)
        assert seal is not None and seal.nonce == best.nonce and seal.root == best.root
    assert miner._pipeline is not None and miner.depth_for(work, params) == 5


def test_the_pipeline_at_its_own_shape_finds_the_cpus_seal() -> None:
    """The pipeline where it ships (n = 4096, the default PIPELINE_WORK,
    its recorded steps from the fifth attempt): `mine` over ten attempts
    returns the seal the CPU miner (Rust, all cores) finds among them."""
    if not _sm90.available():
        pytest.skip("no Hopper (sm_90) GPU here")
    from bcai.mining._miner import run_attempt  # noqa: PLC0415

    params = PouwParams(tile=128, n=4096, k=4096, m=4096)
    work = pouw.derived_work(b"\x44" * 32, params)
    miner = GpuMiner(sm90=True)
    assert miner.depth_for(work, params) == PIPELINE_DEPTH  # the pipeline's shape
    cpu = [run_attempt(b"shape", nonce, work, params, CpuMiner()) for nonce in range(10)]
    best = min(cpu, key=lambda found: found.ticket)
    target = int.from_bytes(best.ticket, "big")
    seal = mine(b"shape", target, work, params, miner=miner, attempts=10)
    assert seal is not None and (seal.nonce, seal.root) == (best.nonce, best.root)
    pipeline = miner._pipeline
    assert pipeline is not None and any(graph is not None for graph in pipeline.graphs.values())


def test_full_re_verification_on_the_gpu() -> None:
    """A node mining on the GPU re-verifies seals on it (`full_verify` with
    a GPU miner's attempts, as the node's `seal_verifier(backend="gpu")`
    passes them): an honest seal at n = 4096 (the CPU miner's) passes, the
    same seal under another header fails with ``pouw-full-mismatch``."""
    if not available():
        pytest.skip("no CuPy with a CUDA device here")
    params = PouwParams(tile=128, n=4096, k=4096, m=4096)
    work = pouw.derived_work(b"\x45" * 32, params)
    seal = mine(b"full", 2**256 - 1, work, params, miner=CpuMiner(), attempts=1)
    assert seal is not None
    verifier = pouw.PouwSealVerifier(params, full=True, leaves_of=new_miner("gpu").attempt_leaves)
    assert verifier.leaves_of is not None
    pouw.full_verify(b"full", seal, work, params, verifier.leaves_of)
    with pytest.raises(pouw.InvalidSeal) as err:
        pouw.full_verify(b"other", seal, work, params, verifier.leaves_of)
    assert err.value.code == "pouw-full-mismatch"


@pytest.mark.parametrize("serial", [False, True])
@pytest.mark.parametrize(("tile", "backend"), [(32, "gpu"), (128, "gpu-triton"), (128, "gpu-sm90")])
def test_mining_loop_attempts_equal_the_cpus(
    tile: int, backend: str, serial: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mine` with attempts in flight on every stream, or on one stream
    (the mode of large work, SERIAL_WORK): each finished attempt's ticket is
    the CPU miner's for that nonce (no buffers reused before their attempt
    was read; an attempt waited for by its own event). The recorded
    attempts, not the Hopper pipeline (PIPELINE_WORK; tested above)."""
    from bcai.mining import MiningStats, _gpu  # noqa: PLC0415
    from bcai.mining._miner import run_attempt  # noqa: PLC0415

    monkeypatch.setattr(_gpu, "SERIAL_WORK", 0 if serial else _gpu.SERIAL_WORK)
    monkeypatch.setattr(_gpu, "PIPELINE_WORK", (0, 0))

    params = PouwParams(tile=tile, n=256, k=256, m=256)
    work = pouw.derived_work(bytes([tile]) * 32, params)
    if backend == "gpu-sm90" and not _sm90.available():
        pytest.skip("no Hopper (sm_90) GPU here")
    miner = new_miner(backend)
    cpu = [run_attempt(b"loop", nonce, work, params, CpuMiner()) for nonce in range(7)]
    best = min(cpu, key=lambda found: found.ticket)
    target = int.from_bytes(best.ticket, "big")  # only the best of the seven wins
    stats = MiningStats()
    seal = mine(b"loop", target, work, params, miner=miner, attempts=7, stats=stats)
    assert seal is not None and seal.nonce == best.nonce and seal.root == best.root
    assert stats.attempts == best.nonce + 1
    assert miner._serial == serial and (len({id(s) for s in miner._streams}) == 1) == serial
