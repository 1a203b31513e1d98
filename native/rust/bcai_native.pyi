"""bcai_native: bcai's compiled core (Rust, PyO3, abi3).

Every function checks its arguments: a wrong type raises TypeError, a wrong
length or shape ValueError. Work longer than a few microseconds runs with the
GIL released. "Bytes-like" means bytes, or any C-contiguous buffer of unsigned
bytes (bytearray, memoryview, numpy uint8 array).
"""

from collections.abc import Iterable, Sequence
from typing import Final, final

import numpy as np
import numpy.typing as npt
from typing_extensions import Buffer

__all__ = [
    "__version__",
    "SMT_LEAF_CONTEXT",
    "SMT_NODE_CONTEXT",
    "SparseMerkleTree",
    "smt_leaf_hash",
    "smt_node_hash",
    "smt_verify",
    "FREIVALDS_MODULUS",
    "MERKLE_LEAF_CONTEXT",
    "MERKLE_NODE_CONTEXT",
    "Blake3",
    "blake3_derive_key",
    "blake3_hash",
    "blake3_keyed_hash",
    "ed25519_generate",
    "ed25519_public_key",
    "ed25519_sign",
    "ed25519_verify",
    "ed25519_verify_batch",
    "freivalds_check",
    "merkle_leaf_hash",
    "merkle_node_hash",
    "merkle_proof",
    "merkle_root",
    "merkle_root_packed",
    "merkle_verify",
    "pouw_attempt_leaves",
    "pouw_product",
    "pouw_transcript",
    "sha256",
]

__version__: Final[str]
MERKLE_LEAF_CONTEXT: Final[str]
"""BLAKE3 derive-key context of the Merkle leaf key."""
MERKLE_NODE_CONTEXT: Final[str]
"""BLAKE3 derive-key context of the Merkle node key."""
SMT_LEAF_CONTEXT: Final[str]
"""BLAKE3 derive-key context of the sparse Merkle tree's leaf key."""
SMT_NODE_CONTEXT: Final[str]
"""BLAKE3 derive-key context of the sparse Merkle tree's node key."""
FREIVALDS_MODULUS: Final[int]
"""The prime 2^61 − 1 that Freivalds' check works modulo."""

def blake3_hash(
    data: Buffer, /, *, length: int = 32, seek: int = 0, threads: bool = False
) -> bytes:
    """BLAKE3 hash of `data`: `length` bytes of output from offset `seek`.

    `threads=True` hashes large inputs on all cores (rayon).
    """

def blake3_keyed_hash(
    key: Buffer, data: Buffer, /, *, length: int = 32, seek: int = 0, threads: bool = False
) -> bytes:
    """BLAKE3 keyed hash (a MAC / PRF) of `data` under a 32-byte `key`."""

def blake3_derive_key(
    context: str, key_material: Buffer, /, *, length: int = 32, seek: int = 0
) -> bytes:
    """BLAKE3 derive-key mode: a subkey of `key_material` for `context`.

    The context should be a hard-coded, globally unique string.
    """

def sha256(data: Buffer, /) -> bytes:
    """SHA-256 digest (32 bytes)."""

@final
class Blake3:
    """Streaming BLAKE3, in plain, keyed (`key`) or derive-key mode."""

    def __new__(
        cls,
        data: Buffer | None = None,
        /,
        *,
        key: Buffer | None = None,
        derive_key_context: str | None = None,
        threads: bool = False,
    ) -> Blake3: ...
    def update(self, data: Buffer) -> None:
        """Absorbs more input."""

    def digest(self, length: int = 32, *, seek: int = 0) -> bytes:
        """Output of everything absorbed so far; the hasher stays usable."""

    def hexdigest(self, length: int = 32, *, seek: int = 0) -> str:
        """`digest` as lowercase hex."""

    def copy(self) -> Blake3:
        """An independent copy of the current state."""

    def reset(self) -> None:
        """Back to the state just after construction (same mode and key)."""

def merkle_root(leaves: Sequence[Buffer], /) -> bytes:
    """Root of the RFC 6962-shaped BLAKE3 Merkle tree over `leaves`.

    The empty tree's root is BLAKE3(b"").
    """

def merkle_root_packed(data: Buffer, leaf_size: int, /) -> bytes:
    """Like `merkle_root` over consecutive `leaf_size`-byte slices of `data`."""

def merkle_proof(leaves: Sequence[Buffer], index: int, /) -> list[bytes]:
    """RFC 6962 audit path (deepest sibling first) for leaf `index`."""

def merkle_verify(
    root: Buffer, leaf: Buffer, index: int, size: int, proof: Iterable[Buffer], /
) -> bool:
    """Whether `leaf` is leaf `index` of a `size`-leaf tree with this `root`."""

def merkle_leaf_hash(data: Buffer, /) -> bytes:
    """The Merkle leaf hash of `data` (BLAKE3 keyed by the leaf key)."""

def merkle_node_hash(left: Buffer, right: Buffer, /) -> bytes:
    """The Merkle node hash of two 32-byte children."""

def ed25519_generate() -> bytes:
    """A fresh 32-byte Ed25519 secret seed from the OS's randomness."""

def ed25519_public_key(seed: Buffer, /) -> bytes:
    """The 32-byte public key of a 32-byte secret seed."""

