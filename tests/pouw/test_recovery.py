"""Recovery of the useful product from an attempt's noisy one:
C = A'B' − A·F − E·B' = A·B exactly, in O((n + m)·k·r + n·m·r), for dense
(r ≤ 64) and sparse (r = 128) noise, random and worst-case entries; a
noisy product of other noise gives no C, and bad inputs are refused with
their codes."""

from __future__ import annotations

import numpy as np
import pytest

from bcai import kernels, pouw
from bcai.pouw import InvalidSeal, Work
from bcai.pouw._noise import Noise, attempt_seed, noisy


def noisy_product(work: Work, noise: Noise) -> np.ndarray:
    a2, b2 = noisy(work.a, work.b, noise)
    return kernels.matmul_i8(a2, b2)


@pytest.mark.parametrize(
    ("n", "k", "m", "rank"),
    [(64, 64, 64, 32), (96, 160, 64, 32), (128, 384, 256, 64), (256, 512, 128, 128)],
)
@pytest.mark.parametrize("entries", ["random", "worst"])
def test_the_product_is_recovered_exactly(n: int, k: int, m: int, rank: int, entries: str) -> None:
    rng = np.random.default_rng(n + 7 * k + 11 * m + rank)
    if entries == "random":
        a = rng.integers(-63, 64, (n, k), dtype=np.int8)
        b = rng.integers(-63, 64, (k, m), dtype=np.int8)
    else:  # every partial sum at its largest: A = 63, B = −63
        a = np.full((n, k), 63, np.int8)
        b = np.full((k, m), -63, np.int8)
    work = Work(a, b)
    noise = Noise.derive(attempt_seed(b"recover", n + k), n, k, m, rank)
    product = noisy_product(work, noise)
    c = pouw.recover_product(product, work, noise)
    assert c.dtype == np.int32
    np.testing.assert_array_equal(c, pouw.work_product(work))
    assert not np.array_equal(product, c)  # the noise did change the product
    # the noisy product of another attempt's noise recovers no C with this noise
    other = Noise.derive(attempt_seed(b"recover", n + k + 1), n, k, m, rank)
    wrong = pouw.recover_product(noisy_product(work, other), work, noise)
    assert not np.array_equal(wrong, c)


def test_bad_inputs_are_refused_with_codes() -> None:
    rng = np.random.default_rng(5)
    n, k, m = 64, 96, 32
    work = Work(
        rng.integers(-63, 64, (n, k), dtype=np.int8), rng.integers(-63, 64, (k, m), dtype=np.int8)
    )
    noise = Noise.derive(attempt_seed(b"bad", 0), n, k, m, 32)
    product = noisy_product(work, noise)
    with pytest.raises(InvalidSeal) as err:
        pouw.recover_product(product[:, :16], work, noise)  # not n×m
    assert err.value.code == "pouw-shape"
    with pytest.raises(InvalidSeal) as err:
        pouw.recover_product(product, work, Noise.derive(attempt_seed(b"bad", 0), n, k, 2 * m, 32))
    assert err.value.code == "pouw-shape"  # noise derived for another shape
    with pytest.raises(InvalidSeal) as err:  # no int32 product is this far from A'B'
        pouw.recover_product(np.full((n, m), 2**31 - 1, np.int32) * np.sign(product), work, noise)
    assert err.value.code == "pouw-overflow"
