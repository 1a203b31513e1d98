"""The PoUW parameters: power-of-two tiles up to 128, the GPU network at
b = 128, the genesis encoding; and a b = 128 seal (sparse noise) mined,
verified by its spot checks and final tiles, and re-verified in full."""

from __future__ import annotations

import numpy as np
import pytest

from bcai import pouw
from bcai.mining import mine
from bcai.pouw import GPU_NET, InvalidSeal, PouwParams, Work
from bcai.pouw._params import GENESIS_TAG, MAX_NOISE_TERMS, TILES
from tests.pouw.cheats import MAX_TARGET


def test_tiles_are_even_powers_of_two_up_to_128() -> None:
    assert tuple(2**i for i in range(1, 8)) == TILES  # even: the digest pairs a row's entries
    assert MAX_NOISE_TERMS == 64 and max(TILES) == 2 * MAX_NOISE_TERMS
    PouwParams(tile=128, n=128, k=128, m=128)
    for tile in (0, 1, 3, 48, 256):
        with pytest.raises(InvalidSeal, match="tile") as err:
            PouwParams(tile=tile, n=256, k=256, m=256)
        assert err.value.code == "pouw-params"
    for checks, rounds in ((0, 2), (65, 2), (8, 0), (8, 129)):
        with pytest.raises(InvalidSeal, match="checks must be") as err:
            PouwParams(tile=32, checks=checks, rounds=rounds, n=256, k=256, m=256)
        assert err.value.code == "pouw-params"
    with pytest.raises(InvalidSeal) as err:
        PouwParams(tile=128, n=64, k=128, m=128)
    assert err.value.code == "pouw-shape"


@pytest.mark.parametrize(
    "fields",
    [
        b"tile=128;checks=8;rounds=2;n=4096;k=4096",  # a field missing
        b"tile=128;checks=8;rounds=2;n=4096;m=4096;k=4096",  # out of order
        b"tile=128;checks=eight;rounds=2;n=4096;k=4096;m=4096",  # not an integer
        b"tile=128;checks=8;rounds=2;n=4096;k=4096;m=\xff",  # not UTF-8
    ],
)
def test_a_bad_genesis_names_its_reason(fields: bytes) -> None:
    """A genesis that says it is sealed by PoUW but whose parameters do not
    parse is refused with ``pouw-genesis`` (a hash-sealed genesis is None)."""
    assert pouw.params_from_extra(b"bcai-seal=hash") is None
    with pytest.raises(InvalidSeal) as err:
        pouw.params_from_extra(GENESIS_TAG + fields)
    assert err.value.code == "pouw-genesis"


def test_a_genesis_of_the_earlier_seal_rule_is_refused() -> None:
    """A PoUW genesis written before neighbouring nonces shared a noise side
    (tag ``bcai-seal=pouw;``) names a rule this version does not verify: it
    is refused with ``pouw-genesis-version``, not read as hash-sealed."""
    fields = b"tile=32;checks=8;rounds=2;n=128;k=128;m=128"
    with pytest.raises(InvalidSeal) as err:
        pouw.params_from_extra(b"bcai-seal=pouw;" + fields + b";bcai devnet")
    assert err.value.code == "pouw-genesis-version"
    assert pouw.genesis_extra(pouw.DEVNET).startswith(b"bcai-seal=pouw2;")
    assert pouw.params_from_extra(b"bcai-seal=pouw2;" + fields) == pouw.DEVNET


def test_the_gpu_network_uses_tile_128() -> None:
    assert (GPU_NET.tile, GPU_NET.n, GPU_NET.k, GPU_NET.m) == (128, 4096, 4096, 4096)
    assert (GPU_NET.checks, GPU_NET.rounds) == (8, 2)
    assert pouw.leaf_count(GPU_NET.n, GPU_NET.k, GPU_NET.m, GPU_NET.tile) == 32 * 32 * 32
    assert pouw.params_from_extra(pouw.genesis_extra(GPU_NET, b"note")) == GPU_NET


def test_a_tile_128_job_seal_verifies() -> None:
    """Worst-case job entries (±63) under r = 128 noise: the noisy operands
    stay int8, the seal's final tiles match the posted product, and the
    whole transcript re-verifies."""
    params = PouwParams(tile=128, checks=4, rounds=2, n=256, k=256, m=128)
    rng = np.random.default_rng(128)
    a = np.where(rng.random((256, 256)) < 0.5, 63, -63).astype(np.int8)
    b = np.full((256, 128), -63, np.int8)
    work = Work(a, b, job=b"\x0c" * 32)
    c = pouw.work_product(work)
    target = MAX_TARGET >> 2
    seal = mine(b"b128", target, work, params, product=b"\x0d" * 32)
    assert seal is not None and len(seal.openings) == 2 * params.checks
    pouw.verify(b"b128", target, seal, work, params, c)
    pouw.full_verify(b"b128", seal, work, params)
    wrong = c.copy()
    wrong[5, 7] += 1
    with pytest.raises(InvalidSeal) as err:
        pouw.verify(b"b128", target, seal, work, params, wrong)
    assert err.value.code in {"pouw-freivalds", "pouw-final-tile"}


def test_work_range_is_checked_once_a_work() -> None:
    """`check_work` scans a Work's matrices once (`mine` calls it every
    block): the same Work passes again without a scan, new matrices make a
    new Work that is scanned, and a Work out of range fails every time."""
    from bcai.pouw import _work  # noqa: PLC0415

    params = PouwParams(tile=16, n=32, k=32, m=32)
    work = pouw.derived_work(b"\x21" * 32, params)
    pouw.check_work(work, params)
    assert _work._in_range.get(id(work)) is work
    bad_a = work.a.copy()
    bad_a[3, 4] = 64
    bad = pouw.Work(bad_a, work.b)
    for _ in range(2):
        with pytest.raises(InvalidSeal) as err:
            pouw.check_work(bad, params)
        assert err.value.code == "pouw-range"
    assert _work._in_range.get(id(bad)) is None
    pouw.check_work(work, params)  # still fine: the same value