def ed25519_sign(seed: Buffer, message: Buffer, /) -> bytes:
    """A 64-byte Ed25519 signature (RFC 8032, deterministic)."""

def ed25519_verify(public_key: Buffer, message: Buffer, signature: Buffer, /) -> bool:
    """ZIP-215 verification of one signature."""

def ed25519_verify_batch(items: Iterable[tuple[Buffer, Buffer, Buffer]], /) -> list[bool]:
    """ZIP-215 batch verification of (public_key, message, signature) items.

    Returns one flag per item; agrees with `ed25519_verify` on every input.
    """

def freivalds_check(
    a: npt.NDArray[np.int8],
    b: npt.NDArray[np.int8],
    c: npt.NDArray[np.int32],
    /,
    *,
    rounds: int = 2,
    seed: Buffer,
) -> bool:
    """Whether C = A·B (int8 A, B; int32 C), by `rounds` seeded Freivalds rounds.

    A wrong C passes one round with probability at most 1/(2^61 − 1), and all
    rounds with at most that to the power `rounds`; a "False" is always right.
    """

def pouw_attempt_leaves(
    a: npt.NDArray[np.int8],
    b: npt.NDArray[np.int8],
    e_l: npt.NDArray[np.int8],
    e_rt: npt.NDArray[np.int8],
    f_l: npt.NDArray[np.int8],
    f_rt: npt.NDArray[np.int8],
    /,
    *,
    tile: int,
    key: int,
    held: tuple[bytes, bytes] | None = None,
) -> bytes | None:
    """The leaves of a whole attempt from A (n×k), B (k×m) and the noise
    factors E_L (n×r), E_R transposed (k×r), F_L (k×r), F_R transposed
    (m×r), with r = b: A' and B' are built and packed for the AVX2 kernel
    in one go. `held`: a token for each of A' and B' naming what it is
    formed from — a side whose token is the one the shared workspace last
    formed it under is kept, not formed again (an empty token never
    matches; without `held` both are formed and none is kept). None where
    that kernel does not apply (no AVX2, or b not a multiple of 16).
    Raises ValueError for shapes that do not fit."""

def pouw_product(
    a: npt.NDArray[np.int8],
    bt: npt.NDArray[np.int8],
    /,
    *,
    tile: int = 64,
    out: npt.NDArray[np.int32] | None = None,
) -> npt.NDArray[np.int32]:
    """A·B (int32, n×m) of A (n×k) and B transposed (m×k) by the transcript's
    AVX2 kernel without the digest: the best bare int8 product on the CPU,
    for benchmarks; into `out` (C-contiguous n×m) when given. Raises
    ValueError without AVX2, for a tile that is not a multiple of 16
    dividing n and m, an odd or mismatched k, or an unusable `out`."""

def pouw_transcript(
    a: npt.NDArray[np.int8], bt: npt.NDArray[np.int8], /, *, tile: int, key: int
) -> bytes:
    """The PoUW transcript's leaves (4 little-endian bytes each) of A' (n×k)
    and B' transposed (m×k), tile b, digest key κ + 2³²·λ (docs/pouw.md)."""

@final
class SparseMerkleTree:
    """A persistent sparse Merkle tree over 32-byte keys holding 32-byte value
    hashes. Nodes are never mutated, so every root it produced stays readable.

    Canonical compact form: an empty subtree hashes to 32 zero bytes, a subtree
    with one leaf is that leaf; the root depends only on the (key, value) set.
    """

    def __new__(cls) -> SparseMerkleTree: ...
    @property
    def node_count(self) -> int:
        """Nodes held in memory."""

    def update(self, root: Buffer, updates: Iterable[tuple[Buffer, Buffer | None]]) -> bytes:
        """The root after setting each key to its value hash (None deletes).

        Raises:
            ValueError: a key appears twice, or a length is wrong.
            LookupError: `root` (or a node under it) is not loaded.
        """

    def get(self, root: Buffer, key: Buffer) -> bytes | None:
        """The value hash under `key` in the tree `root`, or None."""

    def prove(self, root: Buffer, key: Buffer) -> tuple[list[bytes], tuple[bytes, bytes] | None]:
        """(siblings from the root down, the leaf where the walk ended or None)."""

    def drain_new_nodes(self) -> list[tuple[bytes, bytes]]:
        """Nodes created since the last call: (hash, 65-byte encoding)."""

    def load_nodes(self, encoded: Iterable[Buffer]) -> None:
        """Loads stored 65-byte node encodings."""

def smt_verify(
    root: Buffer,
    key: Buffer,
    value_hash: Buffer | None,
    siblings: Iterable[Buffer],
    terminal: tuple[Buffer, Buffer] | None,
    /,
) -> bool:
    """Whether `key` holds `value_hash` (None: is absent) under `root`. Pure."""

def smt_leaf_hash(key: Buffer, value_hash: Buffer, /) -> bytes:
    """Hash of a leaf: BLAKE3-keyed(K_leaf, key ‖ value_hash)."""

def smt_node_hash(left: Buffer, right: Buffer, /) -> bytes:
    """Hash of an internal node: BLAKE3-keyed(K_node, left ‖ right)."""
