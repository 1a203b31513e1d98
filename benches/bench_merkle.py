"""Merkle root of 2^20 32-byte leaves: bcai_native against a pure-Python
RFC 6962 tree over hashlib's SHA-256 (target: >= 15x)."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

import bcai_native
from tests.native.test_merkle import mth

LEAVES = [i.to_bytes(32, "little") for i in range(1 << 20)]


def hashlib_root(leaves: list[bytes]) -> bytes:
    sha = hashlib.sha256
    level = [sha(b"\x00" + x).digest() for x in leaves]
    while len(level) > 1:
        nxt = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


@pytest.mark.benchmark(group="merkle-2^20-leaves")
def test_bcai_merkle_root(benchmark: Any, role: Any) -> None:
    role("bcai", 15)
    small = LEAVES[:3000]
    assert bcai_native.merkle_root(small) == mth(small)
    root = benchmark(bcai_native.merkle_root, LEAVES)
    assert root == bcai_native.merkle_root_packed(b"".join(LEAVES), 32)


@pytest.mark.benchmark(group="merkle-2^20-leaves")
def test_hashlib_merkle_root(benchmark: Any, role: Any) -> None:
    role("baseline")
    assert len(hashlib_root(LEAVES[:5])) == 32
    benchmark.pedantic(hashlib_root, args=(LEAVES,), rounds=3, iterations=1)
