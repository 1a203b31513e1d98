"""The hand-written Hopper kernel (native/cuda/transcript_sm90.cu) on its
own: its bare product is exact and its leaves are the CPU miner's for
shapes that give the two consumer warpgroups of a block unequal numbers of
tiles; bad operands are refused with a reason. The kernel runs on the GPU
machine's H100; the shape rule is checked everywhere."""

from __future__ import annotations

import numpy as np
import pytest

from bcai import pouw
from bcai.mining import CpuMiner, _sm90, new_miner
from bcai.mining._gpu import available as gpu_available
from bcai.pouw import InvalidSeal
from bcai.pouw._noise import attempt_seed


@pytest.mark.parametrize(
    ("n", "k", "m", "tile", "ok"),
    [
        (128, 128, 128, 128, True),
        (4096, 4096, 4096, 128, True),
        (256, 32768, 128, 128, True),
        (256, 32768 + 128, 128, 128, False),  # the leaves of a tile wait in shared memory
        (128, 128, 128, 64, False),
        (192, 128, 128, 128, False),
        (128, 128, 64, 128, False),
    ],
)
def test_shape_rule(n: int, k: int, m: int, tile: int, ok: bool) -> None:
    assert _sm90.fits(n, k, m, tile) is ok
    if ok:
        _sm90.check(n, k, m, tile)
    else:
        with pytest.raises(ValueError, match="b = 128 dividing"):
            _sm90.check(n, k, m, tile)


hopper = pytest.mark.skipif(not _sm90.available(), reason="no Hopper (sm_90) GPU with CuPy here")


@pytest.mark.skipif(_sm90.available(), reason="a Hopper GPU is here")
def test_the_sm90_miner_needs_hopper() -> None:
    with pytest.raises(InvalidSeal) as caught:
        new_miner("gpu-sm90")
    assert caught.value.code == "pouw-miner-missing"
    assert ("Hopper" if gpu_available() else "CUDA device") in caught.value.message


def test_an_unknown_miner_is_refused() -> None:
    with pytest.raises(InvalidSeal) as caught:
        new_miner("gpu-sm100")
    assert caught.value.code == "pouw-miner-unknown"
    assert "gpu-sm90" in caught.value.message


def device(matrix: np.ndarray):  # type: ignore[no-untyped-def]
    import cupy  # noqa: PLC0415

    return cupy.asarray(np.ascontiguousarray(matrix))


# Tiles a block on a GPU of 132 SMs (the block's consumer warpgroups take
# them in turn: three for the transcript, two for the bare product): 1 tile
# (the other warpgroups have none); 10 tiles on 10 blocks; 300 on 100 blocks
# of 3; 264 on 132 of 2; 133 on 67 blocks, 66 of 2 and one of 1; 512 on 128
# of 4 (one warpgroup two tiles, the others one); 640 on 128 of 5
SHAPES = [
    (128, 128, 128),
    (256, 384, 640),
    (1280, 256, 3840),
    (1536, 128, 2816),
    (896, 128, 2432),
    (2048, 128, 4096),
    (2560, 128, 4096),
]


@pytest.mark.gpu
@hopper
@pytest.mark.parametrize(("n", "k", "m"), SHAPES)
def test_product_is_exact(n: int, k: int, m: int) -> None:
    import cupy  # noqa: PLC0415

    rng = np.random.default_rng(n + k + m)
    a = rng.integers(-128, 128, (n, k), dtype=np.int8)
    bt = rng.integers(-128, 128, (m, k), dtype=np.int8)
    c = cupy.empty((n, m), cupy.int32)
    _sm90.Operands(device(a), device(bt)).product(c)
    want = (a.astype(np.int64) @ bt.T.astype(np.int64)).astype(np.int32)
    np.testing.assert_array_equal(c.get(), want)


@pytest.mark.gpu
@hopper
@pytest.mark.parametrize(("n", "k", "m"), SHAPES)
def test_leaves_equal_the_cpus(n: int, k: int, m: int) -> None:
    import cupy  # noqa: PLC0415

    rng = np.random.default_rng(7 * n + k)
    a2 = rng.integers(-128, 128, (n, k), dtype=np.int8)
    b2 = rng.integers(-128, 128, (k, m), dtype=np.int8)
    key = pouw.digest_key(attempt_seed(b"sm90", n))
    keys = cupy.asarray(np.array([key & 0xFFFFFFFF, key >> 32], np.uint32))
    out = cupy.full((k // 128) * (n // 128) * (m // 128), 0xDEADBEEF, cupy.uint32)
    _sm90.Operands(device(a2), device(b2.T)).leaves(keys, out)
    assert out.get().astype("<u4").tobytes() == CpuMiner().leaves(a2, b2, 128, key)


@pytest.mark.gpu
@hopper
@pytest.mark.parametrize(("rows", "cols"), [(128, 128), (384, 256), (1280, 3840)])
def test_noisy_operand_is_the_hosts(rows: int, cols: int) -> None:
    """out = base + left·rightᵀ in int8, wrapping as the host's numpy does;
    factors with entries in {-1, 0, 1} as the noise has them."""
    import cupy  # noqa: PLC0415

    rng = np.random.default_rng(rows + cols)
    base = rng.integers(-128, 128, (rows, cols), dtype=np.int8)
    left = rng.integers(-1, 2, (rows, 128), dtype=np.int8)
    right = rng.integers(-1, 2, (cols, 128), dtype=np.int8)
    out = cupy.zeros((rows, cols), cupy.int8)
    other = cupy.zeros((cols, rows), cupy.int8)  # a second operand in the same launch
    _sm90.Noisy(
        (device(base), device(left), device(right), out),
        (device(base.T), device(right), device(left), other),
    ).launch()
    want = (base.astype(np.int64) + left.astype(np.int64) @ right.T.astype(np.int64)) & 0xFF
    np.testing.assert_array_equal(out.get(), want.astype(np.uint8).view(np.int8))
    np.testing.assert_array_equal(other.get(), want.astype(np.uint8).view(np.int8).T)
    single = cupy.zeros((rows, cols), cupy.int8)
    _sm90.Noisy((device(base), device(left), device(right), single)).launch()
    np.testing.assert_array_equal(single.get(), out.get())


@pytest.mark.gpu
@hopper
def test_bad_operands_are_refused() -> None:
    import cupy  # noqa: PLC0415

    a = cupy.zeros((256, 256), cupy.int8)
    with pytest.raises(ValueError, match="contiguous int8"):
        _sm90.tensor_map(a[:, :128])
    with pytest.raises(ValueError, match="contiguous int8"):
        _sm90.tensor_map(a.astype(cupy.int16))
    with pytest.raises(ValueError, match="inner dimensions differ"):
        _sm90.Operands(a, cupy.zeros((256, 128), cupy.int8))
    with pytest.raises(ValueError, match="b = 128 dividing"):
        _sm90.Operands(cupy.zeros((192, 256), cupy.int8), a)
    operands = _sm90.Operands(a, a)
    keys = cupy.zeros(2, cupy.uint32)
    with pytest.raises(ValueError, match="8 uint32"):
        operands.leaves(keys, cupy.zeros(7, cupy.uint32))
    with pytest.raises(ValueError, match="256×256 int32"):
        operands.product(cupy.zeros((256, 128), cupy.int32))
    with pytest.raises(ValueError, match="256×128 and 256×128 factors"):
        _sm90.Noisy((a, cupy.zeros((256, 64), cupy.int8), cupy.zeros((256, 128), cupy.int8), a))
