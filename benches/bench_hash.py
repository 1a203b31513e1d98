"""BLAKE3 of 64 MiB: bcai_native against the `blake3` package, single-threaded
and multi-threaded (target: >= 0.9x the package's throughput)."""

from __future__ import annotations

from typing import Any

import blake3 as blake3_pkg
import numpy as np
import pytest

import bcai_native

DATA = np.random.default_rng(0).integers(0, 256, 64 << 20, dtype=np.uint8).tobytes()
WANT = blake3_pkg.blake3(DATA).digest()


@pytest.mark.benchmark(group="blake3-64MiB-1-thread")
def test_bcai_blake3_one_thread(benchmark: Any, role: Any) -> None:
    role("bcai", 0.9)
    assert bcai_native.blake3_hash(DATA) == WANT
    benchmark(bcai_native.blake3_hash, DATA)


@pytest.mark.benchmark(group="blake3-64MiB-1-thread")
def test_package_blake3_one_thread(benchmark: Any, role: Any) -> None:
    role("baseline")
    benchmark(lambda: blake3_pkg.blake3(DATA).digest())


@pytest.mark.benchmark(group="blake3-64MiB-threads")
def test_bcai_blake3_threads(benchmark: Any, role: Any) -> None:
    role("bcai", 0.9)
    assert bcai_native.blake3_hash(DATA, threads=True) == WANT
    benchmark(lambda: bcai_native.blake3_hash(DATA, threads=True))


@pytest.mark.benchmark(group="blake3-64MiB-threads")
def test_package_blake3_threads(benchmark: Any, role: Any) -> None:
    role("baseline")
    assert blake3_pkg.blake3(DATA, max_threads=blake3_pkg.blake3.AUTO).digest() == WANT
    benchmark(lambda: blake3_pkg.blake3(DATA, max_threads=blake3_pkg.blake3.AUTO).digest())
