"""Hashing and Merkle trees, thin over `bcai_native`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import bcai_native
from bcai_native import Blake3

__all__ = [
    "Blake3",
    "blake3",
    "blake3_keyed",
    "blake3_xof",
    "derive_key",
    "merkle_leaf_hash",
    "merkle_node_hash",
    "merkle_proof",
    "merkle_root",
    "merkle_root_packed",
    "merkle_verify",
    "sha256",
]


def blake3(data: bytes) -> bytes:
    """BLAKE3-256 of `data` (32 bytes)."""
    return bcai_native.blake3_hash(data)


def blake3_xof(data: bytes, length: int, seek: int = 0) -> bytes:
    """`length` bytes of BLAKE3 extendable output of `data`, from offset `seek`."""
    return bcai_native.blake3_hash(data, length=length, seek=seek)


def blake3_keyed(key: bytes, data: bytes, length: int = 32) -> bytes:
    """BLAKE3 keyed hash (MAC/PRF) under a 32-byte key."""
    return bcai_native.blake3_keyed_hash(key, data, length=length)


def derive_key(context: str, material: bytes, length: int = 32) -> bytes:
    """BLAKE3 derive-key: a subkey of `material` for a fixed `context` string."""
    return bcai_native.blake3_derive_key(context, material, length=length)


def sha256(data: bytes) -> bytes:
    """SHA-256 of `data`."""
    return bcai_native.sha256(data)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root of the RFC 6962-shaped BLAKE3 Merkle tree over `leaves`
    (docs/consensus.md, "Merkle trees")."""
    return bcai_native.merkle_root(leaves)


def merkle_root_packed(data: bytes, leaf_size: int) -> bytes:
    """`merkle_root` over consecutive `leaf_size`-byte slices of `data`."""
    return bcai_native.merkle_root_packed(data, leaf_size)


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Inclusion proof (audit path) of leaf `index`."""
    return bcai_native.merkle_proof(leaves, index)


def merkle_verify(root: bytes, leaf: bytes, index: int, size: int, proof: Iterable[bytes]) -> bool:
    """Whether `leaf` is leaf `index` of the `size`-leaf tree with `root`."""
    return bcai_native.merkle_verify(root, leaf, index, size, proof)


def merkle_leaf_hash(data: bytes) -> bytes:
    """Leaf hash of `data`."""
    return bcai_native.merkle_leaf_hash(data)


def merkle_node_hash(left: bytes, right: bytes) -> bytes:
    """Node hash of two 32-byte children."""
    return bcai_native.merkle_node_hash(left, right)
