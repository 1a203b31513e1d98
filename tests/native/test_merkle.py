"""Merkle trees: the native tree against an independent Python model of
RFC 6962 (recursive split, audit paths, RFC 9162 verification) built on the
`blake3` package, so shape, domain separation and proofs are all checked."""

from __future__ import annotations

import blake3 as blake3_pkg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bcai_native

LEAF_KEY = blake3_pkg.blake3(b"", derive_key_context=bcai_native.MERKLE_LEAF_CONTEXT).digest()
NODE_KEY = blake3_pkg.blake3(b"", derive_key_context=bcai_native.MERKLE_NODE_CONTEXT).digest()


def leaf(data: bytes) -> bytes:
    return blake3_pkg.blake3(data, key=LEAF_KEY).digest()


def node(left: bytes, right: bytes) -> bytes:
    return blake3_pkg.blake3(left + right, key=NODE_KEY).digest()


def split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash."""
    if not leaves:
        return blake3_pkg.blake3(b"").digest()
    if len(leaves) == 1:
        return leaf(leaves[0])
    k = split(len(leaves))
    return node(mth(leaves[:k]), mth(leaves[k:]))


def path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n])."""
    if len(leaves) <= 1:
        return []
    k = split(len(leaves))
    if m < k:
        return [*path(m, leaves[:k]), mth(leaves[k:])]
    return [*path(m - k, leaves[k:]), mth(leaves[:k])]


def make_leaves(n: int, width: int = 32) -> list[bytes]:
    return [bytes((i * 7 + j) % 256 for j in range(width + i % 5)) for i in range(n)]


def test_domain_separation_and_empty_tree() -> None:
    assert bcai_native.merkle_root([]) == blake3_pkg.blake3(b"").digest()
    x = b"\x11" * 32
    assert bcai_native.merkle_leaf_hash(x) == leaf(x)
    assert bcai_native.merkle_node_hash(x, x) == node(x, x)
    assert leaf(x + x) != node(x, x)  # a leaf can never pose as a node
    assert bcai_native.merkle_root([x]) == leaf(x)


@pytest.mark.parametrize("n", [*range(1, 40), 63, 64, 65, 1000, 4097, 20_000])
def test_root_matches_rfc6962(n: int) -> None:
    leaves = make_leaves(n)
    assert bcai_native.merkle_root(leaves) == mth(leaves)


def test_long_leaves_and_mixed_lengths() -> None:
    leaves = [b"", b"a" * 64, b"b" * 65, b"c" * 5000, *make_leaves(30, 60)]
    assert bcai_native.merkle_root(leaves) == mth(leaves)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 8, 13, 31, 33])
def test_every_proof_matches_rfc_and_verifies(n: int) -> None:
    leaves = make_leaves(n)
    root = mth(leaves)
    for m in range(n):
        proof = bcai_native.merkle_proof(leaves, m)
        assert proof == path(m, leaves)
        assert bcai_native.merkle_verify(root, leaves[m], m, n, proof)


@settings(max_examples=60)
@given(st.integers(2, 300), st.data())
def test_tampering_is_caught(n: int, data: st.DataObject) -> None:
    leaves = make_leaves(n)
    root = bcai_native.merkle_root(leaves)
    m = data.draw(st.integers(0, n - 1))
    proof = bcai_native.merkle_proof(leaves, m)
    assert bcai_native.merkle_verify(root, leaves[m], m, n, proof)
    assert not bcai_native.merkle_verify(root, leaves[m] + b"x", m, n, proof)
    other = data.draw(st.integers(0, n - 1).filter(lambda i: leaves[i] != leaves[m]))
    assert not bcai_native.merkle_verify(root, leaves[other], m, n, proof)
    j = data.draw(st.integers(0, len(proof) - 1))
    bad = list(proof)
    bad[j] = bytes([bad[j][0] ^ 1]) + bad[j][1:]
    assert not bcai_native.merkle_verify(root, leaves[m], m, n, bad)
    assert not bcai_native.merkle_verify(root, leaves[m], m, n, proof[:-1])
    assert not bcai_native.merkle_verify(root, leaves[m], m, n, [*proof, root])
    assert not bcai_native.merkle_verify(root, leaves[m], n, n, proof)


def test_packed_equals_list() -> None:
    leaves = make_leaves(5000, 32)
    fixed = [x[:32] for x in leaves]
    assert bcai_native.merkle_root_packed(b"".join(fixed), 32) == bcai_native.merkle_root(fixed)
    assert bcai_native.merkle_root_packed(b"", 32) == bcai_native.merkle_root([])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="out of range"):
        bcai_native.merkle_proof([b"a"], 1)
    with pytest.raises(ValueError, match="out of range"):
        bcai_native.merkle_proof([], 0)
    with pytest.raises(TypeError, match=r"leaves\[1\]"):
        bcai_native.merkle_root([b"a", "b"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        bcai_native.merkle_root(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="multiple of leaf_size"):
        bcai_native.merkle_root_packed(b"abc", 2)
    with pytest.raises(ValueError, match="leaf_size must be positive"):
        bcai_native.merkle_root_packed(b"abc", 0)
    with pytest.raises(ValueError, match=r"proof\[0\]: expected 32 bytes"):
        bcai_native.merkle_verify(b"r" * 32, b"x", 0, 2, [b"short"])
    with pytest.raises(ValueError, match="root: expected 32 bytes"):
        bcai_native.merkle_verify(b"r", b"x", 0, 1, [])
    with pytest.raises(ValueError, match="left: expected 32 bytes"):
        bcai_native.merkle_node_hash(b"a", b"b" * 32)


def test_list_fast_path_and_fallbacks_agree() -> None:
    leaves = make_leaves(9000, 32)
    want = mth(leaves)
    assert bcai_native.merkle_root(leaves) == want  # list of bytes: borrowed
    assert bcai_native.merkle_root(tuple(leaves)) == want  # any sequence: copied

    class Sub(bytes):
        pass

    mixed: list[object] = list(leaves)
    mixed[8999] = bytearray(leaves[8999])
    mixed[5000] = Sub(leaves[5000])
    mixed[3] = memoryview(leaves[3])
    assert bcai_native.merkle_root(mixed) == want  # type: ignore[arg-type]
