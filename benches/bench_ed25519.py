"""Ed25519, 1024 signatures: bcai's batch verification against
`cryptography` verifying one by one (target: >= 2x)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

import bcai_native

KEYS = [Ed25519PrivateKey.generate() for _ in range(1024)]
ITEMS = [
    (k.public_key().public_bytes_raw(), b"transaction %d" % i, k.sign(b"transaction %d" % i))
    for i, k in enumerate(KEYS)
]
PUBLIC = [Ed25519PublicKey.from_public_bytes(pk) for pk, _, _ in ITEMS]


def cryptography_one_by_one() -> int:
    for key, (_, msg, sig) in zip(PUBLIC, ITEMS, strict=True):
        key.verify(sig, msg)
    return len(ITEMS)


@pytest.mark.benchmark(group="ed25519-1024-signatures")
def test_bcai_verify_batch(benchmark: Any, role: Any) -> None:
    role("bcai", 2)
    assert bcai_native.ed25519_verify_batch(ITEMS) == [True] * 1024
    bad = list(ITEMS)
    bad[500] = (bad[500][0], b"forged", bad[500][2])
    assert bcai_native.ed25519_verify_batch(bad).index(False) == 500
    benchmark(bcai_native.ed25519_verify_batch, ITEMS)


@pytest.mark.benchmark(group="ed25519-1024-signatures")
def test_bcai_verify_one_by_one(benchmark: Any, role: Any) -> None:
    role("info")
    benchmark(lambda: [bcai_native.ed25519_verify(*it) for it in ITEMS])


@pytest.mark.benchmark(group="ed25519-1024-signatures")
def test_cryptography_one_by_one(benchmark: Any, role: Any) -> None:
    role("baseline")
    assert cryptography_one_by_one() == 1024
    benchmark(cryptography_one_by_one)
