"""BLAKE3 and SHA-256 of bcai_native: the published vectors (all three modes,
extended output), the `blake3` package and hashlib as references, and the
argument checks."""

from __future__ import annotations

import hashlib

import blake3 as blake3_pkg
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bcai_native
from tests.conftest import load_vectors

VECTORS = load_vectors("blake3.json")
CASES = VECTORS["cases"]
KEY = VECTORS["key"].encode()
CONTEXT = VECTORS["context_string"]


def vector_input(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"len{c['input_len']}")
def test_published_vectors_all_modes(case: dict[str, object]) -> None:
    data = vector_input(int(case["input_len"]))  # type: ignore[call-overload]
    for mode, fn in (
        ("hash", lambda n, s=0: bcai_native.blake3_hash(data, length=n, seek=s)),
        ("keyed_hash", lambda n, s=0: bcai_native.blake3_keyed_hash(KEY, data, length=n, seek=s)),
        (
            "derive_key",
            lambda n, s=0: bcai_native.blake3_derive_key(CONTEXT, data, length=n, seek=s),
        ),
    ):
        want = bytes.fromhex(case[mode])  # type: ignore[arg-type]
        assert fn(len(want)) == want, mode
        assert fn(32) == want[:32], mode
        assert fn(len(want) - 7, 7) == want[7:], f"{mode} with seek"


@pytest.mark.parametrize("case", CASES[::5], ids=lambda c: f"len{c['input_len']}")
def test_streaming_and_threads_match_one_shot(case: dict[str, object]) -> None:
    data = vector_input(int(case["input_len"]))  # type: ignore[call-overload]
    want = bytes.fromhex(case["hash"])  # type: ignore[arg-type]
    h = bcai_native.Blake3()
    for i in range(0, len(data), 1000):
        h.update(data[i : i + 1000])
    assert h.digest(len(want)) == want
    assert bcai_native.blake3_hash(data, length=len(want), threads=True) == want
    keyed = bcai_native.Blake3(data, key=KEY, threads=True)
    assert keyed.digest(len(want)) == bytes.fromhex(case["keyed_hash"])  # type: ignore[arg-type]
    derived = bcai_native.Blake3(derive_key_context=CONTEXT)
    derived.update(data)
    assert derived.hexdigest() == case["derive_key"][:64]  # type: ignore[index]


def test_copy_and_reset_are_independent() -> None:
    h = bcai_native.Blake3(b"abc")
    c = h.copy()
    c.update(b"def")
    assert h.digest() == bcai_native.blake3_hash(b"abc")
    assert c.digest() == bcai_native.blake3_hash(b"abcdef")
    h.reset()
    assert h.digest() == bcai_native.blake3_hash(b"")
    k = bcai_native.Blake3(b"x", key=KEY)
    k.reset()
    assert k.digest() == bcai_native.blake3_keyed_hash(KEY, b"")


def test_large_input_with_and_without_threads() -> None:
    data = np.random.default_rng(1).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes()
    want = blake3_pkg.blake3(data).digest()
    assert bcai_native.blake3_hash(data) == want
    assert bcai_native.blake3_hash(data, threads=True) == want


@given(st.binary(max_size=5000), st.binary(min_size=32, max_size=32), st.integers(1, 200))
def test_against_blake3_package(data: bytes, key: bytes, length: int) -> None:
    assert bcai_native.blake3_hash(data, length=length) == blake3_pkg.blake3(data).digest(length)
    assert bcai_native.blake3_keyed_hash(key, data) == blake3_pkg.blake3(data, key=key).digest()


@given(st.binary(max_size=3000))
def test_sha256_against_hashlib(data: bytes) -> None:
    assert bcai_native.sha256(data) == hashlib.sha256(data).digest()


def test_accepts_every_bytes_like_input() -> None:
    want = bcai_native.blake3_hash(b"abcd")
    assert bcai_native.blake3_hash(bytearray(b"abcd")) == want
    assert bcai_native.blake3_hash(memoryview(b"xabcdx")[1:5]) == want
    assert bcai_native.blake3_hash(np.frombuffer(b"abcd", dtype=np.uint8)) == want
    assert bcai_native.sha256(bytearray(b"abcd")) == hashlib.sha256(b"abcd").digest()


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(TypeError, match="bytes-like"):
        bcai_native.blake3_hash("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bytes-like"):
        bcai_native.sha256(12)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected 32 bytes, got 31"):
        bcai_native.blake3_keyed_hash(b"k" * 31, b"data")
    with pytest.raises(ValueError, match="length must be"):
        bcai_native.blake3_hash(b"", length=0)
    with pytest.raises(ValueError, match="length must be"):
        bcai_native.blake3_hash(b"", length=(1 << 30) + 1)
    with pytest.raises(ValueError, match="C-contiguous"):
        bcai_native.blake3_hash(memoryview(bytes(range(10)))[::2])
    with pytest.raises(ValueError, match="not both"):
        bcai_native.Blake3(key=KEY, derive_key_context="x")
    with pytest.raises(OverflowError):
        bcai_native.blake3_hash(b"", length=-1)
